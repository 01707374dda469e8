"""The power the default session promises: every goal row of ``tests.power.table``
(a strength, probability or rate) catches a 3% relative error at the kit's alpha with
power 0.9.  Shrinking a sample below that fails here."""

from __future__ import annotations

import pytest

from tests.power import table


def test_every_goal_row_catches_a_3_percent_error():
    goal_rows = [row for row in table.rows() if row.goal]
    assert len(goal_rows) >= 10
    missed = [(row.check, row.n, row.caught) for row in goal_rows if row.relative > table.GOAL]
    assert not missed, f"checks that miss a {table.GOAL:.0%} error: {missed}"


def test_the_table_prints_every_row():
    text = table.markdown()
    assert text.count("\n") == len(table.rows()) + 1
    assert "MISSED" not in text


@pytest.mark.parametrize("name", ["gaussian_std_x1.03", "range_narrowed_5pct", "speckle_std_x1.05"])
def test_the_slice_names_law_changing_variants(name):
    from tests.power.run import SLICE
    from tests.power.variants import VARIANTS

    assert name in SLICE and all(VARIANTS[v].law_changing for v in SLICE)
