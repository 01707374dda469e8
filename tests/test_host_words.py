"""The host paths' Threefry words (``datarax_ops.host_words``) are the reference's."""

from __future__ import annotations

import numpy as np
from datarax_ops.reference import stream as reference_stream
from hypothesis import given
from hypothesis import strategies as st

from datarax_ops import host_words

WORD = st.integers(0, 2**32 - 1)


@given(key=st.tuples(WORD, WORD), counters=st.lists(st.tuples(WORD, WORD), max_size=6))
def test_host_blocks_are_the_reference_blocks(key, counters):
    """Every block of ``host_words.blocks`` is ``reference.stream.threefry2x32``'s, for
    any key and counters (the word edges 0 and 2**32 - 1 included by Hypothesis)."""
    expected = [tuple(int(y) for y in reference_stream.threefry2x32(key, c)) for c in counters]
    assert host_words.blocks(key, counters) == expected


def test_host_record_words_are_the_reference_record_bits():
    """``record_words`` equals ``reference.stream.record_bits`` (the words the compiled
    ``stream.record_bits`` reads) of the same key and slots."""
    key = (0x13198A2E, 0x03707344)
    slots = [0, 1, 2, 16, 17, 1000]
    key_array = np.asarray(key, np.uint32)
    expected = [int(reference_stream.record_bits(key_array, slot)) for slot in slots]
    assert host_words.record_words(key, slots) == expected
