"""A mode's kernel (its pure draw and apply) and the compiled programs that run kernels.

A *kernel* is a small hashable object holding one mode's parameters, with two pure
functions: ``kernel.draw(key, element_shape) -> params`` (one record's randomness,
from ``datarax_ops.stream``) and ``kernel.apply(image, params) -> image``
(deterministic).  The programs here run a kernel over one element or a batch; they
know nothing of operators, configs or datarax (``datarax_ops.operator`` builds on them).

Layers: ``stream`` -> ``kernel`` -> the compiled mode files (``modes/<name>.py``) ->
the registry ``modes`` -> ``operator`` -> adapters.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from datarax_ops import stream, strengths
from datarax_ops.reference.config import strength_ranges
from datarax_ops.reference.spec import ModeSpec

Array = jax.Array
Params = dict[str, Array]
PyTree = Any

# How many compiled batch programs have been traced, by kernel (tests read it).
TRACE_COUNTS: collections.Counter[Any] = collections.Counter()


def kernel_value(value: Any) -> Any:
    """A config field's value as a kernel holds it (hashable, Python floats): None and
    bools as they are, numbers as ``float``, pairs (``clip_range``) as float tuples."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (tuple, list)):
        return tuple(float(v) for v in value)
    return float(value)


@dataclass(frozen=True, kw_only=True)
class Kernel:
    """A mode's pure functions around that mode's parameters (and nothing else).

    Each compiled mode file (``datarax_ops/modes/<name>.py``) subclasses it as a
    frozen dataclass whose fields are exactly the mode's declared fields
    (``spec.fields``), so it hashes by value (compiled programs are shared between
    operators with the same parameters) and a change to another mode's config field
    never recompiles.  ``spec`` is the mode's declaration in ``reference/modes``:
    its name, params key and shape, strengths and capabilities all come from it.
    A subclass writes ``draw_mode`` and ``apply_mode``; everything else is here.

    The fields here are the training settings every mode shares (issue 17;
    ``reference/record.py``), keyword-only so each mode's own fields stay
    positional; their defaults change nothing:

    * ``ranges``: ``((scalar, lo, hi), ...)``, the config's strength ranges in the
      order the mode declares its strengths;
    * ``per_channel``: False shares each pixel's draw over the last axis;
    * ``apply_prob``: records transformed with this probability; ``draw`` adds
      the decision (``params["apply"]``) and ``apply`` passes the others through.
    """

    ranges: tuple[tuple[str, float, float], ...] = ()
    per_channel: bool = True
    apply_prob: float = 1.0

    spec: ClassVar[ModeSpec]
    # The cost of a record depends on its values, not only on its size (the bench
    # then times more than one value range).
    value_dependent_cost: ClassVar[bool] = False
    # Keys datarax 0.1.4's random_params may hold instead of ``param_key``.
    datarax_param_keys: ClassVar[tuple[str, ...]] = ()

    @property
    def mode(self) -> str:
        """The mode's name (``spec.name``)."""
        return self.spec.name

    @property
    def param_key(self) -> str:
        """The key of the per-value params array (``spec.params_key``)."""
        return self.spec.params_key

    @classmethod
    def from_config(cls, config: Any) -> Kernel:
        """The kernel of ``config`` (whose ``mode`` is this kernel's): each declared field
        copied by name, plus the shared training settings."""
        own = {name: kernel_value(getattr(config, name)) for name in cls.spec.fields}
        return cls(**own, **cls.training_fields(config))

    @classmethod
    def training_fields(cls, config: Any) -> dict[str, Any]:
        """The shared fields' values from ``config`` (``from_config`` passes them on)."""
        order = tuple(strength.scalar for strength in cls.spec.strengths)
        return {
            "ranges": strengths.strength_ranges(strength_ranges(config), order),
            "per_channel": bool(config.per_channel),
            "apply_prob": float(config.apply_prob),
        }

    def draw_mode(self, key: Array, element_shape: tuple[int, ...]) -> Params:
        """The mode's own draw for one record (without the apply decision)."""
        raise NotImplementedError(f"{type(self).__name__} does not define draw_mode")

    def apply_mode(self, image: Array, params: Params) -> Array:
        """The mode's own apply for one element (every record transformed)."""
        raise NotImplementedError(f"{type(self).__name__} does not define apply_mode")

    def draw(self, key: Array, element_shape: tuple[int, ...]) -> Params:
        """One record's params for an element of ``element_shape``; ``key`` is the
        record's raw key data, ``uint32 (2,)`` (see ``datarax_ops.stream``)."""
        params = self.draw_mode(key, tuple(element_shape))
        if self.apply_prob < 1:
            params[strengths.APPLY_KEY] = strengths.apply_decision(self.apply_prob, key)
        return params

    def apply(self, image: Array, params: Params) -> Array:
        """One element transformed with ``params``; shape and dtype kept.  A record whose
        ``params["apply"]`` is False comes back bit for bit as it went in."""
        output = self.apply_mode(image, params)
        if self.apply_prob < 1:
            output = jnp.where(params[strengths.APPLY_KEY], output, image)
        return output

    def drawn_strengths(self, key: Array) -> dict[str, Array]:
        """``{scalar: float32 ()}``: this record's draw of every ranged scalar, each from
        its declared record slot by its declared law."""
        return strengths.drawn_strengths(self.ranges, self.spec, key)

    def ranged(self, scalar: str) -> bool:
        """Whether ``scalar`` is drawn per record."""
        return any(name == scalar for name, _low, _high in self.ranges)

    def record_param_keys(self) -> tuple[str, ...]:
        """The per-record scalar params ``apply`` reads besides ``param_key``: the ranged
        strengths the mode declares ``applied``, and the apply decision."""
        keys = tuple(s.scalar for s in self.spec.strengths if s.applied and self.ranged(s.scalar))
        return keys + ((strengths.APPLY_KEY,) if self.apply_prob < 1 else ())

    def param_shape(self, element_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of ``params[param_key]`` for one element (``spec.params_shape``)."""
        return tuple(self.spec.params_shape(tuple(element_shape)))

    def param_shapes(self, element_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Every params array ``apply`` reads for one element (besides the per-record
        ``record_param_keys``), with its shape: ``{param_key: param_shape}`` unless a
        mode draws several arrays (``params.checked_params`` checks each)."""
        return {self.param_key: self.param_shape(element_shape)}

    def shares_channels(self) -> bool:
        """True when one draw per pixel serves every channel (``per_channel=False``)."""
        return not self.per_channel

    def keeps_last_axis(self, element_shape: tuple[int, ...]) -> bool:
        """True when the draws depend on the element's last axis as an axis: shared over
        it (``per_channel=False``) or one per index of it (params shaped ``(C,)``).  A
        size bucket must then keep that axis (``buckets.layout``)."""
        shape = tuple(element_shape)
        return self.shares_channels() or (len(shape) > 1 and self.param_shape(shape) == shape[-1:])

    def is_identity(self) -> bool:
        """True when the mode leaves every input untouched (nothing to draw)."""
        return self.apply_prob == 0

    def has_host_path(self, image: Any) -> bool:
        """Whether this record (one NumPy element) may be transformed on the host by
        ``host_apply`` instead of a compiled call; no mode has one unless it says so."""
        del image
        return False

    def host_apply(self, key: tuple[int, int], image: Any) -> Any:
        """The record transformed on the host (NumPy), bit for bit ``draw_and_apply``.

        ``key``: the record's raw key as two Python ints; ``image``: one NumPy element
        for which ``has_host_path`` is True.
        """
        raise NotImplementedError(f"{type(self).__name__} has no host path")

    def from_datarax_params(self, random_params: dict, element_shape: tuple[int, ...]) -> dict:
        """One element's params in datarax 0.1.4's form (where the mode's differs from this
        project's) converted to this project's; unchanged otherwise (the default)."""
        del element_shape
        return random_params


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
