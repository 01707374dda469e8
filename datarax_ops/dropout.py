"""DropoutOperator: pixel and channel dropout, compiled with JAX.

Each mode mirrors ``reference/dropout.py``: ``keep ~ Bernoulli(1 - rate)``,
dropped values become 0 (no rescaling), ``clip_range`` only if set, and
``dropout_rate == 0`` returns the input untouched.  One kernel per mode (a
frozen dataclass of that mode's parameters), as in ``noise.py``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from datarax_ops import stream, strengths
from datarax_ops._common import clip, float_range, from_working, to_working
from datarax_ops.kernel import Kernel
from datarax_ops.reference.config import DropoutOperatorConfig
from datarax_ops.reference.dropout import channel_mask_shape

Array = jax.Array
Params = dict[str, Array]


def keep_decisions(kernel: DropoutKernelBase, key: Array, shape: tuple[int, ...]) -> Params:
    """``{"keep_mask": bool shape}``: True (keep) with probability ``1 - rate``, ``rate``
    the scalar or the record's draw (then also ``"dropout_rate"``, float32 ``()``);
    with ``per_channel=False`` one decision per pixel (``reference.dropout``)."""
    drawn = kernel.drawn_strengths(key)
    if "dropout_rate" not in drawn:
        draw = functools.partial(stream.keep_mask, rate=kernel.dropout_rate)
        keep = strengths.per_value(kernel.per_channel, draw, key, shape, selects=True)
        return {"keep_mask": keep}
    levels = strengths.per_value(kernel.per_channel, stream.uniforms, key, shape, selects=True)
    return {"keep_mask": levels >= drawn["dropout_rate"], **drawn}


def _finish(kernel: DropoutKernelBase, image: Array, keep: Array) -> Array:
    """Zeroes dropped values in the image's own dtype (exact), then clips if set."""
    if kernel.dropout_rate == 0 and not kernel.ranges:
        return image
    dropped = jnp.where(keep, image, jnp.zeros((), image.dtype))
    if kernel.clip_range is None:
        return dropped
    return from_working(clip(to_working(dropped), kernel.clip_range), image.dtype)


def draw_pixel(kernel: PixelKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"keep_mask": bool element_shape}`` (see ``keep_decisions``)."""
    return keep_decisions(kernel, key, element_shape)


def apply_pixel(kernel: PixelKernel, image: Array, params: Params) -> Array:
    """``where(keep_mask, image, 0)``, then clip if set.  Gradient: the mask."""
    return _finish(kernel, image, params["keep_mask"].astype(bool))


def draw_channel(kernel: ChannelKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"keep_mask": bool (C,)}`` for an ``(H, W, C)`` element; element shape otherwise."""
    return keep_decisions(kernel, key, channel_mask_shape(element_shape))


def apply_channel(kernel: ChannelKernel, image: Array, params: Params) -> Array:
    """Drops whole channels: the ``(C,)`` mask is broadcast over H and W."""
    keep = jnp.broadcast_to(params["keep_mask"].astype(bool), image.shape)
    return _finish(kernel, image, keep)


@dataclass(frozen=True)
class DropoutKernelBase(Kernel):
    """What both dropout modes hold: the drop probability and the optional clip."""

    dropout_rate: float
    clip_range: tuple[float, float] | None

    param_key: ClassVar[str] = "keep_mask"

    @classmethod
    def from_config(cls, config: DropoutOperatorConfig) -> DropoutKernelBase:
        return cls(
            float(config.dropout_rate),
            float_range(config.clip_range),
            **cls.training_fields(config),
        )

    def is_identity(self) -> bool:
        return (self.dropout_rate == 0 and not self.ranges) or super().is_identity()


@dataclass(frozen=True)
class PixelKernel(DropoutKernelBase):
    """One keep decision per value."""

    mode: ClassVar[str] = "pixel"

    draw_mode = staticmethod(draw_pixel)
    apply_mode = staticmethod(apply_pixel)


@dataclass(frozen=True)
class ChannelKernel(DropoutKernelBase):
    """One keep decision per channel of an ``(H, W, C)`` element."""

    mode: ClassVar[str] = "channel"

    draw_mode = staticmethod(draw_channel)
    apply_mode = staticmethod(apply_channel)

    param_shape = staticmethod(channel_mask_shape)


DropoutKernel = PixelKernel | ChannelKernel
