"""Coarse dropout (Cutout, random erasing): a few rectangles of each record set to a fill.

The law, per record (``H, W`` the record's own height and width):

* the number of holes ``n`` is uniform on the integers of ``hole_count_range``
  ``[lo, hi]`` (both included);
* hole ``i`` has height ``h = max(1, floor(u * H + 0.5))`` and width
  ``w = max(1, floor(v * W + 0.5))``, ``u`` and ``v`` independent, each uniform on
  ``hole_size_range``;
* its top-left corner ``(y0, x0)`` is uniform over the positions where the whole hole
  fits: ``y0`` on ``0 .. H - h``, ``x0`` on ``0 .. W - w``;
* holes may overlap; every channel of a covered pixel becomes ``fill_value`` cast to
  the dtype (``common.from_working``: rounded and saturated for integers); every
  other value is the input, bit for bit; then ``clip_range``, if set, clips the whole
  output, as pixel dropout does; ``apply_prob`` as for every mode.

``H, W`` are axes -3 and -2 of an ``(H, W, C)`` element (of ``(..., H, W, C)``: the
leading axes share the holes) and the two axes of an ``(H, W)`` element; an element
of fewer than two axes is an error naming the shape.  Not a value-by-value mode
(``value_by_value=False``): a record padded to a size bucket would draw its holes from
the bucket's shape, so the buckets run its exact shape.

Where the randomness comes from (``stream.py``'s record words, one word per draw and
record, never per value): the count from slot ``GEOMETRY_FIRST_SLOT``, then hole ``i``'s
``u``, ``v``, ``y0``, ``x0`` from ``geometry_slot(i, 0..3)``.  All ``hi`` holes are drawn
(holes ``i >= n`` are unused), so the params have a fixed shape.  Arithmetic, exactly
as the compiled operator does it:

* an integer uniform on ``k`` values is ``floor(m * k / 2**24)`` of the word's 24-bit
  level ``m`` (``stream.index_from_bits``, exact in 32 bits);
* ``u`` is ``record.uniform_strength`` of the level (float32, exact partial products),
  ``u * H`` and ``+ 0.5`` are each rounded to float32 (the compiled program keeps
  them apart, so no fused multiply-add changes a bit), then floored.

Params of one element (a batch adds a leading axis): ``hole_count`` int32 ``()``,
``hole_sizes`` int32 ``(hi, 2)`` (``[h, w]``), ``hole_corners`` int32 ``(hi, 2)``
(``[y0, x0]``).  ``hi`` is at most ``MAX_HOLES``, since it is the compiled program's
static loop bound.

The exact expectations (``size_pmf``, ``corner_pmf``, ``coverage_probability``) are
the law of these draws on the ``2**-24`` grid, which the tests and ``verify`` compare
the samples with.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..common import RandomSource, as_source, clip, from_working, to_working
from ..record import uniform_strength
from ..spec import ModeSpec
from ..stream import GEOMETRY_FIRST_SLOT, INDEX_LIMIT, LEVEL_BITS, geometry_slot, index_from_bits
from ..validate import is_real, require_finite

if TYPE_CHECKING:
    from ..config import DropoutOperatorConfig

Params = dict[str, np.ndarray]

# The most holes a record may have (the compiled program's static loop bound).
MAX_HOLES = 1024
# Record parts of a hole, in their slot order.
SIZE_Y, SIZE_X, CORNER_Y, CORNER_X = range(4)
INDEX = np.int32


# --------------------------------------------------------------------------- #
# Fields                                                                       #
# --------------------------------------------------------------------------- #
def _pair(name: str, value: Any) -> tuple[Any, Any]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a (lo, hi) pair, got {value!r}")
    return value[0], value[1]


def check_count_range(value: Any) -> tuple[int, int]:
    """``hole_count_range``: two ints ``0 <= lo <= hi <= MAX_HOLES``."""
    low, high = _pair("hole_count_range", value)
    for end, number in (("lo", low), ("hi", high)):
        if isinstance(number, bool) or not isinstance(number, (int, np.integer)):
            raise TypeError(f"hole_count_range {end} must be an int, got {number!r}")
    if not 0 <= low <= high <= MAX_HOLES:
        raise ValueError(
            f"hole_count_range must be ints with 0 <= lo <= hi <= {MAX_HOLES}, got {value!r}"
        )
    return int(low), int(high)


def check_size_range(value: Any) -> tuple[float, float]:
    """``hole_size_range``: fractions of the side, ``0 < lo <= hi <= 1``."""
    low, high = _pair("hole_size_range", value)
    low = require_finite("hole_size_range lo", low)
    high = require_finite("hole_size_range hi", high)
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"hole_size_range must be fractions with 0 < lo <= hi <= 1, got {value!r}")
    return low, high


def check_fields(config: DropoutOperatorConfig) -> None:
    """The hole count and size ranges and a finite ``fill_value``; stored as tuples."""
    object.__setattr__(config, "hole_count_range", check_count_range(config.hole_count_range))
    object.__setattr__(config, "hole_size_range", check_size_range(config.hole_size_range))
    if not is_real(config.fill_value):
        raise TypeError(f"fill_value must be a real number, got {config.fill_value!r}")
    require_finite("fill_value", config.fill_value)


def plane(element_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(H, W)``: axes -3, -2 of ``(..., H, W, C)``, the axes of ``(H, W)``."""
    shape = tuple(int(d) for d in element_shape)
    if len(shape) < 2:
        raise ValueError(f"coarse dropout needs (H, W) or (H, W, C) elements, got shape {shape}")
    height, width = shape[-3:-1] if len(shape) >= 3 else shape
    if max(height, width) >= INDEX_LIMIT:
        raise ValueError(f"coarse dropout needs H, W < {INDEX_LIMIT}, got shape {shape}")
    return height, width


# --------------------------------------------------------------------------- #
# Draw                                                                         #
# --------------------------------------------------------------------------- #
def index_from_levels(levels: np.ndarray, count: np.ndarray | int) -> np.ndarray:
    """int32 uniform on ``0 .. count - 1`` from float32 uniforms on the ``2**-24`` grid
    (the level ``m = u * 2**24`` is exact): ``stream.index_from_bits`` of ``m << 8``."""
    steps = (np.asarray(levels, np.float32) * np.float32(2**LEVEL_BITS)).astype(np.uint32)
    return index_from_bits(steps << np.uint32(32 - LEVEL_BITS), count).astype(INDEX)


def side_from_levels(levels: np.ndarray, side: int, low: float, high: float) -> np.ndarray:
    """int32 ``max(1, floor(f32(f32(u * side) + 0.5)))``, ``u = uniform_strength(levels)``."""
    scaled = uniform_strength(levels, low, high) * np.float32(side)
    return np.maximum(1, np.floor(scaled + np.float32(0.5))).astype(INDEX)


def draw(
    config: DropoutOperatorConfig,
    rng: np.random.Generator | RandomSource,
    element_shape: tuple[int, ...],
    batch_size: int | None = None,
) -> Params:
    """``{"hole_count": (B,), "hole_sizes": (B, hi, 2), "hole_corners": (B, hi, 2)}``,
    int32 (without the ``B`` axis for one element); see the module's law."""
    source = as_source(rng)
    height, width = plane(element_shape)
    low, high = config.hole_count_range
    count = low + index_from_levels(
        source.record_uniforms(batch_size, GEOMETRY_FIRST_SLOT), high - low + 1
    )
    sizes, corners = [], []
    for hole in range(high):
        levels = [source.record_uniforms(batch_size, geometry_slot(hole, p)) for p in range(4)]
        h = side_from_levels(levels[SIZE_Y], height, *config.hole_size_range)
        w = side_from_levels(levels[SIZE_X], width, *config.hole_size_range)
        y0 = index_from_levels(levels[CORNER_Y], np.maximum(height - h + 1, 0))
        x0 = index_from_levels(levels[CORNER_X], np.maximum(width - w + 1, 0))
        sizes.append(np.stack([h, w], axis=-1))
        corners.append(np.stack([y0, x0], axis=-1))
    records = () if batch_size is None else (int(batch_size),)
    return {  # in key order, as the compiled draw's pytree
        "hole_corners": _holes(corners, records),
        "hole_count": np.asarray(count, INDEX).reshape(records),
        "hole_sizes": _holes(sizes, records),
    }


def _holes(per_hole: list[np.ndarray], records: tuple[int, ...]) -> np.ndarray:
    """int32 ``records + (holes, 2)`` from one ``records + (2,)`` array per hole."""
    if not per_hole:
        return np.zeros((*records, 0, 2), INDEX)
    return np.stack(per_hole, axis=-2).astype(INDEX)


def params_shapes(hole_limit: int) -> dict[str, tuple[int, ...]]:
    """One element's params shapes for at most ``hole_limit`` holes."""
    return {"hole_count": (), "hole_sizes": (hole_limit, 2), "hole_corners": (hole_limit, 2)}


# --------------------------------------------------------------------------- #
# Apply                                                                        #
# --------------------------------------------------------------------------- #
def covered_pixels(params: Params, height: int, width: int) -> np.ndarray:
    """bool ``(H, W)``: the pixels inside one of the record's first ``hole_count`` holes."""
    count = int(np.asarray(params["hole_count"]))
    sizes = np.asarray(params["hole_sizes"]).reshape(-1, 2)
    corners = np.asarray(params["hole_corners"]).reshape(-1, 2)
    covered = np.zeros((height, width), bool)
    for (h, w), (y0, x0) in zip(sizes[:count], corners[:count], strict=True):
        covered[y0 : y0 + h, x0 : x0 + w] = True
    return covered


def fill_of(fill_value: float, dtype: np.dtype) -> np.ndarray:
    """The fill in ``dtype``: ``from_working`` of the float64 fill (0-d)."""
    return from_working(np.asarray(float(fill_value), np.float64), np.dtype(dtype))


def apply(config: DropoutOperatorConfig, image: np.ndarray, params: Params) -> np.ndarray:
    """Covered pixels (every channel) set to the fill, others kept; then the clip."""
    image = np.asarray(image)
    covered = covered_pixels(params, *plane(image.shape))
    if image.ndim >= 3:
        covered = covered[:, :, None]
    filled = np.where(covered, fill_of(config.fill_value, image.dtype), image)
    if config.clip_range is None:
        return filled
    return from_working(clip(to_working(filled), config.clip_range), image.dtype)


# --------------------------------------------------------------------------- #
# The exact law of the draws (the tests' and verify's expectations)            #
# --------------------------------------------------------------------------- #
@functools.lru_cache(maxsize=64)
def size_pmf(side: int, low: float, high: float) -> np.ndarray:
    """float64 ``(side + 1,)``: ``P(h = t)`` for ``t = 0 .. side`` on the ``2**-24`` grid
    (every level counted: the exact law of ``side_from_levels``)."""
    levels = np.arange(2**LEVEL_BITS, dtype=np.float32) * np.float32(2.0**-LEVEL_BITS)
    counts = np.bincount(side_from_levels(levels, side, low, high), minlength=side + 1)
    return counts / 2.0**LEVEL_BITS


def ideal_size_pmf(side: int, low: float, high: float) -> np.ndarray:
    """float64 ``(side + 1,)``: ``P(h = t)`` for ``u`` exactly uniform on ``[lo, hi]`` (a
    point mass where ``lo == hi``): ``h = max(1, floor(u * side + 0.5))``."""
    t = np.arange(side + 1, dtype=np.float64)
    if low == high:
        return (t == max(1, math.floor(low * side + 0.5))).astype(np.float64)
    below = np.clip((t - 0.5) / side, low, high)  # h = t for u in [(t-.5)/side, (t+.5)/side)
    above = np.clip((t + 0.5) / side, low, high)
    pmf = (above - below) / (high - low)
    pmf[1] += pmf[0]
    pmf[0] = 0.0
    return pmf


def corner_pmf(positions: int) -> np.ndarray:
    """float64 ``(positions,)``: ``P(index_from_bits = j)``, exactly
    ``(ceil((j+1) 2**24 / k) - ceil(j 2**24 / k)) / 2**24``."""
    if positions <= 0:
        return np.zeros(0)
    edges = [-(-j * 2**LEVEL_BITS // positions) for j in range(positions + 1)]
    return np.diff(np.asarray(edges, np.float64)) / 2.0**LEVEL_BITS


def axis_coverage(side: int, low: float, high: float) -> np.ndarray:
    """float64 ``(side,)``: the probability one hole covers row (or column) ``y``: over the
    size ``h`` and the corner ``y0``, ``P(y0 <= y < y0 + h)``."""
    covered = np.zeros(side)
    for h, p_h in enumerate(size_pmf(side, low, high)):
        if p_h == 0.0:
            continue
        starts = corner_pmf(side - h + 1)
        window = np.convolve(starts, np.ones(h))[:side]  # P(y0 in (y - h, y])
        covered += p_h * window
    return covered


def coverage_probability(config: DropoutOperatorConfig, height: int, width: int) -> np.ndarray:
    """float64 ``(H, W)``: the probability pixel ``(y, x)`` is covered (before the apply
    decision): with ``q`` one hole's (rows and columns independent),
    ``1 - mean over n of (1 - q)**n``, ``n`` uniform on ``hole_count_range``."""
    one = np.outer(
        axis_coverage(height, *config.hole_size_range),
        axis_coverage(width, *config.hole_size_range),
    )
    low, high = config.hole_count_range
    free = np.mean([(1.0 - one) ** n for n in range(low, high + 1)], axis=0)
    return 1.0 - free


MODE = ModeSpec(
    name="coarse",
    family="dropout",
    fields=("hole_count_range", "hole_size_range", "fill_value", "clip_range"),
    params_key="hole_count",
    draw=draw,
    apply=apply,
    check_fields=check_fields,
    params_shape=lambda element_shape: (),
    per_value_draws=False,
    value_by_value=False,
    examples=(("", {"hole_count_range": (1, 1), "hole_size_range": (0.1, 0.3)}),),
    exclusive_fields=("hole_count_range", "hole_size_range", "fill_value"),
    in_datarax=False,
    # datarax has no coarse dropout: its dropout modes' wording, for this mode's key
    datarax_missing_params=(
        "Stochastic mode requires 'hole_count' in random_params. "
        "This should be generated by generate_random_params()."
    ),
)
