"""A mode's kernel (its pure draw and apply) and the compiled programs that run kernels.

A *kernel* is a small hashable object holding one mode's parameters, with two pure
functions: ``kernel.draw(key, element_shape) -> params`` (one record's randomness,
from ``datarax_ops.stream``) and ``kernel.apply(image, params) -> image``
(deterministic).  The programs here run a kernel over one element or a batch; they
know nothing of operators, configs or datarax (``datarax_ops.operator`` builds on them).

Layers: ``stream`` -> ``kernel`` -> the mode modules (``noise``, ``dropout``) ->
``modes`` -> ``operator`` -> adapters.
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
from datarax_ops.reference.config import RANGE_FIELDS, strength_ranges

Array = jax.Array
Params = dict[str, Array]
PyTree = Any

# How many compiled batch programs have been traced, by kernel (tests read it).
TRACE_COUNTS: collections.Counter[Any] = collections.Counter()


@dataclass(frozen=True, kw_only=True)
class Kernel:
    """A mode's pure functions around that mode's parameters (and nothing else).

    Subclasses are frozen dataclasses whose fields are exactly the mode's
    parameters, so they hash by value (compiled programs are shared between
    operators with the same parameters) and a change to another mode's config
    field never recompiles.  ``datarax_ops.modes.MODES`` lists them.

    The fields here are the training settings every mode shares (issue 17;
    ``reference/record.py``), keyword-only so each mode's own fields stay
    positional; their defaults change nothing:

    * ``ranges``: ``((scalar, lo, hi), ...)``, the config's strength ranges in
      the mode's ``strength_order`` (its record slots);
    * ``per_channel``: False shares each pixel's draw over the last axis;
    * ``apply_prob``: records transformed with this probability; ``draw`` adds
      the decision (``params["apply"]``) and ``apply`` passes the others through.
    """

    ranges: tuple[tuple[str, float, float], ...] = ()
    per_channel: bool = True
    apply_prob: float = 1.0

    mode: ClassVar[str]
    param_key: ClassVar[str]
    # The ranged scalars ``apply`` reads from params (the others are only reported).
    applied_strengths: ClassVar[tuple[str, ...]] = ()
    # The mode's module-level functions ``draw_<mode>(kernel, key, element_shape)``
    # and ``apply_<mode>(kernel, image, params)``, which ``draw``/``apply`` call.
    draw_mode: ClassVar[Callable[..., Params]]
    apply_mode: ClassVar[Callable[..., Array]]

    @classmethod
    def from_config(cls, config: Any) -> Kernel:
        """The kernel of ``config`` (whose ``mode`` is this kernel's)."""
        raise NotImplementedError

    @staticmethod
    def strengths_of(mode: str) -> tuple[str, ...]:
        """The scalars a range can replace in ``mode``, in record-slot order (salt before
        pepper): ``reference.config.RANGE_FIELDS``'s."""
        return tuple(scalar for _name, scalar in RANGE_FIELDS[mode])

    @property
    def strength_order(self) -> tuple[str, ...]:
        """This kernel's mode's ``strengths_of``."""
        return self.strengths_of(self.mode)

    @classmethod
    def training_fields(cls, config: Any) -> dict[str, Any]:
        """The shared fields' values from ``config`` (``from_config`` passes them on)."""
        order = cls.strengths_of(config.mode)
        return {
            "ranges": strengths.strength_ranges(strength_ranges(config), order),
            "per_channel": bool(config.per_channel),
            "apply_prob": float(config.apply_prob),
        }

    def draw(self, key: Array, element_shape: tuple[int, ...]) -> Params:
        """One record's params for an element of ``element_shape``; ``key`` is the
        record's raw key data, ``uint32 (2,)`` (see ``datarax_ops.stream``)."""
        params = type(self).draw_mode(self, key, tuple(element_shape))
        if self.apply_prob < 1:
            params[strengths.APPLY_KEY] = strengths.apply_decision(self.apply_prob, key)
        return params

    def apply(self, image: Array, params: Params) -> Array:
        """One element transformed with ``params``; shape and dtype kept.  A record whose
        ``params["apply"]`` is False comes back bit for bit as it went in."""
        output = type(self).apply_mode(self, image, params)
        if self.apply_prob < 1:
            output = jnp.where(params[strengths.APPLY_KEY], output, image)
        return output

    def drawn_strengths(self, key: Array) -> dict[str, Array]:
        """``{scalar: float32 ()}``: this record's draw of every ranged scalar."""
        return strengths.drawn_strengths(self.ranges, self.strength_order, key)

    def ranged(self, scalar: str) -> bool:
        """Whether ``scalar`` is drawn per record."""
        return any(name == scalar for name, _low, _high in self.ranges)

    def record_param_keys(self) -> tuple[str, ...]:
        """The per-record scalar params ``apply`` reads besides ``param_key``."""
        keys = tuple(name for name in self.applied_strengths if self.ranged(name))
        return keys + ((strengths.APPLY_KEY,) if self.apply_prob < 1 else ())

    @staticmethod
    def param_shape(element_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of ``params[param_key]`` for one element (default: the element's)."""
        return tuple(element_shape)

    def shares_channels(self) -> bool:
        """True when one draw per pixel serves every channel (``per_channel=False``)."""
        return not self.per_channel

    def is_identity(self) -> bool:
        """True when the mode leaves every input untouched (nothing to draw)."""
        return self.apply_prob == 0


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
