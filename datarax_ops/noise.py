"""NoiseOperator: gaussian, salt & pepper and poisson noise, compiled with JAX.

Each mode mirrors ``reference/noise.py``: a *kernel* (a frozen dataclass holding
only that mode's parameters, so a change to another mode's field never
recompiles) with ``draw(key, element_shape) -> params`` (one record's
randomness, from ``datarax_ops.stream``) and ``apply(image, params) -> image``
(pure, jit/vmap/grad-safe).  The mode functions are also module-level
(``draw_gaussian(kernel, key, shape)``, ``apply_gaussian(kernel, image, params)``)
to read side by side with the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from datarax_ops import stream, strengths
from datarax_ops._common import (
    by_value_scale,
    clip,
    float_range,
    from_working,
    salt_pepper_values,
    to_working,
)
from datarax_ops.kernel import Kernel
from datarax_ops.poisson import elementwise_quantile
from datarax_ops.reference.config import NoiseOperatorConfig

Array = jax.Array
Params = dict[str, Array]
ClipRange = tuple[float, float] | None


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


# --------------------------------------------------------------------------- #
# gaussian                                                                     #
# --------------------------------------------------------------------------- #
def draw_gaussian(kernel: GaussianKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"noise": float32 element_shape}`` = mean + std * N(0, 1); zeros if std == 0.

    The mean is added as ``mean + 0 * z`` (the same value, as ``z`` is finite): a constant
    0 would be folded away, leaving ``x + std * z``, which XLA fuses into one multiply-add
    in some programs and not in others (programs of other shapes, ``datarax_ops.buckets``),
    so the same record could differ in the last bit.  With a computed offset the noise is
    always the rounded ``mean + std * z`` before anything adds it.

    With ``noise_std_range``: ``std`` is the record's draw (``params["noise_std"]``,
    float32 ``()``) and the mean is always included; with ``per_channel=False`` one ``z``
    per pixel (``reference.noise.draw_gaussian``).
    """
    drawn = kernel.drawn_strengths(key)
    if "noise_std" not in drawn and kernel.noise_std == 0:
        return {"noise": jnp.zeros(element_shape, jnp.float32)}
    z = strengths.per_value(kernel.per_channel, stream.normals, key, element_shape)
    std = drawn.get("noise_std", jnp.float32(kernel.noise_std))
    offset = jnp.float32(kernel.noise_mean) + jnp.float32(0.0) * z
    return {"noise": offset + std * z, **drawn}


def apply_gaussian(kernel: GaussianKernel, image: Array, params: Params) -> Array:
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
    clip_range: ClipRange

    mode: ClassVar[str] = "gaussian"
    param_key: ClassVar[str] = "noise"

    @classmethod
    def from_config(cls, config: NoiseOperatorConfig) -> GaussianKernel:
        return cls(
            float(config.noise_std),
            float(config.noise_mean),
            float_range(config.clip_range),
            **cls.training_fields(config),
        )

    draw_mode = staticmethod(draw_gaussian)
    apply_mode = staticmethod(apply_gaussian)


# --------------------------------------------------------------------------- #
# salt & pepper                                                                #
# --------------------------------------------------------------------------- #
def draw_salt_pepper(
    kernel: SaltPepperKernel, key: Array, element_shape: tuple[int, ...]
) -> Params:
    """``{"noise_mask": float32 uniforms in [0, 1) of element_shape}``, plus the record's
    ``salt_prob`` / ``pepper_prob`` draws (float32 ``()``) for each range set."""
    levels = strengths.per_value(
        kernel.per_channel, stream.uniforms, key, element_shape, selects=True
    )
    return {"noise_mask": levels, **kernel.drawn_strengths(key)}


def salt_pepper_thresholds(kernel: SaltPepperKernel, params: Params) -> tuple[Array, Array]:
    """Float32 ``(salt_below, pepper_below)`` (``reference.noise.salt_pepper_thresholds``):
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


def apply_salt_pepper(kernel: SaltPepperKernel, image: Array, params: Params) -> Array:
    """``u < salt_prob`` -> salt, ``u < salt_prob + pepper_prob`` -> pepper, else keep; clip.

    Thresholds are float32, as in the reference.  Replaced values have zero
    gradient; kept ones pass it through.
    """
    levels = params["noise_mask"].astype(jnp.float32)
    salt, pepper = salt_pepper_values(kernel.salt_value, kernel.pepper_value, image)
    salt_below, pepper_below = salt_pepper_thresholds(kernel, params)
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
    clip_range: ClipRange

    mode: ClassVar[str] = "salt_pepper"
    param_key: ClassVar[str] = "noise_mask"
    applied_strengths: ClassVar[tuple[str, ...]] = ("salt_prob", "pepper_prob")

    @classmethod
    def from_config(cls, config: NoiseOperatorConfig) -> SaltPepperKernel:
        return cls(
            float(config.salt_prob),
            float(config.pepper_prob),
            _optional_float(config.salt_value),
            _optional_float(config.pepper_value),
            float_range(config.clip_range),
            **cls.training_fields(config),
        )

    draw_mode = staticmethod(draw_salt_pepper)
    apply_mode = staticmethod(apply_salt_pepper)


# --------------------------------------------------------------------------- #
# poisson                                                                      #
# --------------------------------------------------------------------------- #
def draw_poisson(kernel: PoissonKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"poisson_samples": float32 uniform quantile levels of element_shape}``.

    The levels are computed apart from the quantile (``separate=True``): fused
    into one loop with the generator, the quantile would not be vectorised.  With
    ``lam_scale_range``, the record's log-uniform ``lam_scale`` (float32 ``()``) too.
    """
    levels = stream.uniforms(key, element_shape, separate=True)
    return {"poisson_samples": levels, **kernel.drawn_strengths(key)}


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
    return elementwise_quantile(levels, values * gain) * inverse_gain


@shot_noise.defjvp
def _shot_noise_jvp(
    primals: tuple[Array, Array, Array, Array], tangents: tuple[Array, Array, Array, Array]
) -> tuple[Array, Array]:
    return shot_noise(*primals), tangents[0]


def apply_poisson(kernel: PoissonKernel, image: Array, params: Params) -> Array:
    """Shot noise ``k * s / lam_scale``, ``k = F^-1(u; max(x, 0) * lam_scale / s)``; clip.

    ``s`` is the value scale (``_common.by_value_scale``: 255 for 0..255 data,
    else 1).  See ``shot_noise`` for the gradient and ``datarax_ops.poisson``
    for the counts: float32 (Giles' scheme: a bottom-up sum for small counts,
    Temme's asymptotic quantile otherwise, an exact fallback for the rare
    rest), equal to the float64 reference except for ~1e-6 of values, each one
    count off at a level within 2.4e-7 of a CDF step (measured,
    ``tests/test_poisson_quantile.py``).
    """
    values = jnp.maximum(to_working(image), 0.0)
    dtype = values.dtype
    lam_scale: Any = kernel.lam_scale
    if kernel.ranged("lam_scale"):  # the record's draw, a float32 scalar
        lam_scale = jnp.asarray(params["lam_scale"], jnp.float32)
    gain = by_value_scale(image, lambda s: lam_scale / s).astype(dtype)
    inverse_gain = by_value_scale(image, lambda s: s / lam_scale)
    levels = params["poisson_samples"].astype(jnp.float32)
    noisy = shot_noise(values, levels, gain, inverse_gain.astype(dtype))
    return from_working(clip(noisy, kernel.clip_range), image.dtype)


@dataclass(frozen=True)
class PoissonKernel(Kernel):
    """Shot noise: ``Poisson(x * lam_scale / s) * s / lam_scale``, then clip."""

    lam_scale: float
    clip_range: ClipRange

    mode: ClassVar[str] = "poisson"
    param_key: ClassVar[str] = "poisson_samples"
    applied_strengths: ClassVar[tuple[str, ...]] = ("lam_scale",)

    @classmethod
    def from_config(cls, config: NoiseOperatorConfig) -> PoissonKernel:
        return cls(
            float(config.lam_scale), float_range(config.clip_range), **cls.training_fields(config)
        )

    draw_mode = staticmethod(draw_poisson)
    apply_mode = staticmethod(apply_poisson)


NoiseKernel = GaussianKernel | SaltPepperKernel | PoissonKernel
