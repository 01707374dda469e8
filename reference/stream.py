"""The random stream in plain NumPy: where every random number of the spec comes from.

This is the readable twin of ``datarax_ops/stream.py`` (the compiled package's
stream); the two agree bit for bit on every word, uniform and keep decision, and
within 3.6 float32 ulps on normals (``tests/test_stream.py``).

A stochastic operator holds one *base key*: two ``uint32`` words.  Everything
random is derived from it in three steps, each a pure element-wise function:

1. **Record key.**  A record is identified by ``(epoch, shard, index)``:
   its epoch and shard (each below ``2**32``; 0 when the record's metadata has
   none) and its position ``index`` in that epoch's shard (up to 64 bits).
   Its key is

       identity_key = record_key(threefry2x32(base, (epoch, shard)), index),
       record_key(k, i) = threefry2x32(k, (i >> 32, i & 0xffffffff)),

   so every (epoch, shard) has its own sub-stream and the same index in another
   epoch or on another shard gets other noise.  For ``i < 2**32``,
   ``record_key(k, i)`` is JAX's ``jax.random.fold_in(k, i)``, and the keys of
   records ``0 .. B-1`` are ``jax.random.split(k, B)``.
2. **Bits of an element.**  Value ``j`` of an element (its row-major flat
   index) gets the 32-bit word ``y0 ^ y1`` of
   ``threefry2x32(record_key, (0, j))``: one threefry block per value.  This is
   the layout of JAX's partitionable threefry, so the words equal
   ``jax.random.bits(record_key, shape)``.
3. **Conversions** of a word ``b``; only its top 24 bits ``m = b >> 8`` are used:

   * uniform ``u = m * 2**-24``, a float32 in ``[0, 1)`` (exact);
   * normal ``z = sqrt(2) * erfinv((2m + 1 - 2**24) * 2**-24)``, the standard
     normal quantile ``Phi^-1((m + 1/2) / 2**24)`` of the midpoint of the
     ``m``-th of ``2**24`` equal cells; here in float64 (the compiled stream
     computes it in float32, within 3.6 float32 ulps of this);
   * keep ``u >= float32(rate)``: True with probability ``1 - rate`` (to the
     ``2**-24`` grid).

4. **Record words** (strength ranges and ``apply_prob``, beyond the seed
   pages): a record's own draws, one per record and not per value, are the
   words ``y0 ^ y1`` of ``threefry2x32(record_key, (1, i))`` for slot ``i``
   (``record_bits``).  Element bits use counter high word 0 (an element has
   fewer than ``2**32`` values), so the two never share a block: a record's
   strength is independent of its noise.  Slots: ``APPLY_SLOT`` (0) decides
   whether the record is transformed, ``STRENGTH_SLOTS`` (1, 2) give the
   strengths (salt & pepper uses both).  A per-record geometry (a count, then
   four words per item, e.g. rectangles) starts at ``GEOMETRY_FIRST_SLOT``
   (``geometry_slot``); ``index_from_bits`` turns a word into an exact uniform
   integer.

Threefry-2x32 with 20 rounds is a counter-based generator: the ``n``-th
random block is a keyed bijection of the counter ``n``, so any block can be
computed directly, in any order, in parallel.  It is from J. K. Salmon,
M. A. Moraes, R. O. Dror and D. E. Shaw, "Parallel random numbers: as easy as
1, 2, 3", Proceedings of SC'11 (2011), and is JAX's default generator.

Shapes and dtypes: keys are ``uint32`` arrays whose last axis holds the two
words (``(2,)`` for one key, ``(B, 2)`` for ``B`` records); words are
``uint32``; uniforms ``float32``; normals ``float64``; keep masks ``bool``.

NumPy only.  Unsigned 32-bit arithmetic wraps modulo 2**32, which is what the
algorithm wants (see :func:`threefry2x32` for the one place overflow warnings
are silenced).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Rotation distances of threefry2x32 (Salmon et al. 2011, table 4): four per
# round group, alternating between the two rows.
ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
# The key schedule's parity constant (Threefish's C240, truncated to 32 bits).
KEY_PARITY = 0x1BD11BDA
# Top bits of each 32-bit word that become a uniform level or a normal.
LEVEL_BITS = 24
LOW_WORD = 0xFFFFFFFF

# The deterministic mode's one pattern: every record uses this raw key
# (the raw data of ``jax.random.key(0)``).
FIXED_PATTERN_KEY = (0, 0)

_U32 = np.uint32


def fixed_pattern_key() -> np.ndarray:
    """Raw key ``uint32 (2,)`` of the deterministic mode's one pattern."""
    return np.asarray(FIXED_PATTERN_KEY, _U32)


# --------------------------------------------------------------------------- #
# Threefry-2x32                                                                #
# --------------------------------------------------------------------------- #
def threefry2x32(
    key: tuple[np.ndarray, np.ndarray] | np.ndarray | tuple[int, int],
    counter: tuple[np.ndarray, np.ndarray] | np.ndarray | tuple[int, int],
) -> tuple[np.ndarray, np.ndarray] | tuple[int, int]:
    """Threefry-2x32 with 20 rounds: the block ``(y0, y1)`` of counter ``(x0, x1)``.

    Args:
      key: two ``uint32`` words ``(k0, k1)`` (scalars or arrays), broadcastable
        against the counter.
      counter: two ``uint32`` words ``(x0, x1)`` (scalars or arrays of one shape).

    Returns:
      ``(y0, y1)``, two ``uint32`` arrays of the broadcast shape; two Python
      ints in ``[0, 2**32)`` when all four words are Python ints (the same
      block, computed with explicit wrapping: about 5 microseconds instead of
      the 50 that NumPy spends on one 0-d block, which matters where a record
      needs only a handful of words).

    The rounds (Salmon et al. 2011, section 3.2): a third key word
    ``k2 = k0 ^ k1 ^ 0x1BD11BDA`` makes a key schedule ``(k0, k1, k2)``; the
    key is added to the counter, then five groups of four rounds
    ``x0 += x1; x1 = rotl(x1, r) ^ x0`` each end with a key injection: group
    ``g`` adds ``schedule[(g + 1) % 3]`` to ``x0`` and
    ``schedule[(g + 2) % 3] + g + 1`` to ``x1``.
    """
    words = (key[0], key[1], counter[0], counter[1])
    if all(isinstance(word, int) for word in words):
        k0, k1, x0, x1 = (int(word) & LOW_WORD for word in words)
        return _threefry_rounds((k0, k1, x0, x1), wrap=LOW_WORD.__and__)
    arrays = (*(np.asarray(word, _U32) for word in words),)
    # Wrapping adds are the algorithm; NumPy only warns about them on 0-d
    # inputs (which it turns into scalars), so silence exactly that here.
    with np.errstate(over="ignore"):
        y0, y1 = _threefry_rounds(arrays, wrap=lambda value: value)
    return np.asarray(y0, _U32), np.asarray(y1, _U32)


def _threefry_rounds(words: tuple[Any, ...], wrap: Any) -> tuple[Any, Any]:
    """The 20 rounds on ``words = (k0, k1, x0, x1)``: ``uint32`` arrays (``wrap`` the
    identity: they wrap by themselves) or Python ints (``wrap`` reduces modulo ``2**32``)."""
    k0, k1, x0, x1 = words
    k2 = k0 ^ k1 ^ KEY_PARITY
    schedule = (k0, k1, k2)
    x0 = wrap(x0 + k0)
    x1 = wrap(x1 + k1)
    for group in range(5):
        for distance in ROTATIONS[group % 2]:
            x0 = wrap(x0 + x1)
            x1 = wrap((x1 << distance) | (x1 >> (32 - distance))) ^ x0
        x0 = wrap(x0 + schedule[(group + 1) % 3])
        x1 = wrap(x1 + schedule[(group + 2) % 3] + (group + 1))
    return x0, x1


# --------------------------------------------------------------------------- #
# Record keys and element bits                                                 #
# --------------------------------------------------------------------------- #
def _split_index(index: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(high word, low word)``, both ``uint32``, of non-negative integer indices."""
    index = np.asarray(index)
    if not np.issubdtype(index.dtype, np.integer):
        raise TypeError(f"record indices must be integers, got dtype {index.dtype}")
    if np.issubdtype(index.dtype, np.signedinteger) and np.any(index < 0):
        raise ValueError("record indices must be >= 0")
    wide = index.astype(np.uint64)
    return (wide >> np.uint64(32)).astype(_U32), (wide & np.uint64(LOW_WORD)).astype(_U32)


def record_key(base_key: np.ndarray, index: int | np.ndarray) -> np.ndarray:
    """Keys of records ``index`` under ``base_key``: ``uint32 index.shape + (2,)``.

    Args:
      base_key: raw key ``uint32 (2,)``.
      index: non-negative integer (array, any shape) of record positions, up to
        ``2**64 - 1``: the counter is ``(index >> 32, index & 0xffffffff)``.

    Returns:
      Raw keys; for ``index < 2**32`` each equals ``jax.random.fold_in(base, index)``.
    """
    return words_key(base_key, _split_index(index))


def words_key(base_key: np.ndarray, words: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Keys of records named by two ``uint32`` words ``(w0, w1)`` under ``base_key``:
    ``threefry2x32(base, (w0, w1))``, ``uint32 w0.shape + (2,)`` (``record_key`` names
    record ``i`` by ``(i >> 32, i & 0xffffffff)``; the grain transform by two words of
    grain's per-record generator)."""
    base_key = np.asarray(base_key, _U32)
    if base_key.shape != (2,):
        raise ValueError(f"a base key has shape (2,), got {base_key.shape}")
    y0, y1 = threefry2x32(
        (base_key[0], base_key[1]), (np.asarray(words[0], _U32), np.asarray(words[1], _U32))
    )
    return np.stack([y0, y1], axis=-1)


def identity_words(
    epoch: int | np.ndarray, shard: int | np.ndarray, index: int | np.ndarray
) -> np.ndarray:
    """``uint32 (..., 4)``: ``(epoch, shard, index >> 32, index & 0xffffffff)``, broadcast.

    Raises ``ValueError`` for a negative value, an epoch or shard of ``2**32`` or
    more, or an index of ``2**64`` or more.
    """
    columns = np.broadcast_arrays(*(np.asarray(v) for v in (epoch, shard, index)))
    if all(c.dtype.kind in "iu" for c in columns) and all(
        bool(np.all(c >= 0)) for c in columns
    ):  # integer arrays (the common case): checked and packed without a Python loop
        epoch, shard, index = columns
        if bool(np.all(epoch < 2**32)) and bool(np.all(shard < 2**32)):
            high, low = _split_index(index)
            return np.stack([epoch.astype(_U32), shard.astype(_U32), high, low], axis=-1)
    epoch, shard, index = np.broadcast_arrays(
        *(np.asarray(v, dtype=object) for v in (epoch, shard, index))
    )
    for name, values, bound in (("epoch", epoch, 32), ("shard", shard, 32), ("index", index, 64)):
        for value in values.ravel():
            if not 0 <= int(value) < 2**bound:
                raise ValueError(f"a record's {name} must be in [0, 2**{bound}), got {value}")
    high, low = _split_index(index.astype(np.uint64))
    return np.stack([epoch.astype(_U32), shard.astype(_U32), high, low], axis=-1)


def identity_key(base_key: np.ndarray, identity: np.ndarray) -> np.ndarray:
    """Keys of records with ``identity`` (``uint32 (..., 4)`` from :func:`identity_words`)
    under ``base_key``: ``uint32 identity.shape[:-1] + (2,)``.

    ``threefry2x32(base, (epoch, shard))`` is the key of the (epoch, shard)
    sub-stream; the record's key is that sub-stream's ``record_key`` of ``index``.
    """
    base_key = np.asarray(base_key, _U32)
    if base_key.shape != (2,):
        raise ValueError(f"a base key has shape (2,), got {base_key.shape}")
    identity = np.asarray(identity, _U32)
    sub = threefry2x32((base_key[0], base_key[1]), (identity[..., 0], identity[..., 1]))
    y0, y1 = threefry2x32(sub, (identity[..., 2], identity[..., 3]))
    return np.stack([y0, y1], axis=-1)


def element_bits(key: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``uint32 shape``: the random words of an element (or of several records).

    Args:
      key: raw key ``uint32 (..., 2)``.  Leading axes are records: they match
        the leading axes of ``shape`` (broadcasting), e.g. keys ``(B, 2)`` with
        ``shape = (B, H, W, C)`` give record ``b`` the words of
        ``element_bits(key[b], (H, W, C))``.
      shape: the element's shape, with the records' axes in front if any.

    Returns:
      Word ``j`` (row-major flat index within the element) is ``y0 ^ y1`` of
      ``threefry2x32(key, (0, j))``.  Equal to ``jax.random.bits(key, shape)``
      for one key.  An element needs fewer than ``2**32`` values.
    """
    shape = tuple(int(d) for d in shape)
    key = np.asarray(key, _U32)
    if key.ndim < 1 or key.shape[-1] != 2:
        raise ValueError(f"keys have shape (..., 2), got {key.shape}")
    record_axes = key.ndim - 1
    if record_axes > len(shape):
        raise ValueError(f"keys {key.shape} have more record axes than shape {shape}")
    element_shape = shape[record_axes:]
    size = math.prod(element_shape)
    if size >= 2**32:
        raise ValueError(f"an element of shape {element_shape} has 2**32 or more values")
    counter_low = np.arange(size, dtype=_U32).reshape(element_shape)
    # Give each record's key words trailing unit axes, one per element axis.
    expand = (...,) + (None,) * len(element_shape)
    k0, k1 = key[..., 0][expand], key[..., 1][expand]
    y0, y1 = threefry2x32((k0, k1), (np.zeros_like(counter_low), counter_low))
    return np.broadcast_to(y0 ^ y1, shape).copy()


# --------------------------------------------------------------------------- #
# Conversions                                                                  #
# --------------------------------------------------------------------------- #
def _levels(bits: np.ndarray) -> np.ndarray:
    """``m = bits >> 8``: the top 24 bits of each word, ``uint32`` in ``[0, 2**24)``."""
    return np.asarray(bits, _U32) >> _U32(32 - LEVEL_BITS)


def uniform_from_bits(bits: np.ndarray) -> np.ndarray:
    """Float32 uniforms in ``[0, 1)``: ``(bits >> 8) * 2**-24``, exact (same shape)."""
    return _levels(bits).astype(np.float32) * np.float32(2.0**-LEVEL_BITS)


def _erfinv_start(a: np.ndarray) -> np.ndarray:
    """A rough starting guess for ``erfinv(a)``, ``0 <= a < 1`` (Newton refines it).

    Centre (``a <= 1/2``): the series ``erfinv(a) ~ (sqrt(pi)/2) (a + pi a^3 / 12)``.
    Tail: with ``q = 1 - a``, ``erfc(x) ~ exp(-x^2) / (x sqrt(pi))`` gives
    ``x^2 ~ -log(q) - log(x sqrt(pi))``; two fixed-point steps from
    ``x = sqrt(-log q)``.
    """
    a = np.asarray(a, np.float64)
    centre = (math.sqrt(math.pi) / 2.0) * (a + (math.pi / 12.0) * a**3)
    with np.errstate(divide="ignore", invalid="ignore"):
        minus_log_q = -np.log(np.maximum(1.0 - a, 2.0**-1074))
        x = np.sqrt(minus_log_q)
        for _ in range(2):
            x = np.sqrt(
                np.maximum(minus_log_q - np.log(np.maximum(x, 1.0) * math.sqrt(math.pi)), 0.25)
            )
    return np.where(a <= 0.5, centre, x)


_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])
MAX_NEWTON_STEPS = 8


def erfinv(p: np.ndarray) -> np.ndarray:
    """Float64 ``erfinv(p)`` for ``-1 < p < 1``, to within a few float64 ulps (same shape).

    Newton's method from ``_erfinv_start``, on ``|p|`` (the sign is restored at the
    end, so ``erfinv(-p) == -erfinv(p)`` exactly):

    * ``|p| <= 1/2``: solves ``erf(x) = |p|``;
    * ``|p| > 1/2``: solves ``log(erfc(x)) = log(1 - |p|)``.  There ``erf(x)``
      is within rounding of 1, but ``1 - |p|`` is exact (Sterbenz) and
      ``math.erfc`` keeps its relative accuracy; in log form the equation is
      close to ``x**2 = -log(1 - |p|)``, on which Newton converges fast even
      from a poor start (the start is rough in the far tail).

    Each step squares the relative error; the loop stops once every step is
    below one ulp of ``x`` (two or three steps on the stream's ``2**-24`` grid).
    """
    p = np.asarray(p, np.float64)
    if np.any(~(np.abs(p) < 1.0)):
        raise ValueError("erfinv needs -1 < p < 1")
    a = np.abs(p)
    x = _erfinv_start(a)
    tail = a > 0.5
    log_q = np.log(1.0 - a[tail])  # 1 - a is exact for a in [1/2, 1]
    for _ in range(MAX_NEWTON_STEPS):
        step = np.empty_like(x)
        # Centre: f(x) = erf(x) - a, f'(x) = 2/sqrt(pi) exp(-x^2).
        xc = x[~tail]
        step[~tail] = (_erf(xc) - a[~tail]) / ((2.0 / math.sqrt(math.pi)) * np.exp(-xc * xc))
        # Tail: g(x) = log(erfc(x)) - log(q), g'(x) = -2/sqrt(pi) exp(-x^2) / erfc(x).
        xt = x[tail]
        erfc_t = _erfc(xt)
        slope_t = -(2.0 / math.sqrt(math.pi)) * np.exp(-xt * xt) / erfc_t
        step[tail] = (np.log(erfc_t) - log_q) / slope_t
        x = x - step
        if np.all(np.abs(step) <= 2.0**-52 * np.abs(x)):
            break
    return np.copysign(x, p)


def normal_from_bits(bits: np.ndarray) -> np.ndarray:
    """Float64 standard normals: ``Phi^-1((m + 1/2) / 2**24)`` with ``m = bits >> 8``.

    Computed as ``sqrt(2) * erfinv(c)`` with ``c = (2m + 1 - 2**24) * 2**-24``,
    an odd multiple of ``2**-24`` in ``(-1, 1)`` (exact).  Same shape as ``bits``.
    Symmetric (``m`` and ``2**24 - 1 - m`` give opposite values), never 0, and
    within ``+-5.42`` (the quantiles of the outermost midpoints, ``2**-25`` from
    0 and 1).
    """
    m = _levels(bits).astype(np.int64)
    centred = (2 * m + 1 - 2**LEVEL_BITS).astype(np.float64) * 2.0**-LEVEL_BITS
    return math.sqrt(2.0) * erfinv(centred)


def keep_from_bits(bits: np.ndarray, rate: float) -> np.ndarray:
    """Bool keep decisions: ``uniform_from_bits(bits) >= float32(rate)`` (same shape).

    True with probability ``1 - rate`` rounded to the ``2**-24`` grid: exactly
    ``1 - ceil(float32(rate) * 2**24) / 2**24``.
    """
    return uniform_from_bits(bits) >= np.float32(rate)


# --------------------------------------------------------------------------- #
# Record words: one record's own draws, apart from its values'                 #
# --------------------------------------------------------------------------- #
# Counter high word of the record words (element bits use 0).
RECORD_COUNTER_HIGH = 1
# Slot of the apply decision, and of the (up to two) strengths.
APPLY_SLOT = 0
STRENGTH_SLOTS = (1, 2)


def record_bits(key: np.ndarray, slot: int) -> np.ndarray:
    """``uint32 key.shape[:-1]``: word ``slot`` of each record's own words, ``y0 ^ y1`` of
    ``threefry2x32(key, (1, slot))`` (keys ``uint32 (..., 2)``, one word per record)."""
    key = np.asarray(key, _U32)
    if key.ndim < 1 or key.shape[-1] != 2:
        raise ValueError(f"keys have shape (..., 2), got {key.shape}")
    high = np.full(key.shape[:-1], RECORD_COUNTER_HIGH, _U32)
    y0, y1 = threefry2x32((key[..., 0], key[..., 1]), (high, np.full_like(high, slot)))
    return np.asarray(y0 ^ y1, _U32)


def record_uniforms(key: np.ndarray, slot: int) -> np.ndarray:
    """Float32 uniforms in ``[0, 1)``, one per record: ``uniform_from_bits(record_bits)``."""
    return uniform_from_bits(record_bits(key, slot))


# Record words of a geometry (e.g. the rectangles a mode draws per record, never per
# value): slot ``GEOMETRY_FIRST_SLOT`` gives a count, then part ``p`` of item ``i`` comes
# from slot ``GEOMETRY_FIRST_SLOT + 1 + GEOMETRY_PARTS * i + p``.  Well apart from the
# apply and strength slots, so a geometry is independent of them.
GEOMETRY_FIRST_SLOT = 16
GEOMETRY_PARTS = 4
# The largest number of values ``index_from_bits`` draws from (its products stay in 32 bits).
INDEX_LIMIT = 2**20


def geometry_slot(item: int, part: int) -> int:
    """The record slot of part ``part`` (``0 <= part < GEOMETRY_PARTS``) of item ``item``."""
    if not 0 <= part < GEOMETRY_PARTS:
        raise ValueError(f"part must be in [0, {GEOMETRY_PARTS}), got {part}")
    return GEOMETRY_FIRST_SLOT + 1 + GEOMETRY_PARTS * int(item) + int(part)


def index_from_bits(bits: np.ndarray, count: np.ndarray | int) -> np.ndarray:
    """``uint32``: an integer uniform on ``0 .. count - 1``, ``floor(m * count / 2**24)`` with
    ``m = bits >> 8`` (0 where ``count`` is 0).

    Exact in 32-bit unsigned arithmetic for ``count < INDEX_LIMIT`` (``2**20``): with
    ``m = a * 2**12 + b``, ``floor(m k / 2**24) = (a k + ((b k) >> 12)) >> 12``, every
    partial product below ``2**32``.  Each value has probability ``floor`` or ``ceil`` of
    ``2**24 / count`` over ``2**24`` (within ``count / 2**24`` of uniform).
    """
    k = np.asarray(count, _U32)
    if np.any(k >= INDEX_LIMIT):
        raise ValueError(f"index_from_bits draws from fewer than {INDEX_LIMIT} values")
    m = _levels(bits)
    high = (m >> _U32(12)) * k
    low = ((m & _U32(0xFFF)) * k) >> _U32(12)
    return np.asarray((high + low) >> _U32(12), _U32)


# --------------------------------------------------------------------------- #
# Convenience: key -> values                                                   #
# --------------------------------------------------------------------------- #
def uniforms(key: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Float32 uniforms in ``[0, 1)`` of ``shape`` for record ``key`` (see :func:`element_bits`)."""
    return uniform_from_bits(element_bits(key, shape))


def normals(key: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Float64 standard normals of ``shape`` for record ``key``."""
    return normal_from_bits(element_bits(key, shape))


def keep_mask(key: np.ndarray, shape: tuple[int, ...], rate: float) -> np.ndarray:
    """Bool keep decisions of ``shape`` for record ``key``: keep with probability ``1 - rate``."""
    return keep_from_bits(element_bits(key, shape), rate)


__all__ = [
    "APPLY_SLOT",
    "FIXED_PATTERN_KEY",
    "GEOMETRY_FIRST_SLOT",
    "GEOMETRY_PARTS",
    "INDEX_LIMIT",
    "KEY_PARITY",
    "LEVEL_BITS",
    "RECORD_COUNTER_HIGH",
    "ROTATIONS",
    "STRENGTH_SLOTS",
    "element_bits",
    "erfinv",
    "fixed_pattern_key",
    "geometry_slot",
    "identity_key",
    "identity_words",
    "index_from_bits",
    "keep_from_bits",
    "keep_mask",
    "normal_from_bits",
    "normals",
    "record_bits",
    "record_key",
    "record_uniforms",
    "threefry2x32",
    "uniform_from_bits",
    "uniforms",
    "words_key",
]
