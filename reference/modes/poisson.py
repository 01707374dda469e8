"""Poisson (shot) noise: ``k ~ Poisson(x * lam_scale / s)``, output ``k * s / lam_scale``.

The mode, declared once (fields, strength, draw, apply).  The seed page calls
``lam_scale`` "higher = more noise", but its own formula
``Poisson(x * lam_scale) / lam_scale`` has variance ``x / lam_scale``: a larger
``lam_scale`` gives *less* noise.  The formula is what is specified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..common import (
    RandomSource,
    as_source,
    clip,
    from_working,
    params_shape,
    poisson_quantile,
    to_working,
    uniform_levels,
    value_scale,
)
from ..record import draw_strengths
from ..spec import ModeSpec, Strength
from ..validate import require_finite, require_real

if TYPE_CHECKING:
    from ..config import NoiseOperatorConfig

Params = dict[str, np.ndarray]

# Log-uniform: photon counts span decades.
STRENGTHS = (
    Strength(
        "lam_scale",
        "lam_scale_range",
        law="log-uniform",
        slot=1,
        domain="positive",
        example_range=(3.0, 300.0),
        applied=True,
    ),
)


def check_fields(config: NoiseOperatorConfig) -> None:
    """``lam_scale > 0`` and finite."""
    if require_real("lam_scale", config.lam_scale) <= 0:
        raise ValueError(f"lam_scale must be positive, got {config.lam_scale}")
    require_finite("lam_scale", config.lam_scale)


def draw(
    config: NoiseOperatorConfig,
    rng: np.random.Generator | RandomSource,
    element_shape: tuple[int, ...],
    batch_size: int | None = None,
) -> Params:
    """``{"poisson_samples": float32 uniform levels of (batch_size,) + element_shape}``.

    A Poisson count depends on the image (its mean is the pixel value), which
    ``draw`` never sees; so the params are uniform quantile levels and
    ``apply`` turns each into a count by inverting the Poisson CDF.

    With ``lam_scale_range``: each record's ``lam_scale`` too, drawn
    log-uniformly (``params["lam_scale"]``, float32 ``(batch_size,)``).
    """
    source = as_source(rng)
    strengths = draw_strengths(config, STRENGTHS, source, batch_size)
    levels = uniform_levels(source, params_shape(element_shape, batch_size))
    return {"poisson_samples": levels, **strengths}


def apply(config: NoiseOperatorConfig, image: np.ndarray, params: Params) -> np.ndarray:
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


MODE = ModeSpec(
    name="poisson",
    family="noise",
    fields=("lam_scale", "clip_range"),
    params_key="poisson_samples",
    draw=draw,
    apply=apply,
    check_fields=check_fields,
    strengths=STRENGTHS,
    per_value_draws=False,
    examples=(
        ("1", {"lam_scale": 1.0}),
        ("30", {"lam_scale": 30.0}),
        ("255", {"lam_scale": 255.0}),
    ),
    default_example="30",
    datarax_missing_params=(
        "Stochastic mode requires 'poisson_rngs' in random_params for poisson mode"
    ),
)
