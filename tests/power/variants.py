"""A gallery of deliberately wrong operators, for ``nox -s power``.

Each variant differs from the spec by an amount that matters.  ``variant_class``
returns the wrong class for the configs the variant concerns (its operator
and modes) and the real class for every other config, so the whole suite can
run with one variant swapped in; the suite must fail.  Never imported by the
package: these live in tests/ only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

import datarax_ops as dx
from datarax_ops import _common as common_module
from datarax_ops import stream, strengths
from datarax_ops._common import clip, from_working, salt_pepper_values, to_working
from datarax_ops.batch import metadata_of, with_data_like
from datarax_ops.modes import _dropout as dropout_modes
from datarax_ops.modes import channel as channel_mode
from datarax_ops.modes import coarse as coarse_mode
from datarax_ops.modes import gaussian as gaussian_mode
from datarax_ops.modes import poisson as poisson_mode
from datarax_ops.modes import salt_pepper as salt_pepper_mode
from datarax_ops.modes import speckle as speckle_mode

Array = jax.Array


@dataclass(frozen=True)
class Variant:
    description: str
    operator: type  # the real operator class it replaces
    modes: tuple[str, ...]
    build: Callable[[], type]
    # False: the output law is the spec's (key handling, batch identity, the datarax
    # stage call, a point law): only exact tests can tell it apart.
    law_changing: bool = True


def _with_kernels(operator: type, *mixins_or_kernels: type) -> type:
    """``operator`` whose modes use the given wrong kernel classes (one per mode; a
    mixin class is combined with every kernel of ``operator``'s modes)."""
    by_mode = {}
    for cls in mixins_or_kernels:
        if issubclass(cls, dx.Kernel):
            by_mode[cls.spec.name] = cls
        else:
            for mode in dx.MODES:
                if issubclass(operator.config_class, mode.config_class):
                    by_mode[mode.name] = _combine(cls, mode.kernel_class)

    class Wrong(operator):  # type: ignore[misc, valid-type]
        @staticmethod
        def make_kernel(config: Any) -> Any:
            if config.mode in by_mode:
                return by_mode[config.mode].from_config(config)
            return operator.make_kernel(config)

    Wrong.__name__ = operator.__name__
    return Wrong


def _combine(mixin: type, kernel: type) -> type:
    """A frozen dataclass kernel: ``mixin``'s overrides on top of ``kernel``."""
    return dataclass(frozen=True)(type(f"{mixin.__name__}{kernel.__name__}", (mixin, kernel), {}))


# --------------------------------------------------------------------------- #
# Wrong noise kernels                                                          #
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class GaussianStdTooLarge(gaussian_mode.GaussianKernel):
    def draw(self, key: Array, element_shape: tuple[int, ...]) -> dict[str, Array]:
        wider = dataclasses.replace(self, noise_std=self.noise_std * 1.03)
        return gaussian_mode.draw(wider, key, tuple(element_shape))


@dataclass(frozen=True)
class GaussianMeanShifted(gaussian_mode.GaussianKernel):
    def draw(self, key: Array, element_shape: tuple[int, ...]) -> dict[str, Array]:
        shifted = dataclasses.replace(self, noise_mean=self.noise_mean + 0.01)
        return gaussian_mode.draw(shifted, key, tuple(element_shape))


@dataclass(frozen=True)
class GaussianZeroStdAddsMean(gaussian_mode.GaussianKernel):
    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        if self.noise_std == 0:
            values = to_working(image) + self.noise_mean
            return from_working(clip(values, self.clip_range), image.dtype)
        return super().apply(image, params)


class ClippingSkipped:
    """Mixin: ``clip_range`` ignored."""

    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        return super(ClippingSkipped, dataclasses.replace(self, clip_range=None)).apply(  # type: ignore[call-arg, arg-type, misc]
            image, params
        )


@dataclass(frozen=True)
class SaltPepperSwapped(salt_pepper_mode.SaltPepperKernel):
    """The first band (u < salt_prob) gets the pepper value, the second the salt value."""

    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        levels = params["noise_mask"]
        salt, pepper_value = salt_pepper_values(self.salt_value, self.pepper_value, image)
        pepper = jnp.asarray(pepper_value)
        values = to_working(image)
        values = jnp.where(
            levels < jnp.float32(self.salt_prob),
            pepper.astype(values.dtype),
            jnp.where(
                levels < jnp.float32(self.salt_prob + self.pepper_prob),
                salt.astype(values.dtype),
                values,
            ),
        )
        return from_working(clip(values, self.clip_range), image.dtype)


@dataclass(frozen=True)
class SaltProbTooLarge(salt_pepper_mode.SaltPepperKernel):
    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        more = min(self.salt_prob * 1.1, 1.0 - self.pepper_prob)
        return salt_pepper_mode.apply(dataclasses.replace(self, salt_prob=more), image, params)


@dataclass(frozen=True)
class PepperDefaultWrong(salt_pepper_mode.SaltPepperKernel):
    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        pepper = 0.1 if self.pepper_value is None else self.pepper_value
        return salt_pepper_mode.apply(dataclasses.replace(self, pepper_value=pepper), image, params)


def _range_threshold(image: Array, threshold: float) -> Array:
    values = image.astype(jnp.float32)
    return jnp.max(jnp.where(jnp.isnan(values), -jnp.inf, values)) > threshold


class WrongRangeRule:
    """Mixin: the real modes with ``uses_255_range`` replaced by ``range_rule``
    (swapped in while the mode traces, restored after)."""

    @staticmethod
    def range_rule(image: Array) -> Array:
        raise NotImplementedError

    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        original = common_module.uses_255_range
        common_module.uses_255_range = self.range_rule
        try:
            return super().apply(image, params)  # type: ignore[misc]
        finally:
            common_module.uses_255_range = original


class AutoThresholdMoved(WrongRangeRule):
    """0..255 detection at max > 2.0 instead of > 1.5 (salt value and poisson scale)."""

    @staticmethod
    def range_rule(image: Array) -> Array:
        return _range_threshold(image, 2.0)


@dataclass(frozen=True)
class PoissonVarianceTooLarge(poisson_mode.PoissonKernel):
    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        return super(
            PoissonVarianceTooLarge, dataclasses.replace(self, lam_scale=self.lam_scale / 1.1)
        ).apply(image, params)


class Poisson255ScalingDropped(WrongRangeRule):
    """Every image is read as 0..1 data."""

    @staticmethod
    def range_rule(image: Array) -> Array:
        return jnp.asarray(False)


@dataclass(frozen=True)
class PoissonNegativesKept(poisson_mode.PoissonKernel):
    """Negative inputs use |x| instead of being raised to 0."""

    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        return super().apply(jnp.abs(image), params)


@dataclass(frozen=True)
class IntegersTruncated(gaussian_mode.GaussianKernel):
    """Integer outputs truncated toward zero instead of rounded."""

    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        if not jnp.issubdtype(image.dtype, jnp.integer):
            return super().apply(image, params)
        as_float = super().apply(image.astype(jnp.float32), params)
        info = jnp.iinfo(image.dtype)
        return jnp.clip(jnp.trunc(as_float), info.min, info.max).astype(image.dtype)


# --------------------------------------------------------------------------- #
# Wrong dropout kernels                                                        #
# --------------------------------------------------------------------------- #
class KeepRateIsP:
    """Mixin: keep ~ Bernoulli(p) instead of Bernoulli(1 - p)."""

    def draw(self, key: Array, element_shape: tuple[int, ...]) -> dict[str, Array]:
        flipped = dataclasses.replace(self, dropout_rate=1.0 - self.dropout_rate)  # type: ignore[call-arg, attr-defined, arg-type]
        return super(KeepRateIsP, flipped).draw(key, element_shape)  # type: ignore[misc]


class DropoutRateTooHigh:
    """Mixin: dropout_rate + 0.02."""

    def draw(self, key: Array, element_shape: tuple[int, ...]) -> dict[str, Array]:
        higher = dataclasses.replace(self, dropout_rate=min(1.0, self.dropout_rate + 0.02))  # type: ignore[call-arg, attr-defined, arg-type]
        return super(DropoutRateTooHigh, higher).draw(key, element_shape)  # type: ignore[misc]


@dataclass(frozen=True)
class ChannelMaskPerPixel(channel_mode.ChannelKernel):
    """Channel mode draws an independent decision per pixel (broadcast back in apply)."""

    def draw(self, key: Array, element_shape: tuple[int, ...]) -> dict[str, Array]:
        if len(element_shape) != 3:
            return super().draw(key, element_shape)
        return dropout_modes.keep_decisions(self, key, tuple(element_shape))

    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        return dropout_modes.finish(self, image, jnp.broadcast_to(params["keep_mask"], image.shape))


class DropoutRescaled:
    """Mixin: kept values scaled by 1 / (1 - p), as in training-time dropout."""

    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        out = super().apply(image, params)  # type: ignore[misc]
        if self.dropout_rate in (0.0, 1.0):  # type: ignore[attr-defined]
            return out
        return (out.astype(jnp.float32) / (1.0 - self.dropout_rate)).astype(image.dtype)  # type: ignore[attr-defined]


class DropoutClipSkipped:
    """Mixin: clip_range ignored."""

    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        return super(DropoutClipSkipped, dataclasses.replace(self, clip_range=None)).apply(  # type: ignore[call-arg, arg-type, misc]
            image, params
        )


# --------------------------------------------------------------------------- #
# Wrong randomness (record indices)                                            #
# --------------------------------------------------------------------------- #
def _with_indices(operator: type, indices: Callable[[Any, Any, int], Array]) -> type:
    """``operator`` whose batches' records are numbered by ``indices(op, batch, size)``
    (epoch 0, shard 0) instead of by their metadata or the record counter."""

    class Wrong(operator):  # type: ignore[misc, valid-type]
        def apply_batch(self, batch: Any, stats: Any = None) -> Any:
            if not self.stochastic or batch.batch_size == 0:
                return super().apply_batch(batch, stats)
            index = indices(self, batch, batch.batch_size)
            identities = stream.identity_words(0, 0, jnp.asarray(index, jnp.uint32))
            data = self._apply_records(batch.data.get_value(), identities)
            return with_data_like(batch, data)

    Wrong.__name__ = operator.__name__
    return Wrong


def _take_from_counter(op: Any, size: int) -> Array:
    """The counter's low word, advanced by ``size`` (the right variants never wrap)."""
    start = op._record_counter[...][1]
    op._record_counter[...] = op._record_counter[...].at[1].add(jnp.uint32(size))
    return start


def _same_for_every_record(op: Any, batch: Any, size: int) -> Array:
    return jnp.full((size,), _take_from_counter(op, size), jnp.uint32)


def _same_on_every_call(op: Any, batch: Any, size: int) -> Array:
    return jnp.arange(size, dtype=jnp.uint32)


def _depends_on_batch_size(op: Any, batch: Any, size: int) -> Array:
    start = _take_from_counter(op, size)
    return start + jnp.arange(size, dtype=jnp.uint32) + jnp.uint32(1000 * size)


def _ignores_metadata(op: Any, batch: Any, size: int) -> Array:
    return _take_from_counter(op, size) + jnp.arange(size, dtype=jnp.uint32)


def _ignores_epoch_and_shard(op: Any, batch: Any, size: int) -> Array:
    """Metadata indices only: the same index in another epoch or shard repeats its noise."""
    metadata = metadata_of(batch)
    if not metadata or metadata[0] is None:
        return _ignores_metadata(op, batch, size)
    # the low word of each index (64-bit indices would overflow uint32): the record is
    # keyed as (epoch 0, shard 0, index mod 2**32), never by its epoch or shard
    return jnp.asarray([int(_index(m)) % 2**32 for m in metadata], jnp.uint32)


def _index(metadata: Any) -> Any:
    return metadata["index"] if isinstance(metadata, dict) else metadata.index


# --------------------------------------------------------------------------- #
# Wrong training settings (issue 17): strengths, channel sharing, apply decision #
# --------------------------------------------------------------------------- #
class RangeMidpoint:
    """Every ranged strength is the range's midpoint (the range ignored)."""

    def drawn_strengths(self, key: Array) -> dict[str, Array]:
        return {name: jnp.float32((low + high) / 2) for name, low, high in self.ranges}  # type: ignore[attr-defined]


class StrengthPerBatch:
    """One strength for every record (drawn from one fixed key, not the record's)."""

    def drawn_strengths(self, key: Array) -> dict[str, Array]:
        return super().drawn_strengths(stream.fixed_pattern_key())  # type: ignore[misc]


def _with_ranges(kernel: Any, ranges: tuple[tuple[str, float, float], ...]) -> Any:
    """``kernel``'s draws as if its ranges were ``ranges``."""
    return dataclasses.replace(kernel, ranges=ranges)


class RangeSwapped:
    """lo and hi swapped: ``hi + (lo - hi) u`` (the same law, other values)."""

    def drawn_strengths(self, key: Array) -> dict[str, Array]:
        swapped = tuple((name, high, low) for name, low, high in self.ranges)  # type: ignore[attr-defined]
        drawn = {}
        for name, high, low in swapped:
            slot = self.spec.strength(name).slot  # type: ignore[attr-defined]
            levels = stream.record_uniforms(key, slot)
            drawn[name] = jnp.float32(high) + jnp.float32(low - high) * levels
            if name == "lam_scale":
                drawn[name] = jnp.exp(jnp.log(jnp.float32(high)) + jnp.log(low / high) * levels)
        return drawn


class RangeNarrowed:
    """The range narrowed by 5% of its width at each end."""

    def drawn_strengths(self, key: Array) -> dict[str, Array]:
        narrowed = tuple(
            (name, low + 0.05 * (high - low), high - 0.05 * (high - low))
            for name, low, high in self.ranges  # type: ignore[attr-defined]
        )
        return super(RangeNarrowed, _with_ranges(self, narrowed)).drawn_strengths(key)  # type: ignore[misc, arg-type]


class PerChannelIgnored:
    """``per_channel=False`` ignored: every channel draws its own value."""

    @classmethod
    def from_config(cls, config: Any) -> Any:
        return dataclasses.replace(super().from_config(config), per_channel=True)  # type: ignore[misc]

    def shares_channels(self) -> bool:
        return False


class ApplyInverted:
    """Transforms exactly the records the spec passes through, and vice versa."""

    def draw(self, key: Array, element_shape: tuple[int, ...]) -> dict[str, Array]:
        params = super().draw(key, element_shape)  # type: ignore[misc]
        if "apply" in params:
            params["apply"] = ~params["apply"]
        return params


class ApplyShared:
    """One apply decision for every record (from a fixed key)."""

    def draw(self, key: Array, element_shape: tuple[int, ...]) -> dict[str, Array]:
        params = super().draw(key, element_shape)  # type: ignore[misc]
        if "apply" in params:
            fixed = stream.record_uniforms(stream.fixed_pattern_key(), stream.APPLY_SLOT)
            params["apply"] = fixed < jnp.float32(self.apply_prob)  # type: ignore[attr-defined]
        return params


class StrengthFromValueWords:
    """The strength drawn from the per-value bits (value 0's word), not the record words."""

    def drawn_strengths(self, key: Array) -> dict[str, Array]:
        drawn = super().drawn_strengths(key)  # type: ignore[misc]
        for index, (name, low, high) in enumerate(self.ranges):  # type: ignore[attr-defined]
            levels = stream.uniforms(key, (index + 1,))[index]
            law = (
                strengths.log_uniform_strength
                if name == "lam_scale"
                else strengths.uniform_strength
            )
            drawn[name] = law(levels, low, high)
        return drawn


# --------------------------------------------------------------------------- #
# Wrong datarax conventions (the stage call, a record key as params)           #
# --------------------------------------------------------------------------- #
def _with_stage_arguments(operator: type, rewrite: Callable[[Any, Any, Any], tuple]) -> type:
    """``operator`` whose stage call sees ``rewrite(data, record_indices, epoch)`` instead."""

    class Wrong(operator):  # type: ignore[misc, valid-type]
        def _apply_on_raw(self, data, states, stats=None, record_indices=None, epoch=None):
            record_indices, epoch = rewrite(data, record_indices, epoch)
            return super()._apply_on_raw(data, states, stats, record_indices, epoch)

    Wrong.__name__ = operator.__name__
    return Wrong


def _epoch_dropped(data: Any, record_indices: Any, epoch: Any) -> tuple[Any, Any]:
    return record_indices, None


def _batch_positions(data: Any, record_indices: Any, epoch: Any) -> tuple[Any, Any]:
    if record_indices is None:
        return None, epoch
    return jnp.arange(jnp.shape(record_indices)[0], dtype=jnp.int32), epoch


def _record_key_ignored(operator: type) -> type:
    """``operator`` whose ``apply`` treats a record key as no params (draws from its counter)."""

    class Wrong(operator):  # type: ignore[misc, valid-type]
        def apply(self, data, state, metadata, random_params=None, stats=None):
            if isinstance(random_params, jax.Array):
                random_params = None
            return super().apply(data, state, metadata, random_params, stats)

    Wrong.__name__ = operator.__name__
    return Wrong


# --------------------------------------------------------------------------- #
# Wrong coarse dropout kernels (issue 24)                                      #
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class CoarseCountHiExclusive(coarse_mode.CoarseKernel):
    """The count uniform on ``lo .. hi - 1``: the upper bound excluded."""

    def draw_mode(self, key: Array, element_shape: tuple[int, ...]) -> dict[str, Array]:
        params = super().draw_mode(key, element_shape)
        low, high = self.count_range
        if high > low:
            bits = stream.record_bits(key, stream.GEOMETRY_FIRST_SLOT)
            params["hole_count"] = low + stream.index_from_bits(bits, high - low).astype(jnp.int32)
        return params


@dataclass(frozen=True)
class CoarseCornersClipped(coarse_mode.CoarseKernel):
    """Cutout's paper: the corner uniform over the whole image, the hole clipped at the
    border (another law of the sizes, the corners and the coverage)."""

    def draw_mode(self, key: Array, element_shape: tuple[int, ...]) -> dict[str, Array]:
        params = super().draw_mode(key, element_shape)
        height, width = coarse_mode.spec_module.plane(element_shape)
        words = coarse_mode.hole_words(key, self.count_range[1])
        y0 = stream.index_from_bits(words[:, 2], height).astype(jnp.int32)
        x0 = stream.index_from_bits(words[:, 3], width).astype(jnp.int32)
        sizes = params["hole_sizes"]
        h, w = jnp.minimum(sizes[:, 0], height - y0), jnp.minimum(sizes[:, 1], width - x0)
        params["hole_sizes"] = jnp.stack([h, w], axis=-1)
        params["hole_corners"] = jnp.stack([y0, x0], axis=-1)
        return params


@dataclass(frozen=True)
class CoarseSquareHoles(coarse_mode.CoarseKernel):
    """The width drawn from the height's uniform: square holes (in fractions)."""

    def draw_mode(self, key: Array, element_shape: tuple[int, ...]) -> dict[str, Array]:
        params = super().draw_mode(key, element_shape)
        _height, width = coarse_mode.spec_module.plane(element_shape)
        words = coarse_mode.hole_words(key, self.count_range[1])
        levels = stream.uniform_from_bits(words)
        w = coarse_mode.side(levels[:, 0], width, *self.hole_size_range)
        x0 = stream.index_from_bits(words[:, 3], width - w + 1).astype(jnp.int32)
        params["hole_sizes"] = params["hole_sizes"].at[:, 1].set(w)
        params["hole_corners"] = params["hole_corners"].at[:, 1].set(x0)
        return params


@dataclass(frozen=True)
class CoarseSizesFromPaddedBucket(coarse_mode.CoarseKernel):
    """The holes drawn for H and W padded to the next power of two (a size bucket's
    shape) instead of the record's own."""

    def draw_mode(self, key: Array, element_shape: tuple[int, ...]) -> dict[str, Array]:
        shape = list(element_shape)
        axes = (-3, -2) if len(shape) >= 3 else (-2, -1)
        for axis in axes:
            shape[axis] = 1 << max(0, shape[axis] - 1).bit_length()
        return super().draw_mode(key, tuple(shape))


@dataclass(frozen=True)
class CoarseOneChannel(coarse_mode.CoarseKernel):
    """Holes filled on the first channel only."""

    def apply_mode(self, image: Array, params: dict[str, Array]) -> Array:
        out = super().apply_mode(image, params)
        if image.ndim < 3:
            return out
        return image.at[..., 0].set(out[..., 0])


NOISE = dx.NoiseOperator
DROPOUT = dx.DropoutOperator
ALL_NOISE = ("gaussian", "salt_pepper", "poisson")
ALL_DROPOUT = ("pixel", "channel")

VARIANTS: dict[str, Variant] = {
    "gaussian_std_x1.03": Variant(
        "noise std x1.03", NOISE, ("gaussian",), lambda: _with_kernels(NOISE, GaussianStdTooLarge)
    ),
    "gaussian_mean_plus_0.01": Variant(
        "noise mean +0.01", NOISE, ("gaussian",), lambda: _with_kernels(NOISE, GaussianMeanShifted)
    ),
    "gaussian_zero_std_adds_mean": Variant(
        "noise_std == 0 still adds the mean",
        NOISE,
        ("gaussian",),
        lambda: _with_kernels(NOISE, GaussianZeroStdAddsMean),
    ),
    "noise_clipping_skipped": Variant(
        "clip_range ignored (all noise modes)",
        NOISE,
        ALL_NOISE,
        lambda: _with_kernels(NOISE, ClippingSkipped),
    ),
    "salt_pepper_swapped": Variant(
        "salt and pepper values swapped",
        NOISE,
        ("salt_pepper",),
        lambda: _with_kernels(NOISE, SaltPepperSwapped),
    ),
    "salt_prob_x1.1": Variant(
        "salt_prob x1.1", NOISE, ("salt_pepper",), lambda: _with_kernels(NOISE, SaltProbTooLarge)
    ),
    "pepper_default_0.1": Variant(
        "pepper_value=None means 0.1, not 0.0",
        NOISE,
        ("salt_pepper",),
        lambda: _with_kernels(NOISE, PepperDefaultWrong),
    ),
    "auto_threshold_2.0": Variant(
        "0..255 detection at max > 2.0, not > 1.5",
        NOISE,
        ("salt_pepper", "poisson"),
        lambda: _with_kernels(NOISE, AutoThresholdMoved),
    ),
    "poisson_variance_x1.1": Variant(
        "poisson variance x1.1",
        NOISE,
        ("poisson",),
        lambda: _with_kernels(NOISE, PoissonVarianceTooLarge),
    ),
    "poisson_255_scaling_dropped": Variant(
        "poisson ignores the 0..255 convention",
        NOISE,
        ("poisson",),
        lambda: _with_kernels(NOISE, Poisson255ScalingDropped),
    ),
    "poisson_negatives_abs": Variant(
        "poisson uses |x| for negative inputs",
        NOISE,
        ("poisson",),
        lambda: _with_kernels(NOISE, PoissonNegativesKept),
    ),
    "integers_truncated": Variant(
        "integer outputs truncated, not rounded",
        NOISE,
        ("gaussian",),
        lambda: _with_kernels(NOISE, IntegersTruncated),
    ),
    "keep_rate_p": Variant(
        "keep probability p instead of 1 - p",
        DROPOUT,
        ALL_DROPOUT,
        lambda: _with_kernels(DROPOUT, KeepRateIsP),
    ),
    "dropout_rate_plus_0.02": Variant(
        "dropout_rate + 0.02",
        DROPOUT,
        ALL_DROPOUT,
        lambda: _with_kernels(DROPOUT, DropoutRateTooHigh),
    ),
    "channel_mask_per_pixel": Variant(
        "channel mask drawn per pixel",
        DROPOUT,
        ("channel",),
        lambda: _with_kernels(DROPOUT, ChannelMaskPerPixel),
    ),
    "dropout_rescaled": Variant(
        "kept values rescaled by 1/(1-p)",
        DROPOUT,
        ALL_DROPOUT,
        lambda: _with_kernels(DROPOUT, DropoutRescaled),
    ),
    "dropout_clip_skipped": Variant(
        "dropout ignores clip_range",
        DROPOUT,
        ALL_DROPOUT,
        lambda: _with_kernels(DROPOUT, DropoutClipSkipped),
    ),
    "same_noise_every_record": Variant(
        "every record of a batch gets the same noise",
        NOISE,
        ALL_NOISE,
        lambda: _with_indices(NOISE, _same_for_every_record),
    ),
    "same_noise_every_call": Variant(
        "the same noise on successive calls",
        NOISE,
        ALL_NOISE,
        lambda: _with_indices(NOISE, _same_on_every_call),
    ),
    "noise_depends_on_batch_size": Variant(
        "a record's noise depends on batch composition",
        NOISE,
        ALL_NOISE,
        lambda: _with_indices(NOISE, _depends_on_batch_size),
        law_changing=False,
    ),
    "dropout_ignores_metadata_index": Variant(
        "metadata index ignored",
        DROPOUT,
        ALL_DROPOUT,
        lambda: _with_indices(DROPOUT, _ignores_metadata),
        law_changing=False,
    ),
    "noise_ignores_epoch_and_shard": Variant(
        "the same index in another epoch or shard repeats its noise",
        NOISE,
        ALL_NOISE,
        lambda: _with_indices(NOISE, _ignores_epoch_and_shard),
        law_changing=False,
    ),
    "dropout_ignores_epoch_and_shard": Variant(
        "the same index in another epoch or shard repeats its mask",
        DROPOUT,
        ALL_DROPOUT,
        lambda: _with_indices(DROPOUT, _ignores_epoch_and_shard),
        law_changing=False,
    ),
    "stage_ignores_epoch": Variant(
        "datarax's stage call: the epoch is ignored",
        NOISE,
        ALL_NOISE,
        lambda: _with_stage_arguments(NOISE, _epoch_dropped),
        law_changing=False,
    ),
    "stage_keys_batch_positions": Variant(
        "datarax's stage call: records keyed by batch position, not record index",
        DROPOUT,
        ALL_DROPOUT,
        lambda: _with_stage_arguments(DROPOUT, _batch_positions),
        law_changing=False,
    ),
    "record_key_ignored": Variant(
        "apply given a record's PRNG key draws from the counter instead",
        NOISE,
        ALL_NOISE,
        lambda: _record_key_ignored(NOISE),
        law_changing=False,
    ),
    "range_ignored_midpoint": Variant(
        "strength ranges ignored: every record gets the midpoint",
        NOISE,
        ALL_NOISE,
        lambda: _with_kernels(NOISE, RangeMidpoint),
    ),
    "dropout_range_midpoint": Variant(
        "dropout_rate_range ignored: every record gets the midpoint",
        DROPOUT,
        ALL_DROPOUT,
        lambda: _with_kernels(DROPOUT, RangeMidpoint),
    ),
    "strength_per_batch": Variant(
        "one drawn strength for the whole batch, not one per record",
        NOISE,
        ALL_NOISE,
        lambda: _with_kernels(NOISE, StrengthPerBatch),
    ),
    "dropout_rate_per_batch": Variant(
        "one drawn dropout rate for the whole batch, not one per record",
        DROPOUT,
        ALL_DROPOUT,
        lambda: _with_kernels(DROPOUT, StrengthPerBatch),
    ),
    "range_lo_hi_swapped": Variant(
        "strength ranges with lo and hi swapped (hi + (lo - hi) u)",
        NOISE,
        ALL_NOISE,
        lambda: _with_kernels(NOISE, RangeSwapped),
        law_changing=False,
    ),
    "range_narrowed_5pct": Variant(
        "strength ranges narrowed by 5% of the width at each end",
        NOISE,
        ALL_NOISE,
        lambda: _with_kernels(NOISE, RangeNarrowed),
    ),
    "dropout_range_narrowed_5pct": Variant(
        "dropout_rate_range narrowed by 5% of the width at each end",
        DROPOUT,
        ALL_DROPOUT,
        lambda: _with_kernels(DROPOUT, RangeNarrowed),
    ),
    "per_channel_ignored": Variant(
        "per_channel=False ignored (noise): every channel its own draw",
        NOISE,
        ("gaussian", "salt_pepper"),
        lambda: _with_kernels(NOISE, PerChannelIgnored),
    ),
    "dropout_per_channel_ignored": Variant(
        "per_channel=False ignored (pixel dropout): every channel its own decision",
        DROPOUT,
        ("pixel",),
        lambda: _with_kernels(DROPOUT, PerChannelIgnored),
    ),
    "apply_decision_inverted": Variant(
        "apply_prob: the decision inverted",
        NOISE,
        ALL_NOISE,
        lambda: _with_kernels(NOISE, ApplyInverted),
    ),
    "apply_decision_shared": Variant(
        "apply_prob: one decision shared by every record",
        DROPOUT,
        ALL_DROPOUT,
        lambda: _with_kernels(DROPOUT, ApplyShared),
    ),
    "strength_from_value_words": Variant(
        "the strength drawn from the per-value bits instead of the record words",
        NOISE,
        ALL_NOISE,
        lambda: _with_kernels(NOISE, StrengthFromValueWords),
    ),
    "dropout_same_mask_every_record": Variant(
        "every record gets the same dropout mask",
        DROPOUT,
        ALL_DROPOUT,
        lambda: _with_indices(DROPOUT, _same_for_every_record),
    ),
}

_BUILT: dict[str, type] = {}


def variant_class(name: str, config: Any) -> type:
    """The class the suite should use for ``config`` while variant ``name`` is active."""
    if name not in VARIANTS:
        raise KeyError(f"unknown variant {name!r}; known: {sorted(VARIANTS)}")
    variant = VARIANTS[name]
    real = dx.NoiseOperator if isinstance(config, dx.NoiseOperatorConfig) else dx.DropoutOperator
    if real is not variant.operator or config.mode not in variant.modes:
        return real
    if name not in _BUILT:
        _BUILT[name] = variant.build()
    return _BUILT[name]


# --------------------------------------------------------------------------- #
# Integer gaussian outputs (issue 22): no noise, ties rounded half up          #
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class IntegerNoiseDropped(gaussian_mode.GaussianKernel):
    """Integer outputs get no noise (clip and cast only); float outputs are right.
    At std 0.3 counts every output is within 1 of the spec's."""

    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        if not jnp.issubdtype(image.dtype, jnp.integer):
            return super().apply(image, params)
        return from_working(clip(to_working(image), self.clip_range), image.dtype)


@dataclass(frozen=True)
class IntegersRoundHalfUp(gaussian_mode.GaussianKernel):
    """Integer outputs rounded half up (``floor(x + 0.5)``), not half to even."""

    def apply(self, image: Array, params: dict[str, Array]) -> Array:
        if not jnp.issubdtype(image.dtype, jnp.integer):
            return super().apply(image, params)
        as_float = super().apply(image.astype(jnp.float32), params)
        info = jnp.iinfo(image.dtype)
        return jnp.clip(jnp.floor(as_float + 0.5), info.min, info.max).astype(image.dtype)


# --------------------------------------------------------------------------- #
# Speckle (issue 24): additive instead of multiplicative, std x1.05            #
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class SpeckleAdditive(speckle_mode.SpeckleKernel):
    """``clip(x + noise)``: gaussian's law with speckle's params, not ``x * (1 + noise)``."""

    def apply_mode(self, image: Array, params: dict[str, Array]) -> Array:
        values = to_working(image) + params["noise"].astype(to_working(image).dtype)
        return from_working(clip(values, self.clip_range), image.dtype)


@dataclass(frozen=True)
class SpeckleStdTooLarge(speckle_mode.SpeckleKernel):
    def draw_mode(self, key: Array, element_shape: tuple[int, ...]) -> dict[str, Array]:
        wider = dataclasses.replace(self, noise_std=self.noise_std * 1.05)
        return speckle_mode.draw(wider, key, tuple(element_shape))


VARIANTS["speckle_additive"] = Variant(
    "speckle adds its noise (x + noise) instead of multiplying (x * (1 + noise))",
    NOISE,
    ("speckle",),
    lambda: _with_kernels(NOISE, SpeckleAdditive),
)
VARIANTS["speckle_std_x1.05"] = Variant(
    "speckle noise std x1.05",
    NOISE,
    ("speckle",),
    lambda: _with_kernels(NOISE, SpeckleStdTooLarge),
)


VARIANTS["gaussian_integers_noise_dropped"] = Variant(
    "integer gaussian outputs without the noise (within 1 of the spec at std 0.3)",
    NOISE,
    ("gaussian",),
    lambda: _with_kernels(NOISE, IntegerNoiseDropped),
)
VARIANTS["coarse_count_hi_exclusive"] = Variant(
    "coarse: the hole count's upper bound excluded",
    DROPOUT,
    ("coarse",),
    lambda: _with_kernels(DROPOUT, CoarseCountHiExclusive),
)
VARIANTS["coarse_corners_clipped"] = Variant(
    "coarse: corners uniform over the whole image, holes clipped at the border",
    DROPOUT,
    ("coarse",),
    lambda: _with_kernels(DROPOUT, CoarseCornersClipped),
)
VARIANTS["coarse_square_holes"] = Variant(
    "coarse: square holes (the width from the height's uniform)",
    DROPOUT,
    ("coarse",),
    lambda: _with_kernels(DROPOUT, CoarseSquareHoles),
)
VARIANTS["coarse_sizes_from_padded_bucket"] = Variant(
    "coarse: holes drawn for the padded bucket's shape (next power of two)",
    DROPOUT,
    ("coarse",),
    lambda: _with_kernels(DROPOUT, CoarseSizesFromPaddedBucket),
)
VARIANTS["coarse_one_channel"] = Variant(
    "coarse: holes filled on the first channel only",
    DROPOUT,
    ("coarse",),
    lambda: _with_kernels(DROPOUT, CoarseOneChannel),
)
# Ties are exact .5 values, which continuous noise almost never makes: the output law is
# the spec's, and only the exact tie test (test_equivalence) can tell it apart.
VARIANTS["integers_round_half_up"] = Variant(
    "integer gaussian outputs rounded half up, not half to even",
    NOISE,
    ("gaussian",),
    lambda: _with_kernels(NOISE, IntegersRoundHalfUp),
    law_changing=False,
)
