"""Pixel dropout: one keep decision per value, ``keep ~ Bernoulli(1 - dropout_rate)``.

The mode, declared once (``_dropout.py`` holds what both dropout modes share).
With ``per_channel=False`` one decision per pixel is shared by its channels
(whole-pixel dropout).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..common import RandomSource
from ..spec import ModeSpec
from . import _dropout

if TYPE_CHECKING:
    from ..config import DropoutOperatorConfig

Params = dict[str, np.ndarray]


def draw(
    config: DropoutOperatorConfig,
    rng: np.random.Generator | RandomSource,
    element_shape: tuple[int, ...],
    batch_size: int | None = None,
) -> Params:
    """``{"keep_mask": bool of (batch_size,) + element_shape}``."""
    return _dropout.keep_decisions(config, rng, tuple(element_shape), batch_size)


def apply(config: DropoutOperatorConfig, image: np.ndarray, params: Params) -> np.ndarray:
    """``where(keep_mask, image, 0)``, then clip; mask has the element's shape."""
    return _dropout.finish(config, image, np.asarray(params["keep_mask"], dtype=bool))


MODE = ModeSpec(
    name="pixel",
    family="dropout",
    fields=("dropout_rate", "clip_range"),
    params_key="keep_mask",
    draw=draw,
    apply=apply,
    check_fields=_dropout.check_fields,
    strengths=(_dropout.RATE,),
    examples=(("", {"dropout_rate": 0.2}),),
    datarax_missing_params=_dropout.DATARAX_MISSING_KEEP_MASK,
)
