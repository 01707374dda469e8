"""Gaussian noise: ``clip(x + N(noise_mean, noise_std^2))``, one draw per value.

The mode, declared once: its fields and their checks, its strength, its draw
(all randomness) and its apply (deterministic given the draw).  ``image`` is one
element of any shape (usually ``(H, W, C)``) and any real dtype; the output has
its shape and dtype.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..common import (
    PARAM_FLOAT,
    RandomSource,
    as_source,
    clip,
    from_working,
    params_shape,
    to_working,
)
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
        example_range=(0.0, 0.2),
    ),
)


def check_fields(config: NoiseOperatorConfig) -> None:
    """``noise_std >= 0`` and finite, ``noise_mean`` finite.

    Each sign check comes before the finiteness check, so -inf gets datarax's message.
    """
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
    strengths = draw_strengths(config, STRENGTHS, source, batch_size)
    if "noise_std" not in strengths and config.noise_std == 0:
        return {"noise": np.zeros(shape, dtype=PARAM_FLOAT)}
    z = per_value_draw(config, source.normals, element_shape, batch_size)
    std = per_record(strengths.get("noise_std", np.float64(config.noise_std)), len(element_shape))
    return {"noise": (config.noise_mean + std * z).astype(PARAM_FLOAT), **strengths}


def apply(config: NoiseOperatorConfig, image: np.ndarray, params: Params) -> np.ndarray:
    """``clip(image + noise)``; with ``noise_std == 0`` (and no range), ``clip(image)``."""
    values = to_working(image)
    if config.noise_std > 0 or config.noise_std_range is not None:
        values = values + np.asarray(params["noise"], dtype=np.float64)
    return from_working(clip(values, config.clip_range), np.asarray(image).dtype)


MODE = ModeSpec(
    name="gaussian",
    family="noise",
    fields=("noise_std", "noise_mean", "clip_range"),
    params_key="noise",
    draw=draw,
    apply=apply,
    check_fields=check_fields,
    strengths=STRENGTHS,
    examples=(("", {"noise_std": 0.05}),),
    datarax_missing_params="Stochastic mode requires 'noise' in random_params for Gaussian mode",
)
