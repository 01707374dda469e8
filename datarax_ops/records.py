"""Which record is which: identities from metadata or datarax's stage call, and the counter.

A stochastic operator keys record ``r`` by its identity ``(epoch, shard, index)``
(``stream.identity_key``).  The identity comes from the batch's metadata, from datarax's
stage call (its record indices and epoch), or, when neither names the records, from the
operator's 64-bit record counter, which then advances.  These functions hold those rules;
the operator only chooses which applies.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from flax.errors import TraceContextError

from datarax_ops import stream
from datarax_ops.batch import identity_array, metadata_of
from datarax_ops.errors import RngStreamError

Array = jax.Array


def draw_base_key(rngs: nnx.Rngs | None, name: str, owner: str) -> Array:
    """A stochastic operator's base key, raw ``uint32 (2,)``, drawn once from ``rngs[name]``.

    Raises:
      ValueError: no ``rngs`` (datarax's message first).
      RngStreamError: ``rngs`` lack the stream (flax's message first, as datarax lets it
        through; a ``ValueError`` and a ``KeyError``).
    """
    if rngs is None:
        raise ValueError(
            "Stochastic operators require rngs parameter. Pass rngs=nnx.Rngs(..., "
            f"{name}=...) (stochastic {owner} needs rngs with a {name!r} stream)"
        )
    try:
        return jax.random.key_data(rngs[name]())
    except (AttributeError, KeyError) as error:
        raise RngStreamError(
            f"No RngStream named '{name}' found in Rngs. (stochastic {owner} needs RNG "
            f"stream {name!r}, which the given rngs do not have: pass "
            f"rngs=nnx.Rngs({name}=...))"
        ) from error


def batch_identities(batch: Any) -> Array | None:
    """``uint32 (batch, 4)`` identities from ``batch``'s metadata (this project's or
    datarax's ``Metadata``, or dicts); None when some record has no index.

    Raises:
      ValueError: the metadata list's length is not the batch size; a value is out of range.
      TypeError: a value is not an integer.
    """
    metadata = metadata_of(batch)
    if not metadata or metadata[0] is None:
        return None
    if len(metadata) != batch.batch_size:
        raise ValueError(
            f"the batch has {batch.batch_size} records but {len(metadata)} metadata entries"
        )
    return identity_array(metadata)


def identity_of(metadata: Any) -> Array | None:
    """``uint32 (4,)``: one record's identity from its metadata; None without an index."""
    identities = identity_array([metadata])
    return None if identities is None else identities[0]


def stage_identities(record_indices: Any, epoch: Any) -> Array | None:
    """``uint32 (batch, 4)`` identities ``(epoch, shard 0, index)`` from datarax's stage call.

    ``record_indices``: int ``(batch,)`` (traced inside datarax's compiled step), or None
    (then None: the counter numbers the records).  ``epoch``: None (0), a scalar, or one
    per record ``(batch,)``.
    """
    if record_indices is None:
        return None
    return stream.identity_words(0 if epoch is None else epoch, 0, jnp.asarray(record_indices))


def frozen_counter_message(owner: str, call: str) -> str:
    """The error for a call that would have to advance a counter it cannot change."""
    return (
        f"{owner}: {call} under a JAX transform of a closed-over operator cannot advance the "
        "record counter: pass random_params (from generate_random_params), a record key, or "
        "metadata with an 'index' (record indices, in datarax's stage call), or use nnx "
        "transforms"
    )


def store_counter(counter: nnx.Variable, value: Array, owner: str) -> None:
    """Writes the advanced counter, or raises ``ValueError`` where it cannot change (a plain
    JAX transform of a closed-over operator would reuse the same positions every call)."""
    try:
        counter.set_value(value)
    except TraceContextError as error:
        raise ValueError(frozen_counter_message(owner, "a batch call")) from error


def next_identity(counter: nnx.Variable, owner: str) -> Array:
    """``uint32 (4,)``: the identity of the counter's next record; advances the counter.

    Where the counter cannot advance (a plain JAX transform of a closed-over operator:
    every record would silently get the same noise) the returned identity is tied to an
    effectful callback that raises ``ValueError`` when the program runs.  Under
    ``jax.eval_shape`` nothing runs and nothing is raised (datarax 0.1.4 asks a wrapped
    operator for its output structure that way).
    """
    identities, advanced = stream.counter_identities(counter.get_value(), 1)
    try:
        counter.set_value(advanced)
    except TraceContextError:
        message = frozen_counter_message(owner, "apply")

        def refuse() -> None:
            raise ValueError(message)

        jax.debug.callback(refuse)
    return identities[0]
