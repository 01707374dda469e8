"""Gaussian noise, compiled: ``clip(x + N(noise_mean, noise_std^2))``.

The twin of ``reference/modes/gaussian.py`` (the spec; ``SPEC`` below is its
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
from datarax_ops.reference.modes import gaussian as spec_module
from datarax_ops.reference.spec import ModeSpec

Array = jax.Array
Params = dict[str, Array]


def draw(kernel: GaussianKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"noise": float32 element_shape}`` = mean + std * N(0, 1); zeros if std == 0.

    The mean is added as ``mean + 0 * z`` (the same value, as ``z`` is finite): a constant
    0 would be folded away, leaving ``x + std * z``, which XLA fuses into one multiply-add
    in some programs and not in others (programs of other shapes, ``datarax_ops.buckets``),
    so the same record could differ in the last bit.  With a computed offset the noise is
    always the rounded ``mean + std * z`` before anything adds it.

    With ``noise_std_range``: ``std`` is the record's draw (``params["noise_std"]``,
    float32 ``()``) and the mean is always included; with ``per_channel=False`` one ``z``
    per pixel (``reference.modes.gaussian.draw``).
    """
    drawn = kernel.drawn_strengths(key)
    if "noise_std" not in drawn and kernel.noise_std == 0:
        return {"noise": jnp.zeros(element_shape, jnp.float32)}
    z = strengths.per_value(kernel.per_channel, stream.normals, key, element_shape)
    std = drawn.get("noise_std", jnp.float32(kernel.noise_std))
    offset = jnp.float32(kernel.noise_mean) + jnp.float32(0.0) * z
    return {"noise": offset + std * z, **drawn}


def apply(kernel: GaussianKernel, image: Array, params: Params) -> Array:
    """``clip(image + noise)``; ``clip(image)`` when ``noise_std == 0`` (and no range).

    Gradient: 1 inside the clip range, 0 where clipped.
    """
    values = to_working(image)
    if kernel.noise_std > 0 or kernel.ranged("noise_std"):
        values = values + params["noise"].astype(values.dtype)
    return from_working(clip(values, kernel.clip_range), image.dtype)


@dataclass(frozen=True)
class GaussianKernel(Kernel):
    """Additive gaussian noise ``N(noise_mean, noise_std^2)``, then clip."""

    noise_std: float
    noise_mean: float
    clip_range: tuple[float, float] | None

    spec: ClassVar[ModeSpec] = spec_module.MODE

    def draw_mode(self, key: Array, element_shape: tuple[int, ...]) -> Params:
        return draw(self, key, element_shape)

    def apply_mode(self, image: Array, params: Params) -> Array:
        return apply(self, image, params)


KERNEL = GaussianKernel
