"""DropoutOperator, mode by mode: pixel and channel.

* ``draw_<mode>(config, rng, element_shape, batch_size=None) -> {"keep_mask": bool}``
  with ``keep ~ Bernoulli(1 - dropout_rate)``.
* ``apply_<mode>(config, image, params) -> image``: kept values unchanged,
  dropped values 0, then ``clip_range`` if it is set.  ``dropout_rate == 0``
  returns the input untouched.  There is no ``1 / (1 - rate)`` rescaling.

Beyond the seed pages (``record.py``): ``dropout_rate_range`` draws each
record's rate uniformly (``params["dropout_rate"]``, float32 ``(batch,)``; the
keep mask is made with it, and the clip applies even where a drawn rate is 0);
``per_channel=False`` (pixel mode) makes one keep decision per pixel, shared by
its channels.
"""

from __future__ import annotations

import numpy as np

from .common import (
    RandomSource,
    as_source,
    clip,
    from_working,
    to_working,
)
from .config import DropoutOperatorConfig
from .record import draw_strengths, per_record, per_value_draw

Params = dict[str, np.ndarray]


def keep_decisions(
    config: DropoutOperatorConfig,
    rng: np.random.Generator | RandomSource,
    element_shape: tuple[int, ...],
    batch_size: int | None,
) -> Params:
    """``{"keep_mask": bool (batch_size,) + element_shape}`` (plus ``"dropout_rate"``
    with a range): True (keep) where a float32 uniform level is ``>= float32(rate)``,
    i.e. with probability ``1 - rate``; ``rate`` the scalar or the record's draw."""
    source = as_source(rng)
    strengths = draw_strengths(config, source, batch_size)
    levels = per_value_draw(config, source.uniforms, element_shape, batch_size)
    rate = strengths.get("dropout_rate", np.float32(config.dropout_rate))
    rate = per_record(rate, len(element_shape))
    return {"keep_mask": levels >= rate.astype(np.float32), **strengths}


def _finish(config: DropoutOperatorConfig, image: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Zeroes the dropped values (in the image's own dtype: exact), then clips."""
    image = np.asarray(image)
    if config.dropout_rate == 0 and config.dropout_rate_range is None:
        return image.copy()
    dropped = np.where(keep, image, np.zeros((), dtype=image.dtype))
    if config.clip_range is None:
        return dropped
    return from_working(clip(to_working(dropped), config.clip_range), image.dtype)


# --------------------------------------------------------------------------- #
# pixel: one decision per value of the element                                 #
# --------------------------------------------------------------------------- #
def draw_pixel(
    config: DropoutOperatorConfig,
    rng: np.random.Generator | RandomSource,
    element_shape: tuple[int, ...],
    batch_size: int | None = None,
) -> Params:
    """``{"keep_mask": bool of (batch_size,) + element_shape}``."""
    return keep_decisions(config, rng, tuple(element_shape), batch_size)


def apply_pixel(config: DropoutOperatorConfig, image: np.ndarray, params: Params) -> np.ndarray:
    """``where(keep_mask, image, 0)``, then clip; mask has the element's shape."""
    return _finish(config, image, np.asarray(params["keep_mask"], dtype=bool))


# --------------------------------------------------------------------------- #
# channel: one decision per channel of an (H, W, C) element                    #
# --------------------------------------------------------------------------- #
def channel_mask_shape(element_shape: tuple[int, ...]) -> tuple[int, ...]:
    """``(C,)`` for a 3-D ``(H, W, C)`` element; the element's shape otherwise.

    Inputs that are not 3-D have no channel axis to share a decision over, so
    (as the seed does) each value gets its own decision, like pixel mode.
    """
    element_shape = tuple(int(d) for d in element_shape)
    return element_shape[-1:] if len(element_shape) == 3 else element_shape


def draw_channel(
    config: DropoutOperatorConfig,
    rng: np.random.Generator | RandomSource,
    element_shape: tuple[int, ...],
    batch_size: int | None = None,
) -> Params:
    """``{"keep_mask": bool of (batch_size, C)}`` (or ``(C,)`` for one element)."""
    return keep_decisions(config, rng, channel_mask_shape(element_shape), batch_size)


def apply_channel(config: DropoutOperatorConfig, image: np.ndarray, params: Params) -> np.ndarray:
    """Drops whole channels: the ``(C,)`` mask is broadcast over H and W."""
    keep = np.asarray(params["keep_mask"], dtype=bool)
    return _finish(config, image, np.broadcast_to(keep, np.shape(image)))
