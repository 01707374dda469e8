"""JAX helpers both operators use; each mirrors its namesake in ``reference.common``.

All functions are pure, jit/vmap-safe, and take one element unless they say
otherwise.  Working precision is float32 (float64 for float64 inputs when x64
is enabled); outputs are cast back to the input dtype, integers rounded
half-to-even and saturated.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammainc, gammaincc, ndtri

from reference.common import RANGE_255_THRESHOLD, SMALLEST_LEVEL

Array = jax.Array


def uses_255_range(image: Array) -> Array:
    """Bool scalar: the element's largest value (NaNs ignored) exceeds 1.5.

    Computed as ``any(image > 1.5)``: a NaN compares false, so it is ignored
    without masking (one cheap reduction instead of a masked max).
    """
    if image.size == 0:
        return jnp.asarray(False)
    if jnp.issubdtype(image.dtype, jnp.integer):  # integers: > 1.5 means > 1
        return jnp.any(image > jnp.asarray(int(RANGE_255_THRESHOLD), image.dtype))
    # 1.5 is exact in every float dtype (bfloat16 and float16 included)
    return jnp.any(image > jnp.asarray(RANGE_255_THRESHOLD, image.dtype))


def working_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """float64 for float64 inputs (x64 on), float32 for everything else."""
    return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


def to_working(image: Array) -> Array:
    """The element in its working float dtype.  Shape unchanged."""
    return image.astype(working_dtype(image.dtype))


def from_working(values: Array, dtype: jnp.dtype) -> Array:
    """Casts back to ``dtype``: integers are rounded half-to-even and saturated."""
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.integer):
        return values.astype(dtype)
    info = jnp.iinfo(dtype)
    rounded = jnp.round(values)
    # Compare in the working float: iinfo.max may not be representable there,
    # so saturate with where() instead of clipping to a rounded bound.
    in_range = jnp.clip(rounded, float(info.min), float(info.max)).astype(dtype)
    high = jnp.asarray(info.max, dtype)
    low = jnp.asarray(info.min, dtype)
    return jnp.where(
        rounded >= float(info.max), high, jnp.where(rounded <= float(info.min), low, in_range)
    )


def float_range(clip_range: tuple[float, float] | None) -> tuple[float, float] | None:
    """``clip_range`` as a tuple of two Python floats (hashable), or None."""
    if clip_range is None:
        return None
    low, high = clip_range
    return float(low), float(high)


def clip(values: Array, clip_range: tuple[float, float] | None) -> Array:
    """Clips to ``clip_range`` (inclusive); ``None`` returns ``values``.  NaN stays NaN."""
    if clip_range is None:
        return values
    low, high = clip_range
    return jnp.clip(values, low, high)


# --------------------------------------------------------------------------- #
# Poisson quantile: the count whose CDF first reaches the level               #
# --------------------------------------------------------------------------- #
def _reaches_level(k: Array, lam: Array, levels: Array) -> Array:
    """``P(Poisson(lam) <= k) >= level``; k >= 0 (float), lam finite >= 0.

    For levels above 1/2 the complement ``P(X > k) <= 1 - level`` is used: it
    keeps float32 resolution in the upper tail, where the CDF rounds to 1.
    """
    a = k + 1.0
    cdf = gammaincc(a, lam)
    survival = gammainc(a, lam)
    return jnp.where(levels < 0.5, cdf >= levels, survival <= 1.0 - levels)


def poisson_quantile(levels: Array, lam: Array) -> Array:
    """Smallest ``k >= 0`` with ``P(Poisson(lam) <= k) >= level``, element-wise.

    Args:
      levels: uniform levels in [0, 1), any shape, float32.
      lam: Poisson means >= 0 (NaN and +inf allowed), same shape and dtype
        as the working values.

    Returns:
      Counts as floats of ``lam``'s dtype; NaN where ``lam`` is NaN, +inf where
      it is +inf.

    Levels below 2^-24 are raised to it, as in the reference (a level of 0
    would give the count 0 whatever ``lam`` is).

    Starts from the Cornish-Fisher approximation of the quantile and steps by
    one until the defining inequality holds at ``k`` and fails at ``k - 1``:
    a few steps for large ``lam``, exact for every ``lam``.
    """
    dtype = lam.dtype
    levels = jnp.maximum(levels.astype(dtype), SMALLEST_LEVEL)
    finite = jnp.isfinite(lam)
    lam_f = jnp.where(finite, lam, 0.0)
    z = ndtri(jnp.minimum(levels, 1.0 - jnp.finfo(dtype).epsneg))
    guess = jnp.floor(lam_f + jnp.sqrt(lam_f) * z + (z * z - 1.0) / 6.0)
    guess = jnp.maximum(guess, 0.0)

    def step(k: Array) -> Array:
        up = ~_reaches_level(k, lam_f, levels)
        down = (k > 0) & _reaches_level(jnp.maximum(k - 1.0, 0.0), lam_f, levels)
        return k + up.astype(dtype) - down.astype(dtype)

    def not_done(state: tuple[Array, Array]) -> Array:
        k, previous = state
        return jnp.any(k != previous)

    def body(state: tuple[Array, Array]) -> tuple[Array, Array]:
        k, _ = state
        return step(k), k

    first = step(guess)
    counts, _ = jax.lax.while_loop(not_done, body, (first, guess))
    counts = jnp.where(jnp.isnan(lam), jnp.nan, counts)
    return jnp.where(jnp.isposinf(lam), jnp.inf, counts)


# --------------------------------------------------------------------------- #
# Keys                                                                         #
# --------------------------------------------------------------------------- #
def as_typed_key(key: Array | np.ndarray) -> tuple[Array, bool]:
    """``(typed key array, is_batch)`` for a single key or a ``(batch,)`` array of keys.

    Accepts new-style typed keys (``jax.random.key``: shape ``()`` or
    ``(batch,)``) and legacy raw ``uint32`` keys (``jax.random.PRNGKey``:
    shape ``(2,)`` or ``(batch, 2)``).  Anything else raises ``TypeError``.
    """
    if isinstance(key, (jax.Array, np.ndarray)) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.ndim > 1:
            raise TypeError(
                f"rng must be one key or a (batch,) array of keys, got shape {key.shape}"
            )
        return jnp.asarray(key), key.ndim == 1
    if isinstance(key, (jax.Array, np.ndarray)) and key.dtype == jnp.uint32:
        impl_width = jax.random.key_data(jax.random.key(0)).shape[-1]
        if key.ndim in (1, 2) and key.shape[-1] == impl_width:
            return jax.random.wrap_key_data(jnp.asarray(key)), key.ndim == 2
        raise TypeError(
            f"a raw uint32 key must have shape ({impl_width},) or (batch, {impl_width}), "
            f"got {key.shape}"
        )
    raise TypeError(
        "rng must be a JAX PRNG key (jax.random.key or jax.random.PRNGKey) or a (batch,) array "
        f"of them, got {type(key).__name__} with dtype {getattr(key, 'dtype', None)}"
    )


# --------------------------------------------------------------------------- #
# Nested fields ("data.image")                                                 #
# --------------------------------------------------------------------------- #
def get_field(data: dict, key: str) -> Array:
    """``data[key]``; a dotted key walks nested dicts.  KeyError lists what is there."""
    if key in data:
        return data[key]
    node: object = data
    walked: list[str] = []
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(walked) or "data"
            available = sorted(node) if isinstance(node, dict) else []
            raise KeyError(f"field {key!r} not found: {where!r} has keys {available}")
        node = node[part]
        walked.append(part)
    return node  # type: ignore[return-value]


def has_field(data: dict, key: str) -> bool:
    try:
        get_field(data, key)
    except KeyError:
        return False
    return True


def set_field(data: dict, key: str, value: Array) -> dict:
    """A copy of ``data`` with ``key`` (dotted: nested) set; ``data`` is not mutated."""
    if key in data or "." not in key:
        return {**data, key: value}
    head, rest = key.split(".", 1)
    child = data.get(head, {})
    if not isinstance(child, dict):
        raise KeyError(f"cannot write {key!r}: {head!r} is not a dict")
    return {**data, head: set_field(child, rest, value)}


def drop_field(data: dict, key: str) -> dict:
    """A copy of ``data`` without ``key`` (dotted: nested)."""
    if key in data:
        return {k: v for k, v in data.items() if k != key}
    head, _, rest = key.partition(".")
    if rest and isinstance(data.get(head), dict):
        return {**data, head: drop_field(data[head], rest)}
    return dict(data)
