"""The operator base both ``NoiseOperator`` and ``DropoutOperator`` build on.

An operator is a ``flax.nnx.Module`` around a *kernel*: a small hashable
object holding the mode's parameters, with two pure functions,
``kernel.draw(key, element_shape) -> params`` (one record's randomness) and
``kernel.apply(image, params) -> image`` (deterministic).  Everything else
here is the datarax API around it: field routing, record keys, batching
strategy, statistics, caching, state and copies.

Randomness: a stochastic operator draws one base key from its RNG stream when
it is built.  Record ``i``'s key is ``fold_in(base_key, i)``, where ``i`` is the
record's ``Metadata.index`` when every record in the batch has one and
otherwise a record counter kept in the operator's NNX state.  A record's noise
therefore depends only on the base key and its position in the stream: the
same records give the same output in batches of 1x64, 2x32 or 64x1, and
``get_state`` / ``set_state`` resume the exact continuation.
"""

from __future__ import annotations

import collections
import copy as copy_module
import functools
import hashlib
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from flax.errors import TraceContextError

from datarax_ops import buckets, stream
from datarax_ops._common import as_typed_key, drop_field, get_field, has_field, set_field
from datarax_ops.batch import Batch, identity_array
from datarax_ops.errors import ParamsKeyError, RngStreamError
from datarax_ops.reference.config import ModalityOperatorConfig

Array = jax.Array
Params = dict[str, Array]
PyTree = Any

DEFAULT_STREAM = "default"
# How many compiled batch programs have been traced, by kernel (tests read it).
TRACE_COUNTS: collections.Counter[Any] = collections.Counter()
_CACHE_ENTRIES = 64


class Kernel:
    """A mode's pure functions around that mode's parameters (and nothing else).

    Subclasses are frozen dataclasses whose fields are exactly the mode's
    parameters, so they hash by value (compiled programs are shared between
    operators with the same parameters) and a change to another mode's config
    field never recompiles.  ``datarax_ops.modes.MODES`` lists them.
    """

    mode: ClassVar[str]
    param_key: ClassVar[str]
    # The mode's module-level functions ``draw_<mode>(kernel, key, element_shape)``
    # and ``apply_<mode>(kernel, image, params)``, which ``draw``/``apply`` call.
    draw_mode: ClassVar[Callable[..., Params]]
    apply_mode: ClassVar[Callable[..., Array]]

    @classmethod
    def from_config(cls, config: Any) -> Kernel:
        """The kernel of ``config`` (whose ``mode`` is this kernel's)."""
        raise NotImplementedError

    def draw(self, key: Array, element_shape: tuple[int, ...]) -> Params:
        """One record's params for an element of ``element_shape``; ``key`` is the
        record's raw key data, ``uint32 (2,)`` (see ``datarax_ops.stream``)."""
        return type(self).draw_mode(self, key, tuple(element_shape))

    def apply(self, image: Array, params: Params) -> Array:
        """One element transformed with ``params``; shape and dtype kept."""
        return type(self).apply_mode(self, image, params)

    @staticmethod
    def param_shape(element_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of ``params[param_key]`` for one element (default: the element's)."""
        return tuple(element_shape)

    def is_identity(self) -> bool:
        """True when the mode leaves every input untouched (nothing to draw)."""
        return False


def map_records(fn: Callable[..., Array], strategy: str, *args: PyTree) -> Array:
    """``fn`` over the leading axis of ``args``: ``jax.vmap`` or ``jax.lax.map`` ("scan")."""
    if strategy == "scan":
        return jax.lax.map(lambda xs: fn(*xs), args)
    return jax.vmap(fn)(*args)


def draw_and_apply(kernel: Kernel, key: Array, image: Array) -> Array:
    """One record: draw its params from ``key`` and apply them to ``image``.

    Every path that draws internally (one element, a batch under vmap or scan,
    eager or inside jit) runs this same function, so XLA compiles the draw and
    the arithmetic together the same way everywhere and the results are
    bit-identical.  (Compiled together, ``x + std * z`` may become one fused
    multiply-add; with params passed in from outside, ``apply`` adds the
    materialised noise, exactly as the reference does.)
    """
    return kernel.apply(image, kernel.draw(key, tuple(image.shape)))


@functools.lru_cache(maxsize=512)
def batch_program(
    kernel: Kernel, stochastic: bool, strategy: str, check_finite: bool = False
) -> Callable[..., tuple[Array, Array | None, Array, Array | None]]:
    """The compiled step of one operator setup, everything an eager call needs in one call.

    ``program(base_key, counter, tally, images, identities) ->
    (images, counter, tally, finite)``:

    * ``images``: ``(batch, *element_shape)`` in, transformed out.
    * ``identities``: ``uint32 (batch, 4)`` record identities (epoch, shard,
      64-bit index; ``batch.identity_array``), or None to number the records
      with the next ``batch`` positions of the record ``counter`` (``uint32 (2,)``,
      64-bit, returned advanced).  Turned into record keys by
      ``stream.identity_key``.  Both are ignored (pass None) when deterministic:
      every record uses the fixed pattern.
    * ``tally``: the int32 record count to advance by ``batch``.
    * ``finite``: bool scalar, no NaN/Inf in ``images``, when ``check_finite``,
      else None.  ``isfinite(max(|x|))``: ``max`` propagates NaN, and one max
      reduction is cheaper than counting (the count is made only to report it).

    Doing the index and counter arithmetic inside the compiled call (instead of
    one small JAX call each) is what makes an eager call on a small batch cheap.
    Cached per setup, so an eager ``op(batch)`` loop compiles once per input
    structure.
    """

    def program(
        base_key: Array | None,
        counter: Array | None,
        tally: Array,
        images: Array,
        identities: Array | None,
    ) -> tuple[Array, Array | None, Array, Array | None]:
        TRACE_COUNTS[kernel] += 1
        size = images.shape[0]
        transform = functools.partial(draw_and_apply, kernel)
        if stochastic:
            assert base_key is not None and counter is not None
            if identities is None:
                identities, counter = stream.counter_identities(counter, size)
            keys = stream.identity_key(base_key, identities)
            output = map_records(transform, strategy, keys, images)
        else:
            pattern = stream.fixed_pattern_key()
            output = map_records(lambda image: transform(pattern, image), strategy, images)
        finite = jnp.isfinite(jnp.max(jnp.abs(images))) if check_finite else None
        return output, counter, tally + jnp.int32(size), finite

    return jax.jit(program)


@functools.lru_cache(maxsize=512)
def element_programs(
    kernel: Kernel,
) -> tuple[Callable[..., Params], Callable[..., Array], Callable[..., Array]]:
    """Compiled ``draw(key, element_shape)``, ``apply(image, params)`` and
    ``draw_and_apply(key, image)`` for one element (``key``: raw ``uint32 (2,)``)."""
    return (
        jax.jit(kernel.draw, static_argnums=1),
        jax.jit(kernel.apply),
        jax.jit(functools.partial(draw_and_apply, kernel)),
    )


class _StatsStore:
    """Statistics live outside NNX state: they are set eagerly, not checkpointed."""

    def __init__(self) -> None:
        self.computed: dict[str, Any] | None = None
        self.manual = False
        self.reset = False


class _OutputCache:
    """Outputs of a deterministic operator keyed by the content of the input."""

    def __init__(self) -> None:
        self.entries: collections.OrderedDict[tuple[Any, ...], Array] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _is_real_dtype(dtype: Any) -> bool:
    """A floating or integer dtype (bool, complex, strings, objects are not)."""
    return dtype != jnp.bool_ and (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    )


def _dtype_of(value: Any) -> Any:
    """``value``'s dtype (arrays) or NumPy's for it (numbers, lists); None if it has none."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None:
        return dtype
    try:
        return np.asarray(value).dtype
    except (TypeError, ValueError):  # e.g. a ragged list
        return None


def _check_numeric(image: Any, field_key: str) -> None:
    dtype = _dtype_of(image)
    if dtype is None or not _is_real_dtype(dtype):
        raise TypeError(
            f"field {field_key!r} has dtype {dtype} ({type(image).__name__}); image operators "
            "need a real floating or integer array"
        )


def _shape_of(value: Any, where: str) -> tuple[int, ...]:
    """A shape given as a tuple/list (or 1-D array) of non-negative integers, checked."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in value
    ):
        raise TypeError(
            f"{where} must be a shape tuple of ints such as (batch, H, W, C), got {value!r}"
        )
    shape = tuple(int(d) for d in value)
    if any(d < 0 for d in shape):
        raise ValueError(f"{where} has a negative dimension: {shape}")
    return shape


# datarax 0.1.4's message when ``apply``'s random_params lack a mode's key; ours
# starts with it (then says which key this project reads and what it got).
DATARAX_MISSING_PARAMS = {
    "gaussian": "Stochastic mode requires 'noise' in random_params for Gaussian mode",
    "salt_pepper": "Stochastic mode requires 'noise_mask' in random_params for salt_pepper mode",
    "poisson": "Stochastic mode requires 'poisson_rngs' in random_params for poisson mode",
    "pixel": "Stochastic mode requires 'keep_mask' in random_params. "
    "This should be generated by generate_random_params().",
    "channel": "Stochastic mode requires 'keep_mask' in random_params. "
    "This should be generated by generate_random_params().",
}


def from_datarax_params(kernel: Kernel, random_params: Any, element_shape: tuple[int, ...]) -> Any:
    """One element's params in datarax 0.1.4's form, converted to this project's.

    The one place the two forms meet (README, "Params from datarax"):

    * poisson: datarax passes ``{"poisson_rngs": key}`` (the record's PRNG key,
      typed ``()`` or raw ``uint32 (2,)``) and samples ``jax.random.poisson``
      inside ``apply``; here the key becomes the record key of this project's
      draw, ``{"poisson_samples": kernel.draw(key)}`` (uniform levels).
    * channel: datarax's mask for an ``(H, W, C)`` element is ``(1, 1, C)``;
      here it is ``(C,)``.

    ``poisson_samples`` / a ``(C,)`` mask, when present, are used as they are.
    Anything else is returned unchanged for ``_checked_params`` to judge.
    """
    if not isinstance(random_params, dict):
        return random_params
    key = kernel.param_key
    if kernel.mode == "poisson" and key not in random_params and "poisson_rngs" in random_params:
        record_key = random_params["poisson_rngs"]
        try:
            typed, is_batch = as_typed_key(record_key)
        except TypeError as error:
            raise TypeError(f"random_params['poisson_rngs']: {error}") from error
        if is_batch:
            raise ValueError(
                "random_params['poisson_rngs'] must be one record's key (apply transforms one "
                f"element), got shape {tuple(jnp.shape(record_key))}"
            )
        draw = element_programs(kernel)[0]
        return {**random_params, **draw(jax.random.key_data(typed), tuple(element_shape))}
    if kernel.mode == "channel" and len(element_shape) == 3 and key in random_params:
        mask = random_params[key]
        channels = element_shape[-1]
        if tuple(getattr(mask, "shape", ())) == (1, 1, channels):
            return {**random_params, key: jnp.reshape(mask, (channels,))}
    return random_params


class ImageOperator(nnx.Module):
    """Base class: datarax's modality-operator API around a ``Kernel``.

    Subclasses set ``config_class`` and implement ``make_kernel(config) -> Kernel``.
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
        self.config = config
        self.rngs = rngs
        self.name = name if name is not None else type(self).__name__
        self.stochastic = config.stochastic
        self.stream_name = config.stream_name
        self._kernel = self.make_kernel(config)
        self._applied_count = nnx.Variable(jnp.zeros((), jnp.int32))
        self._skipped_count = nnx.Variable(jnp.zeros((), jnp.int32))
        self._stats = _StatsStore()
        self._cache = _OutputCache()
        if config.stochastic:
            # the 64-bit position (high, low) of the next record without metadata
            self._record_counter = nnx.Variable(jnp.zeros((2,), jnp.uint32))
            self._base_key = nnx.Variable(jax.random.key_data(self._draw_base_key(rngs)))

    # ------------------------------------------------------------------ #
    # To implement                                                        #
    # ------------------------------------------------------------------ #
    @staticmethod
    def make_kernel(config: Any) -> Kernel:
        """The kernel of ``config``'s mode (from ``datarax_ops.modes.MODES``)."""
        from datarax_ops.modes import kernel_for  # modes imports the operator modules

        return kernel_for(config)

    @property
    def kernel(self) -> Kernel:
        """The mode's pure functions (``draw``, ``apply``) with this config."""
        return self._kernel

    # ------------------------------------------------------------------ #
    # RNG streams                                                         #
    # ------------------------------------------------------------------ #
    @property
    def rng_stream(self) -> str:
        """The ``nnx.Rngs`` stream a stochastic operator draws its base key from."""
        return self.config.stream_name or DEFAULT_STREAM

    def _draw_base_key(self, rngs: nnx.Rngs | None) -> Array:
        stream = self.rng_stream
        if rngs is None:
            raise ValueError(
                "Stochastic operators require rngs parameter. "
                f"Pass rngs=nnx.Rngs(..., {stream}=...) (stochastic {type(self).__name__} "
                f"needs rngs with a {stream!r} stream)"
            )
        try:
            return rngs[stream]()
        except (AttributeError, KeyError) as error:
            # flax's own wording first (what datarax lets through), as ValueError and KeyError
            raise RngStreamError(
                f"No RngStream named '{stream}' found in Rngs. (stochastic "
                f"{type(self).__name__} needs RNG stream {stream!r}, which the given rngs do "
                f"not have: pass rngs=nnx.Rngs({stream}=...))"
            ) from error

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

    # ------------------------------------------------------------------ #
    # Random params                                                       #
    # ------------------------------------------------------------------ #
    def generate_random_params(
        self, rng: Array, data_shapes: dict[str, tuple[int, ...]]
    ) -> dict[str, Array]:
        """Random params for a batch, e.g. ``{"noise": (batch, H, W, C)}``.

        Args:
          rng: one key (split into one key per record) or a ``(batch,)`` array
            of per-record keys; typed (``jax.random.key``) or raw
            (``jax.random.PRNGKey``) keys.
          data_shapes: maps field keys to batch shapes ``(batch, *element_shape)``;
            the operator's ``field_key`` (dotted keys may be nested dicts).

        Returns:
          ``{param_key: array}`` with a leading batch axis: ``noise``,
          ``noise_mask`` and ``poisson_samples`` are float32 of the batch shape;
          ``keep_mask`` is bool ``(batch, H, W, C)`` (pixel) or ``(batch, C)``
          (channel).

        Raises:
          KeyError: ``field_key`` is not in ``data_shapes`` (datarax's message first).
          TypeError: ``rng`` is not a key or an array of keys; ``data_shapes`` is
            not a dict or the shape is not a tuple of ints.
          ValueError: the shape has no batch axis or a negative dimension.
        """
        field_key = self.config.field_key
        if not isinstance(data_shapes, dict):
            raise TypeError(
                f"data_shapes must be a dict of field shapes, got {type(data_shapes).__name__}"
            )
        try:
            raw_shape = get_field(data_shapes, field_key)
        except KeyError as error:
            message = (
                f"Field key '{field_key}' not found in data_shapes. "
                f"Available keys: {list(data_shapes.keys())}"
            )
            if "." in field_key:  # this project also walks nested dicts
                message += f" (nor nested: {error.args[0]})"
            raise KeyError(message) from None
        shape = _shape_of(raw_shape, f"data_shapes[{field_key!r}]")
        if not shape:
            raise ValueError(f"data_shapes[{field_key!r}] needs a batch axis, got ()")
        batch_size, element_shape = shape[0], shape[1:]
        keys, is_batch = as_typed_key(rng)
        key_data = jax.random.key_data(keys)
        if is_batch:
            if keys.shape[0] != batch_size:
                raise ValueError(f"got {keys.shape[0]} per-record keys for a batch of {batch_size}")
        else:  # record i's key: record_key(rng, i), which is jax.random.split(rng)[i]
            key_data = stream.record_key(key_data, jnp.arange(batch_size, dtype=jnp.uint32))
        draw = element_programs(self._kernel)[0]
        return jax.vmap(lambda k: draw(k, element_shape))(key_data)

    def _checked_params(self, random_params: Any, element_shape: tuple[int, ...]) -> Params:
        """External params for one element, validated: right key, dtype, shape.

        datarax 0.1.4's forms are converted first (``from_datarax_params``).
        """
        kernel = self._kernel
        key = kernel.param_key
        random_params = from_datarax_params(kernel, random_params, tuple(element_shape))
        if not isinstance(random_params, dict) or key not in random_params:
            got = (
                sorted(map(str, random_params))
                if isinstance(random_params, dict)
                else type(random_params).__name__
            )
            datarax_text = DATARAX_MISSING_PARAMS.get(
                kernel.mode, f"Stochastic mode requires {key!r} in random_params"
            )
            accepted = repr(key)
            if kernel.mode == "poisson":
                accepted += " (or datarax's 'poisson_rngs')"
            raise ParamsKeyError(
                f"{datarax_text} (datarax_ops: mode {kernel.mode!r} reads {accepted} from "
                f"random_params, got {got})"
            )
        raw = random_params[key]
        dtype = _dtype_of(raw)
        if dtype is None or not (dtype == jnp.bool_ or _is_real_dtype(dtype)):
            raise TypeError(
                f"random_params[{key!r}] must be a real or bool array, got "
                f"{type(raw).__name__} with dtype {dtype}"
            )
        value = jnp.asarray(raw)
        expected = self._kernel.param_shape(element_shape)
        if value.shape != expected:
            raise ValueError(
                f"random_params[{key!r}] has shape {value.shape}; one element of shape "
                f"{element_shape} needs {expected}"
            )
        return {key: value}

    # ------------------------------------------------------------------ #
    # Input checks                                                        #
    # ------------------------------------------------------------------ #
    def _source(self, data: Any, *, batched: bool, check_finite: bool = True) -> Array:
        """The field to transform, checked: present, numeric, finite (eager, if asked)."""
        if not isinstance(data, dict):
            raise TypeError(f"data must be a dict of arrays, got {type(data).__name__}")
        image = get_field(data, self.config.field_key)
        _check_numeric(image, self.config.field_key)
        image = buckets.to_device(image)  # any shape: NumPy input compiles nothing
        if batched and image.ndim == 0:
            raise ValueError(
                f"batch field {self.config.field_key!r} needs a batch axis, got a scalar"
            )
        for aux in self.config.auxiliary_fields or []:
            if not has_field(data, aux):
                raise KeyError(
                    f"auxiliary field {aux!r} not found in data with keys {sorted(data)}"
                )
        if check_finite:
            self._check_finite(image)
        return image

    def _wants_finite_check(self, image: Array) -> bool:
        """Eager floating input with ``validate_domain_constraints``: NaN/Inf are errors."""
        return bool(
            self.config.validate_domain_constraints
            and _is_concrete(image)
            and jnp.issubdtype(image.dtype, jnp.floating)
            and image.size
        )

    def _check_finite(self, image: Array) -> None:
        if self._wants_finite_check(image):
            self._raise_if_nonfinite(int(jnp.size(image) - jnp.count_nonzero(jnp.isfinite(image))))

    def _raise_if_nonfinite(self, bad: int) -> None:
        if bad:
            raise ValueError(
                f"field {self.config.field_key!r} has {bad} NaN/Inf values; clean the "
                "input or set validate_domain_constraints=False to let them propagate"
            )

    def _route_output(self, data: dict, output: Array) -> dict:
        """Writes ``output`` to ``target_key`` (default ``field_key``); drops aux if asked."""
        out = set_field(data, self.config.target_key or self.config.field_key, output)
        if not self.config.preserve_auxiliary:
            for aux in self.config.auxiliary_fields or []:
                out = drop_field(out, aux)
        return out

    # ------------------------------------------------------------------ #
    # One element                                                         #
    # ------------------------------------------------------------------ #
    def apply(
        self,
        data: dict[str, Array],
        state: dict[str, Any],
        metadata: dict[str, Any] | Any,
        random_params: dict[str, Array] | None = None,
        stats: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Array], dict[str, Any], Any]:
        """Transforms one element (``data[field_key]`` of shape e.g. ``(H, W, C)``).

        The ``stochastic`` flag decides, never whether params are None:
        deterministic operators use the fixed pattern (params are ignored);
        stochastic ones use ``random_params`` when given (one element's params,
        no batch axis) and otherwise draw from their stream at the record's
        index (``metadata`` index, else the record counter, which advances).

        Returns ``(data with the field transformed, state, metadata)``.
        """
        del stats  # noise and dropout use no statistics
        image = self._source(data, batched=False)
        _, apply_fn, draw_and_apply_fn = element_programs(self._kernel)
        if not self.stochastic:  # buckets.call: eager shapes share bucket programs
            output = buckets.call(draw_and_apply_fn, stream.fixed_pattern_key(), image)
        elif random_params is not None:
            output = apply_fn(image, self._checked_params(random_params, tuple(image.shape)))
        else:
            identities = identity_array([metadata])
            identity = self._next_record_identity() if identities is None else identities[0]
            key = stream.identity_key(self._base_key[...], identity)
            output = buckets.call(draw_and_apply_fn, key, image)
        self._count(1)
        return self._route_output(data, output), state, metadata

    # ------------------------------------------------------------------ #
    # Batches                                                             #
    # ------------------------------------------------------------------ #
    def _batch_identities(self, batch: Batch, batch_size: int) -> Array | None:
        """Every record's identity (epoch, shard, index) as ``uint32 (batch, 4)``; None
        when some record has no index (the compiled step then numbers the records
        with the next positions of the counter)."""
        metadata = batch._metadata_list.get_value()
        if not metadata or metadata[0] is None:
            return None
        if len(metadata) != batch_size:
            raise ValueError(
                f"the batch has {batch_size} records but {len(metadata)} metadata entries"
            )
        return identity_array(metadata)

    def _cached(self, images: Array, compute: Callable[[], Array]) -> Array:
        """``compute()``, memoised by input content when caching applies."""
        if not (self.config.cacheable and not self.stochastic and _is_concrete(images)):
            return compute()
        host = np.asarray(images)
        digest = hashlib.blake2b(host.tobytes(), digest_size=16).hexdigest()
        key = (host.shape, str(host.dtype), digest)
        cache = self._cache
        if key in cache.entries:
            cache.hits += 1
            cache.entries.move_to_end(key)
            return cache.entries[key]
        cache.misses += 1
        result = compute()
        cache.entries[key] = result
        if len(cache.entries) > _CACHE_ENTRIES:
            cache.entries.popitem(last=False)
        return result

    def apply_batch(self, batch: Batch, stats: dict[str, Any] | None = None) -> Batch:
        """Transforms every record of ``batch``; returns a new ``Batch``.

        The field has shape ``(batch, *element_shape)``.  Other fields, states
        and metadata pass through untouched; the input batch is not modified.

        An empty batch without any field (``Batch([])``) is returned as it is.

        Raises:
          KeyError: the field (or an auxiliary field) is missing.
          TypeError: ``batch`` is not a ``Batch``; the field is not a real numeric array.
          ValueError: the field has no batch axis, or (eagerly, with
            ``validate_domain_constraints``) contains NaN or Inf.
        """
        del stats  # noise and dropout use no statistics
        if not isinstance(batch, Batch):
            raise TypeError(
                f"{type(self).__name__}.apply_batch needs a Batch, got {type(batch).__name__}: "
                "wrap arrays with a leading batch axis as Batch.from_parts(data={...})"
            )
        data = batch.data.get_value()
        if batch.batch_size == 0 and not jax.tree.leaves(data):
            return batch  # nothing to transform (datarax returns it too)
        images = self._source(data, batched=True, check_finite=False)
        batch_size = int(images.shape[0])
        if batch_size == 0:
            self._count(0)
            return batch.with_data(self._route_output(data, images))
        if not self.stochastic and self.config.cacheable and _is_concrete(images):
            self._check_finite(images)
            program = batch_program(self._kernel, False, self.config.batch_strategy)

            def compute() -> Array:
                padded, restore = buckets.prepare(program, images, batched=True)
                return restore(program(None, None, jnp.zeros((), jnp.int32), padded, None)[0])

            output = self._cached(images, compute)
            self._count(batch_size)
            return batch.with_data(self._route_output(data, output))
        check = self._wants_finite_check(images)
        program = batch_program(self._kernel, self.stochastic, self.config.batch_strategy, check)
        tally = self._skipped_count if self._kernel.is_identity() else self._applied_count
        identities: Array | None = None
        base_key: Array | None = None
        counter: Array | None = None
        if self.stochastic:
            identities = self._batch_identities(batch, batch_size)
            base_key, counter = self._base_key.get_value(), self._record_counter.get_value()
        padded, restore = buckets.prepare(program, images, batched=True)  # eager: shape buckets
        output, counter, new_tally, finite = program(
            base_key, counter, tally.get_value(), padded, identities
        )
        output = restore(output)
        if check and not bool(finite):
            self._check_finite(images)  # counts the bad values and raises
        if counter is not None:
            self._record_counter.set_value(counter)
        try:
            tally.set_value(new_tally)
        except TraceContextError:  # a closed-over operator under a plain JAX transform
            pass
        return batch.with_data(self._route_output(data, output))

    def __call__(self, batch: Batch) -> Batch:
        """``apply_batch(batch)``."""
        return self.apply_batch(batch)

    # ------------------------------------------------------------------ #
    # Operation statistics                                                #
    # ------------------------------------------------------------------ #
    def _count(self, records: int) -> None:
        """Adds ``records`` to the applied (or, for a no-op mode, skipped) counter.

        Under a plain JAX transform of a closed-over operator (``jax.vmap`` or
        ``jax.grad`` around ``apply``) NNX state cannot change; the counters are
        then left as they are rather than failing the transform.
        """
        counter = self._skipped_count if self._kernel.is_identity() else self._applied_count
        try:
            counter[...] += records
        except TraceContextError:
            pass

    def _next_record_identity(self) -> Array:
        """``uint32 (4,)``: the identity of the record counter's next record; advances it."""
        try:
            identities, self._record_counter[...] = stream.counter_identities(
                self._record_counter[...], 1
            )
        except TraceContextError as error:
            raise ValueError(
                f"{type(self).__name__}.apply under a JAX transform of a closed-over operator "
                "cannot advance the record counter: pass random_params (from "
                "generate_random_params) or metadata with an 'index', or use nnx transforms"
            ) from error
        return identities[0]

    def get_operation_stats(self) -> dict[str, int]:
        """Records transformed (``applied_count``) and passed through as no-ops
        (``skipped_count``, e.g. ``dropout_rate == 0``).  Eager only."""
        return {
            "applied_count": int(self._applied_count[...]),
            "skipped_count": int(self._skipped_count[...]),
        }

    def reset_operation_stats(self) -> None:
        """Sets both counters to zero."""
        self._applied_count[...] = jnp.zeros((), jnp.int32)
        self._skipped_count[...] = jnp.zeros((), jnp.int32)

    # ------------------------------------------------------------------ #
    # Data statistics (eager; not part of the checkpointed state)         #
    # ------------------------------------------------------------------ #
    def compute_statistics(self, data: Any) -> dict[str, Any] | None:
        """``batch_stats_fn(data)``, stored for ``get_statistics``; None without one."""
        if self.config.batch_stats_fn is None:
            return None
        stats = self.config.batch_stats_fn(data)
        self._stats.computed, self._stats.manual, self._stats.reset = stats, False, False
        return stats

    def get_statistics(self) -> dict[str, Any] | None:
        """Statistics in force: set by ``set_statistics``, else ``precomputed_stats``
        (unless reset), else the last ``compute_statistics`` result, else None."""
        store = self._stats
        if store.manual:
            return store.computed
        if self.config.precomputed_stats is not None and not store.reset:
            return dict(self.config.precomputed_stats)
        return store.computed

    def set_statistics(self, stats: dict[str, Any]) -> None:
        """Sets the statistics (they take precedence) and clears the reset flag."""
        if not isinstance(stats, dict):
            raise TypeError(f"stats must be a dict, got {type(stats).__name__}")
        self._stats.computed, self._stats.manual, self._stats.reset = dict(stats), True, False

    def reset_statistics(self) -> None:
        """Forgets computed and set statistics and ignores ``precomputed_stats``."""
        self._stats.computed, self._stats.manual, self._stats.reset = None, False, True

    # ------------------------------------------------------------------ #
    # Cache                                                               #
    # ------------------------------------------------------------------ #
    def reset_cache(self) -> None:
        """Empties the output cache (used when ``cacheable`` and deterministic)."""
        self._cache.entries.clear()
        self._cache.hits = self._cache.misses = 0

    def cache_info(self) -> dict[str, int]:
        """``{"hits", "misses", "size"}`` of the output cache."""
        c = self._cache
        return {"hits": c.hits, "misses": c.misses, "size": len(c.entries)}

    # ------------------------------------------------------------------ #
    # State, copies                                                       #
    # ------------------------------------------------------------------ #
    def get_state(self) -> dict[str, Any]:
        """The NNX state as a plain nested dict of numeric arrays (checkpointable).

        Typed PRNG keys (from ``nnx.Rngs``) are stored as their raw ``uint32``
        key data, so any array checkpointer (NumPy, orbax) can save the dict.
        """
        return jax.tree.map(_raw_key_data, nnx.to_pure_dict(nnx.state(self)))

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores ``get_state()`` output.  Strict: same keys, shapes and dtypes.

        Raises:
          TypeError: ``state`` is not a dict.
          ValueError: its structure, a shape or a dtype differs from this operator's.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        current = nnx.state(self)
        current_pure = nnx.to_pure_dict(current)
        _check_same_structure(jax.tree.map(_raw_key_data, current_pure), state, "state")
        restored = jax.tree.map(_like_current, current_pure, state)
        nnx.replace_by_pure_dict(current, restored)
        nnx.update(self, current)

    def clone(self) -> ImageOperator:
        """An independent operator with the same config and the same state."""
        twin = nnx.clone(self)
        twin._stats = copy_module.copy(self._stats)
        twin._cache = _OutputCache()
        return twin

    def copy(
        self,
        *,
        config: ModalityOperatorConfig | None = None,
        rngs: nnx.Rngs | None = None,
        name: str | None = None,
    ) -> ImageOperator:
        """A new operator with ``config`` / ``rngs`` / ``name`` replaced.

        Without ``rngs`` the copy continues this operator's random stream (same
        base key and record counter) and this operator's rngs are not advanced.
        """
        new_config = self.config if config is None else config
        if not isinstance(new_config, type(self.config)):
            raise TypeError(
                f"{type(self).__name__}.copy needs a {type(self.config).__name__}, "
                f"got {type(new_config).__name__}"
            )
        source_rngs = (
            rngs if rngs is not None else (nnx.clone(self.rngs) if self.rngs is not None else None)
        )
        twin = type(self)(new_config, rngs=source_rngs, name=name or self.name)
        if rngs is None and self.stochastic and twin.stochastic:
            twin._base_key[...] = self._base_key[...]
            twin._record_counter[...] = self._record_counter[...]
        return twin

    # ------------------------------------------------------------------ #
    # Structure                                                           #
    # ------------------------------------------------------------------ #
    def get_output_structure(
        self, sample_data: PyTree, sample_state: PyTree
    ) -> tuple[PyTree, PyTree]:
        """``(data structure, state structure)`` of one element's output, leaves None."""

        def transform(data: PyTree) -> PyTree:
            image = jnp.asarray(get_field(data, self.config.field_key))
            params = self._kernel.draw(stream.fixed_pattern_key(), tuple(image.shape))
            return self._route_output(data, self._kernel.apply(image, params))

        out = jax.eval_shape(transform, sample_data)
        none = lambda _: None  # noqa: E731
        return jax.tree.map(none, out), jax.tree.map(none, sample_state)

    def output_spec(self, input_spec: PyTree) -> PyTree:
        """The output element spec: the input's (shape and dtype are preserved),
        plus ``target_key`` when it differs, minus dropped auxiliary fields."""
        source = get_field(input_spec, self.config.field_key)
        return self._route_output(input_spec, source)


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
