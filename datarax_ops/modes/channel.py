"""Channel dropout, compiled: one keep decision per channel of an ``(H, W, C)`` element.

The twin of ``reference/modes/channel.py`` (the spec): ``draw``, ``apply`` and the
kernel, plus the two things only this mode has:

* datarax 0.1.4's mask for an ``(H, W, C)`` element is ``(1, 1, C)``; here it is
  ``(C,)`` (``ChannelKernel.from_datarax_params`` converts it);
* a host path (``ChannelKernel.host_apply``): a NumPy record costs one pass over its
  bytes on the host, whereas a compiled call adds a dispatch and copies into and
  out of a size bucket (0.28 ms per varied 64..1024 px uint8 record that way,
  behind albumentations' 0.15; ``datarax_ops.bench``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from datarax_ops import host_words
from datarax_ops.modes._dropout import DropoutKernelBase, finish, keep_decisions
from datarax_ops.reference import stream as host_stream
from datarax_ops.reference.modes import channel as spec_module
from datarax_ops.reference.spec import ModeSpec

Array = jax.Array
Params = dict[str, Array]

# Channel dropout runs on the host for (H, W, C) records with at most this many channels.
HOST_CHANNELS = 64
# Bytes of the repeating keep pattern ``zero_channels`` ANDs in one call (a multiple
# of 8 and of the pixel's bytes, at least this many).
_PATTERN_BYTES = 8192


def draw(kernel: ChannelKernel, key: Array, element_shape: tuple[int, ...]) -> Params:
    """``{"keep_mask": bool (C,)}`` for an ``(H, W, C)`` element; element shape otherwise."""
    return keep_decisions(kernel, key, spec_module.mask_shape(element_shape))


def apply(kernel: ChannelKernel, image: Array, params: Params) -> Array:
    """Drops whole channels: the ``(C,)`` mask is broadcast over H and W."""
    keep = jnp.broadcast_to(params["keep_mask"].astype(bool), image.shape)
    return finish(kernel, image, keep)


# --------------------------------------------------------------------------- #
# The host path                                                                #
# --------------------------------------------------------------------------- #
def host_channel_keep(key: tuple[int, int], channels: int, rate: float) -> np.ndarray:
    """Bool ``(channels,)``: channel dropout's keep decisions for a record with raw key
    ``key`` (two Python ints), equal to ``stream.keep_mask(key, (channels,), rate)``.

    Channel ``c``'s word is ``y0 ^ y1`` of ``threefry2x32(key, (0, c))``, computed with
    Python ints (``host_words.blocks``): a few microseconds per channel, where a
    compiled call costs tens.
    """
    words = [y0 ^ y1 for y0, y1 in host_words.blocks(key, ((0, c) for c in range(channels)))]
    return host_stream.keep_from_bits(np.asarray(words, np.uint32), rate)


@functools.lru_cache(maxsize=256)
def _channel_pattern(keep: tuple[bool, ...], itemsize: int) -> np.ndarray:
    """``uint8 (n,)``: one pixel's bytes (``0xFF`` for a kept channel, ``0x00`` for a
    dropped one) repeated ``n`` times, ``n`` a multiple of 8 and of the pixel's size."""
    pixel = np.repeat(np.where(np.asarray(keep), 0xFF, 0).astype(np.uint8), itemsize)
    period = math.lcm(pixel.size, 8)
    repeats = max(1, _PATTERN_BYTES // period) * period // pixel.size
    return np.tile(pixel, repeats)


def zero_channels(image: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """A new array: ``image`` ``(..., C)`` with the channels where ``keep`` (bool ``(C,)``)
    is False set to 0 (all bits clear: ``+0`` of any dtype, as ``where(keep, image, 0)``).

    One pass: the image's bytes ANDed with a repeating byte pattern, 8 bytes at a
    time (a strided fill of each dropped channel after a copy costs about twice as
    much, measured on 64..1024 px uint8 records).
    """
    output = np.empty_like(image, order="C")
    if keep.all():
        np.copyto(output, image)
        return output
    pattern = _channel_pattern(tuple(bool(k) for k in keep), image.dtype.itemsize)
    source = np.ascontiguousarray(image).reshape(-1).view(np.uint8)
    target = output.reshape(-1).view(np.uint8)
    whole = source.size - source.size % pattern.size  # bytes in whole patterns
    words = pattern.view(np.uint64)
    np.bitwise_and(
        source[:whole].view(np.uint64).reshape(-1, words.size),
        words,
        out=target[:whole].view(np.uint64).reshape(-1, words.size),
    )
    np.bitwise_and(source[whole:], pattern[: source.size - whole], out=target[whole:])
    return output


@dataclass(frozen=True)
class ChannelKernel(DropoutKernelBase):
    """One keep decision per channel of an ``(H, W, C)`` element."""

    spec: ClassVar[ModeSpec] = spec_module.MODE

    def draw_mode(self, key: Array, element_shape: tuple[int, ...]) -> Params:
        return draw(self, key, element_shape)

    def apply_mode(self, image: Array, params: Params) -> Array:
        return apply(self, image, params)

    def from_datarax_params(self, random_params: dict, element_shape: tuple[int, ...]) -> dict:
        """datarax's ``(1, 1, C)`` mask of an ``(H, W, C)`` element as this mode's ``(C,)``."""
        mask = random_params.get(self.param_key)
        if len(element_shape) != 3 or mask is None:
            return random_params
        channels = element_shape[-1]
        if tuple(getattr(mask, "shape", ())) != (1, 1, channels):
            return random_params
        return {**random_params, self.param_key: jnp.reshape(mask, (channels,))}

    def has_host_path(self, image: Any) -> bool:
        """An ``(H, W, C)`` record with at most ``HOST_CHANNELS`` channels, for a kernel
        without a clip, a rate range or an apply probability (the rest compile)."""
        return (
            self.clip_range is None
            and not self.ranges
            and self.apply_prob == 1
            and np.ndim(image) == 3
            and 0 < np.shape(image)[-1] <= HOST_CHANNELS
        )

    def host_apply(self, key: tuple[int, int], image: np.ndarray) -> np.ndarray:
        """The record's channels dropped on the host, bit for bit ``draw_and_apply``
        (``where(keep, image, 0)``; ``has_host_path`` said there is no clip)."""
        return zero_channels(image, host_channel_keep(key, image.shape[-1], self.dropout_rate))


KERNEL = ChannelKernel
