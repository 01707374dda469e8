"""``NoiseOperator`` and ``DropoutOperator``: datarax's operator API around a mode's kernel.

``ImageOperator`` is an ``nnx.Module`` holding a kernel (``datarax_ops.kernel``: the
mode's pure draw and apply, chosen by ``datarax_ops.modes``) and the datarax surface:
``op(batch)`` / ``apply_batch``, ``apply``, datarax's stage call ``_apply_on_raw``,
``generate_random_params``, statistics, cache, state and copies.  Each concern is a small
helper it delegates to: ``fields`` (input and output checks), ``records`` (which record
is which), ``params`` (random params and datarax's forms), ``bookkeeping`` (statistics,
cache, counters) and ``state`` (get/set state).

Randomness: a stochastic operator draws one base key from its RNG stream when built; a
record's key is ``stream.identity_key(base_key, (epoch, shard, index))``, so a record's
noise depends only on the base key and its identity (docs/determinism.md).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from datarax_ops import buckets, params, records, stream
from datarax_ops._common import get_field, is_prng_key, record_key_data
from datarax_ops.batch import is_batch_like, not_a_batch, with_data_like
from datarax_ops.bookkeeping import BookkeepingAPI, DataStatistics, OutputCache, set_if_mutable
from datarax_ops.fields import FieldRoute
from datarax_ops.kernel import Kernel, batch_program, element_programs
from datarax_ops.modes import kernel_for
from datarax_ops.reference.config import (
    DropoutOperatorConfig,
    ModalityOperatorConfig,
    NoiseOperatorConfig,
)
from datarax_ops.state import StateAPI

Array = jax.Array
PyTree = Any
DEFAULT_STREAM = "default"


class ImageOperator(BookkeepingAPI, StateAPI, nnx.Module):
    """datarax's modality-operator API around a ``Kernel``; subclasses set ``config_class``.

    The inherited bookkeeping (statistics, cache, operation counters) and state (get/set,
    clone, copy) methods come from ``bookkeeping.BookkeepingAPI`` and ``state.StateAPI``.
    """

    config: ModalityOperatorConfig
    config_class: ClassVar[type[ModalityOperatorConfig]] = ModalityOperatorConfig

    def __init__(
        self,
        config: ModalityOperatorConfig,
        *,
        rngs: nnx.Rngs | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config, self.rngs = config, rngs
        self.name = name if name is not None else type(self).__name__
        self.stochastic, self.stream_name = config.stochastic, config.stream_name
        self._kernel = self.make_kernel(config)
        self._fields = FieldRoute.from_config(config)
        self._applied_count = nnx.Variable(jnp.zeros((), jnp.int32))
        self._skipped_count = nnx.Variable(jnp.zeros((), jnp.int32))
        self._stats = DataStatistics(config.precomputed_stats)
        self._cache = OutputCache()
        if config.stochastic:
            # the 64-bit position (high, low) of the next record without an identity
            self._record_counter = nnx.Variable(jnp.zeros((2,), jnp.uint32))
            base_key = records.draw_base_key(rngs, self.rng_stream, type(self).__name__)
            self._base_key = nnx.Variable(base_key)

    make_kernel = staticmethod(kernel_for)
    """The kernel of ``config``'s mode (``modes.kernel_for``); a subclass may give another."""

    @property
    def kernel(self) -> Kernel:
        """The mode's pure functions (``draw``, ``apply``) with this config."""
        return self._kernel

    # ----- RNG streams ------------------------------------------------------
    @property
    def rng_stream(self) -> str:
        """The ``nnx.Rngs`` stream a stochastic operator draws its base key from."""
        return self.config.stream_name or DEFAULT_STREAM

    def requires_rng_streams(self) -> list[str] | None:
        """``[stream]`` for a stochastic operator, ``None`` for a deterministic one."""
        return [self.rng_stream] if self.stochastic else None

    def ensure_rng_streams(self, stream_names: list[str]) -> None:
        """Raises ``ValueError`` if a required stream is not among ``stream_names``."""
        missing = [s for s in self.requires_rng_streams() or [] if s not in stream_names]
        if missing:
            raise ValueError(
                f"{type(self).__name__} requires RNG stream(s) {missing}; available: "
                f"{list(stream_names)}"
            )

    # ----- random params ----------------------------------------------------
    def generate_random_params(
        self, rng: Array, data_shapes: dict[str, tuple[int, ...]]
    ) -> dict[str, Array]:
        """Params for a batch: ``{param_key: (batch, ...)}`` (``params.generate_params``)."""
        return params.generate_params(self._kernel, self.config.field_key, rng, data_shapes)

    # ----- one element ------------------------------------------------------
    def apply(
        self,
        data: dict[str, Array],
        state: dict[str, Any],
        metadata: Any,
        random_params: dict[str, Array] | Array | None = None,
        stats: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Array], dict[str, Any], Any]:
        """One element (``data[field_key]``, e.g. ``(H, W, C)``) -> ``(data, state, metadata)``.

        Deterministic: the fixed pattern (params ignored).  Stochastic: ``random_params``
        (one element's params, datarax 0.1.4's forms too, or one record's PRNG key, typed
        ``()`` or raw ``uint32 (2,)``, as datarax 0.1.17 passes it), else a draw at the
        record's identity (``metadata``, else the record counter, which advances).
        """
        del stats  # noise and dropout use no statistics
        image = self._fields.source(data, batched=False)
        self._fields.check_finite(image)
        _, apply_fn, draw_and_apply_fn = element_programs(self._kernel)
        if self.stochastic and random_params is not None and not is_prng_key(random_params):
            given = params.checked_params(self._kernel, random_params, tuple(image.shape))
            output = apply_fn(image, given)
        else:  # any element shape: its size bucket's program (datarax_ops.buckets)
            key = self._element_key(random_params, metadata)
            output = buckets.call(draw_and_apply_fn, self._kernel, key, image)
        self._count(1)
        return self._fields.route(data, output), state, metadata

    def _element_key(self, random_params: Any, metadata: Any) -> Array:
        """One element's record key: the fixed pattern, the key given, or its identity's."""
        if not self.stochastic:
            return stream.fixed_pattern_key()
        if is_prng_key(random_params):
            return record_key_data(random_params)
        identity = records.identity_of(metadata)
        if identity is None:
            identity = records.next_identity(self._record_counter, type(self).__name__)
        return stream.identity_key(self._base_key[...], identity)

    # ----- batches ----------------------------------------------------------
    def _apply_records(self, data: dict, identities: Array | None) -> dict:
        """``data`` with its batched field ``(batch, *element_shape)`` transformed record by
        record; ``identities`` (``uint32 (batch, 4)``) key the records, None numbers them by
        the record counter.  Every batch path runs this."""
        images = self._fields.source(data, batched=True)
        if images.shape[0] == 0:
            return self._fields.route(data, images)
        if self.stochastic or not self.config.cacheable or isinstance(images, jax.core.Tracer):
            output = self._run_program(images, identities)
        else:  # a deterministic, cacheable operator on concrete input
            self._fields.check_finite(images)
            program = batch_program(self._kernel, False, self.config.batch_strategy)

            def compute() -> Array:  # only on a cache miss
                padded, restore = buckets.prepare_for(self._kernel, program, images, batched=True)
                return restore(program(None, None, jnp.zeros((), jnp.int32), padded, None)[0])

            output = self._cache.lookup(images, compute)
            self._count(images.shape[0])
        return self._fields.route(data, output)

    def _run_program(self, images: Array, identities: Array | None) -> Array:
        """The compiled step over ``images``; counters and the record counter advanced."""
        check = self._fields.wants_finite_check(images)
        program = batch_program(self._kernel, self.stochastic, self.config.batch_strategy, check)
        tally = self._skipped_count if self._kernel.is_identity() else self._applied_count
        base_key = self._base_key.get_value() if self.stochastic else None
        counter = self._record_counter.get_value() if self.stochastic else None
        if not self.stochastic:
            identities = None
        # eager: size buckets
        padded, restore = buckets.prepare_for(self._kernel, program, images, batched=True)
        output, counter, new_tally, finite = program(
            base_key, counter, tally.get_value(), padded, identities
        )
        output = restore(output)
        if check and not bool(finite):
            self._fields.check_finite(images)  # counts the bad values and raises
        if counter is not None and identities is None:  # the records took counter positions
            records.store_counter(self._record_counter, counter, type(self).__name__)
        set_if_mutable(tally, new_tally)
        return output

    def apply_batch(self, batch: Any, stats: dict[str, Any] | None = None) -> Any:
        """Every record of ``batch`` (ours, datarax's, or any ``batch.is_batch_like``; field
        ``(batch, *element_shape)``) -> a new batch of its class, all else kept.  Records are
        keyed by their metadata identity, else by the record counter.  Errors are named
        (``fields.FieldRoute.source``, ``batch.not_a_batch``)."""
        del stats  # noise and dropout use no statistics
        if not is_batch_like(batch):
            raise not_a_batch(f"{type(self).__name__}.apply_batch", batch)
        data = batch.data.get_value()
        if batch.batch_size == 0 and not jax.tree.leaves(data):
            return batch  # nothing to transform (datarax returns it too)
        identities = records.batch_identities(batch) if self.stochastic else None
        return with_data_like(batch, self._apply_records(data, identities))

    def _apply_on_raw(
        self,
        data: dict,
        states: Any,
        stats: dict[str, Any] | None = None,
        record_indices: Array | None = None,
        epoch: Array | int | None = None,
    ) -> tuple[dict, Any]:
        """datarax's stage call: batched ``data`` -> ``(data, states)``; record ``i`` is
        ``(epoch, shard 0, record_indices[i])`` (``records.stage_identities``)."""
        del stats
        return self._apply_records(data, records.stage_identities(record_indices, epoch)), states

    def __call__(self, batch: Any) -> Any:
        """``apply_batch(batch)``; a dict of batched arrays gives a dict (counter-keyed)."""
        if isinstance(batch, dict):
            return self._apply_records(batch, None)
        return self.apply_batch(batch)

    # ----- structure --------------------------------------------------------
    def get_output_structure(
        self, sample_data: PyTree, sample_state: PyTree
    ) -> tuple[PyTree, PyTree]:
        """``(data structure, state structure)`` of one element's output, leaves None."""
        out = jax.eval_shape(functools.partial(self._transform_fixed, self._fields), sample_data)
        return jax.tree.map(lambda _: None, out), jax.tree.map(lambda _: None, sample_state)

    def _transform_fixed(self, fields: FieldRoute, data: PyTree) -> PyTree:
        image = jnp.asarray(get_field(data, fields.field_key))
        drawn = self._kernel.draw(stream.fixed_pattern_key(), tuple(image.shape))
        return fields.route(data, self._kernel.apply(image, drawn))

    def output_spec(self, input_spec: PyTree) -> PyTree:
        """The input element spec (shape and dtype kept), routed like the output."""
        return self._fields.route(input_spec, get_field(input_spec, self.config.field_key))


class NoiseOperator(ImageOperator):
    """Image noise: ``mode`` one of ``reference.config.NOISE_MODES`` (``datarax_ops/modes/``).

    Example::

        op = NoiseOperator(NoiseOperatorConfig(field_key="image", mode="gaussian",
                                               noise_std=0.05, stochastic=True),
                           rngs=nnx.Rngs(0))
        noisy = op(batch)           # Batch in, Batch out; jit with nnx.jit
    """

    config: NoiseOperatorConfig
    config_class = NoiseOperatorConfig


class DropoutOperator(ImageOperator):
    """Image dropout: ``mode`` one of ``reference.config.DROPOUT_MODES`` (``datarax_ops/modes/``).

    Example::

        op = DropoutOperator(DropoutOperatorConfig(field_key="image", dropout_rate=0.2,
                                                   mode="channel", stochastic=True),
                             rngs=nnx.Rngs(0))
        out = op(batch)
    """

    config: DropoutOperatorConfig
    config_class = DropoutOperatorConfig
