"""Per-record draws beyond the seed pages, compiled: strengths, channel sharing, apply.

The twin of ``reference/record.py`` (the spec: laws, slots, arithmetic), one
record at a time (the batch programs vmap over records).  Each function takes the
record's raw key ``uint32 (2,)`` and returns per-record scalars:

* ``drawn_strengths(ranges, spec, key)``: ``{scalar name: float32 ()}``, one per
  range, from the record slot its mode declares (``stream.record_uniforms``);
* ``apply_decision(apply_prob, key)``: bool ``()`` from slot ``APPLY_SLOT``;
* ``value_shape`` / ``per_value``: the per-value draw shape (one per pixel when
  channels are shared) and its broadcast back to the element.

The uniform law sums exact partial products (``reference.record.uniform_strength``),
so whether XLA fuses a multiply and an add into one multiply-add (it does in some
programs and not in others) cannot change its bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from datarax_ops import stream
from datarax_ops.reference import record as spec_record
from datarax_ops.reference.record import split_width
from datarax_ops.reference.spec import Law, ModeSpec

# The params key of the apply decision (the spec's).
APPLY_KEY = spec_record.APPLY_KEY

Array = jax.Array
Ranges = tuple[tuple[str, float, float], ...]


def uniform_strength(levels: Array, low: float, high: float) -> Array:
    """Float32 ``min(lo + (hi - lo) * u, hi)`` for uniforms ``u``, from four exact partial
    products in ``reference.record.uniform_strength``'s order (bit for bit, fused or not)."""
    steps = (levels.astype(jnp.float32) * jnp.float32(2**24)).astype(jnp.int32)  # m, exact
    u_high = ((steps >> 12) << 12).astype(jnp.float32) * jnp.float32(2.0**-24)
    u_low = (steps & 0xFFF).astype(jnp.float32) * jnp.float32(2.0**-24)
    w_high, w_low = (jnp.float32(w) for w in split_width(low, high))
    product = w_high * u_high + w_high * u_low
    product = product + w_low * u_high
    product = product + w_low * u_low
    return jnp.minimum(jnp.float32(low) + product, jnp.float32(high))


def log_uniform_strength(levels: Array, low: float, high: float) -> Array:
    """Float32 ``clip(exp(log lo + (log hi - log lo) * u), lo, hi)`` (float32 ``exp``:
    within a few ulps of the reference's float64)."""
    exponent = jnp.float32(math.log(low)) + jnp.float32(
        math.log(high) - math.log(low)
    ) * levels.astype(jnp.float32)
    return jnp.clip(jnp.exp(exponent), jnp.float32(low), jnp.float32(high))


def strength_ranges(
    config_ranges: dict[str, tuple[float, float]], order: tuple[str, ...]
) -> Ranges:
    """``((scalar, lo, hi), ...)`` in the mode's slot order, for a kernel field (hashable)."""
    return tuple((name, *config_ranges[name]) for name in order if name in config_ranges)


def strength_of_law(law: Law) -> Callable[[Array, float, float], Array]:
    """The function drawing a strength of ``law`` from its record uniforms."""
    return log_uniform_strength if law == "log-uniform" else uniform_strength


def drawn_strengths(ranges: Ranges, spec: ModeSpec, key: Array) -> dict[str, Array]:
    """``{scalar: float32 ()}`` for one record: each ranged scalar from the record slot
    and by the law its mode declares (``spec.strength(scalar)``)."""
    drawn = {}
    for name, low, high in ranges:
        strength = spec.strength(name)
        levels = stream.record_uniforms(key, strength.slot)
        drawn[name] = strength_of_law(strength.law)(levels, low, high)
    return drawn


def apply_decision(apply_prob: float, key: Array) -> Array:
    """Bool ``()``: True with probability ``apply_prob`` (``u < float32(apply_prob)``)."""
    return stream.record_uniforms(key, stream.APPLY_SLOT) < jnp.float32(apply_prob)


def value_shape(per_channel: bool, element_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The per-value draw shape: the element's, or ``element_shape[:-1] + (1,)``."""
    if per_channel or not element_shape:
        return tuple(element_shape)
    return (*element_shape[:-1], 1)


def per_value(
    per_channel: bool,
    draw: Callable[..., Array],
    key: Array,
    element_shape: tuple[int, ...],
    *,
    selects: bool = False,
) -> Array:
    """``draw(key, value_shape)`` broadcast to ``element_shape`` (channels share a
    pixel's value when ``per_channel`` is False).

    How shared channels are computed (the same values either way, the row-major
    counters of ``value_shape``): for a consumer that selects with them (``selects``:
    salt & pepper, dropout) ``draw(key, element_shape, share_last=True)`` computes each
    pixel's words once per channel in the consumer's own loop; otherwise (gaussian's
    add) the pixel's values are drawn once for ``element_shape[:-1]`` and broadcast.
    XLA:CPU vectorises neither a select nor a generator over a broadcast minor axis
    (measured on 32x224x224x3: 3-4x the per-channel cost), but does an add.
    """
    if per_channel or not element_shape:
        return jnp.broadcast_to(draw(key, tuple(element_shape)), element_shape)
    if selects:
        return draw(key, tuple(element_shape), share_last=True)
    values = lax.optimization_barrier(draw(key, tuple(element_shape[:-1])))
    return jnp.broadcast_to(values[..., None], element_shape)
