"""Per-record draws beyond the seed pages: strength ranges, channel sharing, apply decisions.

Three training settings (issue 17), each a draw and an apply like the modes:

* **Strength ranges.**  ``noise_std_range``, ``salt_prob_range``,
  ``pepper_prob_range`` and ``dropout_rate_range`` replace their scalar by a
  value drawn per record, uniformly in ``[lo, hi]``; ``lam_scale_range`` draws
  ``lam_scale`` log-uniformly (``log lam_scale`` uniform in
  ``[log lo, log hi]``).  The drawn value is a float32 param of the record
  (``params["noise_std"]`` and so on, shape ``(batch,)``), and the mode uses it
  where it used the scalar.
* **Channel sharing.**  ``per_channel=False``: the per-value draws are made for
  ``element_shape[:-1] + (1,)`` (one per pixel of an ``(H, W, C)`` image) and
  broadcast over the last axis, so every channel of a pixel gets the same noise,
  impulse or keep decision.
* **Apply probability.**  ``apply_prob = p < 1``: each record draws
  ``apply = u < float32(p)`` (``params["apply"]``, bool ``(batch,)``); a record with
  ``apply = False`` is returned bit for bit as it came in (no noise, no clip).

Where the randomness comes from: one uniform per record and setting, from the
record's own words (``stream.record_uniforms``, slot ``APPLY_SLOT`` and each
strength's declared slot, ``spec.Strength.slot``), which never share a threefry
block with the per-value bits: a record's strength and decision are independent
of its noise.  With a
``numpy.random.Generator`` they are independent draws of it.

Arithmetic (so that the compiled operator matches bit for bit):

* uniform ``s = min(f32(lo) + (hi - lo) * u, f32(hi))`` in float32, the product
  summed from exact partial products (``uniform_strength``), so that no fused
  multiply-add in the compiled code can change the last bit; capped at ``hi``;
* log-uniform ``s = f32(clip(exp(log lo + (log hi - log lo) * u), lo, hi))`` in
  float64 (the compiled float32 ``exp`` is within a few ulps: poisson counts
  are compared as the quantile is, ``tests/test_poisson_quantile.py``).

``u`` is on the ``2**-24`` grid in ``[0, 1)``, so ``s`` follows its law to that
resolution.  The defaults (no range, ``per_channel=True``, ``apply_prob=1``)
draw nothing extra: the params and outputs are the seed pages' exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .common import PARAM_FLOAT, RandomSource, as_source, params_shape
from .spec import Law, Strength
from .stream import APPLY_SLOT

if TYPE_CHECKING:  # the configs import the modes, which import this module
    from typing import TypeAlias

    from .config import DropoutOperatorConfig, NoiseOperatorConfig

    Config: TypeAlias = NoiseOperatorConfig | DropoutOperatorConfig

Params = dict[str, np.ndarray]

# The params key of the apply decision.
APPLY_KEY = "apply"


def split_width(low: float, high: float) -> tuple[np.float32, np.float32]:
    """``f32(hi - lo)`` as ``(w_hi, w_lo)``: ``w_hi`` its top 12 significant bits, ``w_lo``
    the rest (at most 12 bits), so ``w_hi + w_lo == f32(hi - lo)`` exactly."""
    width = PARAM_FLOAT(float(high) - float(low))
    if width == 0:
        return PARAM_FLOAT(0.0), PARAM_FLOAT(0.0)
    mantissa, exponent = math.frexp(float(width))  # width = mantissa * 2**exponent
    top = math.floor(mantissa * 2**12) / 2**12 * 2.0**exponent
    return PARAM_FLOAT(top), PARAM_FLOAT(float(width) - top)


def uniform_strength(levels: np.ndarray, low: float, high: float) -> np.ndarray:
    """Float32 ``min(lo + (hi - lo) * u, hi)`` for float32 uniforms ``u`` (any shape):
    U[lo, hi] on the ``2**-24`` grid, within a few float32 roundings.

    The product is summed from four partial products that are each exact in float32
    (12 bits times 12 bits: the width split by ``split_width``, ``u = m * 2**-24``
    split into ``m >> 12`` and ``m & 0xfff``), in this order, then ``lo`` is added.
    A fused multiply-add of an exact product rounds as the separate add does, so the
    compiled operator gets these bits whether or not its compiler fuses.
    """
    levels = np.asarray(levels, PARAM_FLOAT)
    steps = (levels * PARAM_FLOAT(2**24)).astype(np.int64)  # m, exact
    u_high = ((steps >> 12) << 12).astype(PARAM_FLOAT) * PARAM_FLOAT(2.0**-24)
    u_low = (steps & 0xFFF).astype(PARAM_FLOAT) * PARAM_FLOAT(2.0**-24)
    w_high, w_low = split_width(low, high)
    product = w_high * u_high + w_high * u_low
    product = product + w_low * u_high
    product = product + w_low * u_low
    return np.minimum(PARAM_FLOAT(low) + product, PARAM_FLOAT(high)).astype(PARAM_FLOAT)


def log_uniform_strength(levels: np.ndarray, low: float, high: float) -> np.ndarray:
    """Float32 ``exp(log lo + (log hi - log lo) * u)`` (float64, clipped to [lo, hi]).

    ``lo > 0``.  Log-uniform: ``P(s <= t) = log(t / lo) / log(hi / lo)``.
    """
    exponent = math.log(low) + (math.log(high) - math.log(low)) * np.asarray(levels, np.float64)
    return np.clip(np.exp(exponent), low, high).astype(PARAM_FLOAT)


def strength_of_law(law: Law) -> Callable[[np.ndarray, float, float], np.ndarray]:
    """The function drawing a strength of ``law`` from its record uniforms."""
    return log_uniform_strength if law == "log-uniform" else uniform_strength


def draw_strengths(
    config: Config,
    strengths: tuple[Strength, ...],
    rng: np.random.Generator | RandomSource,
    batch_size: int | None,
) -> Params:
    """``{scalar name: float32 (batch_size,) or ()}`` for every range ``config`` sets.

    ``strengths`` are the mode's declared strengths; each draws from its own record
    slot (``Strength.slot``) by its own law, in declaration order (the order a
    ``numpy.random.Generator`` is consumed in).
    """
    source = as_source(rng)
    drawn: Params = {}
    for strength in strengths:
        bounds = getattr(config, strength.range_field)
        if bounds is None:
            continue
        levels = source.record_uniforms(batch_size, strength.slot)
        drawn[strength.scalar] = strength_of_law(strength.law)(levels, *bounds)
    return drawn


def draw_apply(
    config: Config, rng: np.random.Generator | RandomSource, batch_size: int | None
) -> Params:
    """``{"apply": bool (batch_size,) or ()}``, True with probability ``apply_prob``
    (``u < float32(apply_prob)``); empty when ``apply_prob == 1`` (every record)."""
    if config.apply_prob == 1:
        return {}
    levels = as_source(rng).record_uniforms(batch_size, APPLY_SLOT)
    return {APPLY_KEY: levels < PARAM_FLOAT(config.apply_prob)}


def passes_through(config: Config, params: Params) -> bool:
    """True when one record's params say it is not transformed (``apply`` is False)."""
    return config.apply_prob < 1 and not bool(np.asarray(params[APPLY_KEY]))


def value_shape(config: Config, element_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape the per-value draws are made for: the element's, or with
    ``per_channel=False`` one value per pixel, ``element_shape[:-1] + (1,)``."""
    element_shape = tuple(int(d) for d in element_shape)
    if config.per_channel or not element_shape:
        return element_shape
    return (*element_shape[:-1], 1)


def per_value_draw(
    config: Config,
    draw: Callable[[tuple[int, ...]], np.ndarray],
    element_shape: tuple[int, ...],
    batch_size: int | None,
) -> np.ndarray:
    """``draw(shape)`` (a source's ``uniforms`` / ``normals``) for the per-value shape,
    broadcast to ``(batch_size,) + element_shape``: channels share a pixel's value when
    ``per_channel=False``."""
    values = np.asarray(draw(params_shape(value_shape(config, element_shape), batch_size)))
    return np.broadcast_to(values, params_shape(element_shape, batch_size)).copy()


def per_record(values: np.ndarray | np.floating | float, element_ndim: int) -> np.ndarray:
    """Per-record values ``(batch,)`` or ``()`` with ``element_ndim`` unit axes added, to
    broadcast against ``(batch,) + element_shape`` arrays."""
    values = np.asarray(values)
    return values.reshape(values.shape + (1,) * element_ndim)
