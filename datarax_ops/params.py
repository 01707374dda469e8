"""Random params: generated for a batch, and taken from datarax's forms, in one place.

``generate_random_params`` draws every record's params from its own key (one key split
per record, or datarax's per-record keys); ``apply`` takes one element's params in this
project's form or datarax 0.1.4's (``from_datarax_params``), checked by ``checked_params``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from datarax_ops import stream
from datarax_ops._common import as_typed_key, get_field
from datarax_ops.errors import ParamsKeyError
from datarax_ops.fields import dtype_of, is_real_dtype
from datarax_ops.kernel import Kernel, element_programs

Array = jax.Array
Params = dict[str, Array]


def shape_of(value: Any, where: str) -> tuple[int, ...]:
    """A shape given as a tuple/list (or 1-D array) of non-negative integers, checked."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in value
    ):
        raise TypeError(
            f"{where} must be a shape tuple of ints such as (batch, H, W, C), got {value!r}"
        )
    shape = tuple(int(d) for d in value)
    if any(d < 0 for d in shape):
        raise ValueError(f"{where} has a negative dimension: {shape}")
    return shape


def from_datarax_params(kernel: Kernel, random_params: Any, element_shape: tuple[int, ...]) -> Any:
    """One element's params in datarax 0.1.4's form, converted to this project's.

    The one place the two forms meet (docs/datarax.md): where a mode's datarax form
    differs (a PRNG key instead of params, a mask of another shape), its kernel's
    ``from_datarax_params`` converts it.  Params already in this project's form are
    used as they are; anything else is returned unchanged for ``checked_params``
    to judge.
    """
    if not isinstance(random_params, dict):
        return random_params
    return kernel.from_datarax_params(random_params, tuple(element_shape))


def batch_shape(data_shapes: Any, field_key: str) -> tuple[int, tuple[int, ...]]:
    """``(batch size, element shape)`` of ``field_key`` in ``data_shapes``, checked.

    Raises:
      KeyError: ``field_key`` is not in ``data_shapes`` (datarax's message first).
      TypeError: ``data_shapes`` is not a dict or the shape is not a tuple of ints.
      ValueError: the shape has no batch axis or a negative dimension.
    """
    if not isinstance(data_shapes, dict):
        raise TypeError(
            f"data_shapes must be a dict of field shapes, got {type(data_shapes).__name__}"
        )
    try:
        raw_shape = get_field(data_shapes, field_key)
    except KeyError as error:
        message = (
            f"Field key '{field_key}' not found in data_shapes. "
            f"Available keys: {list(data_shapes.keys())}"
        )
        if "." in field_key:  # this project also walks nested dicts
            message += f" (nor nested: {error.args[0]})"
        raise KeyError(message) from None
    shape = shape_of(raw_shape, f"data_shapes[{field_key!r}]")
    if not shape:
        raise ValueError(f"data_shapes[{field_key!r}] needs a batch axis, got ()")
    return shape[0], shape[1:]


def per_record_key_data(rng: Any, batch_size: int) -> Array:
    """``uint32 (batch, 2)`` record keys: record ``i`` of one key ``rng`` gets
    ``record_key(rng, i)`` (``jax.random.split(rng, batch)[i]``); a ``(batch,)`` array of
    keys gives each record its own (typed or raw keys either way).

    Raises:
      TypeError: ``rng`` is not a key or an array of keys.
      ValueError: a key array whose length is not ``batch_size``.
    """
    keys, is_batch = as_typed_key(rng)
    key_data = jax.random.key_data(keys)
    if not is_batch:
        return stream.record_key(key_data, jnp.arange(batch_size, dtype=jnp.uint32))
    if keys.shape[0] != batch_size:
        raise ValueError(f"got {keys.shape[0]} per-record keys for a batch of {batch_size}")
    return key_data


def generate_params(
    kernel: Kernel, field_key: str, rng: Array, data_shapes: dict[str, tuple[int, ...]]
) -> dict[str, Array]:
    """Random params for a batch, e.g. ``{"noise": (batch, H, W, C)}``.

    Args:
      rng: one key (split into one key per record) or a ``(batch,)`` array
        of per-record keys; typed (``jax.random.key``) or raw
        (``jax.random.PRNGKey``) keys.
      data_shapes: maps field keys to batch shapes ``(batch, *element_shape)``;
        the operator's ``field_key`` (dotted keys may be nested dicts).

    Returns:
      ``{param_key: array}`` with a leading batch axis: ``noise``,
      ``noise_mask`` and ``poisson_samples`` are float32 of the batch shape;
      ``keep_mask`` is bool ``(batch, H, W, C)`` (pixel) or ``(batch, C)``
      (channel).  With the training settings (``reference/record.py``) also
      every record's draws, ``(batch,)``: the float32 strength of each range
      (``noise_std``, ``salt_prob``, ``pepper_prob``, ``lam_scale``,
      ``dropout_rate``) and the bool ``apply`` decision when ``apply_prob < 1``.

    Raises:
      KeyError: ``field_key`` is not in ``data_shapes`` (datarax's message first).
      TypeError: ``rng`` is not a key or an array of keys; ``data_shapes`` is
        not a dict or the shape is not a tuple of ints.
      ValueError: the shape has no batch axis or a negative dimension.
    """
    batch_size, element_shape = batch_shape(data_shapes, field_key)
    key_data = per_record_key_data(rng, batch_size)
    draw = element_programs(kernel)[0]
    return jax.vmap(lambda k: draw(k, element_shape))(key_data)


def checked_params(kernel: Kernel, random_params: Any, element_shape: tuple[int, ...]) -> Params:
    """External params for one element, validated: every array the kernel declares
    (``Kernel.param_shapes``) present with a real or bool dtype and its shape, then the
    per-record values.

    datarax 0.1.4's forms are converted first (``from_datarax_params``).
    """
    key = kernel.param_key
    random_params = from_datarax_params(kernel, random_params, tuple(element_shape))
    if not isinstance(random_params, dict) or key not in random_params:
        got = (
            sorted(map(str, random_params))
            if isinstance(random_params, dict)
            else type(random_params).__name__
        )
        datarax_text = kernel.spec.datarax_missing_params or (
            f"Stochastic mode requires {key!r} in random_params"
        )
        accepted = repr(key)
        if kernel.datarax_param_keys:
            accepted += f" (or datarax's {', '.join(map(repr, kernel.datarax_param_keys))})"
        raise ParamsKeyError(
            f"{datarax_text} (datarax_ops: mode {kernel.mode!r} reads {accepted} from "
            f"random_params, got {got})"
        )
    checked = {
        name: _element_param(random_params, name, shape, element_shape)
        for name, shape in kernel.param_shapes(tuple(element_shape)).items()
    }
    return {**checked, **_record_params(kernel, random_params)}


def _element_param(
    random_params: dict, name: str, expected: tuple[int, ...], element_shape: tuple[int, ...]
) -> Array:
    """``random_params[name]`` as an array of shape ``expected``, checked: present, a real
    or bool array, of that shape."""
    if name not in random_params:
        raise ParamsKeyError(
            f"random_params lacks {name!r}: one element of shape {element_shape} needs "
            f"{name!r} of shape {expected} (generate_random_params draws it), got "
            f"{sorted(map(str, random_params))}"
        )
    raw = random_params[name]
    dtype = dtype_of(raw)
    if dtype is None or not (dtype == jnp.bool_ or is_real_dtype(dtype)):
        raise TypeError(
            f"random_params[{name!r}] must be a real or bool array, got "
            f"{type(raw).__name__} with dtype {dtype}"
        )
    value = jnp.asarray(raw)
    if value.shape != expected:
        raise ValueError(
            f"random_params[{name!r}] has shape {value.shape}; one element of shape "
            f"{element_shape} needs {expected}"
        )
    return value


def _record_params(kernel: Kernel, random_params: dict) -> Params:
    """The per-record scalars ``apply`` reads (a ranged salt/pepper probability or
    ``lam_scale``, the ``apply`` decision), each checked to be one real or bool value."""
    checked: Params = {}
    for name in kernel.record_param_keys():
        if name not in random_params:
            raise ParamsKeyError(
                f"random_params lacks {name!r}: mode {kernel.mode!r} with this config reads "
                f"one {name!r} per record (generate_random_params draws it), got "
                f"{sorted(map(str, random_params))}"
            )
        raw = random_params[name]
        dtype = dtype_of(raw)
        if dtype is None or not (dtype == jnp.bool_ or is_real_dtype(dtype)):
            raise TypeError(f"random_params[{name!r}] must be a real or bool value, got {raw!r}")
        value = jnp.asarray(raw)
        if value.shape != ():
            raise ValueError(
                f"random_params[{name!r}] is one value per record: shape (), got {value.shape}"
            )
        checked[name] = value.astype(bool) if name == "apply" else value
    return checked
