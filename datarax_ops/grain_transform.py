"""Any datarax_ops operator as a grain random-map transform (optional extra ``grain``).

``OperatorRandomMap(operator)`` augments one record at a time inside a grain
pipeline (``grain.DataLoader`` operations, ``MapDataset.random_map``,
``IterDataset.random_map``).  A record is a dict holding the operator's
``field_key`` (an image such as ``(H, W, C)``, any real dtype); the transformed
record is the same dict with the field (or ``target_key``) replaced by a NumPy
array of the same shape and dtype.

**Where the randomness comes from.**  grain hands ``random_map`` a
``numpy.random.Generator`` that it derives from its seed and the record's
position in the stream (``Philox(seed + index)`` in ``DataLoader``; a Philox
counter reset to the index in ``MapDataset.random_map``).  The transform draws
two ``uint32`` words ``(w0, w1)`` from it and the record's key is

    ``record key = threefry2x32(operator base key, (w0, w1))``

(``datarax_ops.stream.threefry2x32``), i.e. the operator's base key selects the
augmentation stream and grain's generator selects the record, with a 64-bit
record identity (no collisions between 2**32 records of a long run).  The noise
then follows from the record key exactly as in ``op(batch)``
(``datarax_ops.kernel.draw_and_apply``).  Consequences:

* the augmented stream depends only on grain's seed, the sampler and the
  operator's base key: it is identical for 0, 1 or N worker processes and after
  ``iterator.set_state(saved)`` mid-epoch (grain restores the record position;
  the transform keeps no state of its own);
* different records and different epochs (grain's index keeps counting across
  epochs) get different noise; the same record in the same position gets the
  same noise in every run.

The transform holds plain data (kernel, base key words, field routing), not the
``nnx.Module``, so it pickles cheaply into grain's worker processes.  It does not
advance the operator's record counter or its ``get_operation_stats`` counters:
in a grain pipeline, the grain iterator's state is the checkpoint.

**Compiling.**  One jitted program per kernel (the mode and its parameters),
shared by all transforms with the same config; the base key, the two words
and the image are arguments, so no record recompiles.  The first image shape
and dtype run exactly; records of any other shape are padded to their size
bucket (``datarax_ops.buckets``), so a dataset of varied sizes compiles at most
two programs per doubling of the image size, with the same output bits.
Channel dropout of an ``(H, W, C)`` record without ``clip_range`` compiles
nothing: its ``C`` keep decisions are computed on the host from the same words
(``host_channel_keep``) and the dropped channels of a copy are zeroed, the same
bits as the program, for any size and dtype.
Computation is pinned to the CPU by default (``platform``), so a pipeline
gives the same bits whether it runs in the trainer process or in workers, and
workers do not touch an accelerator (on a GPU host also set
``JAX_PLATFORMS=cpu`` in the environment the workers are spawned with, so they
do not initialise the GPU backend at all).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from datarax_ops import buckets, host_words, stream
from datarax_ops.fields import FieldRoute
from datarax_ops.kernel import Kernel, draw_and_apply
from datarax_ops.operator import ImageOperator
from datarax_ops.reference import stream as host_stream

try:  # grain >= 0.2.x: grain.transforms.RandomMap
    from grain.transforms import RandomMap as _RandomMapBase
except ImportError:  # pragma: no cover - older grain: grain.python.RandomMapTransform
    try:
        from grain.python import RandomMapTransform as _RandomMapBase  # type: ignore[no-redef]
    except ImportError as error:
        raise ImportError(
            "datarax_ops.grain_transform needs grain: pip install 'datarax-ops[grain]'"
        ) from error

Array = jax.Array

__all__ = ["OperatorRandomMap", "key_words_from_generator"]


def key_words_from_generator(rng: np.random.Generator) -> np.ndarray:
    """Two ``uint32`` words from grain's per-record generator: ``uint32 (2,)``.

    Consumes exactly two 32-bit draws of ``rng`` (deterministic for a given
    generator state; about a microsecond).
    """
    return rng.integers(0, 2**32, size=2, dtype=np.uint32)


@functools.lru_cache(maxsize=256)
def _record_program(kernel: Kernel, stochastic: bool) -> Any:
    """Jitted ``program(base_key, words, image) -> image`` for one record.

    ``base_key``, ``words``: ``uint32 (2,)``; ``image``: one element, e.g.
    ``(H, W, C)``; output of the same shape and dtype.  Deterministic kernels
    ignore both keys and use the fixed pattern, like ``op(batch)``.
    """

    def program(base_key: Array, words: Array, image: Array) -> Array:
        key = stream.words_key(base_key, words) if stochastic else stream.fixed_pattern_key()
        return draw_and_apply(kernel, key, image)

    return jax.jit(program)


class OperatorRandomMap(_RandomMapBase):  # type: ignore[misc, valid-type]
    """A datarax_ops operator as a grain ``RandomMap``: one record per call.

    Args:
      operator: a ``NoiseOperator`` / ``DropoutOperator`` (any ``ImageOperator``).
        Its config, kernel and base key are copied at construction; later changes
        to the operator do not affect the transform.
      platform: JAX platform the augmentation runs on (default ``"cpu"``: the
        same bits in the trainer process and in grain workers); ``None`` uses
        JAX's default device.

    ``random_map(record, rng)``: ``record`` a dict with the operator's
    ``field_key`` (dotted keys walk nested dicts) holding one element, e.g.
    ``(H, W, C)`` of a float, bfloat16 or integer dtype; returns a new dict with
    ``target_key`` (default ``field_key``) set to the transformed element as a
    NumPy array of the same shape and dtype.  ``auxiliary_fields`` must be
    present and are dropped when ``preserve_auxiliary=False``.

    Raises (from ``random_map``):
      KeyError: the field or an auxiliary field is missing.
      TypeError: the field is not real numeric.
      ValueError: NaN/Inf in the field while ``validate_domain_constraints``.
    """

    def __init__(self, operator: ImageOperator, *, platform: str | None = "cpu") -> None:
        if not isinstance(operator, ImageOperator):
            raise TypeError(f"expected a datarax_ops operator, got {type(operator).__name__}")
        config = operator.config
        self.kernel: Kernel = operator.kernel
        self.stochastic = bool(operator.stochastic)
        self.base_key = (
            np.asarray(operator.get_state()["_base_key"], np.uint32).reshape(2)
            if self.stochastic
            else np.zeros(2, np.uint32)
        )
        self.fields = FieldRoute.from_config(config)
        self.platform = platform

    def __repr__(self) -> str:
        return f"OperatorRandomMap({self.kernel!r}, stochastic={self.stochastic})"

    def _device(self) -> Any:
        """The device to put the arguments on, or None when JAX's default device
        already is on ``platform`` (a ``device_put`` costs as much as the call)."""
        if self.platform is None or jax.devices()[0].platform == self.platform:
            return None
        return jax.local_devices(backend=self.platform)[0]

    def _host_key(self, words: np.ndarray) -> tuple[int, int]:
        """The record's raw key as two Python ints (the program's ``words_key``, or the
        fixed pattern's key when not stochastic)."""
        if not self.stochastic:
            k0, k1 = host_stream.FIXED_PATTERN_KEY
            return int(k0), int(k1)
        base = (int(self.base_key[0]), int(self.base_key[1]))
        return host_words.blocks(base, [(int(words[0]), int(words[1]))])[0]

    def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """The record with its field augmented; randomness from grain's ``rng``."""
        image = self.fields.source(element, batched=False, as_array=np.asarray)
        self.fields.check_finite(image)
        words = key_words_from_generator(rng) if self.stochastic else np.zeros(2, np.uint32)
        if self.kernel.has_host_path(image):  # the mode's own host path, bit for bit
            on_host = self.kernel.host_apply(self._host_key(words), image)
            return self.fields.route(element, on_host)
        program = _record_program(self.kernel, self.stochastic)
        padded, restore = buckets.prepare_for(self.kernel, program, image, batched=False)
        device = self._device()
        arguments = (self.base_key, words, padded)
        if device is not None:
            arguments = jax.device_put(arguments, device)
        output: Any = restore(np.asarray(program(*arguments)))
        record = self.fields.route(element, output)
        return record
