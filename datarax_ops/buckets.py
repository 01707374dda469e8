"""Shape buckets: one compiled program serves every element shape of a size class.

A mode may be bucketed when its declaration says it works value by value
(``ModeSpec.value_by_value``): value ``j``'s random bits depend only on the record
key and ``j`` (``datarax_ops.stream``), its output only on those bits and its own
input value, and the two reductions over the element (``uses_255_range``:
``any(x > 1.5)``; the eager NaN/Inf check: ``isfinite(max |x|)``) cannot change
when zeros are added.  Such an element can be flattened, padded with zeros to a
size class (a *bucket*), transformed by the program compiled for that bucket, and
sliced back: the output is the exact-shape program's, bit for bit
(``tests/test_buckets.py`` checks it for every mode).  Other modes always run
their exact program.

Layouts (the shape the program sees for one element):

* ``(1, bucket_size(size // C), C)``: rows of the last axis, when the kernel's
  draws depend on that axis (``Kernel.keeps_last_axis``: draws shared over it, or
  one per index of it), and for every ``(H, W, C)`` image (so an image's programs
  always see its channels).  The flat index of row ``p``, position ``c`` is
  ``p * C + c``, as in the original element, and a per-channel draw broadcasts
  over the padded rows.
* ``(bucket_size(size),)`` otherwise.

A program therefore compiles once per (kernel, layout, dtype): at most two
buckets per doubling of the element size (``bucket_count``).

**When.**  Only eager calls on concrete arrays on one device are bucketed:
under ``jax.jit`` / ``nnx.jit`` shapes are static and the exact program is
compiled anyway (sharded arrays, one-value elements and ``apply`` with external
params, which have the element's shape, stay exact too).  Each
program (``family``) runs the first element shape and dtype it meets exactly,
so a fixed-size pipeline costs what it always did (no padding); any other
shape goes to its bucket.  The choice never changes the output, only which
compiled program computes it.  (``to_device`` puts NumPy input on the device
without compiling a conversion per shape.)

Costs: the padding is at most half the true size (a bucket is less than 1.5x
the element, ``bucket_size``), plus one host copy in (pad) and, for JAX inputs,
one out (the slice).
"""

from __future__ import annotations

import contextlib
import math
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# The smallest bucket, in rows (pixels of an (H, W, C) element, values otherwise).
MIN_BUCKET = 1024
# Elements whose bucketed layout would reach this many values stay exact
# (the stream counts a record's values with one 32-bit word).
MAX_VALUES = 2**32


def bucket_size(rows: int) -> int:
    """The bucket of ``rows`` (>= 0): the smallest ``2**k`` or ``3 * 2**(k - 1)`` that holds
    ``rows``, at least ``MIN_BUCKET``.

    Bound: ``bucket_size(n) < 1.5 * n`` for ``n > MIN_BUCKET`` (just above ``2**k``
    the next bucket is ``1.5 * 2**k``; just above that, ``2**(k + 1) < 4/3`` of it),
    so padding is less than half the true size, a third of the padded one.
    """
    rows = int(rows)
    if rows <= MIN_BUCKET:
        return MIN_BUCKET
    power = 1 << (rows - 1).bit_length()  # 2**k with 2**(k-1) < rows <= 2**k
    three_quarters = 3 * power // 4
    return three_quarters if rows <= three_quarters else power


def bucket_count(largest_rows: int) -> int:
    """How many buckets cover ``1 .. largest_rows`` rows: ``1 + 2 * log2(largest / MIN_BUCKET)``
    rounded up, i.e. logarithmic in the largest size."""
    count, size = 1, MIN_BUCKET
    while size < largest_rows:
        size = bucket_size(size + 1)
        count += 1
    return count


def layout(
    element_shape: tuple[int, ...], *, keeps_last_axis: bool = False
) -> tuple[int, ...] | None:
    """The bucketed layout of an element of ``element_shape`` (see the module docstring):
    ``(1, bucket_size(size // C), C)`` for an ``(H, W, C)`` image or when
    ``keeps_last_axis`` (the kernel's draws depend on the last axis), else
    ``(bucket_size(size),)``; None for an element of fewer than two values (XLA
    compiles a single value as scalar code, whose float32 normals can differ in the
    last bit from every other size's: it stays exact) or one too large to bucket.
    """
    shape = tuple(int(d) for d in element_shape)
    size = math.prod(shape)
    if size <= 1:  # XLA compiles a one-value element differently (its normals differ)
        return None
    if len(shape) == 3 or (keeps_last_axis and shape[-1] > 0):
        channels = shape[-1]
        padded: tuple[int, ...] = (1, bucket_size(size // channels), channels)
    else:
        padded = (bucket_size(size),)
    return padded if math.prod(padded) < MAX_VALUES else None


# family -> its first (element shape, dtype); weak, so programs evicted from their
# caches are not kept alive (with their executables) by this record
_first_shapes: weakref.WeakKeyDictionary[Any, tuple[tuple[int, ...], str]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()
_forced: list[bool | None] = [None]


def _exact_first(family: Any, element_shape: tuple[int, ...], dtype: Any) -> bool:
    """True when ``family`` should run this shape exactly: it is the first (shape, dtype)
    the family has met (remembered), or that same one again; or as ``forced`` says."""
    if _forced[0] is not None:
        return not _forced[0]
    seen = (tuple(element_shape), str(np.dtype(dtype)))
    with _lock:
        return _first_shapes.setdefault(family, seen) == seen


@contextlib.contextmanager
def forced(bucketed: bool) -> Iterator[None]:
    """Within the block every call that can be bucketed is (``True``) or none is
    (``False``), whatever shapes the programs met before: how the tests and the
    benchmark compare the two paths.  Not thread-safe; restores the previous setting."""
    previous = _forced[0]
    _forced[0] = bool(bucketed)
    try:
        yield
    finally:
        _forced[0] = previous


def _placement(images: Any) -> tuple[bool, Any]:
    """``(is_jax, device)`` of a concrete array: NumPy -> ``(False, None)``; a
    ``jax.Array`` on one device -> ``(True, its device if committed, else None)``.
    Raises LookupError for a tracer or an array spread over several devices."""
    if isinstance(images, np.ndarray):
        return False, None
    if isinstance(images, jax.core.Tracer) or not isinstance(images, jax.Array):
        raise LookupError("not a concrete array")
    devices = images.sharding.device_set
    if len(devices) != 1:
        raise LookupError("sharded over several devices")
    return True, next(iter(devices)) if images.committed else None


def _identity(output: Any) -> Any:
    return output


def _aligned_empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised NumPy array whose data starts on a 64-byte boundary, which
    XLA:CPU can use in place instead of copying it."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    raw = np.empty(size + _ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % _ALIGNMENT
    return raw[start : start + size].view(dtype).reshape(shape)


_ALIGNMENT = 64


def prepare(
    family: Any,
    images: Any,
    *,
    batched: bool,
    keeps_last_axis: Callable[[tuple[int, ...]], bool] | None = None,
) -> tuple[Any, Callable[[Any], Any]]:
    """``(input for the program, restore)``: the bucketed input and the function that
    turns the program's output back into the exact shape, or ``(images, identity)``.

    Args:
      family: the compiled program (any weak-referenceable object standing for it);
        its first element shape and dtype run exactly.
      images: one element (``batched=False``), e.g. ``(H, W, C)``, or a batch
        ``(B, *element_shape)``; a NumPy array or a concrete one-device
        ``jax.Array`` of any real dtype.  Tracers, sharded arrays, scalars and
        empty elements are returned as they are.
      batched: whether ``images`` has a leading batch axis.
      keeps_last_axis: ``f(element_shape) -> bool``, whether the kernel's draws depend
        on the last axis (``layout``); None: they do not.

    Returns:
      ``padded``: ``(*batch, *layout(element_shape))`` of ``images``' dtype, the
      element's values row-major first, zeros after (NumPy, or on the input's
      device when that was committed); ``restore(output)``: the program's output
      of that shape -> ``images.shape`` (NumPy for NumPy input, else a
      ``jax.Array`` placed as the input was).
    """
    try:
        is_jax, device = _placement(images)
    except LookupError:
        return images, _identity
    lead = 1 if batched else 0
    shape = tuple(images.shape)
    element_shape = shape[lead:]
    keeps = keeps_last_axis is not None and keeps_last_axis(element_shape)
    padded_layout = layout(element_shape, keeps_last_axis=keeps)
    if (
        padded_layout is None
        or padded_layout == element_shape
        or _exact_first(family, element_shape, images.dtype)
    ):
        return images, _identity
    host = np.asarray(images)
    batch = shape[:lead]
    # both layouts as (*batch, slots, width): (pixels, C) for (H, W, C), (values, 1) otherwise
    width = padded_layout[-1] if len(padded_layout) == 3 else 1
    slots = padded_layout[-2] if len(padded_layout) == 3 else padded_layout[0]
    rows = math.prod(element_shape) // width
    padded = _aligned_empty((*batch, slots, width), host.dtype)
    padded[..., :rows, :] = host.reshape(*batch, rows, width)
    padded[..., rows:, :] = 0
    program_input = padded.reshape(*batch, *padded_layout)
    if device is not None:
        program_input = jax.device_put(program_input, device)

    def restore(output: Any) -> Any:
        values = np.asarray(output).reshape(*batch, slots, width)[..., :rows, :].reshape(shape)
        return jax.device_put(values, device) if is_jax else values

    return program_input, restore


def to_device(value: Any) -> Any:
    """``jnp.asarray(value)``, except that a NumPy array is copied and put on the default
    device without compiling anything (in jax 0.10 ``jnp.asarray`` of a NumPy array
    compiles a small program for every new shape).  Same dtype rules (``device_put``
    canonicalises: float64 becomes float32 unless x64 is on)."""
    if isinstance(value, np.ndarray):
        return jax.device_put(np.array(value))  # the copy is ours, so JAX may alias it
    return jnp.asarray(value)


def prepare_for(
    kernel: Any, family: Any, images: Any, *, batched: bool
) -> tuple[Any, Callable[[Any], Any]]:
    """``prepare`` as ``kernel`` allows: a mode that does not work value by value
    (``kernel.spec.value_by_value`` False) runs its exact program; the others keep the
    last axis where ``kernel.keeps_last_axis`` says so."""
    if not kernel.spec.value_by_value:
        return images, _identity
    return prepare(family, images, batched=batched, keeps_last_axis=kernel.keeps_last_axis)


def call(program: Callable[..., Any], kernel: Any, *args: Any) -> Any:
    """``program(*args)`` whose last argument is one element (e.g. ``(H, W, C)``) of
    ``kernel``'s, run in the element's bucket when ``prepare_for`` says so (``program``
    is the family): the output has the element's shape and dtype, bit for bit the
    exact program's."""
    padded, restore = prepare_for(kernel, program, args[-1], batched=False)
    return restore(program(*args[:-1], padded))


# JAX's monitoring event for one XLA compilation (jax._src.dispatch.BACKEND_COMPILE_EVENT).
_BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles() -> Iterator[list[int]]:
    """Counts XLA compilations in this process while the block runs.

    ``with count_compiles() as compiles: ...`` then ``compiles[0]`` is the number of
    backend compilations (every jitted program for a new shape or dtype, and
    every eager JAX operation compiled for the first time), from JAX's own
    monitoring event.
    """
    counter = [0]

    def listener(event: str, duration_secs: float, **kwargs: str | int) -> None:
        del duration_secs, kwargs
        if event == _BACKEND_COMPILE_EVENT:
            counter[0] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counter
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
