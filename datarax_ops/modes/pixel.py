"""Pixel dropout, compiled: one keep decision per value (``reference/modes/pixel.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax

from datarax_ops.modes._dropout import DropoutKernelBase, finish, keep_decisions
from datarax_ops.reference.modes import pixel as spec_module
from datarax_ops.reference.spec import ModeSpec

Array = jax.Array
Params = dict[str, Array]


def draw(kernel: PixelKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"keep_mask": bool element_shape}`` (see ``keep_decisions``)."""
    return keep_decisions(kernel, key, element_shape)


def apply(kernel: PixelKernel, image: Array, params: Params) -> Array:
    """``where(keep_mask, image, 0)``, then clip if set.  Gradient: the mask."""
    return finish(kernel, image, params["keep_mask"].astype(bool))


@dataclass(frozen=True)
class PixelKernel(DropoutKernelBase):
    """One keep decision per value."""

    spec: ClassVar[ModeSpec] = spec_module.MODE

    def draw_mode(self, key: Array, element_shape: tuple[int, ...]) -> Params:
        return draw(self, key, element_shape)

    def apply_mode(self, image: Array, params: Params) -> Array:
        return apply(self, image, params)


KERNEL = PixelKernel
