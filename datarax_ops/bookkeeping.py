"""What an operator keeps besides its random stream: data statistics, the output cache and
the record counters of ``get_operation_stats``.

Statistics and the cache live outside NNX state (they are eager conveniences of the seed
pages' API, not checkpointed); the counters are NNX variables so they advance inside
``nnx.jit``.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from flax.errors import TraceContextError

Array = jax.Array
CACHE_ENTRIES = 64


class DataStatistics:
    """The statistics in force: set by hand, else precomputed (unless reset), else computed."""

    def __init__(self, precomputed: dict[str, Any] | None) -> None:
        self.precomputed = precomputed
        self.computed: dict[str, Any] | None = None
        self.manual = False
        self.reset_done = False

    def compute(self, batch_stats_fn: Callable[[Any], Any] | None, data: Any) -> Any:
        """``batch_stats_fn(data)``, kept for ``get``; None without a function."""
        if batch_stats_fn is None:
            return None
        stats = batch_stats_fn(data)
        self.computed, self.manual, self.reset_done = stats, False, False
        return stats

    def get(self) -> dict[str, Any] | None:
        if self.manual:
            return self.computed
        if self.precomputed is not None and not self.reset_done:
            return dict(self.precomputed)
        return self.computed

    def set(self, stats: dict[str, Any]) -> None:
        if not isinstance(stats, dict):
            raise TypeError(f"stats must be a dict, got {type(stats).__name__}")
        self.computed, self.manual, self.reset_done = dict(stats), True, False

    def reset(self) -> None:
        self.computed, self.manual, self.reset_done = None, False, True


class OutputCache:
    """Outputs of a deterministic operator keyed by the content of the input (LRU)."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries: collections.OrderedDict[tuple[Any, ...], Array] = collections.OrderedDict()
        self.capacity = entries
        self.hits = 0
        self.misses = 0

    def lookup(self, images: Array, compute: Callable[[], Array]) -> Array:
        """``compute()`` for ``images`` (a concrete array), memoised by shape, dtype and bytes."""
        host = np.asarray(images)
        digest = hashlib.blake2b(host.tobytes(), digest_size=16).hexdigest()
        key = (host.shape, str(host.dtype), digest)
        if key in self.entries:
            self.hits += 1
            self.entries.move_to_end(key)
            return self.entries[key]
        self.misses += 1
        result = compute()
        self.entries[key] = result
        if len(self.entries) > self.capacity:
            self.entries.popitem(last=False)
        return result

    def info(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "size": len(self.entries)}

    def clear(self) -> None:
        self.entries.clear()
        self.hits = self.misses = 0


def set_if_mutable(variable: nnx.Variable, value: Any) -> None:
    """Writes ``value``; under a plain JAX transform of a closed-over operator (``jax.vmap``
    or ``jax.grad`` around ``apply``) NNX state cannot change, and counters are left as
    they are rather than failing the transform."""
    try:
        variable.set_value(value)
    except TraceContextError:
        pass


class BookkeepingAPI:
    """The seed pages' bookkeeping methods of an operator, on its ``_stats``
    (``DataStatistics``), ``_cache`` (``OutputCache``) and the NNX counters
    ``_applied_count`` / ``_skipped_count``."""

    config: Any
    _kernel: Any
    _stats: DataStatistics
    _cache: OutputCache
    _applied_count: nnx.Variable
    _skipped_count: nnx.Variable

    def _count(self, size: int) -> None:
        counter = self._skipped_count if self._kernel.is_identity() else self._applied_count
        set_if_mutable(counter, counter.get_value() + size)

    def get_operation_stats(self) -> dict[str, int]:
        """Records transformed (``applied_count``) and passed through as no-ops
        (``skipped_count``, e.g. ``dropout_rate == 0``).  Eager only."""
        return {
            "applied_count": int(self._applied_count[...]),
            "skipped_count": int(self._skipped_count[...]),
        }

    def reset_operation_stats(self) -> None:
        self._applied_count.set_value(jnp.zeros((), jnp.int32))
        self._skipped_count.set_value(jnp.zeros((), jnp.int32))

    def compute_statistics(self, data: Any) -> dict[str, Any] | None:
        """``batch_stats_fn(data)``, stored for ``get_statistics``; None without one."""
        return self._stats.compute(self.config.batch_stats_fn, data)

    def get_statistics(self) -> dict[str, Any] | None:
        """Set statistics, else ``precomputed_stats`` (unless reset), else computed, else None."""
        return self._stats.get()

    def set_statistics(self, stats: dict[str, Any]) -> None:
        self._stats.set(stats)

    def reset_statistics(self) -> None:
        self._stats.reset()

    def reset_cache(self) -> None:
        self._cache.clear()

    def cache_info(self) -> dict[str, int]:
        """``{"hits", "misses", "size"}`` of the output cache (deterministic, cacheable)."""
        return self._cache.info()
