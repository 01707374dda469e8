"""The random stream: the one place where every operator's randomness comes from.

A stochastic operator holds one *base key* (two ``uint32`` words, drawn from its
``nnx.Rngs`` stream).  Everything random is derived from it in three steps, each
a pure element-wise function that XLA fuses into the operator's own pass over
the image:

1. **Record key.**  A record is identified by ``(epoch, shard, index)``
   (``uint32``, ``uint32``, 64-bit; a record with no epoch or shard has 0).
   Its key is ``identity_key = record_key(threefry2x32(base, (epoch, shard)), index)``
   with ``record_key(k, i) = threefry2x32(k, (i >> 32, i & 0xffffffff))``:
   every epoch and shard has its own sub-stream, indices run to ``2**64 - 1``.
   For ``i < 2**32``, ``record_key(k, i)`` is exactly ``jax.random.fold_in(k, i)``,
   and ``record_key(rng, arange(B))`` is exactly ``jax.random.split(rng, B)``
   (``generate_random_params`` uses the latter).
2. **Bits of an element.**  Value ``j`` of an element (row-major flat index)
   gets ``y0 ^ y1`` of ``threefry2x32(record_key, (j >> 32, j & 0xffffffff))``:
   one block per value, the layout of JAX's partitionable threefry, so
   ``element_bits(key, shape) == jax.random.bits(key, shape)`` bit for bit.
3. **Conversions** of 32 bits ``b`` (only the top 24 are used, ``m = b >> 8``):
   ``uniform = m * 2**-24`` in [0, 1) (exact in float32, NumPy's float32 grid);
   ``normal = sqrt(2) * erfinv((2m + 1 - 2**24) * 2**-24)`` = Phi^-1 of the
   midpoint ``(m + 1/2) / 2**24`` (the argument is exact in float32; within
   4.5 float32 ulps of the exact quantile);
   ``keep = uniform >= float32(rate)``.

Threefry-2x32 with 20 rounds is from J. K. Salmon, M. A. Moraes, R. O. Dror and
D. E. Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11 (2011); it is
JAX's default generator.  Written here as plain ``uint32`` adds, rotations and
xors instead of calling ``jax.random.bits``, because XLA then fuses the whole
generator into the consumer's loop: ~10x faster on CPU for an image batch.

``reference/stream.py`` is the same stream in NumPy; the tests check both
against the published known-answer vectors and against each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from datarax_ops.reference import stream as spec

# The spec's pure-data constants, taken from the spec itself (never copied): the
# rotations and key parity of threefry, the level bits, the record words' counter
# and slots, the fixed pattern's key.
ROTATIONS = spec.ROTATIONS
KEY_PARITY = spec.KEY_PARITY
LEVEL_BITS = spec.LEVEL_BITS
RECORD_COUNTER_HIGH = spec.RECORD_COUNTER_HIGH
APPLY_SLOT = spec.APPLY_SLOT
STRENGTH_SLOTS = spec.STRENGTH_SLOTS
GEOMETRY_FIRST_SLOT = spec.GEOMETRY_FIRST_SLOT
GEOMETRY_PARTS = spec.GEOMETRY_PARTS
INDEX_LIMIT = spec.INDEX_LIMIT
geometry_slot = spec.geometry_slot  # plain integer arithmetic on static slots
FIXED_PATTERN_KEY = spec.FIXED_PATTERN_KEY

Array = jax.Array


def _rotate_left(x: Array, distance: int) -> Array:
    return (x << jnp.uint32(distance)) | (x >> jnp.uint32(32 - distance))


def threefry2x32(key: tuple[Array, Array], counter: tuple[Array, Array]) -> tuple[Array, Array]:
    """Threefry-2x32, 20 rounds: ``(y0, y1)`` for the counter ``(x0, x1)`` under ``key``.

    Args:
      key: two ``uint32`` arrays ``(k0, k1)``, broadcastable to the counter.
      counter: two ``uint32`` arrays ``(x0, x1)`` of the same shape.

    Returns:
      Two ``uint32`` arrays of the broadcast shape.  Element-wise: XLA fuses it
      with whatever consumes the words.
    """
    k0, k1 = (jnp.asarray(k, jnp.uint32) for k in key)
    k2 = k0 ^ k1 ^ jnp.uint32(KEY_PARITY)
    schedule = (k0, k1, k2)
    x0, x1 = (jnp.asarray(c, jnp.uint32) for c in counter)
    x0 = x0 + k0
    x1 = x1 + k1
    for group in range(5):  # 5 groups of 4 rounds, a key injection after each
        for distance in ROTATIONS[group % 2]:
            x0 = x0 + x1
            x1 = _rotate_left(x1, distance) ^ x0
        x0 = x0 + schedule[(group + 1) % 3]
        x1 = x1 + schedule[(group + 2) % 3] + jnp.uint32(group + 1)
    return x0, x1


def _split_index(index: ArrayLike) -> tuple[Array, Array]:
    """``(high word, low word)`` of non-negative integer indices (any integer dtype)."""
    index = jnp.asarray(index)
    if index.dtype.itemsize == 8:
        high = (index >> 32).astype(jnp.uint32)
        return high, (index & 0xFFFFFFFF).astype(jnp.uint32)
    return jnp.zeros(index.shape, jnp.uint32), index.astype(jnp.uint32)


def record_key(base_key: Array, index: Array) -> Array:
    """Keys of records ``index`` under ``base_key``: ``uint32 index.shape + (2,)``.

    Args:
      base_key: raw key data, ``uint32 (2,)``.
      index: integer array (any shape) of record positions; 64-bit indices
        (under x64) use both counter words.

    Returns:
      Raw key data; for 32-bit indices equal to ``jax.random.fold_in``.
    """
    return words_key(base_key, _split_index(index))


def words_key(base_key: Array, words: tuple[Array, Array] | Array) -> Array:
    """Keys of records named by two ``uint32`` words ``(w0, w1)`` under ``base_key``:
    ``threefry2x32(base, (w0, w1))``, ``uint32 w0.shape + (2,)``.

    ``record_key`` names record ``i`` by ``(i >> 32, i & 0xffffffff)``; the grain
    transform by two words drawn from grain's per-record generator.  ``words`` is a
    pair of arrays or one array whose last axis holds the two words.
    """
    base_key = jnp.asarray(base_key, jnp.uint32)
    if not isinstance(words, tuple):
        words = (jnp.asarray(words)[..., 0], jnp.asarray(words)[..., 1])
    y0, y1 = threefry2x32((base_key[0], base_key[1]), words)
    return _materialised(jnp.stack([y0, y1], axis=-1))


IDENTITY_WORDS = 4
"""A record identity is ``uint32 (..., 4)``: ``(epoch, shard, index >> 32, index & 0xffffffff)``."""


def identity_key(base_key: Array, identity: Array) -> Array:
    """Keys of records with ``identity`` under ``base_key``: ``uint32 identity.shape[:-1] + (2,)``.

    ``record_key(threefry2x32(base, (epoch, shard)), index)``: the epoch and shard
    select a sub-stream (one threefry block per record), the 64-bit index a record
    of it.  Mirrored by ``reference.stream.identity_key``.

    Args:
      base_key: raw key data, ``uint32 (2,)``.
      identity: ``uint32 (..., 4)`` words ``(epoch, shard, index_high, index_low)``.
    """
    base_key = jnp.asarray(base_key, jnp.uint32)
    identity = jnp.asarray(identity, jnp.uint32)
    sub0, sub1 = threefry2x32((base_key[0], base_key[1]), (identity[..., 0], identity[..., 1]))
    y0, y1 = threefry2x32((sub0, sub1), (identity[..., 2], identity[..., 3]))
    return _materialised(jnp.stack([y0, y1], axis=-1))


def _materialised(keys: Array) -> Array:
    """``keys``, computed into memory before any consumer runs.

    A record's key is per-record work: fused into the per-value loop that uses it,
    XLA would recompute it for every value.  And XLA in jax 0.12 never finishes
    compiling the fused program when an element has a single value (measured:
    element shapes ``()`` and ``(1,)`` hang; ``(5,)`` compiles in 0.5 s).
    """
    return lax.optimization_barrier(keys)


def identity_words(epoch: ArrayLike, shard: ArrayLike, index: ArrayLike) -> Array:
    """``uint32 (..., 4)`` identity words of (traced or concrete) integer arrays.

    ``index`` uses both words when it is 64-bit (x64); ``epoch`` and ``shard``
    must fit in 32 bits (checked on the host by ``batch.identity_array``).
    """
    high, low = _split_index(index)
    epoch = jnp.broadcast_to(jnp.asarray(epoch).astype(jnp.uint32), low.shape)
    shard = jnp.broadcast_to(jnp.asarray(shard).astype(jnp.uint32), low.shape)
    return jnp.stack([epoch, shard, high, low], axis=-1)


def counter_identities(counter: Array, size: int) -> tuple[Array, Array]:
    """The next ``size`` records of an operator's record counter, and the counter after them.

    Args:
      counter: ``uint32 (2,)``, the 64-bit position ``(high, low)`` of the next record.
      size: how many records (static).

    Returns:
      ``(identity uint32 (size, 4)`` with epoch 0 and shard 0, ``counter + size)``,
      carrying from the low word into the high one.
    """
    high, low = counter[0], counter[1]
    lows = low + jnp.arange(size, dtype=jnp.uint32)
    highs = high + (lows < low).astype(jnp.uint32)  # wrapped past 2**32
    zeros = jnp.zeros((size,), jnp.uint32)
    identity = jnp.stack([zeros, zeros, highs, lows], axis=-1)
    new_low = low + jnp.uint32(size)
    new_high = high + (new_low < low).astype(jnp.uint32)
    return identity, jnp.stack([new_high, new_low])


def _flat_index(shape: tuple[int, ...]) -> Array:
    """``uint32 shape``: each position's row-major flat index."""
    index = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for axis in reversed(range(len(shape))):
        index = index + lax.broadcasted_iota(jnp.uint32, shape, axis) * jnp.uint32(stride)
        stride *= shape[axis]
    return index


def element_bits(
    key: Array,
    shape: tuple[int, ...],
    *,
    separate: bool = False,
    convert: Callable[[Array], Array] | None = None,
    share_last: bool = False,
) -> Array:
    """``uint32 shape``: the element's random words under its record ``key``.

    Args:
      key: raw key data ``uint32 (..., 2)``; leading axes (records) broadcast
        against ``shape`` from the left: a ``(B, 2)`` key array with ``shape``
        ``(B, H, W, C)`` gives each record its own words over ``(H, W, C)``.
      shape: the element's shape, with the records' axes in front if any.
      separate: compute the words in a loop of their own, so that they are
        written to memory before the consumer runs.  For heavy consumers
        (normals, the poisson quantile): XLA:CPU stops vectorising a fused
        loop as large as the generator plus a transcendental conversion
        (measured: bits + erf_inv fused 114 ms for 4.8M values, 12 ms apart).
        Same values either way.
      convert: applied to the words inside that loop (e.g. ``uniform_from_bits``),
        so that the conversion does not join the consumer's loop either.
      share_last: the words of ``shape[:-1] + (1,)`` broadcast over the last axis
        (value ``j`` gets word ``j // shape[-1]``), computed at full size: a consumer
        that selects with them then runs as one element-wise loop (a broadcast of
        per-pixel words into a select is not vectorised by XLA:CPU: 3-4x slower).

    Equals ``jax.random.bits(key, shape)`` (partitionable threefry) for one key
    (then ``convert``-ed, if given).
    """
    shape = tuple(int(d) for d in shape)
    key = jnp.asarray(key, jnp.uint32)
    convert = convert or (lambda words: words)
    record_axes = key.ndim - 1
    element_shape = shape[record_axes:]
    size = math.prod(element_shape)
    if size >= 2**32:
        raise ValueError(f"an element of shape {element_shape} has 2**32 or more values")
    expand = (...,) + (None,) * len(element_shape)
    k0, k1 = key[..., 0][expand], key[..., 1][expand]
    if share_last:
        if separate:
            raise ValueError("share_last words are computed in the consumer's loop")
        counter_low = _flat_index(element_shape) // jnp.uint32(max(element_shape[-1], 1))
        y0, y1 = threefry2x32((k0, k1), (jnp.zeros_like(counter_low), counter_low))
        return jnp.broadcast_to(convert(y0 ^ y1), shape)
    if not separate or size < 2 * _SEPARATE_CHUNKS:
        counter_low = _flat_index(element_shape)
        y0, y1 = threefry2x32((k0, k1), (jnp.zeros_like(counter_low), counter_low))
        return jnp.broadcast_to(convert(y0 ^ y1), shape)
    chunk = -(-size // _SEPARATE_CHUNKS)
    flat_keys = (key[..., 0][..., None], key[..., 1][..., None])

    def chunk_values(start: Array) -> Array:
        counter_low = start + lax.broadcasted_iota(jnp.uint32, (chunk,), 0)
        y0, y1 = threefry2x32(flat_keys, (jnp.zeros_like(counter_low), counter_low))
        return convert(y0 ^ y1)

    starts = jnp.arange(_SEPARATE_CHUNKS, dtype=jnp.uint32) * jnp.uint32(chunk)
    values = lax.map(chunk_values, starts)  # (chunks, *records, chunk)
    values = jnp.moveaxis(values, 0, -2).reshape(*key.shape[:-1], _SEPARATE_CHUNKS * chunk)
    return jnp.broadcast_to(values[..., :size].reshape(*key.shape[:-1], *element_shape), shape)


# Loop trips of element_bits(separate=True): 2 or more (XLA inlines a 1-trip loop).
_SEPARATE_CHUNKS = 4


def uniform_from_bits(bits: Array) -> Array:
    """Float32 levels in [0, 1) on the 2^-24 grid: ``(bits >> 8) * 2**-24`` (exact)."""
    top = (bits >> jnp.uint32(32 - LEVEL_BITS)).astype(jnp.int32)
    return top.astype(jnp.float32) * jnp.float32(2.0**-LEVEL_BITS)


# erfinv(a) = a * P(t) with w = -log((1 - a)(1 + a)): P a polynomial in
# t = w - 2.5 for w < 5 and in t = sqrt(w) - 3 beyond, highest power first.
# Fitted for this project (relative least squares with minimax reweighting
# against scipy.special.erfinv in float64; fit error below 1e-8), on the
# structure of M. Giles, "Approximating the erfinv function", GPU Computing
# Gems Jade Edition (2011).
_ERFINV_CENTRAL = (
    -8.792996445e-09, 2.32298572e-08, 4.661953652e-07, -3.462673374e-06, -4.963449824e-06,
    2.183443313e-04, -1.252741729e-03, -4.177386665e-03, 2.466402861e-01, 1.501409359,
)  # fmt: skip
_ERFINV_TAIL = (
    1.157047532e-04, -3.095347943e-04, -5.682177558e-05, 1.485054745e-03, -3.597360705e-03,
    5.686985389e-03, -7.63730144e-03, 9.445285137e-03, 1.001674968, 2.832976801,
)  # fmt: skip


def _horner(coefficients: tuple[float, ...], t: Array) -> Array:
    value = jnp.full_like(t, coefficients[0])
    for c in coefficients[1:]:
        value = value * t + jnp.float32(c)
    return value


def normal_from_bits(bits: Array) -> Array:
    """Float32 standard normals: ``Phi^-1((m + 1/2) / 2**24)``, ``m = bits >> 8``.

    ``c = 2 * (m + 1/2) / 2**24 - 1`` is an odd multiple of 2^-24 in (-1, 1),
    exact in float32, and ``z = sqrt(2) * erfinv(c)``.  ``1 - |c|`` and
    ``1 + |c|`` are exact too, so ``w = -log((1 - |c|)(1 + |c|))`` keeps full
    relative accuracy in the tails (XLA's ``lax.erf_inv`` rounds ``c * c``
    first and is off by up to 91 float32 ulps near ``|z| = 3.8``).  Measured
    over all 2^24 levels: within a few float32 ulps of the exact quantile
    (``tests/test_stream.py``).  Symmetric; values within +-5.42.
    """
    top = (bits >> jnp.uint32(32 - LEVEL_BITS)).astype(jnp.int32)
    centred = (2 * top + (1 - 2**LEVEL_BITS)).astype(jnp.float32) * jnp.float32(2.0**-LEVEL_BITS)
    magnitude = jnp.abs(centred)
    w = -jnp.log((jnp.float32(1.0) - magnitude) * (jnp.float32(1.0) + magnitude))
    central = _horner(_ERFINV_CENTRAL, w - jnp.float32(2.5))
    tail = _horner(_ERFINV_TAIL, jnp.sqrt(w) - jnp.float32(3.0))
    scale = jnp.where(w < jnp.float32(5.0), central, tail)
    return jnp.float32(math.sqrt(2.0)) * scale * centred


def keep_from_bits(bits: Array, rate: float) -> Array:
    """Bool: True (keep) where the uniform level is ``>= float32(rate)``, i.e. with
    probability ``1 - rate`` (to the 2^-24 grid)."""
    return uniform_from_bits(bits) >= jnp.float32(rate)


def uniforms(
    key: Array, shape: tuple[int, ...], *, separate: bool = False, share_last: bool = False
) -> Array:
    """Float32 levels in [0, 1) of ``shape`` for record ``key`` (see ``element_bits``;
    ``separate``: computed, conversion included, in a loop of their own; ``share_last``:
    one level per index of ``shape[:-1]``, the same over the last axis)."""
    return element_bits(
        key, shape, separate=separate, convert=uniform_from_bits, share_last=share_last
    )


def normals(key: Array, shape: tuple[int, ...]) -> Array:
    """Float32 standard normals of ``shape`` for record ``key`` (words computed
    separately: the conversion is too heavy to share the generator's loop)."""
    return normal_from_bits(element_bits(key, shape, separate=True))


def keep_mask(
    key: Array, shape: tuple[int, ...], rate: float, *, share_last: bool = False
) -> Array:
    """Bool keep decisions of ``shape`` for record ``key``: keep with prob. ``1 - rate``
    (``share_last``: one decision per index of ``shape[:-1]``, see ``element_bits``)."""
    return keep_from_bits(element_bits(key, shape, share_last=share_last), rate)


# Record words (``reference.stream``, step 4): counter ``RECORD_COUNTER_HIGH``, one
# slot per draw (``APPLY_SLOT``, each strength's declared slot).


def record_bits(key: Array, slot: int) -> Array:
    """``uint32 key.shape[:-1]``: word ``slot`` of each record's own words, ``y0 ^ y1``
    of ``threefry2x32(key, (1, slot))``; never a block of the element bits (high word 0)."""
    key = jnp.asarray(key, jnp.uint32)
    high = jnp.full(key.shape[:-1], RECORD_COUNTER_HIGH, jnp.uint32)
    y0, y1 = threefry2x32((key[..., 0], key[..., 1]), (high, jnp.full_like(high, slot)))
    return y0 ^ y1


def record_uniforms(key: Array, slot: int) -> Array:
    """Float32 uniforms in ``[0, 1)``, one per record (``uniform_from_bits(record_bits)``)."""
    return uniform_from_bits(record_bits(key, slot))


def index_from_bits(bits: Array, count: Array | int) -> Array:
    """``uint32``: an integer uniform on ``0 .. count - 1`` (``count < INDEX_LIMIT``),
    ``floor((bits >> 8) * count / 2**24)`` exactly in 32-bit unsigned arithmetic, as
    ``reference.stream.index_from_bits`` computes it."""
    k = jnp.asarray(count).astype(jnp.uint32)
    m = bits >> jnp.uint32(32 - LEVEL_BITS)
    high = (m >> jnp.uint32(12)) * k
    low = ((m & jnp.uint32(0xFFF)) * k) >> jnp.uint32(12)
    return (high + low) >> jnp.uint32(12)


# The deterministic mode's one pattern: every record uses the raw key
# ``FIXED_PATTERN_KEY``, ``jax.random.key_data(jax.random.key(0))``.


def fixed_pattern_key() -> Array:
    """Raw key data ``uint32 (2,)`` of the deterministic mode's one pattern."""
    return jnp.asarray(FIXED_PATTERN_KEY, jnp.uint32)
