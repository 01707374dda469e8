"""Coarse dropout, compiled: a few rectangles of each record set to a fill.

The twin of ``reference/modes/coarse.py`` (the spec: the law, the slots, the
arithmetic): ``draw`` (one record's holes, from its record words) and ``apply`` (the
covered pixels as one ``(H, W)`` mask, every channel filled), plus a host path
(``CoarseKernel.host_apply``): a NumPy record draws its holes with the spec's own
functions from words computed with Python ints, copies itself and fills the
rectangles by slicing, bit for bit the compiled program, in one copy and no compile
per record size (the mode is not value by value, so a compiled record runs its
exact shape).
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from datarax_ops import host_words, stream, strengths
from datarax_ops._common import clip, from_working, to_working
from datarax_ops.kernel import Kernel
from datarax_ops.reference import stream as host_stream
from datarax_ops.reference.modes import coarse as spec_module
from datarax_ops.reference.record import split_width
from datarax_ops.reference.spec import ModeSpec

Array = jax.Array
Params = dict[str, Array]


def hole_words(key: Array, holes: int) -> Array:
    """``uint32 (holes, 4)``: record word ``geometry_slot(i, p)`` of each hole ``i``, part
    ``p`` (the four words of a hole in one threefry call)."""
    table = np.asarray(
        [[stream.geometry_slot(i, p) for p in range(stream.GEOMETRY_PARTS)] for i in range(holes)],
        np.uint32,
    ).reshape(holes, stream.GEOMETRY_PARTS)
    slots = jnp.asarray(table)
    high = jnp.full(slots.shape, stream.RECORD_COUNTER_HIGH, jnp.uint32)
    y0, y1 = stream.threefry2x32((key[0], key[1]), (high, slots))
    return y0 ^ y1


def side(levels: Array, length: int, low: float, high: float) -> Array:
    """int32 ``max(1, floor(f32(f32(u * length) + 0.5)))`` (the product kept apart from
    the add: XLA fusing them into one multiply-add would change the last bit)."""
    scaled = lax.optimization_barrier(
        strengths.uniform_strength(levels, low, high) * jnp.float32(length)
    )
    return jnp.maximum(1, jnp.floor(scaled + jnp.float32(0.5)).astype(jnp.int32))


def draw(kernel: CoarseKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"hole_count": int32 (), "hole_sizes": int32 (hi, 2), "hole_corners": int32
    (hi, 2)}`` for one record (``reference.modes.coarse.draw``)."""
    height, width = spec_module.plane(element_shape)
    low, high = kernel.count_range
    count_bits = stream.record_bits(key, stream.GEOMETRY_FIRST_SLOT)
    count = low + stream.index_from_bits(count_bits, high - low + 1).astype(jnp.int32)
    words = hole_words(key, high)
    levels = stream.uniform_from_bits(words)
    h = side(levels[:, spec_module.SIZE_Y], height, *kernel.hole_size_range)
    w = side(levels[:, spec_module.SIZE_X], width, *kernel.hole_size_range)
    y0 = stream.index_from_bits(words[:, spec_module.CORNER_Y], height - h + 1)
    x0 = stream.index_from_bits(words[:, spec_module.CORNER_X], width - w + 1)
    return {
        "hole_count": count,
        "hole_sizes": jnp.stack([h, w], axis=-1),
        "hole_corners": jnp.stack([y0, x0], axis=-1).astype(jnp.int32),
    }


def covered_pixels(params: Params, height: int, width: int) -> Array:
    """bool ``(H, W)``: inside one of the first ``hole_count`` holes.  Rows and columns
    of each hole as 0/1 vectors, their outer products summed by one matrix product
    (exact: counts of at most ``MAX_HOLES``)."""
    sizes = jnp.asarray(params["hole_sizes"]).astype(jnp.int32)
    corners = jnp.asarray(params["hole_corners"]).astype(jnp.int32)
    active = jnp.arange(sizes.shape[0]) < jnp.asarray(params["hole_count"]).astype(jnp.int32)

    def spans(length: int, axis: int) -> Array:
        index = jnp.arange(length)[None, :]
        start, extent = corners[:, axis, None], sizes[:, axis, None]
        return (active[:, None] & (index >= start) & (index < start + extent)).astype(jnp.float32)

    rows, cols = spans(height, 0), spans(width, 1)
    return jnp.dot(rows.T, cols, precision=lax.Precision.HIGHEST) > 0


def apply(kernel: CoarseKernel, image: Array, params: Params) -> Array:
    """Covered pixels (every channel) set to the fill cast to the dtype, then the clip."""
    covered = covered_pixels(params, *spec_module.plane(image.shape))
    if image.ndim >= 3:
        covered = covered[:, :, None]
    fill = jnp.asarray(spec_module.fill_of(kernel.fill_value, jnp.dtype(image.dtype)))
    filled = jnp.where(covered, fill, image)
    if kernel.clip_range is None:
        return filled
    return from_working(clip(to_working(filled), kernel.clip_range), image.dtype)


# --------------------------------------------------------------------------- #
# The host path                                                                #
# --------------------------------------------------------------------------- #
_FLOAT32 = struct.Struct("<f")


def _f32(value: float) -> float:
    """``value`` rounded to float32 (round half to even), as a Python float."""
    return _FLOAT32.unpack(_FLOAT32.pack(value))[0]


@functools.lru_cache(maxsize=64)
def _size_constants(low: float, high: float) -> tuple[float, float, float, float]:
    """``(w_hi, w_lo, f32(lo), f32(hi))`` of a size range, as Python floats."""
    w_high, w_low = split_width(low, high)
    return float(w_high), float(w_low), float(np.float32(low)), float(np.float32(high))


def host_side(word: int, length: int, low: float, high: float) -> int:
    """``spec_module.side_from_levels`` of one word with Python floats, each float32
    operation computed in float64 and rounded to float32: the same bits, because the
    float32 operands' products are exact in float64 and a sum rounded first to 53 and
    then to 24 bits is the correctly rounded sum (double rounding is innocuous for
    ``+`` and ``*`` when 53 >= 2 * 24 + 2: Figueroa, "When is double rounding
    innocuous?", SIGNUM 1995); about a microsecond (``tests/test_coarse.py`` compares
    the two on random words, sides and ranges)."""
    w_high, w_low, low32, high32 = _size_constants(low, high)
    level = word >> 8
    u_high = ((level >> 12) << 12) * 2.0**-24
    u_low = (level & 0xFFF) * 2.0**-24
    product = _f32(w_high * u_high + w_high * u_low)
    product = _f32(product + w_low * u_high)
    product = _f32(product + w_low * u_low)
    u = min(_f32(low32 + product), high32)
    return max(1, math.floor(_f32(_f32(u * length) + 0.5)))


def host_index(word: int, count: int) -> int:
    """``stream.index_from_bits`` of one word: ``floor((word >> 8) * count / 2**24)``."""
    return ((word >> 8) * max(count, 0)) >> 24


def host_holes(
    kernel: CoarseKernel, key: tuple[int, int], height: int, width: int
) -> list[tuple[int, int, int, int]]:
    """``[(y0, x0, h, w), ...]``: the record's ``hole_count`` holes from words computed
    with Python ints (only the holes used), by the spec's arithmetic."""
    low, high = kernel.count_range
    count = low  # a range of one count needs no word: its index is 0 for any word
    if high > low:
        (count_word,) = host_words.record_words(key, [host_stream.GEOMETRY_FIRST_SLOT])
        count += host_index(count_word, high - low + 1)
    slots = [host_stream.geometry_slot(hole, p) for hole in range(count) for p in range(4)]
    all_words = host_words.record_words(key, slots)
    holes = []
    for hole in range(count):
        words = all_words[4 * hole : 4 * hole + 4]
        h = host_side(words[spec_module.SIZE_Y], height, *kernel.hole_size_range)
        w = host_side(words[spec_module.SIZE_X], width, *kernel.hole_size_range)
        y0 = host_index(words[spec_module.CORNER_Y], height - h + 1)
        x0 = host_index(words[spec_module.CORNER_X], width - w + 1)
        holes.append((y0, x0, h, w))
    return holes


@functools.lru_cache(maxsize=64)
def host_fill(fill_value: float, dtype: np.dtype) -> np.ndarray:
    """``spec_module.fill_of``, cached per dtype (a record needs it once)."""
    return spec_module.fill_of(fill_value, dtype)


def host_applied(apply_prob: float, key: tuple[int, int]) -> bool:
    """The record's apply decision (``strengths.apply_decision``) with Python ints."""
    if apply_prob >= 1:
        return True
    (word,) = host_words.record_words(key, [host_stream.APPLY_SLOT])
    level = np.float32((word >> 8) * 2.0**-24)
    return bool(level < np.float32(apply_prob))


@dataclass(frozen=True)
class CoarseKernel(Kernel):
    """Rectangular holes per record, filled on every channel, then the clip."""

    hole_count_range: tuple[float, float]
    hole_size_range: tuple[float, float]
    fill_value: float
    clip_range: tuple[float, float] | None

    spec: ClassVar[ModeSpec] = spec_module.MODE

    @property
    def count_range(self) -> tuple[int, int]:
        """``hole_count_range`` as ints (the kernel holds its fields as floats)."""
        low, high = self.hole_count_range
        return int(low), int(high)

    def draw_mode(self, key: Array, element_shape: tuple[int, ...]) -> Params:
        return draw(self, key, element_shape)

    def apply_mode(self, image: Array, params: Params) -> Array:
        return apply(self, image, params)

    def param_shapes(self, element_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """The count, sizes and corners: ``()``, ``(hi, 2)``, ``(hi, 2)``."""
        spec_module.plane(element_shape)  # an element without H and W is an error here
        return spec_module.params_shapes(self.count_range[1])

    def has_host_path(self, image: Any) -> bool:
        """A record of two or more axes, for a kernel without a clip (the rest compile)."""
        return self.clip_range is None and np.ndim(image) >= 2

    def host_apply(self, key: tuple[int, int], image: np.ndarray) -> np.ndarray:
        """A copy of the record with its holes filled by slicing, bit for bit
        ``draw_and_apply`` (``has_host_path`` said there is no clip)."""
        output = np.array(image, copy=True)
        if not host_applied(self.apply_prob, key):
            return output
        height, width = spec_module.plane(output.shape)
        fill = host_fill(self.fill_value, output.dtype)
        for y0, x0, h, w in host_holes(self, key, height, width):
            if output.ndim >= 3:
                output[..., y0 : y0 + h, x0 : x0 + w, :] = fill
            else:
                output[y0 : y0 + h, x0 : x0 + w] = fill
        return output


KERNEL = CoarseKernel
