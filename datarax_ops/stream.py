"""The random stream: the one place where every operator's randomness comes from.

A stochastic operator holds one *base key* (two ``uint32`` words, drawn from its
``nnx.Rngs`` stream).  Everything random is derived from it in three steps, each
a pure element-wise function that XLA fuses into the operator's own pass over
the image:

1. **Record key.**  Record ``i`` (its position in the stream, 64-bit) gets
   ``record_key(base, i) = threefry2x32(base, (i >> 32, i & 0xffffffff))``.
   For ``i < 2**32`` this is exactly ``jax.random.fold_in(base, i)``, and
   ``record_key(rng, arange(B))`` is exactly ``jax.random.split(rng, B)``.
2. **Bits of an element.**  Value ``j`` of an element (row-major flat index)
   gets ``y0 ^ y1`` of ``threefry2x32(record_key, (j >> 32, j & 0xffffffff))``:
   one block per value, the layout of JAX's partitionable threefry, so
   ``element_bits(key, shape) == jax.random.bits(key, shape)`` bit for bit.
3. **Conversions** of 32 bits ``b`` (only the top 24 are used, ``m = b >> 8``):
   ``uniform = m * 2**-24`` in [0, 1) (exact in float32, NumPy's float32 grid);
   ``normal = sqrt(2) * erfinv((2m + 1 - 2**24) * 2**-24)`` = Phi^-1 of the
   midpoint ``(m + 1/2) / 2**24`` (the argument is exact in float32);
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

import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array

# Rotation distances of threefry2x32 (Salmon et al. 2011, table 4), by round mod 8.
ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
# The key schedule's parity constant (Threefish's C240, truncated to 32 bits).
KEY_PARITY = 0x1BD11BDA
# Top bits of each 32-bit word that become a uniform level.
LEVEL_BITS = 24


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


def _split_index(index: Array) -> tuple[Array, Array]:
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
    base_key = jnp.asarray(base_key, jnp.uint32)
    y0, y1 = threefry2x32((base_key[0], base_key[1]), _split_index(index))
    return jnp.stack([y0, y1], axis=-1)


def _flat_index(shape: tuple[int, ...]) -> Array:
    """``uint32 shape``: each position's row-major flat index."""
    index = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for axis in reversed(range(len(shape))):
        index = index + lax.broadcasted_iota(jnp.uint32, shape, axis) * jnp.uint32(stride)
        stride *= shape[axis]
    return index


def element_bits(key: Array, shape: tuple[int, ...]) -> Array:
    """``uint32 shape``: the element's random words under its record ``key``.

    Args:
      key: raw key data ``uint32 (..., 2)``; leading axes (records) broadcast
        against ``shape`` from the left: a ``(B, 2)`` key array with ``shape``
        ``(B, H, W, C)`` gives each record its own words over ``(H, W, C)``.
      shape: the element's shape, with the records' axes in front if any.

    Equals ``jax.random.bits(key, shape)`` (partitionable threefry) for one key.
    """
    shape = tuple(int(d) for d in shape)
    key = jnp.asarray(key, jnp.uint32)
    record_axes = key.ndim - 1
    element_shape = shape[record_axes:]
    if math.prod(element_shape) >= 2**32:
        raise ValueError(f"an element of shape {element_shape} has 2**32 or more values")
    counter_low = _flat_index(element_shape)
    expand = (...,) + (None,) * len(element_shape)
    k0, k1 = key[..., 0][expand], key[..., 1][expand]
    y0, y1 = threefry2x32((k0, k1), (jnp.zeros_like(counter_low), counter_low))
    return jnp.broadcast_to(y0 ^ y1, shape)


def uniform_from_bits(bits: Array) -> Array:
    """Float32 levels in [0, 1) on the 2^-24 grid: ``(bits >> 8) * 2**-24`` (exact)."""
    top = (bits >> jnp.uint32(32 - LEVEL_BITS)).astype(jnp.int32)
    return top.astype(jnp.float32) * jnp.float32(2.0**-LEVEL_BITS)


def normal_from_bits(bits: Array) -> Array:
    """Float32 standard normals: ``Phi^-1((m + 1/2) / 2**24)``, ``m = bits >> 8``.

    ``2 * (m + 1/2) / 2**24 - 1`` is an odd multiple of 2^-24 in (-1, 1), exact in
    float32; ``sqrt(2) * erfinv`` of it is the normal quantile.  The values are
    symmetric and lie within +-5.46 (the midpoint grid's extreme quantiles).
    """
    top = (bits >> jnp.uint32(32 - LEVEL_BITS)).astype(jnp.int32)
    centred = (2 * top + (1 - 2**LEVEL_BITS)).astype(jnp.float32) * jnp.float32(2.0**-LEVEL_BITS)
    return jnp.float32(math.sqrt(2.0)) * lax.erf_inv(centred)


def keep_from_bits(bits: Array, rate: float) -> Array:
    """Bool: True (keep) where the uniform level is ``>= float32(rate)``, i.e. with
    probability ``1 - rate`` (to the 2^-24 grid)."""
    return uniform_from_bits(bits) >= jnp.float32(rate)


def uniforms(key: Array, shape: tuple[int, ...]) -> Array:
    """Float32 levels in [0, 1) of ``shape`` for record ``key`` (see ``element_bits``)."""
    return uniform_from_bits(element_bits(key, shape))


def normals(key: Array, shape: tuple[int, ...]) -> Array:
    """Float32 standard normals of ``shape`` for record ``key``."""
    return normal_from_bits(element_bits(key, shape))


def keep_mask(key: Array, shape: tuple[int, ...], rate: float) -> Array:
    """Bool keep decisions of ``shape`` for record ``key``: keep with prob. ``1 - rate``."""
    return keep_from_bits(element_bits(key, shape), rate)


def key_data(key: Array) -> Array:
    """Raw ``uint32 (..., 2)`` data of a typed key (``jax.random.key``) or raw key."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


# The deterministic mode's one pattern: every record uses this raw key,
# ``jax.random.key_data(jax.random.key(0))``.
FIXED_PATTERN_KEY = (0, 0)


def fixed_pattern_key() -> Array:
    """Raw key data ``uint32 (2,)`` of the deterministic mode's one pattern."""
    return jnp.asarray(FIXED_PATTERN_KEY, jnp.uint32)
