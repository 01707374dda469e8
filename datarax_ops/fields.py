"""Which field an operator reads and writes, and the checks on it: one checker for every path.

``op(batch)``, ``apply``, datarax's stage call and the grain transform all take their
input through ``FieldRoute.source`` and write through ``FieldRoute.route``, so a missing
field, a non-numeric dtype, a missing auxiliary field or NaN/Inf (with
``validate_domain_constraints``) gets the same error, with the same message, everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from datarax_ops import buckets
from datarax_ops._common import drop_field, full_type_name, get_field, has_field, set_field

Array = jax.Array


def is_real_dtype(dtype: Any) -> bool:
    """A floating or integer dtype (bool, complex, strings, objects are not)."""
    return dtype != jnp.bool_ and (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    )


def dtype_of(value: Any) -> Any:
    """``value``'s dtype (arrays) or NumPy's for it (numbers, lists); None if it has none."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None:
        return dtype
    try:
        return np.asarray(value).dtype
    except (TypeError, ValueError):  # e.g. a ragged list
        return None


def nonfinite_count(image: Any) -> int:
    """How many NaN/Inf values ``image`` (a JAX or NumPy array, any float dtype) holds."""
    if isinstance(image, np.ndarray):
        finite = np.isfinite(image.astype(np.float32, copy=False))
        return int(image.size - np.count_nonzero(finite))
    return int(jnp.size(image) - jnp.count_nonzero(jnp.isfinite(image)))


@dataclasses.dataclass(frozen=True)
class FieldRoute:
    """The fields of one operator config: where the image is read and written.

    Attributes:
      field_key: the field read (dotted keys walk nested dicts).
      target_key: the field written (``field_key`` unless the config sets one).
      auxiliary_fields: fields that must be present (dropped unless ``preserve_auxiliary``).
      preserve_auxiliary: keep the auxiliary fields in the output.
      validate_domain: NaN/Inf in a concrete floating input is an error.
    """

    field_key: str
    target_key: str
    auxiliary_fields: tuple[str, ...]
    preserve_auxiliary: bool
    validate_domain: bool

    @classmethod
    def from_config(cls, config: Any) -> FieldRoute:
        return cls(
            field_key=config.field_key,
            target_key=config.target_key or config.field_key,
            auxiliary_fields=tuple(config.auxiliary_fields or ()),
            preserve_auxiliary=bool(config.preserve_auxiliary),
            validate_domain=bool(config.validate_domain_constraints),
        )

    def source(
        self, data: Any, *, batched: bool, as_array: Callable[[Any], Any] = buckets.to_device
    ) -> Any:
        """The field to transform, as ``as_array`` makes it (a JAX array by default, put on
        the device without compiling per shape; NumPy for grain).

        Raises:
          TypeError: ``data`` is not a dict; the field is not a real numeric array.
          KeyError: the field or an auxiliary field is missing.
          ValueError: ``batched`` and the field is a scalar (no batch axis).
        """
        if not isinstance(data, dict):
            raise TypeError(f"data must be a dict of arrays, got {full_type_name(data)}")
        image = get_field(data, self.field_key)
        dtype = dtype_of(image)
        if dtype is None or not is_real_dtype(dtype):
            raise TypeError(
                f"field {self.field_key!r} has dtype {dtype} ({type(image).__name__}); image "
                "operators need a real floating or integer array"
            )
        image = as_array(image)
        if batched and image.ndim == 0:
            raise ValueError(f"batch field {self.field_key!r} needs a batch axis, got a scalar")
        for aux in self.auxiliary_fields:
            if not has_field(data, aux):
                raise KeyError(
                    f"auxiliary field {aux!r} not found in data with keys {sorted(data)}"
                )
        return image

    def wants_finite_check(self, image: Any) -> bool:
        """A concrete (not traced), non-empty floating input under ``validate_domain``."""
        return bool(
            self.validate_domain
            and not isinstance(image, jax.core.Tracer)
            and jnp.issubdtype(image.dtype, jnp.floating)
            and image.size
        )

    def check_finite(self, image: Any) -> None:
        """Raises ``ValueError`` with the count when a checked input holds NaN/Inf."""
        if not self.wants_finite_check(image):
            return
        bad = nonfinite_count(image)
        if bad:
            raise ValueError(
                f"field {self.field_key!r} has {bad} NaN/Inf values; clean the input or set "
                "validate_domain_constraints=False to let them propagate"
            )

    def route(self, data: dict, output: Any) -> dict:
        """A copy of ``data`` with ``output`` at ``target_key``, auxiliary fields dropped
        unless preserved; ``data`` itself is not modified."""
        out = set_field(data, self.target_key, output)
        if not self.preserve_auxiliary:
            for aux in self.auxiliary_fields:
                out = drop_field(out, aux)
        return out
