"""Quality of the random stream an operator consumes (``datarax_ops.stream``, the JAX code).

Threefry-2x32-20 is a well-studied generator (it passes TestU01's BigCrush;
Salmon et al., SC'11), so these checks are about *how the package uses it*:
the record-key derivation, the element layout and the conversions.  A mistake
there (a counter reused between records, the two output words combined badly,
a shift that drops a bit, the same base key for successive operators) would
show up as stuck bits, correlated neighbours or repeated records.

Every sample is produced as an operator produces it: a base key (from
``rng_for(<test>)``, or successive draws of one ``nnx.Rngs`` stream), record
keys ``record_key(base, i)`` for consecutive ``i``, and each record's
64x64x3 element of words.  Sizes are ``scaled(128)`` records, i.e.
``N = 1572864`` words (or word pairs) per check at scale 1, 8x that in
``nox -s stats``; the detectable deviations below shrink by ``sqrt(scale)``.

False alarms: every check runs at ``ALPHA = 1e-5``; the file makes 49 checks,
so a fresh-seeded run fails by chance with probability below ``49e-5``
(a fixed-seed run is deterministic).  Each docstring gives its checks and the
deviation they detect with power >= 0.99 at scale 1 (sizing rules in
``datarax_ops.conformance.stats``: ``6.74`` standard errors for z-type checks, a
non-centrality of 187 for a 256-cell chi-square test, ``sqrt(n) D = 3.6``
for Kolmogorov-Smirnov).

Runtime: a few seconds at scale 1.  Raw-stream batteries: ``nox -s dieharder``
(results in ``tests/stream_quality/dieharder-results.txt``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats

from datarax_ops import stream
from datarax_ops.conformance.stats import (
    assert_binomial,
    assert_chisquare_gof,
    assert_ks_1samp,
    assert_normal_mean,
    assert_normal_variance,
    assert_uncorrelated,
    rng_for,
    scaled,
    seed_for,
)

pytestmark = pytest.mark.stats

ELEMENT = (64, 64, 3)  # one image: 12288 words a record
WORDS_PER_RECORD = 64 * 64 * 3
ROW = 64 * 3  # flat distance to the pixel below
SERIAL_LAGS = (1, 2, 3, 8, ROW)  # next channel, +2, next pixel, +8, next row


def records() -> int:
    """``scaled(128)`` records: 1572864 words at scale 1."""
    return scaled(128)


def base_key_for(test: str) -> jax.Array:
    """A raw base key ``uint32 (2,)`` from the kit's seed for ``test``."""
    return jnp.asarray(rng_for(test).integers(0, 2**32, 2, dtype=np.uint32))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _record_words(base: jax.Array, first: jax.Array, count: int, convert: str) -> jax.Array:
    """Records ``first .. first + count - 1`` under ``base``: ``(count, 64, 64, 3)``."""
    keys = stream.record_key(base, first + jnp.arange(count, dtype=jnp.uint32))
    shape = (count, *ELEMENT)
    if convert == "uniform":
        return stream.uniforms(keys, shape)
    if convert == "normal":
        return stream.normals(keys, shape)
    return stream.element_bits(keys, shape)


def words_of(base: jax.Array, count: int, first: int = 0, convert: str = "bits") -> np.ndarray:
    """NumPy copy of ``count`` consecutive records (words, uniforms or normals)."""
    return np.asarray(_record_words(base, jnp.uint32(first), count, convert))


def unit(words: np.ndarray) -> np.ndarray:
    """32-bit words as float64 in (0, 1): ``(w + 1/2) / 2**32`` (all 32 bits count)."""
    return (words.astype(np.float64) + 0.5) * 2.0**-32


def check_pairs(x: np.ndarray, y: np.ndarray, what: str) -> None:
    """Correlation of paired words, and the chi-square of their top-4-bit pairs (16 x 16 cells)."""
    assert_uncorrelated(unit(x), unit(y), what=f"{what}: correlation")
    cells = (x.ravel() >> np.uint32(28)).astype(np.int64) * 16 + (y.ravel() >> np.uint32(28))
    counts = np.bincount(cells, minlength=256)
    assert_chisquare_gof(counts, np.full(256, 1 / 256), what=f"{what}: top-nibble pairs")


# --------------------------------------------------------------------------- #
# Bits of single words                                                         #
# --------------------------------------------------------------------------- #
def test_bit_frequencies():
    """Each of the 32 bit positions is 1 with probability 1/2 (32 exact binomial tests).

    False alarm ``32 * 1e-5``.  Detects a bit whose frequency is off by
    ``6.74 * 0.5 / sqrt(N) = 0.0027`` (e.g. a bit stuck in 0.6 % of the words).
    """
    words = words_of(base_key_for("test_bit_frequencies"), records()).ravel()
    for bit in range(32):
        ones = int(np.count_nonzero(words & np.uint32(1 << bit)))
        assert_binomial(ones, words.size, 0.5, what=f"bit {bit} of the words")


def test_top_byte_distribution():
    """The top 8 bits (the coarsest uniform level) are uniform on 256 values (chi-square).

    False alarm 1e-5.  Detects a chi-square distance ``sum (p - 1/256)^2 * 256``
    of ``187 / N = 1.2e-4``: e.g. one value 18 % too frequent.
    """
    words = words_of(base_key_for("test_top_byte_distribution"), records()).ravel()
    counts = np.bincount(words >> np.uint32(24), minlength=256)
    assert_chisquare_gof(counts, np.full(256, 1 / 256), what="top byte of the words")


# --------------------------------------------------------------------------- #
# Dependence between words                                                     #
# --------------------------------------------------------------------------- #
def test_serial_correlation_within_records():
    """Words ``j`` and ``j + lag`` of one record are uncorrelated, lags 1, 2, 3, 8, 192.

    Lag 1 is the next channel, 3 the next pixel, 192 the pixel below.  Per lag
    a correlation test; at lag 1 also the chi-square of the 16 x 16 top-nibble
    pairs (any dependence of the leading bits, not only linear).  False alarm
    ``6 * 1e-5``.  Detects ``|rho| >= 6.74 / sqrt(N) = 0.0054``, and a pair
    distribution at chi-square distance ``1.2e-4`` from independence.
    """
    words = words_of(base_key_for("test_serial_correlation_within_records"), records())
    words = words.reshape(-1, WORDS_PER_RECORD)
    for lag in SERIAL_LAGS:
        x, y = words[:, :-lag], words[:, lag:]
        if lag == 1:
            check_pairs(x, y, "successive words of a record")
        else:
            assert_uncorrelated(unit(x), unit(y), what=f"words of a record at lag {lag}")


def test_adjacent_records_are_independent():
    """Record ``i + 1``'s word ``j`` vs record ``i``'s (record keys ``i``, ``i + 1`` of one base).

    Correlation, top-nibble pair chi-square, and the number of equal words
    (binomial, ``p = 2**-32``: ~0.0002 expected, 2 fail).  False alarm ``3 * 1e-5``.
    Detects ``|rho| >= 0.0054``, a pair distribution at chi-square distance
    ``1.2e-4``, and repeated words at a rate of ``4.2e-6`` (a Poisson mean of
    6.6 coincidences, of which 2 fail the check).
    """
    words = words_of(base_key_for("test_adjacent_records_are_independent"), records() + 1)
    words = words.reshape(-1, WORDS_PER_RECORD)
    x, y = words[:-1], words[1:]
    check_pairs(x, y, "adjacent records")
    equal = int(np.count_nonzero(x == y))
    assert_binomial(equal, x.size, 2.0**-32, what="equal words in adjacent records")


def test_successive_base_keys_are_independent():
    """Operators built one after another from one ``nnx.Rngs`` draw successive base keys:
    the records of one are independent of the same records of the next.

    ``scaled(16) + 1`` base keys from ``nnx.Rngs(seed)``'s default stream (as
    ``ImageOperator.__init__`` draws them), 8 records each; record ``i`` of key
    ``k`` is paired with record ``i`` of key ``k + 1`` (``N`` pairs).
    Correlation, top-nibble pair chi-square and equal words, as for adjacent
    records: false alarm ``3 * 1e-5``, same detectable deviations.
    """
    rngs = nnx.Rngs(seed_for("test_successive_base_keys_are_independent") % 2**31)
    bases = [jax.random.key_data(rngs["default"]()) for _ in range(scaled(16) + 1)]
    assert len({tuple(np.asarray(b).tolist()) for b in bases}) == len(bases)
    words = np.stack([words_of(b, 8).reshape(-1) for b in bases])
    x, y = words[:-1], words[1:]
    check_pairs(x, y, "same records under successive base keys")
    equal = int(np.count_nonzero(x == y))
    assert_binomial(equal, x.size, 2.0**-32, what="equal words under successive base keys")


# --------------------------------------------------------------------------- #
# Conversions                                                                  #
# --------------------------------------------------------------------------- #
def test_uniforms_are_uniform():
    """``stream.uniforms`` of consecutive records vs U[0, 1) (Kolmogorov-Smirnov).

    False alarm 1e-5.  Detects a CDF distance ``D >= 3.6 / sqrt(N) = 0.0029``
    (e.g. levels scaled by 0.997).  Also: every value in [0, 1) (exact).
    """
    u = words_of(base_key_for("test_uniforms_are_uniform"), records(), convert="uniform")
    assert u.dtype == np.float32
    assert u.min() >= 0.0 and u.max() < 1.0
    assert_ks_1samp(u, stats.uniform.cdf, what="stream uniforms vs U[0, 1)")


def test_normals_are_standard_normal():
    """``stream.normals`` of consecutive records vs N(0, 1): KS, mean (z) and variance (chi2).

    False alarm ``3 * 1e-5``.  Detects a CDF distance ``D >= 0.0029``, a mean
    shift of ``6.74 / sqrt(N) = 0.0054`` sigma, a variance off by
    ``6.74 sqrt(2 / N) = 0.76 %`` (std by 0.38 %).  Also: finite, within +-5.42.
    """
    z = words_of(base_key_for("test_normals_are_standard_normal"), records(), convert="normal")
    assert z.dtype == np.float32
    assert np.all(np.isfinite(z)) and np.abs(z).max() < 5.43
    assert_ks_1samp(z, stats.norm.cdf, what="stream normals vs N(0, 1)")
    assert_normal_mean(z, 0.0, 1.0, what="mean of stream normals")
    assert_normal_variance(z, 1.0, what="variance of stream normals")
