"""``Element``, ``Batch`` and ``Metadata``, shaped like datarax's so its code runs unchanged.

* ``Element(data=..., state=..., metadata=...)``: one record; ``data`` is a
  dict (possibly nested) of arrays, ``state`` a dict of arrays, ``metadata``
  a ``Metadata`` (or a dict with an ``"index"`` entry) or None.
* ``Batch(elements)`` stacks elements; ``Batch.from_parts(data=..., states=...)``
  wraps arrays that already have a leading batch axis.  ``batch.data`` and
  ``batch.states`` are ``nnx.Variable``s: read them with ``.get_value()``.

``Batch`` is an ``nnx.Module``, so it passes through ``nnx.jit`` (and
``jax.jit``) as a pytree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx, struct

PyTree = Any


@struct.dataclass
class Metadata:
    """Per-record metadata.  ``index`` is the record's position in its stream.

    Stochastic operators derive a record's randomness from ``index`` when every
    record of a batch carries one, so a record gets the same noise whatever
    batch it arrives in.
    """

    index: int = 0
    epoch: int = 0
    global_step: int = 0
    batch_idx: int | None = None
    shard_id: int | None = None


def record_index(metadata: Any) -> Any | None:
    """The record index held by ``metadata`` (``Metadata`` or a dict), else None."""
    if isinstance(metadata, Metadata):
        return metadata.index
    if isinstance(metadata, dict) and "index" in metadata:
        return metadata["index"]
    return None


@struct.dataclass
class Element:
    """One record: ``data`` (dict of arrays), ``state`` (dict), ``metadata``."""

    data: PyTree = struct.field(default_factory=dict)
    state: dict[str, Any] = struct.field(default_factory=dict)
    metadata: Any = None

    def replace(self, **updates: Any) -> Element:  # provided by struct.dataclass
        return dataclasses.replace(self, **updates)

    def update_data(self, updates: dict[str, Any]) -> Element:
        """A new element with ``updates`` merged into ``data``."""
        return self.replace(data={**self.data, **updates})

    def update_state(self, updates: dict[str, Any]) -> Element:
        """A new element with ``updates`` merged into ``state``."""
        return self.replace(state={**self.state, **updates})

    def with_metadata(self, metadata: Any) -> Element:
        return self.replace(metadata=metadata)


def _leading_size(tree: PyTree) -> int | None:
    leaves = jax.tree.leaves(tree)
    return int(jnp.shape(leaves[0])[0]) if leaves else None


class Batch(nnx.Module):
    """A batch of records stored as stacked arrays (leading axis = record)."""

    def __init__(self, elements: Sequence[Element], validate: bool = True) -> None:
        elements = list(elements)
        self.batch_size = len(elements)
        if elements:
            data = jax.tree.map(lambda *xs: jnp.stack(xs), *[e.data for e in elements])
            states = jax.tree.map(lambda *xs: jnp.stack(xs), *[e.state for e in elements])
        else:
            data, states = {}, {}
        self.data = nnx.Variable(data)
        self.states = nnx.Variable(states)
        self._metadata_list = nnx.Variable([e.metadata for e in elements])
        self._batch_metadata = nnx.Variable(None)
        self.batch_state: nnx.Variable[dict[str, Any]] = nnx.Variable({})
        self.valid_mask = nnx.Variable(jnp.ones((self.batch_size,), dtype=jnp.bool_))
        if validate:
            self._validate()

    @classmethod
    def from_parts(
        cls,
        data: PyTree,
        states: PyTree | None = None,
        metadata_list: list[Any] | None = None,
        batch_metadata: Any | None = None,
        batch_state: PyTree | None = None,
        *,
        validate: bool = True,
        valid_mask: jax.Array | None = None,
    ) -> Batch:
        """A batch from arrays that already have a leading batch axis.

        Args:
          data: dict (possibly nested) of arrays of shape ``(batch, ...)``.
          states: dict of arrays of shape ``(batch, ...)``; default ``{}``.
          metadata_list: one metadata per record, or None.
          valid_mask: ``(batch,)`` bool, default all True.
        """
        batch = cls([], validate=False)
        states = {} if states is None else states
        size = _leading_size(data)
        if size is None:
            size = _leading_size(states) or 0
        batch.batch_size = size
        batch.data = nnx.Variable(data)
        batch.states = nnx.Variable(states)
        if metadata_list is not None and len(metadata_list) != size:
            raise ValueError(f"metadata_list has {len(metadata_list)} entries for {size} records")
        batch._metadata_list = nnx.Variable(
            list(metadata_list) if metadata_list is not None else [None] * size
        )
        batch._batch_metadata = nnx.Variable(batch_metadata)
        batch.batch_state = nnx.Variable({} if batch_state is None else batch_state)
        mask = jnp.ones((size,), jnp.bool_) if valid_mask is None else jnp.asarray(valid_mask)
        batch.valid_mask = nnx.Variable(mask)
        if validate:
            batch._validate()
        return batch

    def _validate(self) -> None:
        """Every array in data and states has the batch size as its leading axis."""
        for name, tree in (("data", self.data.get_value()), ("states", self.states.get_value())):
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
                shape = jnp.shape(leaf)
                if not shape or shape[0] != self.batch_size:
                    where = jax.tree_util.keystr(path)
                    raise ValueError(
                        f"{name}{where} has shape {shape}; every array needs the batch size "
                        f"{self.batch_size} as its leading axis"
                    )

    # ----- reading ---------------------------------------------------------
    @property
    def metadata_list(self) -> list[Any]:
        return list(self._metadata_list.get_value())

    def get_data(self) -> PyTree:
        return self.data.get_value()

    def get_states(self) -> PyTree:
        return self.states.get_value()

    def get_batch_state(self) -> PyTree:
        return self.batch_state.get_value()

    def get_batch_metadata(self) -> Any:
        return self._batch_metadata.get_value()

    def get_element(self, index: int) -> Element:
        """Record ``index`` as an ``Element`` (negative indices count from the end)."""
        if not -self.batch_size <= index < self.batch_size:
            raise IndexError(f"record {index} out of range for batch of {self.batch_size}")
        pick = lambda x: x[index]  # noqa: E731
        return Element(
            data=jax.tree.map(pick, self.data.get_value()),
            state=jax.tree.map(pick, self.states.get_value()),
            metadata=self.metadata_list[index],
        )

    def get_elements(self, indices: slice | list[int] | None = None) -> list[Element]:
        positions = range(self.batch_size)
        chosen = positions[indices] if isinstance(indices, slice) else (indices or positions)
        return [self.get_element(i) for i in chosen]

    def slice(self, start: int, end: int) -> Batch:
        """Records ``start:end`` as a new batch."""
        cut = lambda x: x[start:end]  # noqa: E731
        return Batch.from_parts(
            data=jax.tree.map(cut, self.data.get_value()),
            states=jax.tree.map(cut, self.states.get_value()),
            metadata_list=self.metadata_list[start:end],
            batch_metadata=self.get_batch_metadata(),
            batch_state=self.get_batch_state(),
            valid_mask=self.valid_mask.get_value()[start:end],
        )

    def __getitem__(self, key: str) -> Any:
        return self.data.get_value()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.data.get_value()

    def __iter__(self) -> Iterator[str]:
        return iter(self.data.get_value())

    def __len__(self) -> int:
        return self.batch_size
