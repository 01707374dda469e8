"""The random stream: ``datarax_ops.stream`` (JAX) == ``reference.stream`` (NumPy) == JAX itself.

Deterministic and fast.  Three kinds of checks:

* **Known answers.**  Threefry-2x32 with 20 rounds against the published
  known-answer vectors (Random123's ``kat_vectors``; also in JAX's
  ``random_test.py``), for both implementations.
* **Compiled vs reference.**  Record keys, element words (1-D to 4-D shapes,
  size 1, leading record axes; fused and ``separate=True``), uniforms and keep
  masks bit for bit; normals within the measured float32 error bound (below).
* **vs JAX's own API.**  ``record_key(base, i) == fold_in(base, i)`` for
  32-bit ``i``, ``record_key(rng, arange(B)) == split(rng, B)``,
  ``element_bits(key, shape) == jax.random.bits(key, shape)``; 64-bit record
  indices use the counter's high word.

Normals: the reference computes ``sqrt(2) * erfinv(c)`` in float64 to within
3 float64 ulps of the exact value (checked against mpmath at 40 digits on
4199 midpoints, including both tails; strictly increasing over all ``2**24``
levels, within 6 ulps of ``scipy.special.ndtri`` everywhere).  The compiled
stream evaluates its own float32 quantile (a Giles-form polynomial on
``w = -log((1 - |c|)(1 + |c|))``).  Measured over **all** ``2**24`` midpoints
(``m = 0 .. 2**24 - 1``, ``bits = m << 8``, jax 0.10.2 on CPU), its error in
float32 ulps of the exact value is at most

* 3.53 ulps overall (``NORMAL_ULPS_MAX``): the worst is ``m = 5283647`` and
  its mirror image (``z = -0.481924``, relative error ``2.4e-7``);
* 2.85 ulps where ``|z| >= 2`` (``NORMAL_ULPS_TAIL``), 1.61 beyond ``|z| = 4``;

and the values are symmetric and strictly increasing in ``m``.  (XLA's
``lax.erf_inv``, which rounds ``c * c`` to float32 first, was off by up to
91 ulps near ``|z| = 3.76``.)  The test below checks the bounds on the tails
(``m < 4096`` and mirror images), around the centre, at the measured worst
levels and at 65536 random levels; the full-grid measurement takes ~10 s and
is repeated by ``python -m tests.test_stream`` (prints the table).
"""

from __future__ import annotations

import math

import datarax_ops.reference.stream as rs
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import special

import datarax_ops.stream as ds

U32_MAX = 2**32 - 1

# Threefry-2x32, 20 rounds: (key, counter) -> block (Random123 kat_vectors).
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]

# Measured bounds of the compiled normals vs the float64 reference, float32 ulps
# of the reference value (see the module docstring).
NORMAL_ULPS_MAX = 3.6  # everywhere (measured 3.53 at m = 5283647 and its mirror)
NORMAL_ULPS_TAIL = 2.9  # |z| >= 2 (measured 2.85)
NORMAL_WORST_LEVELS = (5283647, 11493568)
# The reference vs scipy.special.ndtri, float64 ulps (measured vs mpmath: the
# reference is within 3 ulps, ndtri within 4).
REFERENCE_VS_NDTRI_ULPS = 8.0


# --------------------------------------------------------------------------- #
# Strategies and helpers                                                       #
# --------------------------------------------------------------------------- #
words = st.one_of(st.sampled_from([0, 1, 0x80000000, U32_MAX]), st.integers(0, U32_MAX))
keys = st.tuples(words, words).map(lambda k: np.asarray(k, np.uint32))
# A fixed set of shapes (1-D to 4-D, size 1, odd sizes): each new shape costs a compilation
# (~1.5 s), so Hypothesis varies the keys and picks among these.
SHAPES = [(1,), (7,), (1000,), (1, 1, 1), (5, 3), (4, 4, 3), (2, 3, 4, 5), (1, 1, 1, 1)]
shapes = st.sampled_from(SHAPES)


def jax_key(raw: np.ndarray) -> jax.Array:
    """A typed threefry key from raw ``uint32 (..., 2)`` data."""
    return jax.random.wrap_key_data(jnp.asarray(raw, jnp.uint32), impl="threefry2x32")


def as_np(x) -> np.ndarray:
    return np.asarray(x)


# The compiled stream under jit, as operators use it (one compilation per shape and rate).
element_bits_jit = jax.jit(ds.element_bits, static_argnums=1)
separate_bits_jit = jax.jit(
    lambda key, shape: ds.element_bits(key, shape, separate=True), static_argnums=1
)
uniforms_jit = jax.jit(ds.uniforms, static_argnums=1)
separate_uniforms_jit = jax.jit(
    lambda key, shape: ds.uniforms(key, shape, separate=True), static_argnums=1
)
normals_jit = jax.jit(ds.normals, static_argnums=1)
keep_mask_jit = jax.jit(ds.keep_mask, static_argnums=(1, 2))


def levels_to_bits(levels: np.ndarray, low_byte_seed: int = 0) -> np.ndarray:
    """Words with top 24 bits ``levels``; the low 8 bits are arbitrary (they must not matter)."""
    low = np.random.default_rng(low_byte_seed).integers(0, 256, levels.shape, dtype=np.uint32)
    return (levels.astype(np.uint32) << np.uint32(8)) | low


def ulp32(values: np.ndarray) -> np.ndarray:
    """Float32 unit in the last place at ``|values|``, as float64."""
    return np.spacing(np.abs(values).astype(np.float32)).astype(np.float64)


# --------------------------------------------------------------------------- #
# Threefry-2x32 known answers                                                  #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(("key", "counter", "expected"), KNOWN_ANSWERS)
def test_threefry_known_answers_numpy(key, counter, expected):
    """The same block from uint32 arrays and from Python ints (the host path's form)."""
    y0, y1 = rs.threefry2x32(tuple(np.uint32(w) for w in key), tuple(np.uint32(w) for w in counter))
    assert (int(y0), int(y1)) == expected
    assert y0.dtype == y1.dtype == np.uint32
    words = rs.threefry2x32(tuple(int(w) for w in key), tuple(int(w) for w in counter))
    assert words == expected and all(type(word) is int for word in words)


@pytest.mark.parametrize(("key", "counter", "expected"), KNOWN_ANSWERS)
def test_threefry_known_answers_jax(key, counter, expected):
    k = tuple(jnp.uint32(w) for w in key)
    x = tuple(jnp.uint32(w) for w in counter)
    y0, y1 = ds.threefry2x32(k, x)
    assert (int(y0), int(y1)) == expected
    assert y0.dtype == y1.dtype == jnp.uint32


def test_threefry_known_answers_vectorised():
    """All three vectors in one call (arrays of keys and counters), both implementations."""
    key = np.asarray([k for k, _, _ in KNOWN_ANSWERS], np.uint32).T
    counter = np.asarray([c for _, c, _ in KNOWN_ANSWERS], np.uint32).T
    expected = np.asarray([e for _, _, e in KNOWN_ANSWERS], np.uint32).T
    np.testing.assert_array_equal(np.stack(rs.threefry2x32(tuple(key), tuple(counter))), expected)
    got = ds.threefry2x32(tuple(jnp.asarray(key)), tuple(jnp.asarray(counter)))
    np.testing.assert_array_equal(np.stack([as_np(y) for y in got]), expected)


@given(key=keys, seed=st.integers(0, 2**32 - 1))
def test_threefry_numpy_equals_jax(key, seed):
    """Random counters (both words) under one key, broadcast: bit for bit."""
    counter = np.random.default_rng(seed).integers(0, 2**32, (2, 257), dtype=np.uint32)
    expected = rs.threefry2x32((key[0], key[1]), (counter[0], counter[1]))
    got = ds.threefry2x32((jnp.uint32(key[0]), jnp.uint32(key[1])), tuple(jnp.asarray(counter)))
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_array_equal(as_np(g), e)


# --------------------------------------------------------------------------- #
# Record keys                                                                  #
# --------------------------------------------------------------------------- #
indices32 = st.lists(  # eight at a time: one compiled shape
    st.one_of(st.sampled_from([0, 1, 2**31, U32_MAX]), st.integers(0, U32_MAX)),
    min_size=8,
    max_size=8,
)


@given(base=keys, index=indices32)
@example(base=np.zeros(2, np.uint32), index=[0, 1, 2, 3, 2**31, 2**32 - 2, U32_MAX, 0])
def test_record_key_matches_reference_and_fold_in(base, index):
    index = np.asarray(index, np.uint32)
    expected = rs.record_key(base, index)
    assert expected.shape == (*index.shape, 2) and expected.dtype == np.uint32
    np.testing.assert_array_equal(
        as_np(ds.record_key(jnp.asarray(base), jnp.asarray(index))), expected
    )
    folded = jax.vmap(lambda i: jax.random.key_data(jax.random.fold_in(jax_key(base), i)))(
        jnp.asarray(index)
    )
    np.testing.assert_array_equal(as_np(folded), expected)


@given(base=keys, count=st.sampled_from([1, 2, 5, 64]))
def test_record_keys_of_arange_are_split(base, count):
    expected = as_np(jax.random.key_data(jax.random.split(jax_key(base), count)))
    np.testing.assert_array_equal(rs.record_key(base, np.arange(count)), expected)
    np.testing.assert_array_equal(
        as_np(ds.record_key(jnp.asarray(base), jnp.arange(count))), expected
    )


def test_record_key_shapes():
    base = np.asarray([7, 11], np.uint32)
    assert rs.record_key(base, 5).shape == (2,)
    assert rs.record_key(base, np.arange(6).reshape(2, 3)).shape == (2, 3, 2)
    np.testing.assert_array_equal(
        rs.record_key(base, np.arange(6).reshape(2, 3)).reshape(6, 2),
        rs.record_key(base, np.arange(6)),
    )
    np.testing.assert_array_equal(rs.record_key(base, 5), rs.record_key(base, np.arange(6))[5])


indices64 = st.one_of(
    st.sampled_from([2**32, 2**32 + 1, 2**33 - 1, 2**63 - 1, 2**64 - 1]),
    st.integers(2**32, 2**64 - 1),
)


@given(base=keys, index=indices64)
def test_record_key_64bit_uses_high_word(base, index):
    """``i >= 2**32``: counter ``(i >> 32, i & 0xffffffff)``; not the key of ``i mod 2**32``."""
    got = rs.record_key(base, np.uint64(index))
    y0, y1 = rs.threefry2x32((base[0], base[1]), (index >> 32, index & U32_MAX))
    np.testing.assert_array_equal(got, [y0, y1])
    assert not np.array_equal(got, rs.record_key(base, index & U32_MAX))
    # The compiled stream agrees under x64 (64-bit index arrays).
    with jax.enable_x64(True):
        compiled = ds.record_key(jnp.asarray(base), jnp.asarray([index], jnp.uint64))[0]
    np.testing.assert_array_equal(as_np(compiled), got)


def test_record_key_64bit_index_dtypes_below_2_32():
    """int64 / uint64 indices below 2**32 give the same keys as uint32 ones (= fold_in)."""
    base = np.asarray([0x12345678, 0x9ABCDEF0], np.uint32)
    index = np.asarray([0, 1, 2**31, U32_MAX])
    expected = rs.record_key(base, index.astype(np.uint32))
    np.testing.assert_array_equal(rs.record_key(base, index.astype(np.int64)), expected)
    np.testing.assert_array_equal(rs.record_key(base, index.astype(np.uint64)), expected)
    for i, key in zip(index, expected, strict=True):
        folded = jax.random.key_data(jax.random.fold_in(jax_key(base), int(i)))
        np.testing.assert_array_equal(as_np(folded), key)
    with jax.enable_x64(True):
        compiled = ds.record_key(jnp.asarray(base), jnp.asarray(index, jnp.int64))
    np.testing.assert_array_equal(as_np(compiled), expected)


def test_record_key_rejects_bad_indices():
    base = np.zeros(2, np.uint32)
    with pytest.raises(ValueError, match=">= 0"):
        rs.record_key(base, -1)
    with pytest.raises(TypeError, match="integers"):
        rs.record_key(base, 1.0)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        rs.record_key(np.zeros((2, 2), np.uint32), 0)


identities = st.tuples(
    st.one_of(st.sampled_from([0, 1, U32_MAX]), st.integers(0, U32_MAX)),
    st.one_of(st.sampled_from([0, 1, U32_MAX]), st.integers(0, U32_MAX)),
    st.one_of(st.sampled_from([0, U32_MAX, 2**32, 2**64 - 1]), st.integers(0, 2**64 - 1)),
)


@given(base=keys, identity=identities)
@example(base=np.zeros(2, np.uint32), identity=(0, 0, 0))
def test_identity_key_is_the_record_key_of_the_epoch_shard_substream(base, identity):
    """``identity_key = record_key(threefry(base, (epoch, shard)), index)`` in NumPy and JAX."""
    epoch, shard, index = identity
    words = rs.identity_words(epoch, shard, index)
    assert words.dtype == np.uint32
    assert words.tolist() == [epoch, shard, index >> 32, index & U32_MAX]
    expected = rs.identity_key(base, words)
    sub = np.asarray(rs.threefry2x32((base[0], base[1]), (epoch, shard)), np.uint32)
    np.testing.assert_array_equal(expected, rs.record_key(sub, np.uint64(index)))
    np.testing.assert_array_equal(as_np(ds.identity_key(jnp.asarray(base), words)), expected)
    if epoch == 0 and index <= U32_MAX:  # the sub-stream key is fold_in(base, shard)
        folded = jax.random.fold_in(jax.random.fold_in(jax_key(base), shard), index)
        np.testing.assert_array_equal(as_np(jax.random.key_data(folded)), expected)


def test_identity_words_reject_out_of_range_values():
    for bad, name in (((-1, 0, 0), "epoch"), ((0, 2**32, 0), "shard"), ((0, 0, 2**64), "index")):
        with pytest.raises(ValueError, match=name):
            rs.identity_words(*bad)


@pytest.mark.parametrize("start", [0, 5, 2**32 - 3, 2**64 - 2**31])
def test_counter_identities_count_in_64_bits(start):
    """The operator's record counter: ``size`` consecutive 64-bit indices from ``start``,
    carrying into the high word; the counter returned is ``start + size``."""
    size = 7
    counter = jnp.asarray([start >> 32, start & U32_MAX], jnp.uint32)
    identity, after = ds.counter_identities(counter, size)
    indices = [(start + k) % 2**64 for k in range(size)]
    np.testing.assert_array_equal(
        as_np(identity), rs.identity_words(0, 0, np.array(indices, object))
    )
    end = (start + size) % 2**64
    assert as_np(after).tolist() == [end >> 32, end & U32_MAX]


# --------------------------------------------------------------------------- #
# Element bits                                                                 #
# --------------------------------------------------------------------------- #
@given(key=keys, shape=shapes)
@example(key=np.zeros(2, np.uint32), shape=(1,))
@example(key=np.zeros(2, np.uint32), shape=(1, 1, 1, 1))
@example(key=np.asarray([U32_MAX, U32_MAX], np.uint32), shape=(1000,))
@example(key=np.asarray([1, 2], np.uint32), shape=(2, 3, 4, 5))
def test_element_bits_match_reference_and_jax_random_bits(key, shape):
    expected = rs.element_bits(key, shape)
    assert expected.shape == shape and expected.dtype == np.uint32
    np.testing.assert_array_equal(as_np(element_bits_jit(jnp.asarray(key), shape)), expected)
    np.testing.assert_array_equal(as_np(separate_bits_jit(jnp.asarray(key), shape)), expected)
    np.testing.assert_array_equal(as_np(jax.random.bits(jax_key(key), shape)), expected)


@pytest.mark.parametrize(
    ("key_shape", "shape"),
    [
        ((3,), (3, 5, 4, 2)),
        ((2, 3), (2, 3, 4)),
        ((1,), (1, 1)),
        ((4,), (4, 7)),
        ((4,), (4, 9)),  # separate=True: 4 chunks of 3 words, 12 computed, 9 kept
        ((2, 2), (2, 2, 3, 3)),
        ((3,), (3, 5, 3, 3)),
    ],
)
def test_element_bits_with_record_axes(key_shape, shape):
    """Keys ``(*R, 2)`` with ``shape = (*R, *E)``: record ``r`` gets ``element_bits(key[r], E)``."""
    base = np.asarray([0xDEADBEEF, 0x01234567], np.uint32)
    record_keys = rs.record_key(base, np.arange(math.prod(key_shape)).reshape(key_shape))
    expected = rs.element_bits(record_keys, shape)
    assert expected.shape == shape
    element_shape = shape[len(key_shape) :]
    for r in np.ndindex(*key_shape):
        np.testing.assert_array_equal(expected[r], rs.element_bits(record_keys[r], element_shape))
        np.testing.assert_array_equal(
            expected[r], as_np(jax.random.bits(jax_key(record_keys[r]), element_shape))
        )
    compiled = ds.element_bits(jnp.asarray(record_keys), shape)
    np.testing.assert_array_equal(as_np(compiled), expected)
    separate = separate_bits_jit(jnp.asarray(record_keys), shape)
    np.testing.assert_array_equal(as_np(separate), expected)


def test_element_bits_broadcast_one_key_over_records():
    """A ``(1, 2)`` key array against ``(4, 3)``: every record gets the same words (both)."""
    key = np.asarray([[5, 6]], np.uint32)
    expected = rs.element_bits(key, (4, 3))
    np.testing.assert_array_equal(expected, np.broadcast_to(rs.element_bits(key[0], (3,)), (4, 3)))
    np.testing.assert_array_equal(as_np(ds.element_bits(jnp.asarray(key), (4, 3))), expected)
    # 10 words: separate=True takes its chunked path (below 8 it falls back to the fused one)
    np.testing.assert_array_equal(
        as_np(separate_bits_jit(jnp.asarray(key), (4, 10))), rs.element_bits(key, (4, 10))
    )


def test_element_bits_large_element_compiled():
    """A (16, 64, 64, 3) batch (196608 words) of 16 record keys: one compiled call, bit for bit."""
    base = np.asarray([0x243F6A88, 0x85A308D3], np.uint32)
    shape = (16, 64, 64, 3)
    keys16 = rs.record_key(base, np.arange(16))
    program = jax.jit(lambda b: ds.element_bits(ds.record_key(b, jnp.arange(16)), shape))
    np.testing.assert_array_equal(as_np(program(jnp.asarray(base))), rs.element_bits(keys16, shape))


def test_element_bits_rejects_bad_shapes():
    key = np.zeros(2, np.uint32)
    with pytest.raises(ValueError, match="2\\*\\*32"):
        rs.element_bits(key, (2**16, 2**16))
    with pytest.raises(ValueError, match="record axes"):
        rs.element_bits(np.zeros((2, 3, 2), np.uint32), (2,))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        rs.element_bits(np.zeros(3, np.uint32), (2,))


# --------------------------------------------------------------------------- #
# Conversions                                                                  #
# --------------------------------------------------------------------------- #
ALL_LEVELS = np.arange(2**24, dtype=np.uint32)


def test_uniforms_all_levels_bit_for_bit():
    """All 2**24 levels: ``m * 2**-24`` exactly, float32, in [0, 1); the low 8 bits are ignored."""
    bits = levels_to_bits(ALL_LEVELS)
    expected = rs.uniform_from_bits(bits)
    assert expected.dtype == np.float32
    np.testing.assert_array_equal(expected, ALL_LEVELS.astype(np.float64) * 2.0**-24)
    assert expected.min() == 0.0 and expected.max() == np.float32(1.0 - 2.0**-24)
    compiled = as_np(jax.jit(ds.uniform_from_bits)(jnp.asarray(bits)))
    assert compiled.dtype == np.float32
    np.testing.assert_array_equal(compiled, expected)


@pytest.mark.parametrize("rate", [0.0, 2.0**-24, 0.1, 1 / 3, 0.5, 0.9, 1 - 2.0**-24, 1.0])
def test_keep_all_levels_bit_for_bit(rate):
    """Keep decisions over all 2**24 levels agree; the keep probability is exact.

    ``P(keep) = 1 - ceil(float32(rate) * 2**24) / 2**24``: 1 at rate 0, 0 at rate 1.
    """
    bits = levels_to_bits(ALL_LEVELS, low_byte_seed=1)
    expected = rs.keep_from_bits(bits, rate)
    assert expected.dtype == np.bool_
    compiled = as_np(jax.jit(lambda b: ds.keep_from_bits(b, rate))(jnp.asarray(bits)))
    np.testing.assert_array_equal(compiled, expected)
    dropped = math.ceil(float(np.float32(rate)) * 2**24)
    assert int(np.count_nonzero(expected)) == 2**24 - dropped


def normal_test_levels() -> np.ndarray:
    """Levels where the compiled normals are checked: the tails (all of m < 4096 and the
    mirror images, |z| > 3.35), the centre, the measured worst levels and 65536 random ones."""
    rng = np.random.default_rng(20110101)
    edge = np.arange(4096)
    centre = 2**23 + np.arange(-2048, 2048)
    picked = [edge, 2**24 - 1 - edge, centre, NORMAL_WORST_LEVELS, rng.integers(0, 2**24, 65536)]
    return np.unique(np.concatenate(picked)).astype(np.uint32)


def test_normals_within_measured_bound_of_reference():
    """Compiled float32 normals vs the float64 reference (bounds in the module docstring)."""
    levels = normal_test_levels()
    bits = levels_to_bits(levels, low_byte_seed=2)
    reference = rs.normal_from_bits(bits)
    assert reference.dtype == np.float64
    compiled = as_np(jax.jit(ds.normal_from_bits)(jnp.asarray(bits)))
    assert compiled.dtype == np.float32
    ulps = np.abs(compiled.astype(np.float64) - reference) / ulp32(reference)
    assert ulps.max() <= NORMAL_ULPS_MAX, (ulps.max(), levels[ulps.argmax()])
    tail = np.abs(reference) >= 2.0
    worst_tail = (ulps[tail].max(), levels[tail][ulps[tail].argmax()])
    assert ulps[tail].max() <= NORMAL_ULPS_TAIL, worst_tail
    # Symmetric exactly, as the reference is, and strictly increasing in the level.
    mirror = as_np(jax.jit(ds.normal_from_bits)(jnp.asarray(levels_to_bits(2**24 - 1 - levels))))
    np.testing.assert_array_equal(mirror, -compiled)
    assert np.all(np.diff(compiled) > 0)


def test_reference_normals_are_the_midpoint_quantiles():
    """Reference normals vs ``scipy.special.ndtri((m + 1/2) / 2**24)``, an independent oracle."""
    levels = normal_test_levels()
    reference = rs.normal_from_bits(levels_to_bits(levels))
    oracle = special.ndtri((levels.astype(np.float64) + 0.5) / 2**24)
    assert (
        np.max(np.abs(reference - oracle) / np.spacing(np.abs(oracle))) <= REFERENCE_VS_NDTRI_ULPS
    )
    # Exactly symmetric, never zero, increasing in m, within the extreme midpoint quantiles.
    np.testing.assert_array_equal(
        rs.normal_from_bits(levels_to_bits(2**24 - 1 - levels)), -reference
    )
    assert np.all(reference != 0.0) and np.all(np.diff(reference) > 0)
    extreme = -special.ndtri(0.5 / 2**24)
    assert math.isclose(np.abs(reference).max(), extreme, rel_tol=1e-14) and 5.41 < extreme < 5.43


def test_reference_erfinv_inverts_erf():
    """``reference.stream.erfinv`` on all of (-1, 1), including far beyond the stream's grid."""
    p = np.asarray([-0.999999, -0.75, -0.5, -1e-9, 1e-300, 0.25, 0.5, 0.5000001, 0.9])
    tail = 1.0 - 2.0 ** -np.arange(2.0, 54.0)  # 1 - 2**-k up to 1 - 2**-53
    x = rs.erfinv(p)
    np.testing.assert_allclose([math.erf(v) for v in x], p, rtol=2e-16)
    np.testing.assert_allclose([math.erfc(v) for v in rs.erfinv(tail)], 1.0 - tail, rtol=1e-14)
    both = np.concatenate([p, tail, -tail])
    ulps = np.abs(rs.erfinv(both) - special.erfinv(both)) / np.spacing(np.abs(special.erfinv(both)))
    assert ulps.max() <= 4.0, both[ulps.argmax()]
    assert rs.erfinv(np.float64(0.0)) == 0.0
    for bad in (1.0, -1.0, 2.0, np.nan):
        with pytest.raises(ValueError, match="-1 < p < 1"):
            rs.erfinv(np.asarray([bad]))


@given(key=keys, shape=shapes, rate=st.sampled_from([0.0, 0.05, 0.5, 0.999, 1.0]))
def test_convenience_functions(key, shape, rate):
    """``uniforms`` / ``normals`` / ``keep_mask``: conversions of ``element_bits``, both sides."""
    bits = rs.element_bits(key, shape)
    jkey = jnp.asarray(key)
    np.testing.assert_array_equal(rs.uniforms(key, shape), rs.uniform_from_bits(bits))
    np.testing.assert_array_equal(rs.normals(key, shape), rs.normal_from_bits(bits))
    np.testing.assert_array_equal(rs.keep_mask(key, shape, rate), rs.keep_from_bits(bits, rate))
    np.testing.assert_array_equal(as_np(uniforms_jit(jkey, shape)), rs.uniforms(key, shape))
    separate = as_np(separate_uniforms_jit(jkey, shape))
    np.testing.assert_array_equal(separate, rs.uniforms(key, shape))
    np.testing.assert_array_equal(
        as_np(keep_mask_jit(jkey, shape, rate)), rs.keep_mask(key, shape, rate)
    )
    normals = rs.normals(key, shape)
    assert np.all(
        np.abs(as_np(normals_jit(jkey, shape)) - normals) <= NORMAL_ULPS_MAX * ulp32(normals)
    )


def test_fixed_pattern_key():
    """The deterministic mode's key is ``key_data(jax.random.key(0)) = (0, 0)`` in both packages."""
    expected = as_np(jax.random.key_data(jax.random.key(0)))
    np.testing.assert_array_equal(rs.fixed_pattern_key(), expected)
    np.testing.assert_array_equal(as_np(ds.fixed_pattern_key()), expected)
    assert rs.FIXED_PATTERN_KEY == ds.FIXED_PATTERN_KEY == (0, 0)
    assert rs.fixed_pattern_key().dtype == np.uint32


def test_constants_agree():
    assert rs.ROTATIONS == ds.ROTATIONS
    assert rs.KEY_PARITY == ds.KEY_PARITY
    assert rs.LEVEL_BITS == ds.LEVEL_BITS


def _measure_full_grid() -> None:  # pragma: no cover - a manual measurement
    """Prints the compiled normals' error over all 2**24 midpoints (the docstring's table)."""
    bits = ALL_LEVELS << np.uint32(8)
    compiled = as_np(jax.jit(ds.normal_from_bits)(jnp.asarray(bits))).astype(np.float64)
    reference = np.concatenate([rs.normal_from_bits(c) for c in np.array_split(bits, 64)])
    ulps = np.abs(compiled - reference) / ulp32(reference)
    worst = int(ulps.argmax())
    print(f"max {ulps.max():.2f} float32 ulps at m={worst} (z={reference[worst]:.6f}, "
          f"abs {abs(compiled[worst] - reference[worst]):.3g})")  # fmt: skip
    for lo, hi in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)]:
        band = (np.abs(reference) >= lo) & (np.abs(reference) < hi)
        print(f"  {lo} <= |z| < {hi}: max {ulps[band].max():.2f} ulps")


if __name__ == "__main__":  # pragma: no cover
    _measure_full_grid()


def test_words_key_twins_agree_and_name_records_as_record_key_does():
    base = np.asarray([0x12345678, 0x9ABCDEF0], np.uint32)
    words = np.random.default_rng(7).integers(0, 2**32, size=(64, 2), dtype=np.uint32)
    numpy_keys = rs.words_key(base, (words[:, 0], words[:, 1]))
    jax_keys = np.asarray(ds.words_key(jnp.asarray(base), jnp.asarray(words)))
    np.testing.assert_array_equal(numpy_keys, jax_keys)
    index = np.arange(5, dtype=np.uint32)
    np.testing.assert_array_equal(
        rs.words_key(base, (np.zeros(5, np.uint32), index)),
        rs.record_key(base, index),
    )


# --------------------------------------------------------------------------- #
# Exact uniform integers (record geometries)                                   #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("count", [0, 1, 2, 3, 7, 224, 1025, 4097, 2**20 - 1])
def test_index_from_bits_is_floor_m_count_over_2_24_in_both_streams(count):
    words = np.random.default_rng(count).integers(0, 2**32, 4096, dtype=np.uint64)
    words = np.concatenate([words, [0, 255, 2**32 - 1, 2**32 - 256]]).astype(np.uint32)
    exact = [(int(w) >> 8) * count >> 24 for w in words]
    spec_index = rs.index_from_bits(words, count)
    np.testing.assert_array_equal(spec_index, exact)
    compiled = ds.index_from_bits(jnp.asarray(words), count)
    np.testing.assert_array_equal(np.asarray(compiled), spec_index)


def test_index_from_bits_rejects_counts_past_its_exact_range():
    with pytest.raises(ValueError, match="fewer than"):
        rs.index_from_bits(np.zeros(2, np.uint32), rs.INDEX_LIMIT)


def test_geometry_slots_are_apart_from_the_apply_and_strength_slots():
    first = rs.geometry_slot(0, 0)
    assert first > rs.GEOMETRY_FIRST_SLOT > max(rs.STRENGTH_SLOTS)
    assert rs.APPLY_SLOT not in range(rs.GEOMETRY_FIRST_SLOT, first + 8)
    assert rs.geometry_slot(1, 0) == first + rs.GEOMETRY_PARTS
    with pytest.raises(ValueError, match="part"):
        rs.geometry_slot(0, rs.GEOMETRY_PARTS)
