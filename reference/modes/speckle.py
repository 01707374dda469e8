"""Speckle noise: ``clip(x * (1 + noise_mean + noise_std * z))``, ``z ~ N(0, 1)`` per value.

Multiplicative noise (scikit-image's ``random_noise(mode="speckle")``, with a mean):
each value is scaled by its own random multiplier, so the noise is proportional to
the signal and a zero stays zero.  The law is the same at any value scale (0..1 or
0..255 data alike: no field is in value units).

The mode, declared once: its fields and their checks, its strength, its draw (all
randomness: ``z`` from the same per-value stream and normal transform as gaussian)
and its apply (deterministic given the draw).  ``image`` is one element of any shape
(usually ``(H, W, C)``) and any real dtype; the output has its shape and dtype.

Arithmetic (so that the compiled operator matches bit for bit on float32 data): the
params hold the float32 ``noise = noise_mean + noise_std * z`` (the multiplier minus
1, the same law as gaussian's noise); the multiplier ``m = 1 + noise`` is formed in
float32 (one correctly rounded add), and ``x * m`` in the working precision.  A
float32 ``x`` times a float32 ``m`` is exact in float64, so its float32 rounding is
the compiled float32 product.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..common import PARAM_FLOAT, RandomSource, as_source, clip, from_working, to_working
from ..record import draw_strengths, per_record, per_value_draw
from ..spec import ModeSpec, Strength
from ..validate import require_finite, require_real

if TYPE_CHECKING:
    from ..config import NoiseOperatorConfig

Params = dict[str, np.ndarray]

STRENGTHS = (
    Strength(
        "noise_std",
        "noise_std_range",
        law="uniform",
        slot=1,
        domain="non-negative",
        example_range=(0.0, 0.3),
    ),
)


def check_fields(config: NoiseOperatorConfig) -> None:
    """``noise_std >= 0`` and finite, ``noise_mean`` finite (gaussian's checks and messages)."""
    if require_real("noise_std", config.noise_std) < 0:
        raise ValueError(f"noise_std must be non-negative, got {config.noise_std}")
    require_finite("noise_std", config.noise_std)
    require_finite("noise_mean", config.noise_mean)


def draw(
    config: NoiseOperatorConfig,
    rng: np.random.Generator | RandomSource,
    element_shape: tuple[int, ...],
    batch_size: int | None = None,
) -> Params:
    """``{"noise": float32 array of (batch_size,) + element_shape}``.

    ``noise = noise_mean + noise_std * z`` with ``z ~ N(0, 1)`` (the multiplier minus 1):
    the mean is always included, also when ``noise_std == 0``.

    With ``noise_std_range``: each record's ``noise_std`` is drawn uniformly
    (``params["noise_std"]``, float32 ``(batch_size,)``).  With ``per_channel=False``
    one ``z`` per pixel serves every channel.
    """
    source = as_source(rng)
    strengths = draw_strengths(config, STRENGTHS, source, batch_size)
    z = per_value_draw(config, source.normals, element_shape, batch_size)
    std = per_record(strengths.get("noise_std", np.float64(config.noise_std)), len(element_shape))
    return {"noise": (config.noise_mean + std * z).astype(PARAM_FLOAT), **strengths}


def multiplier(noise: np.ndarray) -> np.ndarray:
    """``1 + noise`` rounded to float32 (float64 values), ``noise``'s shape."""
    return (PARAM_FLOAT(1.0) + np.asarray(noise, PARAM_FLOAT)).astype(np.float64)


def apply(config: NoiseOperatorConfig, image: np.ndarray, params: Params) -> np.ndarray:
    """``clip(image * (1 + noise))``: a multiplier below 0 flips the sign; NaN stays NaN,
    and an infinity times a multiplier of 0 is NaN."""
    values = to_working(image) * multiplier(params["noise"])
    return from_working(clip(values, config.clip_range), np.asarray(image).dtype)


MODE = ModeSpec(
    name="speckle",
    family="noise",
    fields=("noise_std", "noise_mean", "clip_range"),
    params_key="noise",
    draw=draw,
    apply=apply,
    check_fields=check_fields,
    strengths=STRENGTHS,
    examples=(("", {"noise_std": 0.1}),),
    datarax_missing_params="Stochastic mode requires 'noise' in random_params for Speckle mode",
    in_datarax=False,
)
