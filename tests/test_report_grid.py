"""The report's summary grid and its anchors, read with ``html.parser`` (no browser, no JAX
work): every id is a valid HTML id and unique, every in-page link resolves, and the grid
has one row per run (mode or training setting) whose counts are the verdicts'.

The runs are built from hand-made verdicts (the aspects ``verify`` uses, a failing one, a
run name with `` · `` and one whose name needs a suffix to stay unique), so these tests
are fast; ``tests/test_report.py`` (slow) applies the same reader to a report of real
checks, and ``nox -s browser`` to one rendered by Chromium.
"""

from __future__ import annotations

import collections
import html.parser
import re

import pytest

from datarax_ops.conformance import report
from datarax_ops.conformance.results import ModeRun, Verdict

VALID_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
CELL_TEXT = re.compile(rf"^([{report.PASS_MARK}{report.FAIL_MARK}]) (\d+)/(\d+)$")
ENVIRONMENT = {
    "python": "3.x",
    "platform": "test",
    "cpu_model": "test cpu",
    "cpu_count": 2,
    "cpus_usable": 2,
    "backend": "cpu",
    "device_kinds": "1 cpu",
    "git": None,
    "versions": {"datarax-ops": "0"},
}


class PageReader(html.parser.HTMLParser):
    """Every ``id``, every ``href="#..."`` and the summary grid of a report page.

    ``grid``: one ``(row header text, row header href, [(cell text, cell class, cell
    href)])`` per body row of ``<table id="grid">``; ``columns``: its header texts.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.links: list[str] = []
        self.columns: list[str] = []
        self.grid: list[tuple[str, str | None, list[tuple[str, str, str | None]]]] = []
        self._in_grid = self._in_head = False
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"] or "")
        if tag == "a" and (attrs.get("href") or "").startswith("#"):
            self.links.append(attrs["href"][1:])
            if self._cell is not None:
                self._cell["href"] = attrs["href"][1:]
        if tag == "table" and attrs.get("id") == "grid":
            self._in_grid = True
        elif self._in_grid and tag == "thead":
            self._in_head = True
        elif self._in_grid and tag == "tr" and not self._in_head:
            self.grid.append(("", None, []))
        elif self._in_grid and tag in ("th", "td"):
            self._cell = {"tag": tag, "text": "", "class": attrs.get("class") or "", "href": None}

    def handle_endtag(self, tag):
        if tag == "table" and self._in_grid:
            self._in_grid = False
        elif self._in_grid and tag == "thead":
            self._in_head = False
        elif self._in_grid and tag in ("th", "td") and self._cell is not None:
            cell, self._cell = self._cell, None
            if self._in_head:
                self.columns.append(cell["text"])
            elif cell["tag"] == "th":
                self.grid[-1] = (cell["text"], cell["href"], self.grid[-1][2])
            else:
                self.grid[-1][2].append((cell["text"], cell["class"], cell["href"]))

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def read_page(page: str) -> PageReader:
    reader = PageReader()
    reader.feed(page)
    reader.close()
    return reader


def anchor_problems(reader: PageReader) -> list[str]:
    """Ids that are not valid HTML ids (letters, digits, '-', '_', a letter first) or not
    unique, and in-page links to no id."""
    problems = [f"invalid id {i!r}" for i in reader.ids if not VALID_ID.match(i)]
    counts = collections.Counter(reader.ids)
    problems += [f"id {i!r} used {n} times" for i, n in counts.items() if n > 1]
    problems += [f"link #{h} resolves to no id" for h in reader.links if h not in counts]
    return problems


def grid_problems(reader: PageReader, runs: list[ModeRun]) -> list[str]:
    """Differences between the grid and the runs' verdicts: one row per run, in order; per
    property column, ``mark passed/total`` of that run's verdicts of that aspect (``—``
    without any), the ``all`` column for every verdict of the run."""
    problems = []
    if [name for name, _, _ in reader.grid] != [run.mode for run in runs]:
        problems.append(f"grid rows {[n for n, _, _ in reader.grid]} are not the runs")
    aspects = reader.columns[1:-1]
    expected_aspects = {v.aspect for run in runs for v in run.verdicts}
    if sorted(aspects) != sorted(expected_aspects) or reader.columns[-1] != "all":
        problems.append(f"grid columns {reader.columns} are not the properties checked + all")
    for (name, _, cells), run in zip(reader.grid, runs, strict=False):
        tally = collections.defaultdict(lambda: [0, 0])
        for v in run.verdicts:
            tally[v.aspect][0] += v.passed
            tally[v.aspect][1] += 1
        tally["all"] = [sum(v.passed for v in run.verdicts), len(run.verdicts)]
        for column, (text, cls, href) in zip([*aspects, "all"], cells, strict=True):
            if column not in tally:
                if text != report.NO_CHECK or href is not None:
                    problems.append(f"{name} / {column}: {text!r} for no check")
                continue
            passed, total = tally[column]
            match = CELL_TEXT.match(text)
            mark = report.PASS_MARK if passed == total else report.FAIL_MARK
            if not match or match.groups() != (mark, str(passed), str(total)):
                problems.append(f"{name} / {column}: {text!r}, verdicts say {passed}/{total}")
            if cls != ("pass" if passed == total else "FAIL") or not href:
                problems.append(f"{name} / {column}: class {cls!r}, link {href!r}")
    return problems


def verdict(mode: str, aspect: str, what: str, passed: bool = True) -> Verdict:
    return Verdict(mode, aspect, what, "exact", None, None, 0.0, passed)


def make_run(mode: str, checks: list[tuple[str, int, int]]) -> ModeRun:
    """A run with, per ``(aspect, passed, total)``, ``total`` verdicts of which the first
    ``passed`` pass."""
    run = ModeRun(mode, config=None)
    for aspect, passed, total in checks:
        run.verdicts += [verdict(mode, aspect, f"check {i}", i < passed) for i in range(total)]
    return run


@pytest.fixture(scope="module")
def runs() -> list[ModeRun]:
    return [
        make_run("gaussian", [("law vs scipy", 2, 2), ("vs reference", 1, 1), ("params", 3, 3)]),
        make_run("pixel", [("keep rate", 2, 2), ("vs reference", 1, 1), ("dtypes", 2, 3)]),
        make_run("gaussian · range", [("vs reference", 1, 1), ("strength law", 1, 2)]),
        make_run("gaussian  range", [("apply_prob", 1, 1)]),  # slugs like the one above
        make_run("9 lives", [("params", 1, 1)]),  # a slug must not start with a digit
    ]


@pytest.fixture(scope="module")
def page(runs) -> str:
    return report.render(
        runs, seed=1, samples=1000, source="test", environment=ENVIRONMENT, command="x"
    )


def test_every_id_is_valid_and_unique_and_every_link_resolves(page):
    reader = read_page(page)
    assert len(reader.links) > len(reader.grid) > 0
    assert anchor_problems(reader) == []


def test_the_grid_counts_are_the_verdicts(page, runs):
    reader = read_page(page)
    assert grid_problems(reader, runs) == []
    # the failing cells are the ones whose verdicts failed
    failing = {
        (n, c)
        for n, _, cells in reader.grid
        for c, (_, k, _) in zip(reader.columns[1:], cells, strict=True)
        if k == "FAIL"
    }
    assert failing == {
        ("pixel", "dtypes"),
        ("pixel", "all"),
        ("gaussian · range", "strength law"),
        ("gaussian · range", "all"),
    }


def test_grid_links_lead_to_each_run_and_its_property_rows(page, runs):
    reader = read_page(page)
    sections = re.findall(r'<section id="([^"]+)">\s*<h2>([^<]+?) <span', page)
    assert [name for _, name in sections] == [run.mode for run in runs]
    assert [href for _, href, _ in reader.grid] == [section for section, _ in sections]
    # a property cell links to the first row of that property in the run's section
    first_dtypes = re.search(r'<tr id="([^"]+)"><td>pixel</td><td>dtypes</td>', page)
    pixel_cells = dict(zip(reader.columns[1:], reader.grid[1][2], strict=True))
    assert first_dtypes and pixel_cells["dtypes"][2] == first_dtypes.group(1)


def test_the_full_table_follows_collapsed(page, runs):
    assert page.index('id="grid"') < page.index('<details id="all-verdicts">')
    details = page.split('<details id="all-verdicts">')[1].split("</details>")[0]
    assert 'id="verdicts"' in details
    assert details.count("<tr>") == 1 + sum(len(run.verdicts) for run in runs)


def test_columns_keep_each_runs_order():
    """New properties go before the next known one of their run, else at the end."""
    runs = [
        make_run("a", [("law", 1, 1), ("vs reference", 1, 1), ("dtypes", 1, 1)]),
        make_run("b", [("keep rate", 1, 1), ("vs reference", 1, 1), ("sharing", 1, 1)]),
        make_run("a · range", [("vs reference", 1, 1), ("strength law", 1, 1)]),
    ]
    assert report.property_columns(runs) == [
        "law",
        "keep rate",
        "vs reference",
        "dtypes",
        "sharing",
        "strength law",
    ]


@pytest.mark.parametrize(
    ("text", "taken", "expected"),
    [
        ("mode-gaussian · range", set(), "mode-gaussian-range"),
        ("mode-salt_pepper", set(), "mode-salt_pepper"),
        ("mode-gaussian · range", {"mode-gaussian-range"}, "mode-gaussian-range-2"),
        ("mode-x", {"mode-x", "mode-x-2"}, "mode-x-3"),
        ("9 lives", set(), "x-9-lives"),
        (" · ", set(), "section"),
        ("mode-é", set(), "mode"),
    ],
)
def test_anchor_slug(text, taken, expected):
    before = set(taken)
    assert report.anchor_slug(text, taken) == expected
    assert VALID_ID.match(expected)
    assert taken == before | {expected}
