"""Threefry-2x32 words with Python ints, for the host paths of the grain transform.

A record that runs on the host (no compiled program: ``Kernel.host_apply``) needs a
handful of words of its record key.  ``reference.stream.threefry2x32`` computes them
readably at about 12 microseconds a block; here the same 20 rounds (Salmon et al.
2011, "Parallel random numbers: as easy as 1, 2, 3", section 3.2) run with each
group's four rounds written out and its key injection (``schedule[(g + 1) % 3]``,
``schedule[(g + 2) % 3] + g + 1``) computed once per call and shared by its blocks,
at about 5.
``tests/test_host_words.py`` compares them with the reference bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable

from datarax_ops.reference.stream import KEY_PARITY, RECORD_COUNTER_HIGH, ROTATIONS

_M = 0xFFFFFFFF


def blocks(key: tuple[int, int], counters: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[(y0, y1), ...]``: the Threefry-2x32 block of each counter ``(x0, x1)`` under
    ``key = (k0, k1)`` (all Python ints in ``[0, 2**32)``)."""
    k0, k1 = key[0] & _M, key[1] & _M
    k2 = k0 ^ k1 ^ KEY_PARITY
    schedule = ((k1, k2 + 1), (k2, k0 + 2), (k0, k1 + 3), (k1, k2 + 4), (k2, k0 + 5))
    out = []
    for c0, c1 in counters:
        x0 = (c0 + k0) & _M
        x1 = (c1 + k1) & _M
        for group, (inject0, inject1) in enumerate(schedule):
            r0, r1, r2, r3 = ROTATIONS[group & 1]
            x0 = (x0 + x1) & _M
            x1 = (((x1 << r0) & _M) | (x1 >> (32 - r0))) ^ x0
            x0 = (x0 + x1) & _M
            x1 = (((x1 << r1) & _M) | (x1 >> (32 - r1))) ^ x0
            x0 = (x0 + x1) & _M
            x1 = (((x1 << r2) & _M) | (x1 >> (32 - r2))) ^ x0
            x0 = (x0 + x1) & _M
            x1 = (((x1 << r3) & _M) | (x1 >> (32 - r3))) ^ x0
            x0 = (x0 + inject0) & _M
            x1 = (x1 + inject1) & _M
        out.append((x0, x1))
    return out


def record_words(key: tuple[int, int], slots: Iterable[int]) -> list[int]:
    """Record words ``slots`` of raw record key ``key``: ``y0 ^ y1`` of the block of
    counter ``(RECORD_COUNTER_HIGH, slot)`` (``datarax_ops.stream.record_bits``)."""
    return [y0 ^ y1 for y0, y1 in blocks(key, ((RECORD_COUNTER_HIGH, s) for s in slots))]
