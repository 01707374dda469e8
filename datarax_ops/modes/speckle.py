"""Speckle noise, compiled: ``clip(x * (1 + noise_mean + noise_std * z))``.

The twin of ``reference/modes/speckle.py`` (the spec; ``SPEC`` below is its
declaration): ``draw`` (one record's randomness, from ``datarax_ops.stream``) and
``apply`` (pure, jit/vmap/grad-safe), and the kernel that holds the mode's fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from datarax_ops import stream, strengths
from datarax_ops._common import clip, from_working, to_working
from datarax_ops.kernel import Kernel
from datarax_ops.reference.modes import speckle as spec_module
from datarax_ops.reference.spec import ModeSpec

Array = jax.Array
Params = dict[str, Array]


def draw(kernel: SpeckleKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"noise": float32 element_shape}`` = mean + std * N(0, 1), the multiplier minus 1.

    The mean is added as ``mean + 0 * z``, as gaussian's is (``modes/gaussian.py``): a
    computed offset is never folded away, so the noise is the same rounded value in every
    program that computes it.  With ``noise_std_range``: ``std`` is the record's draw
    (``params["noise_std"]``, float32 ``()``); with ``per_channel=False`` one ``z`` per
    pixel (``reference.modes.speckle.draw``).
    """
    drawn = kernel.drawn_strengths(key)
    z = strengths.per_value(kernel.per_channel, stream.normals, key, element_shape)
    std = drawn.get("noise_std", jnp.float32(kernel.noise_std))
    offset = jnp.float32(kernel.noise_mean) + jnp.float32(0.0) * z
    return {"noise": offset + std * z, **drawn}


def apply(kernel: SpeckleKernel, image: Array, params: Params) -> Array:
    """``clip(image * (1 + noise))``, the multiplier formed in float32 (the reference's
    ``multiplier``), the product in the working precision.

    Gradient: the multiplier inside the clip range, 0 where clipped.
    """
    values = to_working(image)
    factor = (jnp.float32(1.0) + params["noise"].astype(jnp.float32)).astype(values.dtype)
    return from_working(clip(values * factor, kernel.clip_range), image.dtype)


@dataclass(frozen=True)
class SpeckleKernel(Kernel):
    """Multiplicative gaussian noise ``x * (1 + N(noise_mean, noise_std^2))``, then clip."""

    noise_std: float
    noise_mean: float
    clip_range: tuple[float, float] | None

    spec: ClassVar[ModeSpec] = spec_module.MODE

    def draw_mode(self, key: Array, element_shape: tuple[int, ...]) -> Params:
        return draw(self, key, element_shape)

    def apply_mode(self, image: Array, params: Params) -> Array:
        return apply(self, image, params)


KERNEL = SpeckleKernel
