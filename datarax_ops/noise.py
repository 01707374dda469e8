"""NoiseOperator: gaussian, salt & pepper and poisson noise, compiled with JAX.

Each mode mirrors ``reference/noise.py``: ``draw_<mode>(kernel, key,
element_shape) -> params`` (one record's randomness from one key) and
``apply_<mode>(kernel, image, params) -> image`` (pure, jit/vmap/grad-safe).
``NoiseKernel`` holds the mode's parameters (hashable) and dispatches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from datarax_ops._common import (
    clip,
    float_range,
    from_working,
    poisson_quantile,
    to_working,
    uniform_levels,
    uses_255_range,
)
from datarax_ops.operator import ImageOperator, ModeDispatch
from reference.config import NoiseOperatorConfig

Array = jax.Array
Params = dict[str, Array]


# --------------------------------------------------------------------------- #
# gaussian                                                                     #
# --------------------------------------------------------------------------- #
def draw_gaussian(kernel: NoiseKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"noise": float32 element_shape}`` = mean + std * N(0, 1); zeros if std == 0."""
    if kernel.noise_std == 0:
        return {"noise": jnp.zeros(element_shape, jnp.float32)}
    z = jax.random.normal(key, element_shape, dtype=jnp.float32)
    return {"noise": kernel.noise_mean + kernel.noise_std * z}


def apply_gaussian(kernel: NoiseKernel, image: Array, params: Params) -> Array:
    """``clip(image + noise)``; ``clip(image)`` when ``noise_std == 0``.

    Gradient: 1 inside the clip range, 0 where clipped.
    """
    values = to_working(image)
    if kernel.noise_std > 0:
        values = values + params["noise"].astype(values.dtype)
    return from_working(clip(values, kernel.clip_range), image.dtype)


# --------------------------------------------------------------------------- #
# salt & pepper                                                                #
# --------------------------------------------------------------------------- #
def draw_salt_pepper(kernel: NoiseKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"noise_mask": float32 uniforms in [0, 1) of element_shape}``."""
    return {"noise_mask": uniform_levels(key, element_shape)}


def apply_salt_pepper(kernel: NoiseKernel, image: Array, params: Params) -> Array:
    """``u < salt_prob`` -> salt, ``u < salt_prob + pepper_prob`` -> pepper, else keep; clip.

    Thresholds are float32, as in the reference.  Replaced values have zero
    gradient; kept ones pass it through.
    """
    levels = params["noise_mask"].astype(jnp.float32)
    if kernel.salt_value is None:
        salt = jnp.where(uses_255_range(image), 255.0, 1.0)
    else:
        salt = jnp.asarray(kernel.salt_value)
    pepper = 0.0 if kernel.pepper_value is None else kernel.pepper_value
    salt_below = jnp.float32(kernel.salt_prob)
    pepper_below = jnp.float32(kernel.salt_prob + kernel.pepper_prob)
    values = to_working(image)
    dtype = values.dtype
    values = jnp.where(
        levels < salt_below,
        salt.astype(dtype),
        jnp.where(levels < pepper_below, jnp.asarray(pepper, dtype), values),
    )
    return from_working(clip(values, kernel.clip_range), image.dtype)


# --------------------------------------------------------------------------- #
# poisson                                                                      #
# --------------------------------------------------------------------------- #
def draw_poisson(kernel: NoiseKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"poisson_samples": float32 uniform quantile levels of element_shape}``."""
    return {"poisson_samples": uniform_levels(key, element_shape)}


@jax.custom_jvp
def shot_noise(values: Array, levels: Array, gain: Array, inverse_gain: Array) -> Array:
    """``F^-1(level; values * gain) * inverse_gain``: Poisson counts on the value scale.

    ``values >= 0`` (working dtype), ``levels`` uniforms of the same shape,
    ``gain = lam_scale / s`` and ``inverse_gain = s / lam_scale`` scalars
    (multiplying by both avoids a division, which XLA may turn into a
    reciprocal multiply differently in different fusion contexts).  Gradient:
    the output's mean is ``values``, so d(out)/d(values) is taken as 1 (a
    straight-through estimator); the exact derivative of a step function is 0
    almost everywhere and useless for learning.
    """
    return poisson_quantile(levels, values * gain) * inverse_gain


@shot_noise.defjvp
def _shot_noise_jvp(
    primals: tuple[Array, Array, Array, Array], tangents: tuple[Array, Array, Array, Array]
) -> tuple[Array, Array]:
    return shot_noise(*primals), tangents[0]


def apply_poisson(kernel: NoiseKernel, image: Array, params: Params) -> Array:
    """Shot noise ``k * s / lam_scale``, ``k = F^-1(u; max(x, 0) * lam_scale / s)``; clip.

    ``s`` is 255 for 0..255 data (max > 1.5), else 1.  See ``shot_noise`` for
    the gradient.  The CDF is evaluated in the working float: in float32 the
    counts match the float64 reference except for levels within the CDF's
    float32 error of a step (measured: below ``6e-6 + 6.8e-7 * lam`` for
    ``lam <= 1000``; it grows with ``lam``, about 4e-3 at ``lam = 5000``).
    """
    values = jnp.maximum(to_working(image), 0.0)
    dtype = values.dtype
    is_255 = uses_255_range(image)
    gain = jnp.where(is_255, kernel.lam_scale / 255.0, kernel.lam_scale).astype(dtype)
    inverse_gain = jnp.where(is_255, 255.0 / kernel.lam_scale, 1.0 / kernel.lam_scale)
    levels = params["poisson_samples"].astype(jnp.float32)
    noisy = shot_noise(values, levels, gain, inverse_gain.astype(dtype))
    return from_working(clip(noisy, kernel.clip_range), image.dtype)


@dataclass(frozen=True)
class NoiseKernel(ModeDispatch):
    """The parameters a noise mode needs (hashable: compiled programs are shared)
    and its pure ``draw(key, element_shape)`` / ``apply(image, params)``."""

    mode: str
    noise_std: float
    noise_mean: float
    salt_prob: float
    pepper_prob: float
    salt_value: float | None
    pepper_value: float | None
    lam_scale: float
    clip_range: tuple[float, float] | None

    draws: ClassVar[dict[str, Callable[..., Params]]] = {
        "gaussian": draw_gaussian,
        "salt_pepper": draw_salt_pepper,
        "poisson": draw_poisson,
    }
    applies: ClassVar[dict[str, Callable[..., Array]]] = {
        "gaussian": apply_gaussian,
        "salt_pepper": apply_salt_pepper,
        "poisson": apply_poisson,
    }

    @classmethod
    def from_config(cls, config: NoiseOperatorConfig) -> NoiseKernel:
        def optional(value: float | None) -> float | None:
            return None if value is None else float(value)

        return cls(
            mode=config.mode,
            noise_std=float(config.noise_std),
            noise_mean=float(config.noise_mean),
            salt_prob=float(config.salt_prob),
            pepper_prob=float(config.pepper_prob),
            salt_value=optional(config.salt_value),
            pepper_value=optional(config.pepper_value),
            lam_scale=float(config.lam_scale),
            clip_range=float_range(config.clip_range),
        )

    @property
    def param_key(self) -> str:
        return {"gaussian": "noise", "salt_pepper": "noise_mask", "poisson": "poisson_samples"}[
            self.mode
        ]

    def param_shape(self, element_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(element_shape)

    def is_identity(self) -> bool:
        return False


class NoiseOperator(ImageOperator):
    """Image noise augmentation: ``mode`` is "gaussian", "salt_pepper" or "poisson".

    Example::

        config = NoiseOperatorConfig(field_key="image", mode="gaussian", noise_std=0.05,
                                     stochastic=True)
        op = NoiseOperator(config, rngs=nnx.Rngs(0))
        noisy = op(batch)           # Batch in, Batch out; jit with nnx.jit
    """

    config: NoiseOperatorConfig
    config_class = NoiseOperatorConfig

    @staticmethod
    def make_kernel(config: NoiseOperatorConfig) -> NoiseKernel:  # type: ignore[override]
        return NoiseKernel.from_config(config)
