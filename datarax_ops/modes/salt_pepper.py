"""Salt & pepper noise, compiled: each value becomes salt, pepper or stays.

The twin of ``reference/modes/salt_pepper.py`` (the spec): ``draw``, ``apply``
and the kernel holding the mode's fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from datarax_ops import stream, strengths
from datarax_ops._common import clip, from_working, salt_pepper_values, to_working
from datarax_ops.kernel import Kernel
from datarax_ops.reference.modes import salt_pepper as spec_module
from datarax_ops.reference.spec import ModeSpec

Array = jax.Array
Params = dict[str, Array]


def draw(kernel: SaltPepperKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"noise_mask": float32 uniforms in [0, 1) of element_shape}``, plus the record's
    ``salt_prob`` / ``pepper_prob`` draws (float32 ``()``) for each range set."""
    levels = strengths.per_value(
        kernel.per_channel, stream.uniforms, key, element_shape, selects=True
    )
    return {"noise_mask": levels, **kernel.drawn_strengths(key)}


def thresholds(kernel: SaltPepperKernel, params: Params) -> tuple[Array, Array]:
    """Float32 ``(salt_below, pepper_below)`` (``reference.modes.salt_pepper.thresholds``):
    ``(f32(salt), f32(salt + pepper))`` of the scalars, or with a range the record's
    float32 draws (the scalar for the one not ranged) and their float32 sum."""
    if not kernel.ranges:
        return jnp.float32(kernel.salt_prob), jnp.float32(kernel.salt_prob + kernel.pepper_prob)
    salt = params["salt_prob"] if kernel.ranged("salt_prob") else jnp.float32(kernel.salt_prob)
    pepper = (
        params["pepper_prob"] if kernel.ranged("pepper_prob") else jnp.float32(kernel.pepper_prob)
    )
    salt = jnp.asarray(salt, jnp.float32)
    return salt, salt + jnp.asarray(pepper, jnp.float32)


def apply(kernel: SaltPepperKernel, image: Array, params: Params) -> Array:
    """``u < salt_prob`` -> salt, ``u < salt_prob + pepper_prob`` -> pepper, else keep; clip.

    Thresholds are float32, as in the reference.  Replaced values have zero
    gradient; kept ones pass it through.
    """
    levels = params["noise_mask"].astype(jnp.float32)
    salt, pepper = salt_pepper_values(kernel.salt_value, kernel.pepper_value, image)
    salt_below, pepper_below = thresholds(kernel, params)
    values = to_working(image)
    dtype = values.dtype
    values = jnp.where(
        levels < salt_below,
        salt.astype(dtype),
        jnp.where(levels < pepper_below, jnp.asarray(pepper, dtype), values),
    )
    return from_working(clip(values, kernel.clip_range), image.dtype)


@dataclass(frozen=True)
class SaltPepperKernel(Kernel):
    """Impulse noise: each value becomes salt, pepper or stays, by one uniform level."""

    salt_prob: float
    pepper_prob: float
    salt_value: float | None
    pepper_value: float | None
    clip_range: tuple[float, float] | None

    spec: ClassVar[ModeSpec] = spec_module.MODE

    def draw_mode(self, key: Array, element_shape: tuple[int, ...]) -> Params:
        return draw(self, key, element_shape)

    def apply_mode(self, image: Array, params: Params) -> Array:
        return apply(self, image, params)


KERNEL = SaltPepperKernel
