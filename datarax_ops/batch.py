"""``Element``, ``Batch`` and ``Metadata``, shaped like datarax's so its code runs unchanged.

* ``Element(data=..., state=..., metadata=...)``: one record; ``data`` is a
  dict (possibly nested) of arrays, ``state`` a dict of arrays, ``metadata``
  a ``Metadata`` (or a dict with an ``"index"`` entry) or None.
* ``Batch(elements)`` stacks elements; ``Batch.from_parts(data=..., states=...)``
  wraps arrays that already have a leading batch axis.  ``batch.data`` and
  ``batch.states`` hold their trees behind datarax's accessor: read them with
  ``.get_value()``.

``Batch`` is a JAX pytree (its arrays and metadata are the leaves, the batch
size is static), so it passes through ``jax.jit`` and ``nnx.jit`` as an
argument or a result.  It is deliberately not an ``nnx.Module``: building one
costs ~0.3 ms of Python, which on small images was the whole cost of a call.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.tree_util import GetAttrKey

from datarax_ops import stream
from datarax_ops._common import full_type_name
from datarax_ops.reference import stream as reference_stream

PyTree = Any


@struct.dataclass
class Metadata:
    """Per-record metadata: the record's identity in the stream, and where it is.

    A stochastic operator derives a record's randomness from its identity
    ``(epoch, shard_id, index)`` when every record of a batch carries an
    ``index``: a record gets the same noise whatever batch it arrives in, and
    another epoch or shard gets other noise.  ``shard_id=None`` counts as shard 0.
    """

    index: int = 0
    epoch: int = 0
    global_step: int = 0
    batch_idx: int | None = None
    shard_id: int | None = None


def record_identity(metadata: Any) -> tuple[Any, Any, Any] | None:
    """``(epoch, shard, index)`` held by ``metadata``, else None.

    ``metadata`` is a dict with an ``"index"`` (optionally ``"epoch"`` and
    ``"shard_id"``) or any object with an ``index`` attribute (optionally
    ``epoch`` and ``shard_id``): this project's ``Metadata`` and datarax's alike,
    recognised by those fields rather than by class.  A missing (or None) epoch
    or shard is 0.
    """
    epoch: Any
    shard: Any
    index: Any
    if isinstance(metadata, dict):
        if "index" not in metadata:
            return None
        epoch, shard, index = metadata.get("epoch"), metadata.get("shard_id"), metadata["index"]
    elif not callable(getattr(metadata, "index", len)):  # a field, not list.index & co.
        epoch = getattr(metadata, "epoch", None)
        shard = getattr(metadata, "shard_id", None)
        index = metadata.index
    else:
        return None
    if index is None:
        return None
    return (0 if epoch is None else epoch, 0 if shard is None else shard, index)


_IDENTITY_BOUNDS = (("epoch", 32), ("shard_id", 32), ("index", 64))


def _host_int(value: Any, name: str, bits: int, record: int) -> int:
    """``value`` as a Python int in ``[0, 2**bits)``, or a ValueError/TypeError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
            value = value.item()
        else:
            raise TypeError(
                f"record {record}'s metadata {name} must be an integer, got {value!r} "
                f"({type(value).__name__})"
            )
    value = int(value)
    if not 0 <= value < 2**bits:
        raise ValueError(
            f"record {record}'s metadata {name} must be in [0, 2**{bits}), got {value}"
        )
    return value


def identity_array(metadata_list: Sequence[Any]) -> Any | None:
    """Every record's identity words, ``uint32 (batch, 4)``: ``(epoch, shard,
    index >> 32, index & 0xffffffff)`` (see ``stream.identity_key``); None when some
    record has no index (the operator then numbers the records with its counter).

    Concrete metadata is checked and converted exactly on the host (indices up to
    ``2**64 - 1``); traced metadata (inside ``jit``) is converted with JAX.

    Raises:
      ValueError: a negative value, an epoch or shard ``>= 2**32``, an index ``>= 2**64``.
      TypeError: a non-integer value.
    """
    found = [record_identity(m) for m in metadata_list]
    identities = [identity for identity in found if identity is not None]
    if not identities or len(identities) < len(found):
        return None
    if any(isinstance(v, jax.Array) for identity in identities for v in identity):
        return jnp.stack([stream.identity_words(*(jnp.asarray(v) for v in i)) for i in identities])
    columns = [np.asarray(values) for values in zip(*identities, strict=True)]
    if all(column.dtype.kind in "iu" for column in columns):
        try:  # integer columns: the reference's packing checks the ranges at once
            return reference_stream.identity_words(*columns)
        except ValueError:
            pass
    # the slow path: exact per-record checks, an error naming the first bad record and field
    checked = [
        [_host_int(v, name, bits, record) for record, v in enumerate(values)]
        for (name, bits), values in zip(
            _IDENTITY_BOUNDS, zip(*identities, strict=True), strict=True
        )
    ]
    return reference_stream.identity_words(*(np.asarray(c, object) for c in checked))


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


class Field:
    """A value behind datarax's ``Variable`` accessors: ``get_value()``,
    ``set_value(v)``, ``.value`` and ``[...]``."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def get_value(self) -> Any:
        return self.value

    def set_value(self, value: Any) -> None:
        self.value = value

    def __getitem__(self, key: Any) -> Any:
        return self.value[key]

    def __repr__(self) -> str:
        return f"Field({self.value!r})"


def _rank_error(name: str, path: Any, shape: tuple[int, ...], batch_size: int | None) -> ValueError:
    """The error for an array of a batch without (the right) leading batch axis."""
    where = f"{name}{jax.tree_util.keystr(path)}"
    if not shape:
        return ValueError(
            f"{where} has shape () (rank 0): every array of a batch needs a leading batch axis "
            "(rank >= 1); one number per record is an array of shape (batch,)"
        )
    return ValueError(
        f"{where} has shape {shape}; every array needs the batch size {batch_size} as its "
        "leading axis"
    )


def _leading_size(tree: PyTree, name: str) -> int | None:
    """The leading axis of ``tree``'s first array (None without arrays); ValueError at rank 0."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return None
    shape = jnp.shape(leaves[0])
    if not shape:  # name the offending field (the slower path walk only on error)
        path, _ = jax.tree_util.tree_leaves_with_path(tree)[0]
        raise _rank_error(name, path, (), None)
    return int(shape[0])


def _stack(trees: list[PyTree], name: str) -> PyTree:
    """The elements' ``name`` trees stacked along a new leading axis, or a ValueError
    naming the element or field that does not fit (structure, shape)."""
    structure: Any = jax.tree.structure(trees[0])
    for i, tree in enumerate(trees[1:], start=1):
        other: Any = jax.tree.structure(tree)
        if other != structure:
            raise ValueError(
                f"element {i}'s {name} has structure {other}, element 0's has {structure}: "
                "every element of a batch needs the same fields"
            )

    def stack(path: Any, *xs: Any) -> Any:
        shapes = [tuple(jnp.shape(x)) for x in xs]
        if len(set(shapes)) > 1:
            i = next(i for i, shape in enumerate(shapes) if shape != shapes[0])
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)} has shape {shapes[i]} in element {i} and "
                f"{shapes[0]} in element 0: every element of a batch needs the same shapes"
            )
        return jnp.stack(xs)

    return jax.tree_util.tree_map_with_path(stack, *trees)


_CHILDREN = ("data", "states", "_metadata_list", "_batch_metadata", "batch_state", "_valid_mask")


@jax.tree_util.register_pytree_with_keys_class
class Batch:
    """A batch of records stored as stacked arrays (leading axis = record).

    Attributes:
      data: ``Field`` of a dict (possibly nested) of arrays ``(batch, ...)``.
      states: ``Field`` of a dict of arrays ``(batch, ...)``.
      batch_state: ``Field`` of a dict for the whole batch.
      valid_mask: ``Field`` of a bool ``(batch,)`` array (all True by default).
      batch_size: the number of records (static under jit).
    """

    __slots__ = ("batch_size", *_CHILDREN)

    def __init__(self, elements: Sequence[Element], validate: bool = True) -> None:
        elements = list(elements)
        if elements:
            data = _stack([e.data for e in elements], "data")
            states = _stack([e.state for e in elements], "states")
        else:
            data, states = {}, {}
        self._set(len(elements), data, states, [e.metadata for e in elements], None, {}, None)
        if validate:
            self._validate()

    def _set(
        self,
        size: int,
        data: PyTree,
        states: PyTree,
        metadata_list: list[Any],
        batch_metadata: Any,
        batch_state: PyTree,
        valid_mask: Any,
    ) -> None:
        self.batch_size = size
        self.data = Field(data)
        self.states = Field(states)
        self._metadata_list = Field(metadata_list)
        self._batch_metadata = Field(batch_metadata)
        self.batch_state = Field(batch_state)
        # None until read: building a (batch,) array costs a device call per batch.
        self._valid_mask = Field(valid_mask)

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

        Raises:
          ValueError: an array lacks the batch axis, ``valid_mask`` or
            ``metadata_list`` has the wrong length (with ``validate``; a rank-0
            first array and the metadata length are always checked).
        """
        states = {} if states is None else states
        size = _leading_size(data, "data")
        if size is None:
            size = _leading_size(states, "states") or 0
        if metadata_list is None:
            metadata_list = [None] * size
        elif len(metadata_list) != size:
            raise ValueError(f"metadata_list has {len(metadata_list)} entries for {size} records")
        batch = object.__new__(cls)
        batch._set(
            size,
            data,
            states,
            list(metadata_list),
            batch_metadata,
            {} if batch_state is None else batch_state,
            valid_mask,
        )
        if validate:
            batch._validate()
        return batch

    def with_data(self, data: PyTree) -> Batch:
        """A new batch with ``data`` replaced; everything else shared (not copied)."""
        batch = object.__new__(Batch)
        batch._set(
            self.batch_size,
            data,
            self.states.value,
            self._metadata_list.value,
            self._batch_metadata.value,
            self.batch_state.value,
            self._valid_mask.value,
        )
        return batch

    def _validate(self) -> None:
        """Every array in data and states has the batch size as its leading axis;
        a given ``valid_mask`` has shape ``(batch,)``."""
        for name, tree in (("data", self.data.get_value()), ("states", self.states.get_value())):
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
                shape = tuple(jnp.shape(leaf))
                if not shape or shape[0] != self.batch_size:
                    raise _rank_error(name, path, shape, self.batch_size)
        mask = self._valid_mask.value
        if mask is not None and tuple(jnp.shape(mask)) != (self.batch_size,):
            raise ValueError(
                f"valid_mask has shape {tuple(jnp.shape(mask))}; a batch of {self.batch_size} "
                f"records needs ({self.batch_size},)"
            )

    # ----- pytree ------------------------------------------------------------
    def tree_flatten_with_keys(self) -> tuple[list[tuple[GetAttrKey, Any]], int]:
        values = [getattr(self, name).value for name in _CHILDREN]
        return [(GetAttrKey(n), v) for n, v in zip(_CHILDREN, values, strict=True)], self.batch_size

    @classmethod
    def tree_unflatten(cls, batch_size: int, children: Sequence[Any]) -> Batch:
        batch = object.__new__(cls)
        batch._set(batch_size, *children)
        return batch

    # ----- reading ---------------------------------------------------------
    @property
    def valid_mask(self) -> Field:
        """``Field`` of the bool ``(batch,)`` validity mask (all True unless given)."""
        if self._valid_mask.value is None:
            self._valid_mask.value = jnp.ones((self.batch_size,), jnp.bool_)
        return self._valid_mask

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

    def __repr__(self) -> str:
        shapes = jax.tree.map(lambda x: tuple(jnp.shape(x)), self.data.get_value())
        return f"Batch(batch_size={self.batch_size}, data={shapes})"


# --------------------------------------------------------------------------- #
# Any batch with datarax's interface                                           #
# --------------------------------------------------------------------------- #
def is_batch_like(value: Any) -> bool:
    """True for this project's ``Batch`` and any batch with datarax's interface.

    That interface: ``data`` and ``states`` behind ``get_value()``, an int
    ``batch_size`` and a ``from_parts`` class method (datarax 0.1.4 and 0.1.17's
    ``datarax.typing.Batch``).  Recognised by shape, so datarax is never imported.
    """
    if isinstance(value, Batch):
        return True
    return (
        callable(getattr(getattr(value, "data", None), "get_value", None))
        and callable(getattr(getattr(value, "states", None), "get_value", None))
        and hasattr(value, "batch_size")
        and callable(getattr(type(value), "from_parts", None))
    )


def not_a_batch(call: str, value: Any) -> TypeError:
    """The error for ``call`` given something that is not batch-like; names its full type."""
    return TypeError(
        f"{call} needs a batch (datarax_ops.batch.Batch, datarax's Batch, or any object with "
        f"data/states Variables, batch_size and from_parts), got {full_type_name(value)}: "
        "wrap arrays with a leading batch axis as Batch.from_parts(data={...}), or call "
        "op(dict) on a dict of arrays"
    )


def _value_of(holder: Any, default: Any = None) -> Any:
    """What a datarax ``Variable`` (or this project's ``Field``) holds; plain values as they are."""
    if holder is None:
        return default
    return holder.get_value() if callable(getattr(holder, "get_value", None)) else holder


def metadata_of(batch: Any) -> list[Any]:
    """The per-record metadata list of a batch-like (``[]`` when it keeps none)."""
    return list(_value_of(getattr(batch, "_metadata_list", None), []) or [])


@functools.lru_cache(maxsize=64)
def _from_parts_takes_valid_mask(cls: Any) -> bool:
    try:
        return "valid_mask" in inspect.signature(cls.from_parts).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return False


def with_data_like(batch: Any, data: PyTree) -> Any:
    """A batch of ``batch``'s own class with ``data`` replaced.

    States, per-record metadata, batch metadata, batch state and (where the class
    has one) the validity mask are kept; ``batch`` itself is not modified.  This
    project's ``Batch`` shares them; another class is rebuilt with its own
    ``from_parts(..., validate=False)``, as datarax's operators rebuild theirs.
    """
    if isinstance(batch, Batch):
        return batch.with_data(data)
    cls: Any = type(batch)
    parts: dict[str, Any] = {
        "data": data,
        "states": batch.states.get_value(),
        "metadata_list": metadata_of(batch) or None,
        "batch_metadata": _value_of(getattr(batch, "_batch_metadata", None)),
        "batch_state": _value_of(getattr(batch, "batch_state", None)),
        "validate": False,
    }
    if _from_parts_takes_valid_mask(cls) and getattr(batch, "valid_mask", None) is not None:
        parts["valid_mask"] = _value_of(batch.valid_mask)
    return cls.from_parts(**parts)
