"""Helpers both reference operators use: value ranges, dtypes, clipping, shapes.

Conventions of the spec (the compiled operators follow them exactly):

* Arithmetic is defined in float64 here; the compiled operators use float32
  (float64 for float64 inputs with x64 enabled) and agree to float32 rounding.
* The output has the input's dtype.  Floating outputs are a plain cast;
  integer outputs are rounded half-to-even and saturated to the dtype's range.
* Random params are float32 (uniform levels, gaussian noise) or bool (masks),
  the dtypes the compiled operators draw, so one params dict serves both.
"""

from __future__ import annotations

import math

import numpy as np

from . import stream

# An image whose largest (non-NaN) value exceeds this is read as 0..255 data.
RANGE_255_THRESHOLD = 1.5
# Poisson levels are raised to at least this (the smallest positive float32
# uniform step): a level of exactly 0 would give the count 0 whatever lambda is.
SMALLEST_LEVEL = 2.0**-24
PARAM_FLOAT = np.float32


def uses_255_range(image: np.ndarray) -> bool:
    """True when ``image`` (any shape) follows the 0..255 convention.

    The rule: its largest value, NaNs ignored, exceeds 1.5.  An empty or
    all-NaN image follows the 0..1 convention.
    """
    values = np.asarray(image, dtype=np.float64)
    finite_or_inf = values[~np.isnan(values)]
    return bool(finite_or_inf.size) and bool(finite_or_inf.max() > RANGE_255_THRESHOLD)


def value_scale(image: np.ndarray) -> float:
    """``s``, the image's value scale: 255.0 for 0..255 data (``uses_255_range``), else 1.0.

    Salt & pepper's automatic salt value is ``s``; poisson counts photons of ``x / s``.
    """
    return 255.0 if uses_255_range(image) else 1.0


def salt_pepper_values(
    salt_value: float | None, pepper_value: float | None, image: np.ndarray
) -> tuple[float, float]:
    """The (salt, pepper) values for ``image``: a ``None`` salt is ``value_scale(image)``
    (255 for 0..255 data, else 1), a ``None`` pepper is 0."""
    salt = value_scale(image) if salt_value is None else salt_value
    pepper = 0.0 if pepper_value is None else pepper_value
    return float(salt), float(pepper)


def to_working(image: np.ndarray) -> np.ndarray:
    """The image as float64, the spec's working precision.  Shape unchanged."""
    return np.asarray(image).astype(np.float64)


def from_working(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Casts working values back to ``dtype``: round and saturate for integers."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    if dtype == np.bool_:
        return values != 0
    return values.astype(dtype)


def clip(values: np.ndarray, clip_range: tuple[float, float] | None) -> np.ndarray:
    """Clips to ``clip_range`` (inclusive); ``None`` leaves values as they are.

    NaN stays NaN; +-inf go to the bounds.
    """
    if clip_range is None:
        return values
    low, high = clip_range
    return np.clip(values, low, high)


def params_shape(element_shape: tuple[int, ...], batch_size: int | None) -> tuple[int, ...]:
    """``element_shape`` with a leading batch axis when ``batch_size`` is given."""
    element_shape = tuple(int(d) for d in element_shape)
    return element_shape if batch_size is None else (int(batch_size), *element_shape)


class GeneratorSource:
    """Randomness from a ``numpy.random.Generator`` (for statistics: any seed, any size)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def uniforms(self, shape: tuple[int, ...]) -> np.ndarray:
        """Float32 uniforms in [0, 1) on the 2^-24 grid (NumPy's float32 draw)."""
        return self.rng.random(shape, dtype=PARAM_FLOAT)

    def normals(self, shape: tuple[int, ...]) -> np.ndarray:
        """Float64 standard normals."""
        return self.rng.standard_normal(shape)

    def record_uniforms(self, batch_size: int | None, slot: int) -> np.ndarray:
        """Float32 uniforms, one per record (``(batch_size,)``, or ``()``); ``slot`` is
        the stream's record slot, which a generator does not need (its draws are
        independent anyway)."""
        del slot
        return np.asarray(self.rng.random(params_shape((), batch_size), dtype=PARAM_FLOAT))


class StreamSource:
    """Randomness from the counter-based stream (``reference.stream``) given record keys:
    exactly what the compiled operator draws for those records.

    ``keys`` is ``uint32 (2,)`` for one element or ``(batch, 2)`` for a batch (each
    record's values come from its own key).
    """

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = np.asarray(keys, np.uint32)

    def uniforms(self, shape: tuple[int, ...]) -> np.ndarray:
        """Float32 uniforms in [0, 1): ``(bits >> 8) * 2**-24``."""
        return stream.uniforms(self.keys, shape)

    def normals(self, shape: tuple[int, ...]) -> np.ndarray:
        """Float64 normals ``Phi^-1((m + 1/2) / 2**24)``."""
        return stream.normals(self.keys, shape)

    def record_uniforms(self, batch_size: int | None, slot: int) -> np.ndarray:
        """Float32 uniforms, one per record: word ``slot`` of the record words
        (``stream.record_uniforms``), ``(batch_size,)`` or ``()`` as the keys are."""
        uniforms = stream.record_uniforms(self.keys, slot)
        if uniforms.shape != params_shape((), batch_size):
            raise ValueError(
                f"{self.keys.shape} keys cannot give {params_shape((), batch_size)} records"
            )
        return uniforms


RandomSource = GeneratorSource | StreamSource


def as_source(rng: np.random.Generator | RandomSource) -> RandomSource:
    """A ``Generator`` wrapped as a source; a source as it is."""
    if isinstance(rng, np.random.Generator):
        return GeneratorSource(rng)
    if isinstance(rng, GeneratorSource | StreamSource):
        return rng
    raise TypeError(
        f"randomness must be a numpy Generator or a StreamSource, got {type(rng).__name__}"
    )


def uniform_levels(rng: np.random.Generator | RandomSource, shape: tuple[int, ...]) -> np.ndarray:
    """Float32 uniforms in [0, 1): the levels salt & pepper and poisson use."""
    return as_source(rng).uniforms(shape)


def poisson_quantile(levels: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Smallest ``k >= 0`` with ``P(Poisson(lam) <= k) >= level``, element-wise.

    Args:
      levels: uniform levels in [0, 1), any shape.
      lam: Poisson means >= 0 (NaN and +inf allowed), same shape as ``levels``.

    Returns:
      float64 counts, same shape; NaN where ``lam`` is NaN, +inf where it is +inf.

    Levels below ``SMALLEST_LEVEL`` (2^-24) are raised to it: float32
    uniforms hit exactly 0 with probability 2^-24 (2^-23 for JAX's), and the
    quantile of 0 is the count 0 for every ``lam``, an impossible value at
    large ``lam`` (e^-1000 at ``lam = 1000``) that a goodness-of-fit test
    would see.  Raising it moves no count's probability by more than 2^-24.

    The CDF is summed in log space from ``k0 = max(0, lam - 12 sqrt(lam) - 12)``:
    the mass below ``k0`` is under 1e-30, far below the float32 resolution of
    the levels.  Written with NumPy and ``math.lgamma`` only, so that
    ``scipy.stats.poisson`` stays an independent oracle for the tests.
    """
    levels = np.maximum(np.asarray(levels, dtype=np.float64), SMALLEST_LEVEL)
    lam = np.asarray(lam, dtype=np.float64)
    counts = np.full(lam.shape, np.nan)
    counts[np.isposinf(lam)] = np.inf
    finite = np.isfinite(lam)
    lam_f, level_f = lam[finite], levels[finite]

    start = np.maximum(0.0, np.floor(lam_f - 12.0 * np.sqrt(lam_f) - 12.0))
    lgamma = np.vectorize(math.lgamma, otypes=[np.float64])
    with np.errstate(divide="ignore"):  # log(0) = -inf is right for lam == 0
        log_lam = np.log(lam_f)
    # log P(X = start); at lam == 0 only k == 0 has mass (0 * -inf is taken as 0).
    start_term = start * np.where(lam_f > 0, log_lam, 0.0)
    log_pmf = start_term - lam_f - lgamma(start + 1.0)
    log_cdf = log_pmf.copy()
    log_level = np.log(level_f)
    k = start.copy()
    active = log_cdf < log_level
    while np.any(active):
        k[active] += 1.0
        log_pmf[active] += log_lam[active] - np.log(k[active])
        log_cdf[active] = np.logaddexp(log_cdf[active], log_pmf[active])
        active = log_cdf < log_level
    counts[finite] = k
    return counts
