"""JAX helpers both operators use; each mirrors its namesake in ``reference.common``.

All functions are pure, jit/vmap-safe, and take one element unless they say
otherwise.  Working precision is float32 (float64 for float64 inputs when x64
is enabled); outputs are cast back to the input dtype, integers rounded
half-to-even and saturated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeGuard

import jax
import jax.numpy as jnp
import numpy as np

from datarax_ops.reference.common import RANGE_255_THRESHOLD

Array = jax.Array


def full_type_name(value: object) -> str:
    """``module.QualName`` of ``value``'s type: two classes named alike stay apart."""
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def uses_255_range(image: Array) -> Array:
    """Bool scalar: the element's largest value (NaNs ignored) exceeds 1.5.

    Computed as ``any(image > 1.5)``: a NaN compares false, so it is ignored
    without masking (one cheap reduction instead of a masked max).
    """
    if image.size == 0:
        return jnp.asarray(False)
    if jnp.issubdtype(image.dtype, jnp.integer):  # integers: > 1.5 means > 1
        return jnp.any(image > jnp.asarray(int(RANGE_255_THRESHOLD), image.dtype))
    # 1.5 is exact in every float dtype (bfloat16 and float16 included)
    return jnp.any(image > jnp.asarray(RANGE_255_THRESHOLD, image.dtype))


def by_value_scale(image: Array, per_scale: Callable[[float], float]) -> Array:
    """``per_scale(s)`` for the element's value scale ``s``: 255 for 0..255 data
    (``uses_255_range``), else 1 (``reference.common.value_scale``).

    A traced choice between two constants that ``per_scale`` computes in Python
    (float64, then rounded once) so each is exactly what the reference uses.
    """
    return jnp.where(uses_255_range(image), per_scale(255.0), per_scale(1.0))


def salt_pepper_values(
    salt_value: float | None, pepper_value: float | None, image: Array
) -> tuple[Array, float]:
    """``(salt, pepper)`` for the element (``reference.common.salt_pepper_values``): a
    ``None`` salt is its value scale (255 or 1, a float32 scalar), a ``None`` pepper 0."""
    salt = by_value_scale(image, float) if salt_value is None else jnp.asarray(salt_value)
    return salt, 0.0 if pepper_value is None else pepper_value


def working_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """float64 for float64 inputs (x64 on), float32 for everything else."""
    return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


def to_working(image: Array) -> Array:
    """The element in its working float dtype.  Shape unchanged."""
    return image.astype(working_dtype(image.dtype))


def from_working(values: Array, dtype: jnp.dtype) -> Array:
    """Casts back to ``dtype``: integers are rounded half-to-even and saturated."""
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.integer):
        return values.astype(dtype)
    info = jnp.iinfo(dtype)
    rounded = jnp.round(values)
    # Compare in the working float: iinfo.max may not be representable there,
    # so saturate with where() instead of clipping to a rounded bound.
    in_range = jnp.clip(rounded, float(info.min), float(info.max)).astype(dtype)
    high = jnp.asarray(info.max, dtype)
    low = jnp.asarray(info.min, dtype)
    return jnp.where(
        rounded >= float(info.max), high, jnp.where(rounded <= float(info.min), low, in_range)
    )


def float_range(clip_range: tuple[float, float] | None) -> tuple[float, float] | None:
    """``clip_range`` as a tuple of two Python floats (hashable), or None."""
    if clip_range is None:
        return None
    low, high = clip_range
    return float(low), float(high)


def clip(values: Array, clip_range: tuple[float, float] | None) -> Array:
    """Clips to ``clip_range`` (inclusive); ``None`` returns ``values``.  NaN stays NaN."""
    if clip_range is None:
        return values
    low, high = clip_range
    return jnp.clip(values, low, high)


# --------------------------------------------------------------------------- #
# Keys                                                                         #
# --------------------------------------------------------------------------- #
def as_typed_key(key: Array | np.ndarray) -> tuple[Array, bool]:
    """``(typed key array, is_batch)`` for a single key or a ``(batch,)`` array of keys.

    Accepts new-style typed keys (``jax.random.key``: shape ``()`` or
    ``(batch,)``) and legacy raw ``uint32`` keys (``jax.random.PRNGKey``:
    shape ``(2,)`` or ``(batch, 2)``).  Anything else raises ``TypeError``.
    """
    if isinstance(key, (jax.Array, np.ndarray)) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.ndim > 1:
            raise TypeError(
                f"rng must be one key or a (batch,) array of keys, got shape {key.shape}"
            )
        return jnp.asarray(key), key.ndim == 1
    if isinstance(key, (jax.Array, np.ndarray)) and key.dtype == jnp.uint32:
        impl_width = jax.random.key_data(jax.random.key(0)).shape[-1]
        if key.ndim in (1, 2) and key.shape[-1] == impl_width:
            return jax.random.wrap_key_data(jnp.asarray(key)), key.ndim == 2
        raise TypeError(
            f"a raw uint32 key must have shape ({impl_width},) or (batch, {impl_width}), "
            f"got {key.shape}"
        )
    raise TypeError(
        "rng must be a JAX PRNG key (jax.random.key or jax.random.PRNGKey) or a (batch,) array "
        f"of them, got {type(key).__name__} with dtype {getattr(key, 'dtype', None)}"
    )


def is_prng_key(value: object) -> TypeGuard[Array | np.ndarray]:
    """True for one PRNG key or a batch of them: a typed key array, or a raw
    ``uint32`` array whose last axis is the key width (2 for threefry).

    Params are always dicts, so an array here can only mean a key.
    """
    if not isinstance(value, (jax.Array, np.ndarray)):
        return False
    return jnp.issubdtype(value.dtype, jax.dtypes.prng_key) or value.dtype == jnp.uint32


def record_key_data(key: Array | np.ndarray) -> Array:
    """One record's key as raw ``uint32 (2,)`` data (what ``datarax_ops.stream`` takes).

    Raises:
      TypeError: not a key (see ``as_typed_key``).
      ValueError: a batch of keys where one record's key is needed.
    """
    typed, is_batch = as_typed_key(key)
    if is_batch:
        raise ValueError(
            "one record's key is needed here (apply transforms one element), got PRNG keys of "
            f"shape {tuple(jnp.shape(key))}"
        )
    return jax.random.key_data(typed)


# --------------------------------------------------------------------------- #
# Nested fields ("data.image")                                                 #
# --------------------------------------------------------------------------- #
def get_field(data: dict, key: str) -> Array:
    """``data[key]``; a dotted key walks nested dicts.  KeyError lists what is there.

    The message starts with datarax's ("Field '<key>' not found in data").
    """
    if key in data:
        return data[key]
    node: object = data
    walked: list[str] = []
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(walked) or "data"
            available = sorted(map(str, node)) if isinstance(node, dict) else []
            raise KeyError(f"Field '{key}' not found in data: {where!r} has keys {available}")
        node = node[part]
        walked.append(part)
    return node  # type: ignore[return-value]


def has_field(data: dict, key: str) -> bool:
    try:
        get_field(data, key)
    except KeyError:
        return False
    return True


def set_field(data: dict, key: str, value: Array) -> dict:
    """A copy of ``data`` with ``key`` (dotted: nested) set; ``data`` is not mutated."""
    if key in data or "." not in key:
        return {**data, key: value}
    head, rest = key.split(".", 1)
    child = data.get(head, {})
    if not isinstance(child, dict):
        raise KeyError(f"cannot write {key!r}: {head!r} is not a dict")
    return {**data, head: set_field(child, rest, value)}


def drop_field(data: dict, key: str) -> dict:
    """A copy of ``data`` without ``key`` (dotted: nested)."""
    if key in data:
        return {k: v for k, v in data.items() if k != key}
    head, _, rest = key.partition(".")
    if rest and isinstance(data.get(head), dict):
        return {**data, head: drop_field(data[head], rest)}
    return dict(data)
