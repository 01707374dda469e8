"""Poisson (shot) noise, compiled: ``Poisson(x * lam_scale / s) * s / lam_scale``.

The twin of ``reference/modes/poisson.py`` (the spec): ``draw``, ``apply`` and
the kernel holding the mode's fields.  The counts come from
``datarax_ops.poisson`` (the float32 inverse CDF).  datarax 0.1.4 passes this
mode a PRNG key (``{"poisson_rngs": key}``) instead of params; the kernel turns
it into this project's params (``from_datarax_params``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from datarax_ops import stream
from datarax_ops._common import by_value_scale, clip, from_working, record_key_data, to_working
from datarax_ops.kernel import Kernel, element_programs
from datarax_ops.poisson import elementwise_quantile
from datarax_ops.reference.modes import poisson as spec_module
from datarax_ops.reference.spec import ModeSpec

Array = jax.Array
Params = dict[str, Array]

# The key datarax 0.1.4's random_params hold for this mode: one PRNG key per record.
DATARAX_KEY = "poisson_rngs"


def draw(kernel: PoissonKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
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


def apply(kernel: PoissonKernel, image: Array, params: Params) -> Array:
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
    clip_range: tuple[float, float] | None

    spec: ClassVar[ModeSpec] = spec_module.MODE
    # The quantile's cost depends on lambda, i.e. on the pixel values.
    value_dependent_cost: ClassVar[bool] = True
    datarax_param_keys: ClassVar[tuple[str, ...]] = (DATARAX_KEY,)

    def draw_mode(self, key: Array, element_shape: tuple[int, ...]) -> Params:
        return draw(self, key, element_shape)

    def apply_mode(self, image: Array, params: Params) -> Array:
        return apply(self, image, params)

    def from_datarax_params(self, random_params: dict, element_shape: tuple[int, ...]) -> dict:
        """datarax passes the record's PRNG key (typed ``()`` or raw ``uint32 (2,)``) and
        samples inside ``apply``; here the key becomes the record key of this project's
        draw: ``{"poisson_samples": draw(key)}`` (uniform levels)."""
        if self.param_key in random_params or DATARAX_KEY not in random_params:
            return random_params
        try:
            record_key = record_key_data(random_params[DATARAX_KEY])
        except (TypeError, ValueError) as error:
            raise type(error)(f"random_params[{DATARAX_KEY!r}]: {error}") from error
        draw_program = element_programs(self)[0]
        return {**random_params, **draw_program(record_key, tuple(element_shape))}


KERNEL = PoissonKernel
