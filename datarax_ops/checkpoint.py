"""Save and restore operators' random-stream state with orbax (optional extra ``orbax``).

An operator's whole resumable state is ``op.get_state()``: a nested dict of
plain numeric arrays (base key and record counter as ``uint32``, the operation
counters as ``int32``, the ``nnx.Rngs`` stream's key data and count).  These
helpers write that dict with ``orbax.checkpoint.StandardCheckpointer`` and read
it back into operators built from the same configs, in this or another process::

    save_operator_states("/ckpt/step_100/augment", {"noise": noise, "dropout": dropout})
    ...  # a new process: build noise and dropout from their configs, then
    restore_operator_states("/ckpt/step_100/augment", {"noise": noise, "dropout": dropout})

After the restore, ``op(batch)`` continues exactly where the saved operator
stopped (same base key, same record counter).  To keep it next to a model in an
``orbax.checkpoint.CheckpointManager``, save ``operator_states(...)`` as one more
item (``ocp.args.StandardSave(tree)``) and restore it with
``ocp.args.StandardRestore(abstract_operator_states(...))`` followed by
``set_operator_states(...)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax

from datarax_ops.operator import ImageOperator

try:
    import orbax.checkpoint as ocp
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "datarax_ops.checkpoint needs orbax-checkpoint: pip install 'datarax-ops[orbax]'"
    ) from error

Operators = ImageOperator | Mapping[str, ImageOperator]
StateTree = dict[str, Any]

__all__ = [
    "abstract_operator_states",
    "operator_states",
    "restore_operator_states",
    "save_operator_states",
    "set_operator_states",
]


def _as_mapping(operators: Operators) -> tuple[Mapping[str, ImageOperator], bool]:
    if isinstance(operators, ImageOperator):
        return {"operator": operators}, True
    if not isinstance(operators, Mapping) or not all(
        isinstance(op, ImageOperator) for op in operators.values()
    ):
        raise TypeError("operators must be an operator or a mapping of names to operators")
    return operators, False


def operator_states(operators: Operators) -> StateTree:
    """``get_state()`` of one operator, or ``{name: get_state()}`` of a mapping."""
    mapping, single = _as_mapping(operators)
    states = {name: op.get_state() for name, op in mapping.items()}
    return states["operator"] if single else states


def abstract_operator_states(operators: Operators) -> StateTree:
    """The shapes and dtypes of ``operator_states(operators)`` (``jax.ShapeDtypeStruct``
    leaves): the restore target orbax needs."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, operator_states(operators))


def set_operator_states(operators: Operators, states: StateTree) -> None:
    """``set_state`` on each operator from a tree shaped like ``operator_states``.

    Raises:
      ValueError: a structure, shape or dtype differs (``set_state`` is strict).
    """
    mapping, single = _as_mapping(operators)
    if single:
        states = {"operator": states}
    missing = sorted(set(mapping) - set(states))
    if missing:
        raise ValueError(f"no saved state for operators {missing}; saved: {sorted(states)}")
    for name, op in mapping.items():
        op.set_state(dict(states[name]))


def save_operator_states(
    directory: str | os.PathLike, operators: Operators, *, force: bool = False
) -> None:
    """Writes ``operator_states(operators)`` to ``directory`` (made absolute) and waits
    until the checkpoint is committed.  ``force`` overwrites an existing one."""
    path = os.path.abspath(os.fspath(directory))
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, operator_states(operators), force=force)
        checkpointer.wait_until_finished()


def restore_operator_states(directory: str | os.PathLike, operators: Operators) -> None:
    """Reads the checkpoint in ``directory`` into ``operators`` (built from the same
    configs as the saved ones), in place.

    Raises:
      ValueError: the saved state does not fit the operators (other modes, keys).
    """
    path = os.path.abspath(os.fspath(directory))
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(path, abstract_operator_states(operators))
    set_operator_states(operators, restored)
