"""Hypothesis strategies for configurations, element shapes and images.

In the style of the array-api-tests: every strategy builds only *valid*
values (a config the validation accepts, an image of the requested range), so
a test never filters.  Edge values are drawn on purpose: probabilities of
exactly 0 and 1, ``noise_std`` of 0 and 1e-6, ``lam_scale`` at 0.1 and 1000,
1x1x1 elements, constant images.

Images are drawn as a seed, not element by element: the values come from a
``numpy.random.Generator`` seeded with a Hypothesis integer, which keeps
64x64x4 examples fast (Hypothesis still replays and shrinks them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from datarax_ops.reference import modes
from datarax_ops.reference.config import (
    DROPOUT_MODES,
    NOISE_MODES,
    PER_CHANNEL_MODES,
    RANGE_FIELDS,
    DropoutOperatorConfig,
    NoiseOperatorConfig,
)
from hypothesis import strategies as st

FIELD_KEY = "image"

# --------------------------------------------------------------------------- #
# Scalars                                                                      #
# --------------------------------------------------------------------------- #


def _finite(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)


def log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Floats in ``[lo, hi]`` spread evenly in ``log10``, both ends included exactly."""
    exponents = _finite(float(np.log10(lo)), float(np.log10(hi)))
    inner = exponents.map(lambda e: float(min(max(10.0**e, lo), hi)))
    return st.one_of(st.sampled_from([lo, hi]), inner)


def probabilities(upper: float = 1.0) -> st.SearchStrategy[float]:
    """Probabilities in ``[0, upper]``, with 0 and ``upper`` themselves drawn often."""
    upper = float(upper)
    if upper <= 0.0:
        return st.just(0.0)
    return st.one_of(
        st.sampled_from([0.0, upper]),
        _finite(0.0, upper),
        log_uniform(min(1e-4, upper), upper),
    )


def noise_stds() -> st.SearchStrategy[float]:
    """0, 1e-6, ... up to 100 (log-uniform in between)."""
    return st.one_of(st.just(0.0), log_uniform(1e-6, 100.0))


def noise_means() -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), _finite(-1.0, 1.0))


def lam_scales() -> st.SearchStrategy[float]:
    """``lam_scale`` in ``[0.1, 1000]``, log-uniform, 1.0 included."""
    return st.one_of(st.just(1.0), log_uniform(0.1, 1000.0))


def fill_values() -> st.SearchStrategy[float | None]:
    """``salt_value`` / ``pepper_value``: None (automatic) or a float."""
    return st.one_of(
        st.none(),
        st.sampled_from([0.0, 1.0, 0.5, 255.0]),
        _finite(-10.0, 300.0),
    )


@st.composite
def clip_ranges(draw: st.DrawFn) -> tuple[float, float] | None:
    """None, a usual range, or any ``(lo, hi)`` with ``lo < hi``."""
    kind = draw(st.sampled_from(["none", "usual", "any"]))
    if kind == "none":
        return None
    if kind == "usual":
        return draw(st.sampled_from([(0.0, 1.0), (0.0, 255.0), (-1.0, 1.0), (0.25, 0.75)]))
    lo = draw(_finite(-300.0, 300.0))
    width = draw(log_uniform(1e-3, 600.0))
    hi = lo + width
    if not lo < hi:  # cannot happen for these magnitudes; keep the strategy valid anyway
        hi = np.nextafter(lo, np.inf)
    return (float(lo), float(hi))


@st.composite
def count_ranges(draw: st.DrawFn, most: int = 6) -> tuple[int, int]:
    """``(lo, hi)`` ints with ``0 <= lo <= hi <= most`` (``(0, 0)`` included)."""
    low = draw(st.integers(0, most))
    return (low, draw(st.integers(low, most)))


@st.composite
def fraction_ranges(draw: st.DrawFn) -> tuple[float, float]:
    """``(lo, hi)`` fractions with ``0 < lo <= hi <= 1`` (1 itself drawn often)."""
    low = draw(st.one_of(st.just(1.0), _finite(1e-3, 1.0)))
    return (low, draw(st.one_of(st.just(low), st.just(1.0), _finite(low, 1.0))))


# Strategies of the fields only one mode reads (``ModeSpec.exclusive_fields``), by name:
# a config of that mode draws them.
EXCLUSIVE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "hole_count_range": count_ranges(),
    "hole_size_range": fraction_ranges(),
    "fill_value": st.one_of(st.sampled_from([0.0, 0.5, 1.0, 255.0]), _finite(-10.0, 300.0)),
}


def _exclusive_fields(draw: st.DrawFn, mode: str, fixed: dict[str, Any]) -> dict[str, Any]:
    """The mode's own exclusive fields, drawn (or ``fixed``)."""
    spec = modes.by_name(mode)
    return {
        name: fixed[name] if name in fixed else draw(EXCLUSIVE_FIELDS[name])
        for name in spec.exclusive_fields
    }


# --------------------------------------------------------------------------- #
# Configurations                                                               #
# --------------------------------------------------------------------------- #
@st.composite
def _noise_configs(draw: st.DrawFn, mode: str | None, fixed: dict[str, Any]) -> NoiseOperatorConfig:
    kwargs: dict[str, Any] = {"field_key": FIELD_KEY, "stochastic": False}

    def pick(name: str, strategy: st.SearchStrategy[Any]) -> Any:
        return fixed[name] if name in fixed else draw(strategy)

    kwargs["mode"] = mode if mode is not None else pick("mode", st.sampled_from(NOISE_MODES))
    kwargs["noise_std"] = pick("noise_std", noise_stds())
    kwargs["noise_mean"] = pick("noise_mean", noise_means())
    salt = pick("salt_prob", probabilities())
    pepper = pick("pepper_prob", probabilities(1.0 - salt))
    if "pepper_prob" not in fixed and salt + pepper > 1.0:  # float rounding guard
        pepper = max(0.0, 1.0 - salt)
    kwargs["salt_prob"], kwargs["pepper_prob"] = salt, pepper
    kwargs["salt_value"] = pick("salt_value", fill_values())
    kwargs["pepper_value"] = pick("pepper_value", fill_values())
    kwargs["lam_scale"] = pick("lam_scale", lam_scales())
    kwargs["clip_range"] = pick("clip_range", clip_ranges())
    kwargs.update(_exclusive_fields(draw, kwargs["mode"], fixed))
    kwargs.update(fixed)  # fixed fields always win
    return NoiseOperatorConfig(**kwargs)


def noise_configs(mode: str | None = None, **fixed: Any) -> st.SearchStrategy[NoiseOperatorConfig]:
    """Valid ``NoiseOperatorConfig`` values; ``mode`` and any field in ``fixed`` are held fixed."""
    if mode is not None and mode not in NOISE_MODES:
        raise ValueError(f"mode must be one of {NOISE_MODES}, got {mode!r}")
    return _noise_configs(mode, dict(fixed))


@st.composite
def _dropout_configs(
    draw: st.DrawFn, mode: str | None, fixed: dict[str, Any]
) -> DropoutOperatorConfig:
    kwargs: dict[str, Any] = {"field_key": FIELD_KEY, "stochastic": False}

    def pick(name: str, strategy: st.SearchStrategy[Any]) -> Any:
        return fixed[name] if name in fixed else draw(strategy)

    kwargs["mode"] = mode if mode is not None else pick("mode", st.sampled_from(DROPOUT_MODES))
    kwargs["dropout_rate"] = pick("dropout_rate", probabilities())
    kwargs["clip_range"] = pick("clip_range", clip_ranges())
    kwargs.update(_exclusive_fields(draw, kwargs["mode"], fixed))
    kwargs.update(fixed)  # fixed fields always win
    return DropoutOperatorConfig(**kwargs)


def dropout_configs(
    mode: str | None = None, **fixed: Any
) -> st.SearchStrategy[DropoutOperatorConfig]:
    """Valid ``DropoutOperatorConfig`` values (``dropout_rate`` includes exactly 0 and 1)."""
    if mode is not None and mode not in DROPOUT_MODES:
        raise ValueError(f"mode must be one of {DROPOUT_MODES}, got {mode!r}")
    return _dropout_configs(mode, dict(fixed))


# --------------------------------------------------------------------------- #
# Training fields beyond the seed pages (issue 17): ranges, per_channel, apply  #
# --------------------------------------------------------------------------- #
# Smallest width of a non-degenerate range, relative to its top (log ratio for
# lam_scale): the drawn strengths are float32, so a narrower range would be a
# handful of float32 values, not a continuous law (width >= 1e-3 * hi keeps the
# float32 spacing below 1.2e-4 of the width).
MIN_RELATIVE_WIDTH = 1e-3
# Top of the lam_scale ranges drawn (lambda up to 1500 on 0..1.5 data, as lam_scales()).
LAM_SCALE_MAX = 1000.0


@st.composite
def _strength_range(draw: st.DrawFn, scalar: str, upper: float) -> tuple[float, float]:
    point = draw(st.integers(0, 9)) == 9  # lo == hi one time in ten: a constant strength
    if scalar == "lam_scale":
        low = draw(log_uniform(0.1, LAM_SCALE_MAX))
        if point:
            return (low, low)
        ratio = draw(log_uniform(1.0 + MIN_RELATIVE_WIDTH, 1e4))
        high = min(low * ratio, LAM_SCALE_MAX)
        low = min(low, high / ratio)  # the range keeps its drawn log-width
        return (float(low), float(high))
    if scalar == "noise_std":
        low = draw(noise_stds())
        if point:
            return (low, low)
        width = draw(log_uniform(max(MIN_RELATIVE_WIDTH * low, 1e-6), 100.0))
        return (low, low + width)
    # a probability or a rate, within [0, upper]
    if upper <= 0.0:
        return (0.0, 0.0)
    low = draw(probabilities(upper))
    if point:
        return (low, low)
    width = draw(log_uniform(min(MIN_RELATIVE_WIDTH, upper), upper))
    high = min(low + width, upper)
    return (max(0.0, high - width), high)


def strength_range(scalar: str, upper: float = 1.0) -> st.SearchStrategy[tuple[float, float]]:
    """Valid ``(lo, hi)`` for the range that replaces ``scalar`` (``"noise_std"``,
    ``"salt_prob"``, ``"pepper_prob"``, ``"lam_scale"``, ``"dropout_rate"``).

    One time in ten ``lo == hi``; otherwise ``hi - lo >= 1e-3 * hi`` (``hi / lo >= 1.001``
    for ``lam_scale``), so the float32 strengths resolve the law.  Probabilities and
    rates stay within ``[0, upper]``; ``noise_std`` from 0 to about 200, ``lam_scale``
    within ``[0.1, 1000]``.
    """
    scalars = {scalar for pairs in RANGE_FIELDS.values() for _, scalar in pairs}
    if scalar not in scalars:
        raise ValueError(f"scalar must be one of {sorted(scalars)}, got {scalar!r}")
    return _strength_range(scalar, float(upper))


@st.composite
def _ranged_configs(
    draw: st.DrawFn, mode: str, fixed: dict[str, Any]
) -> NoiseOperatorConfig | DropoutOperatorConfig:
    kwargs: dict[str, Any] = {"field_key": FIELD_KEY, "mode": mode, "clip_range": None}
    fields = RANGE_FIELDS[mode]
    # The range fields set: those fixed to a value, plus drawn ones (at least one in all).
    already = [name for name, _ in fields if fixed.get(name) is not None]
    free_names = [name for name, _ in fields if name not in fixed]
    chosen = list(already)
    if free_names:
        chosen += draw(
            st.lists(st.sampled_from(free_names), min_size=0 if already else 1, unique=True)
        )
    # salt & pepper: the probability left by the fixed fields and those drawn so far
    left = 1.0 - sum(float(fixed[name][1]) for name in already)
    for name, scalar in fields:
        if name in fixed:
            kwargs[name] = fixed[name]
        elif name in chosen:
            upper = 1.0
            if mode == "salt_pepper":  # half the time, leave the other half to the other field
                upper = left if len(chosen) == 1 else draw(st.sampled_from([left, left / 2]))
            kwargs[name] = draw(strength_range(scalar, upper))
        else:
            kwargs[name] = None
        if mode == "salt_pepper":
            if kwargs[name] is None and scalar not in fixed:  # the scalar is used
                kwargs[scalar] = draw(probabilities(min(left, 0.5)))
            scalar_value = fixed.get(scalar, kwargs.get(scalar, 0.01))  # 0.01: the default
            if name not in already:
                used = scalar_value if kwargs[name] is None else kwargs[name][1]
                left = max(0.0, left - used)
    if mode == "salt_pepper":  # float rounding guard: the two tops sum to <= 1
        tops = {
            scalar: fixed.get(scalar, kwargs.get(scalar, 0.01))
            if kwargs[name] is None
            else kwargs[name][1]
            for name, scalar in fields
        }
        for name, scalar in reversed(fields):  # shrink a drawn range, pepper's first
            if name in fixed or kwargs[name] is None:
                continue
            low, high = kwargs[name]
            while high + sum(t for s, t in tops.items() if s != scalar) > 1.0:
                high = float(np.nextafter(high, 0.0))
            kwargs[name] = (min(low, high), high)
            break
    if "noise_mean" in modes.by_name(mode).fields:
        kwargs["noise_mean"] = draw(noise_means())
    kwargs["per_channel"] = draw(st.booleans()) if mode in PER_CHANNEL_MODES else True
    kwargs["apply_prob"] = draw(st.one_of(st.just(1.0), probabilities()))
    kwargs.update(fixed)  # fixed fields always win
    config_class = NoiseOperatorConfig if mode in NOISE_MODES else DropoutOperatorConfig
    return config_class(**kwargs)


def ranged_configs(
    mode: str, **fixed: Any
) -> st.SearchStrategy[NoiseOperatorConfig | DropoutOperatorConfig]:
    """Valid configs of ``mode`` with at least one of its strength ranges set.

    ``per_channel`` is drawn where the mode has it, ``apply_prob`` is 1.0 or any
    probability, ``clip_range`` None, ``noise_mean`` drawn where the mode reads it; salt & pepper
    keeps the largest salt and pepper probabilities summing to at most 1.  Any field
    in ``fixed`` is held fixed (a range field set to None there is left unset).
    """
    if mode not in RANGE_FIELDS:
        raise ValueError(f"mode must be one of {tuple(RANGE_FIELDS)}, got {mode!r}")
    return _ranged_configs(mode, dict(fixed))


# --------------------------------------------------------------------------- #
# Shapes and images                                                            #
# --------------------------------------------------------------------------- #
def element_shapes(
    min_side: int = 1, max_side: int = 64, max_channels: int = 4
) -> st.SearchStrategy[tuple[int, int, int]]:
    """``(H, W, C)`` element shapes, from ``1x1x1`` to ``max_side x max_side x max_channels``."""
    side = st.integers(min_value=min_side, max_value=max_side)
    return st.tuples(side, side, st.integers(min_value=1, max_value=max_channels))


VALUE_RANGES = ("unit", "byte")


def range_high(value_range: str) -> float:
    """The top of a value range: 1.0 for ``"unit"``, 255.0 for ``"byte"``."""
    return {"unit": 1.0, "byte": 255.0}[value_range]


@st.composite
def _images(
    draw: st.DrawFn,
    shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None,
    dtype: np.dtype,
    value_range: str | None,
) -> np.ndarray:
    if shape is None:
        shape = draw(element_shapes())
    elif isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    shape = tuple(int(d) for d in shape)
    is_int = np.issubdtype(dtype, np.integer)
    if value_range is None:
        value_range = "byte" if is_int else draw(st.sampled_from(VALUE_RANGES))
    high = range_high(value_range)

    kind = draw(st.sampled_from(["constant", "random", "random_with_extremes", "random_levels"]))
    if kind == "constant":
        if is_int:
            value = float(draw(st.integers(0, 255)))
        else:
            value = draw(st.one_of(st.sampled_from([0.0, high, high / 2]), _finite(0.0, high)))
        return np.full(shape, value, dtype=dtype)

    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if is_int:
        values = rng.integers(0, 256, size=shape).astype(np.float64)
    elif kind == "random_levels" and value_range == "byte":
        values = rng.integers(0, 256, size=shape).astype(np.float64)  # integer-valued byte data
    else:
        values = rng.uniform(0.0, high, size=shape)
    if kind == "random_with_extremes":
        flat = values.reshape(-1)
        flat[rng.random(flat.size) < 0.1] = 0.0
        flat[rng.random(flat.size) < 0.1] = high
    return values.astype(dtype)


def images(
    shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
    dtype: Any = np.float32,
    value_range: str | None = None,
) -> st.SearchStrategy[np.ndarray]:
    """Images of ``shape`` (default: :func:`element_shapes`) and ``dtype``.

    ``value_range``: ``"unit"`` (values in 0..1), ``"byte"`` (0..255) or None
    (either).  Constant images and random ones (uniform, with 0 and the top
    value mixed in, or integer-valued byte data).  ``uint8`` needs the byte range.
    ``dtype`` may itself be a strategy (e.g. ``st.sampled_from([np.float32, np.uint8])``).
    """
    if isinstance(dtype, st.SearchStrategy):
        return dtype.flatmap(lambda d: images(shape, d, value_range))
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.uint8)):
        raise ValueError(f"dtype must be float32, float64 or uint8, got {dtype}")
    if value_range is not None and value_range not in VALUE_RANGES:
        raise ValueError(f"value_range must be one of {VALUE_RANGES} or None, got {value_range!r}")
    if dtype == np.uint8 and value_range == "unit":
        raise ValueError("uint8 images need value_range='byte' (or None)")
    return _images(shape, dtype, value_range)


__all__ = [
    "FIELD_KEY",
    "clip_ranges",
    "count_ranges",
    "dropout_configs",
    "element_shapes",
    "fill_values",
    "fraction_ranges",
    "images",
    "lam_scales",
    "log_uniform",
    "noise_configs",
    "noise_means",
    "noise_stds",
    "probabilities",
    "range_high",
    "ranged_configs",
    "strength_range",
]
