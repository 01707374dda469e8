"""NoiseOperator, mode by mode: gaussian, salt & pepper, poisson.

Each mode is two pure functions:

* ``draw_<mode>(config, rng, element_shape, batch_size=None) -> params``:
  all the randomness, from a ``numpy.random.Generator`` or from the compiled
  operator's counter stream (a ``reference.common.StreamSource`` of record
  keys); the image is never seen.
* ``apply_<mode>(config, image, params) -> image``: deterministic, one element.

``image`` is one element of any shape (usually ``(H, W, C)``) and any real
dtype; the output has its shape and dtype.  ``params`` hold one element's
arrays (no batch axis) when applying.

The training settings beyond the seed pages (strength ranges, ``per_channel``,
``apply_prob``) are specified in ``record.py``; each mode below reads its drawn
strength from the params where its config sets a range.
"""

from __future__ import annotations

import numpy as np

from .common import (
    PARAM_FLOAT,
    RandomSource,
    as_source,
    clip,
    from_working,
    params_shape,
    poisson_quantile,
    salt_pepper_values,
    to_working,
    uniform_levels,
    value_scale,
)
from .config import NoiseOperatorConfig
from .record import draw_strengths, per_record, per_value_draw

Params = dict[str, np.ndarray]


# --------------------------------------------------------------------------- #
# gaussian: x + N(noise_mean, noise_std^2), then clip                          #
# --------------------------------------------------------------------------- #
def draw_gaussian(
    config: NoiseOperatorConfig,
    rng: np.random.Generator | RandomSource,
    element_shape: tuple[int, ...],
    batch_size: int | None = None,
) -> Params:
    """``{"noise": float32 array of (batch_size,) + element_shape}``.

    The noise is already scaled and shifted: ``noise_mean + noise_std * z``
    with ``z ~ N(0, 1)``.  With ``noise_std == 0`` the noise is left out
    entirely (mean included), so it is all zeros.

    With ``noise_std_range``: each record's ``noise_std`` is drawn uniformly
    (``params["noise_std"]``, float32 ``(batch_size,)``) and its noise is
    ``noise_mean + noise_std_i * z`` (the mean always included).  With
    ``per_channel=False`` one ``z`` per pixel serves every channel.
    """
    source = as_source(rng)
    shape = params_shape(element_shape, batch_size)
    strengths = draw_strengths(config, source, batch_size)
    if "noise_std" not in strengths and config.noise_std == 0:
        return {"noise": np.zeros(shape, dtype=PARAM_FLOAT)}
    z = per_value_draw(config, source.normals, element_shape, batch_size)
    std = per_record(strengths.get("noise_std", np.float64(config.noise_std)), len(element_shape))
    return {"noise": (config.noise_mean + std * z).astype(PARAM_FLOAT), **strengths}


def apply_gaussian(config: NoiseOperatorConfig, image: np.ndarray, params: Params) -> np.ndarray:
    """``clip(image + noise)``; with ``noise_std == 0`` (and no range), ``clip(image)``."""
    values = to_working(image)
    if config.noise_std > 0 or config.noise_std_range is not None:
        values = values + np.asarray(params["noise"], dtype=np.float64)
    return from_working(clip(values, config.clip_range), np.asarray(image).dtype)


# --------------------------------------------------------------------------- #
# salt & pepper: u < salt_prob -> salt; u < salt_prob + pepper_prob -> pepper   #
# --------------------------------------------------------------------------- #
def draw_salt_pepper(
    config: NoiseOperatorConfig,
    rng: np.random.Generator | RandomSource,
    element_shape: tuple[int, ...],
    batch_size: int | None = None,
) -> Params:
    """``{"noise_mask": float32 uniforms in [0, 1) of (batch_size,) + element_shape}``.

    With ``salt_prob_range`` / ``pepper_prob_range``: each record's drawn
    probability too (``params["salt_prob"]``, ``params["pepper_prob"]``, float32
    ``(batch_size,)``).  With ``per_channel=False`` one level per pixel serves
    every channel (whole-pixel salt and pepper).
    """
    source = as_source(rng)
    strengths = draw_strengths(config, source, batch_size)
    levels = per_value_draw(config, source.uniforms, element_shape, batch_size)
    return {"noise_mask": levels, **strengths}


def salt_pepper_thresholds(
    config: NoiseOperatorConfig, params: Params | None = None
) -> tuple[np.float32, np.float32]:
    """The two thresholds on the uniform level, rounded to float32.

    The levels are float32, so the comparison is made in float32, exactly as
    the compiled operator makes it: masks then agree bit for bit.  Without a
    range: ``(f32(salt_prob), f32(salt_prob + pepper_prob))``.  With a range, one
    record's drawn ``salt_prob`` / ``pepper_prob`` from ``params`` (the scalar
    for the one not ranged) and the float32 sum ``f32(salt) + f32(pepper)``.
    """
    if config.salt_prob_range is None and config.pepper_prob_range is None:
        return PARAM_FLOAT(config.salt_prob), PARAM_FLOAT(config.salt_prob + config.pepper_prob)
    params = params or {}
    salt = PARAM_FLOAT(np.asarray(params.get("salt_prob", config.salt_prob)))
    pepper = PARAM_FLOAT(np.asarray(params.get("pepper_prob", config.pepper_prob)))
    return salt, PARAM_FLOAT(salt + pepper)


def apply_salt_pepper(config: NoiseOperatorConfig, image: np.ndarray, params: Params) -> np.ndarray:
    """Replaces each value by salt, pepper or nothing by its level ``u``, then clips."""
    levels = np.asarray(params["noise_mask"], dtype=PARAM_FLOAT)
    salt, pepper = salt_pepper_values(config.salt_value, config.pepper_value, image)
    salt_below, pepper_below = salt_pepper_thresholds(config, params)
    values = to_working(image)
    values = np.where(levels < salt_below, salt, np.where(levels < pepper_below, pepper, values))
    return from_working(clip(values, config.clip_range), np.asarray(image).dtype)


# --------------------------------------------------------------------------- #
# poisson: k ~ Poisson(x * lam_scale / s), output k * s / lam_scale            #
# --------------------------------------------------------------------------- #
def draw_poisson(
    config: NoiseOperatorConfig,
    rng: np.random.Generator | RandomSource,
    element_shape: tuple[int, ...],
    batch_size: int | None = None,
) -> Params:
    """``{"poisson_samples": float32 uniform levels of (batch_size,) + element_shape}``.

    A Poisson count depends on the image (its mean is the pixel value), which
    ``draw`` never sees; so the params are uniform quantile levels and
    ``apply_poisson`` turns each into a count by inverting the Poisson CDF.

    With ``lam_scale_range``: each record's ``lam_scale`` too, drawn
    log-uniformly (``params["lam_scale"]``, float32 ``(batch_size,)``).
    """
    source = as_source(rng)
    strengths = draw_strengths(config, source, batch_size)
    levels = uniform_levels(source, params_shape(element_shape, batch_size))
    return {"poisson_samples": levels, **strengths}


def apply_poisson(config: NoiseOperatorConfig, image: np.ndarray, params: Params) -> np.ndarray:
    """Shot noise: ``k * s / lam_scale`` with ``k = F^-1(u; lam)``, then clip.

    ``lam = max(x, 0) * (lam_scale / s)`` with ``s = value_scale(image)`` (``common``):
    negative inputs are raised to 0.  The output has mean ``x`` and variance
    ``x * s / lam_scale``: a larger ``lam_scale`` gives *less* relative noise
    (the seed page's "higher = more noise" contradicts its own formula
    ``Poisson(x * lam_scale) / lam_scale``; the formula is what is specified).
    NaN stays NaN, +inf stays +inf (before clipping).  With ``lam_scale_range``
    the record's drawn ``params["lam_scale"]`` replaces ``lam_scale``.
    """
    scale = value_scale(image)
    lam_scale = float(np.asarray(params.get("lam_scale", config.lam_scale)))
    if config.lam_scale_range is None:
        lam_scale = config.lam_scale
    values = np.maximum(to_working(image), 0.0)
    lam = values * (lam_scale / scale)
    counts = poisson_quantile(params["poisson_samples"], lam)
    values = counts * (scale / lam_scale)
    return from_working(clip(values, config.clip_range), np.asarray(image).dtype)
