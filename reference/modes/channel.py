"""Channel dropout: one keep decision per channel of an ``(H, W, C)`` element.

The mode, declared once (``_dropout.py`` holds what both dropout modes share).
Inputs that are not 3-D have no channel axis to share a decision over, so (as
the seed does) each value gets its own decision, like pixel dropout.
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


def mask_shape(element_shape: tuple[int, ...]) -> tuple[int, ...]:
    """``(C,)`` for a 3-D ``(H, W, C)`` element; the element's shape otherwise."""
    element_shape = tuple(int(d) for d in element_shape)
    return element_shape[-1:] if len(element_shape) == 3 else element_shape


def draw(
    config: DropoutOperatorConfig,
    rng: np.random.Generator | RandomSource,
    element_shape: tuple[int, ...],
    batch_size: int | None = None,
) -> Params:
    """``{"keep_mask": bool of (batch_size, C)}`` (or ``(C,)`` for one element)."""
    return _dropout.keep_decisions(config, rng, mask_shape(element_shape), batch_size)


def apply(config: DropoutOperatorConfig, image: np.ndarray, params: Params) -> np.ndarray:
    """Drops whole channels: the ``(C,)`` mask is broadcast over H and W."""
    keep = np.asarray(params["keep_mask"], dtype=bool)
    return _dropout.finish(config, image, np.broadcast_to(keep, np.shape(image)))


MODE = ModeSpec(
    name="channel",
    family="dropout",
    fields=("dropout_rate", "clip_range"),
    params_key="keep_mask",
    draw=draw,
    apply=apply,
    check_fields=_dropout.check_fields,
    strengths=(_dropout.RATE,),
    params_shape=mask_shape,
    per_value_draws=False,
    examples=(("", {"dropout_rate": 0.2}),),
    datarax_missing_params=_dropout.DATARAX_MISSING_KEEP_MASK,
)
