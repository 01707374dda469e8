"""What the compiled dropout modes share: keep decisions, the zero-then-clip finish,
and the kernel base holding the rate and the clip (``reference/modes/_dropout.py``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from datarax_ops import stream, strengths
from datarax_ops._common import clip, from_working, to_working
from datarax_ops.kernel import Kernel

Array = jax.Array
Params = dict[str, Array]


def keep_decisions(kernel: DropoutKernelBase, key: Array, shape: tuple[int, ...]) -> Params:
    """``{"keep_mask": bool shape}``: True (keep) with probability ``1 - rate``, ``rate``
    the scalar or the record's draw (then also ``"dropout_rate"``, float32 ``()``);
    with ``per_channel=False`` one decision per pixel (``reference.modes._dropout``)."""
    drawn = kernel.drawn_strengths(key)
    if "dropout_rate" not in drawn:
        draw = functools.partial(stream.keep_mask, rate=kernel.dropout_rate)
        keep = strengths.per_value(kernel.per_channel, draw, key, shape, selects=True)
        return {"keep_mask": keep}
    levels = strengths.per_value(kernel.per_channel, stream.uniforms, key, shape, selects=True)
    return {"keep_mask": levels >= drawn["dropout_rate"], **drawn}


def finish(kernel: DropoutKernelBase, image: Array, keep: Array) -> Array:
    """Zeroes dropped values in the image's own dtype (exact), then clips if set."""
    if kernel.dropout_rate == 0 and not kernel.ranges:
        return image
    dropped = jnp.where(keep, image, jnp.zeros((), image.dtype))
    if kernel.clip_range is None:
        return dropped
    return from_working(clip(to_working(dropped), kernel.clip_range), image.dtype)


@dataclass(frozen=True)
class DropoutKernelBase(Kernel):
    """What both dropout modes hold: the drop probability and the optional clip."""

    dropout_rate: float
    clip_range: tuple[float, float] | None

    def is_identity(self) -> bool:
        return (self.dropout_rate == 0 and not self.ranges) or super().is_identity()
