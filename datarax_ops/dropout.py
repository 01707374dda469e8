"""DropoutOperator: pixel and channel dropout, compiled with JAX.

Each mode mirrors ``reference/dropout.py``: ``keep ~ Bernoulli(1 - rate)``,
dropped values become 0 (no rescaling), ``clip_range`` only if set, and
``dropout_rate == 0`` returns the input untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from datarax_ops._common import clip, from_working, to_working
from datarax_ops.operator import ImageOperator
from reference.config import DropoutOperatorConfig
from reference.dropout import channel_mask_shape

Array = jax.Array
Params = dict[str, Array]


@dataclass(frozen=True)
class DropoutKernel:
    """The parameters a dropout mode needs, hashable so compiled programs are shared."""

    mode: str
    dropout_rate: float
    clip_range: tuple[float, float] | None

    @classmethod
    def from_config(cls, config: DropoutOperatorConfig) -> DropoutKernel:
        clip_range = None if config.clip_range is None else tuple(map(float, config.clip_range))
        return cls(config.mode, float(config.dropout_rate), clip_range)  # type: ignore[arg-type]

    param_key = "keep_mask"

    def param_shape(self, element_shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.mode == "channel":
            return channel_mask_shape(element_shape)
        return tuple(element_shape)

    def is_identity(self) -> bool:
        return self.dropout_rate == 0

    def draw(self, key: Array, element_shape: tuple[int, ...]) -> Params:
        return _DRAW[self.mode](self, key, tuple(element_shape))

    def apply(self, image: Array, params: Params) -> Array:
        return _APPLY[self.mode](self, image, params)


def keep_decisions(kernel: DropoutKernel, key: Array, shape: tuple[int, ...]) -> Array:
    """Bool ``shape``: True (keep) with probability ``1 - dropout_rate``."""
    return jax.random.uniform(key, shape, dtype=jnp.float32) >= jnp.float32(kernel.dropout_rate)


def _finish(kernel: DropoutKernel, image: Array, keep: Array) -> Array:
    """Zeroes dropped values in the image's own dtype (exact), then clips if set."""
    if kernel.dropout_rate == 0:
        return image
    dropped = jnp.where(keep, image, jnp.zeros((), image.dtype))
    if kernel.clip_range is None:
        return dropped
    return from_working(clip(to_working(dropped), kernel.clip_range), image.dtype)


def draw_pixel(kernel: DropoutKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"keep_mask": bool element_shape}``."""
    return {"keep_mask": keep_decisions(kernel, key, element_shape)}


def apply_pixel(kernel: DropoutKernel, image: Array, params: Params) -> Array:
    """``where(keep_mask, image, 0)``, then clip if set.  Gradient: the mask."""
    return _finish(kernel, image, params["keep_mask"].astype(bool))


def draw_channel(kernel: DropoutKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"keep_mask": bool (C,)}`` for an ``(H, W, C)`` element; element shape otherwise."""
    return {"keep_mask": keep_decisions(kernel, key, channel_mask_shape(element_shape))}


def apply_channel(kernel: DropoutKernel, image: Array, params: Params) -> Array:
    """Drops whole channels: the ``(C,)`` mask is broadcast over H and W."""
    keep = jnp.broadcast_to(params["keep_mask"].astype(bool), image.shape)
    return _finish(kernel, image, keep)


_DRAW = {"pixel": draw_pixel, "channel": draw_channel}
_APPLY = {"pixel": apply_pixel, "channel": apply_channel}


class DropoutOperator(ImageOperator):
    """Image dropout: ``mode`` "pixel" (each value) or "channel" (whole channels).

    Example::

        config = DropoutOperatorConfig(field_key="image", dropout_rate=0.2, mode="channel",
                                       stochastic=True)
        op = DropoutOperator(config, rngs=nnx.Rngs(0))
        out = op(batch)
    """

    config: DropoutOperatorConfig

    def __init__(
        self,
        config: DropoutOperatorConfig,
        *,
        rngs: nnx.Rngs | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(config, DropoutOperatorConfig):
            raise TypeError(
                f"DropoutOperator needs a DropoutOperatorConfig, got {type(config).__name__}"
            )
        super().__init__(config, rngs=rngs, name=name)

    @staticmethod
    def make_kernel(config: DropoutOperatorConfig) -> DropoutKernel:  # type: ignore[override]
        return DropoutKernel.from_config(config)
