"""An operator's NNX state as plain arrays, and strict restore (``get_state`` / ``set_state``).

Typed PRNG keys (from ``nnx.Rngs``) are stored as their raw ``uint32`` key data, so any
array checkpointer (NumPy, orbax) can save the dict; restoring wraps them back.
"""

from __future__ import annotations

import copy as copy_module
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from datarax_ops.bookkeeping import OutputCache


def pure_state(module: nnx.Module) -> dict[str, Any]:
    """``module``'s NNX state as a nested dict of numeric arrays (keys as raw data)."""
    return jax.tree.map(_raw_key_data, nnx.to_pure_dict(nnx.state(module)))


def restore_state(module: nnx.Module, state: Any) -> None:
    """Puts ``pure_state`` output back into ``module``.  Strict: same keys, shapes, dtypes.

    Raises:
      TypeError: ``state`` is not a dict.
      ValueError: its structure, a shape or a dtype differs from ``module``'s, naming where.
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    current = nnx.state(module)
    current_pure = nnx.to_pure_dict(current)
    _check_same_structure(jax.tree.map(_raw_key_data, current_pure), state, "state")
    restored = jax.tree.map(_like_current, current_pure, state)
    nnx.replace_by_pure_dict(current, restored)
    nnx.update(module, current)


def copy_operator(operator: Any, config: Any, rngs: nnx.Rngs | None, name: str) -> Any:
    """A new operator of ``operator``'s class with ``config`` (None: the same) and ``rngs``.

    Without ``rngs`` the copy continues ``operator``'s random stream (same base key and
    record counter), drawing from a clone of its rngs so ``operator``'s do not advance.

    Raises:
      TypeError: ``config`` is not of ``operator``'s config class.
    """
    new_config = operator.config if config is None else config
    if not isinstance(new_config, type(operator.config)):
        raise TypeError(
            f"{type(operator).__name__}.copy needs a {type(operator.config).__name__}, "
            f"got {type(new_config).__name__}"
        )
    source = rngs if rngs is not None or operator.rngs is None else nnx.clone(operator.rngs)
    twin = type(operator)(new_config, rngs=source, name=name)
    if rngs is None and operator.stochastic and twin.stochastic:
        twin._base_key.set_value(operator._base_key.get_value())
        twin._record_counter.set_value(operator._record_counter.get_value())
    return twin


class StateAPI:
    """An operator's state methods: ``get_state`` / ``set_state`` (``pure_state`` /
    ``restore_state``), ``clone`` and ``copy`` (``copy_operator``)."""

    name: str
    _stats: Any
    _cache: Any

    def get_state(self) -> dict[str, Any]:
        """The NNX state as plain numeric arrays (keys as raw ``uint32`` data)."""
        return pure_state(self)  # type: ignore[arg-type]  # mixed into an nnx.Module

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores ``get_state()`` output, strictly (``state.restore_state``)."""
        restore_state(self, state)  # type: ignore[arg-type]

    def clone(self) -> Any:
        """An independent operator with the same config and the same state."""
        twin = nnx.clone(self)
        twin._stats = copy_module.copy(self._stats)
        twin._cache = OutputCache()
        return twin

    def copy(
        self,
        *,
        config: Any = None,
        rngs: nnx.Rngs | None = None,
        name: str | None = None,
    ) -> Any:
        """A new operator with ``config`` / ``rngs`` / ``name`` replaced; without ``rngs`` it
        continues this one's stream (``state.copy_operator``)."""
        return copy_operator(self, config, rngs, name or self.name)


def _is_typed_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _raw_key_data(x: Any) -> Any:
    """A typed PRNG key as its raw uint32 data; any other leaf unchanged."""
    return jax.random.key_data(x) if _is_typed_key(x) else x


def _like_current(current: Any, saved: Any) -> Any:
    """``saved`` in the form of ``current``: raw key data wrapped back into a typed key."""
    if _is_typed_key(current):
        impl = jax.random.key_impl(current)
        return jax.random.wrap_key_data(jnp.asarray(saved, jnp.uint32), impl=impl)
    return jnp.asarray(saved)


def _check_same_structure(current: Any, saved: Any, where: str) -> None:
    """Raises ValueError naming the first place ``saved`` differs from ``current``."""
    if isinstance(current, dict):
        if not isinstance(saved, dict):
            raise ValueError(f"{where}: expected a dict, got {type(saved).__name__}")
        missing = sorted(map(str, set(current) - set(saved)))
        extra = sorted(map(str, set(saved) - set(current)))
        if missing or extra:
            raise ValueError(f"{where}: keys differ (missing={missing}, extra={extra})")
        for key in current:
            _check_same_structure(current[key], saved[key], f"{where}[{key!r}]")
        return
    saved_shape = jnp.shape(saved)
    if jnp.shape(current) != saved_shape:
        raise ValueError(f"{where}: shape {saved_shape}, expected {jnp.shape(current)}")
    if jnp.result_type(current) != jnp.result_type(saved):
        raise ValueError(
            f"{where}: dtype {jnp.result_type(saved)}, expected {jnp.result_type(current)}"
        )
