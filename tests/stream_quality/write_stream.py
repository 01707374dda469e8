"""Writes the raw random stream an operator consumes, for external test batteries (dieharder).

The words are exactly what ``datarax_ops.stream.element_bits`` gives a
stochastic operator: one base key drawn from ``nnx.Rngs(SEED)``'s default
stream (as an operator's constructor draws it), then records ``0, 1, 2, ...`` in order,
each record's key ``record_key(base, i)`` and its element's words in
row-major order (``--shape``, default one 64x64x3 image).  Output is raw
little-endian ``uint32``.

Usage::

    # unbounded, to stdout (dieharder -g 200 reads raw words from stdin)
    python tests/stream_quality/write_stream.py | dieharder -g 200 -a

    # a file of 256 MiB (dieharder -g 201 -f FILE)
    python tests/stream_quality/write_stream.py --bytes 268435456 --output stream.bin

``--bytes`` is rounded up to whole records.  Stdout output ends quietly when
the reader closes the pipe.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from datarax_ops import stream


def base_key(seed: int) -> np.ndarray:
    """The raw base key an operator built with ``rngs=nnx.Rngs(seed)`` draws (first draw)."""
    return np.asarray(jax.random.key_data(nnx.Rngs(seed)["default"]()))


def make_chunk_fn(element_shape: tuple[int, ...], records: int):
    """Compiled ``(base, first) -> uint32 (records, *element_shape)``: records first, ..."""

    @jax.jit
    def chunk(base: jax.Array, first: jax.Array) -> jax.Array:
        keys = stream.record_key(base, first + jnp.arange(records, dtype=jnp.uint32))
        return stream.element_bits(keys, (records, *element_shape))

    return chunk


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="nnx.Rngs(SEED) (default 0)")
    parser.add_argument(
        "--shape",
        type=lambda s: tuple(int(d) for d in s.split("x")),
        default=(64, 64, 3),
        help="element shape as HxWxC (default 64x64x3)",
    )
    parser.add_argument(
        "--records-per-chunk", type=int, default=256, help="records per compiled call"
    )
    parser.add_argument("--bytes", type=int, default=None, help="stop after this many bytes")
    parser.add_argument("--output", default="-", help="file to write ('-', default: stdout)")
    parser.add_argument("--quiet", action="store_true", help="no summary on stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    words_per_record = math.prod(args.shape)
    chunk_fn = make_chunk_fn(args.shape, args.records_per_chunk)
    base = jnp.asarray(base_key(args.seed))
    limit = None if args.bytes is None else -(-args.bytes // (4 * words_per_record))  # records
    out = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")
    written = 0  # records
    start = time.monotonic()
    try:
        while limit is None or written < limit:
            count = (
                args.records_per_chunk
                if limit is None
                else min(args.records_per_chunk, limit - written)
            )
            if written + count > 2**32:
                raise SystemExit("record index would pass 2**32 (32-bit record counter)")
            words = np.asarray(chunk_fn(base, jnp.uint32(written)))[:count]
            out.write(words.astype("<u4", copy=False).tobytes())
            written += count
    except BrokenPipeError:
        # The reader (dieharder) is done: silence the flush at exit as well.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        if not args.quiet:
            seconds = time.monotonic() - start
            size = written * words_per_record * 4
            print(
                f"write_stream: base key {base_key(args.seed).tolist()} (nnx.Rngs({args.seed})),"
                f" {written} records of shape {args.shape}, {size} bytes "
                f"in {seconds:.1f} s ({size / max(seconds, 1e-9) / 1e6:.1f} MB/s)",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
