"""Salt & pepper: each value becomes salt, pepper or stays, by one uniform level ``u``.

``u < salt_prob`` -> salt; ``u < salt_prob + pepper_prob`` -> pepper; then clip.
The mode, declared once (fields, strengths, draw, apply).
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
    salt_pepper_values,
    to_working,
)
from ..record import draw_strengths, per_value_draw
from ..spec import ModeSpec, Strength
from ..validate import is_real, range_high, require_finite, require_probability

if TYPE_CHECKING:
    from ..config import NoiseOperatorConfig

Params = dict[str, np.ndarray]

# Salt draws from record slot 1, pepper from slot 2.
STRENGTHS = (
    Strength(
        "salt_prob",
        "salt_prob_range",
        law="uniform",
        slot=1,
        domain="probability",
        example_range=(0.0, 0.2),
        applied=True,
    ),
    Strength(
        "pepper_prob",
        "pepper_prob_range",
        law="uniform",
        slot=2,
        domain="probability",
        example_range=(0.0, 0.2),
        applied=True,
    ),
)


def check_fields(config: NoiseOperatorConfig) -> None:
    """Both probabilities in [0, 1] with a sum <= 1; salt / pepper values finite or None."""
    salt = require_probability("salt_prob", config.salt_prob)
    pepper = require_probability("pepper_prob", config.pepper_prob)
    if salt + pepper > 1.0:
        raise ValueError(
            "Sum of salt_prob and pepper_prob cannot exceed 1.0 "
            f"(salt_prob + pepper_prob = {config.salt_prob!r} + {config.pepper_prob!r})"
        )
    for name in ("salt_value", "pepper_value"):
        value = getattr(config, name)
        if value is None:
            continue
        if not is_real(value):
            raise TypeError(
                f"{name} must be a number or None, got {type(value)} "
                f"({value!r}; a bool is not accepted)"
            )
        require_finite(name, value)


def check_ranges(config: NoiseOperatorConfig) -> None:
    """The largest salt and pepper probabilities sum to at most 1 (``hi + hi <= 1``)."""
    salt_high = range_high(config.salt_prob_range, config.salt_prob)
    pepper_high = range_high(config.pepper_prob_range, config.pepper_prob)
    if salt_high + pepper_high > 1.0:
        raise ValueError(
            "salt_prob_range / pepper_prob_range: the largest salt and pepper "
            f"probabilities sum to {salt_high + pepper_high!r} > 1.0 (hi + hi <= 1)"
        )


def draw(
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
    strengths = draw_strengths(config, STRENGTHS, source, batch_size)
    levels = per_value_draw(config, source.uniforms, element_shape, batch_size)
    return {"noise_mask": levels, **strengths}


def thresholds(
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


def apply(config: NoiseOperatorConfig, image: np.ndarray, params: Params) -> np.ndarray:
    """Replaces each value by salt, pepper or nothing by its level ``u``, then clips."""
    levels = np.asarray(params["noise_mask"], dtype=PARAM_FLOAT)
    salt, pepper = salt_pepper_values(config.salt_value, config.pepper_value, image)
    salt_below, pepper_below = thresholds(config, params)
    values = to_working(image)
    values = np.where(levels < salt_below, salt, np.where(levels < pepper_below, pepper, values))
    return from_working(clip(values, config.clip_range), np.asarray(image).dtype)


MODE = ModeSpec(
    name="salt_pepper",
    family="noise",
    fields=("salt_prob", "pepper_prob", "salt_value", "pepper_value", "clip_range"),
    params_key="noise_mask",
    draw=draw,
    apply=apply,
    check_fields=check_fields,
    strengths=STRENGTHS,
    check_ranges=check_ranges,
    examples=(("", {"salt_prob": 0.05, "pepper_prob": 0.05}),),
    datarax_missing_params=(
        "Stochastic mode requires 'noise_mask' in random_params for salt_pepper mode"
    ),
)
