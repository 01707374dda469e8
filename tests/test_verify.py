"""``datarax-ops verify``: passes on the real operators, fails on deliberately wrong ones.

Every run uses a fixed ``--seed`` and small samples (20000 values a sample), so
the verdicts are deterministic: a green run stays green.  At that size the
statistical checks (alpha 1e-5 each) still reject the wrong operators used here
by a wide margin: gaussian noise with its std scaled by 1.3 (variance +69%,
about 60 standard errors of the variance check), pixel dropout keeping at
0.75 instead of 0.8 (17 standard errors of the binomial check).

The CLI runs cover gaussian, salt & pepper, pixel and channel; poisson's
compiled programs take about 40 s to build on the 2-core CI machine, so its
checks are exercised here on the NumPy reference's outputs
(``test_output_law_*``), which cost no compilation, and in full by
``datarax-ops verify``.
"""

from __future__ import annotations

import dataclasses
import html
import html.parser
import re

import numpy as np
import pytest

from datarax_ops import cli
from datarax_ops.conformance import checks, images
from datarax_ops.conformance.laws import LAWS, law_for, load_law
from datarax_ops.modes import MODES

# Starts processes or runs whole commands: `nox -s slow` (CI runs it after `tests`).
pytestmark = pytest.mark.slow

SEED = "7"
SAMPLES = "20000"
FAST_MODES = "gaussian,salt_pepper,pixel,channel"


# --------------------------------------------------------------------------- #
# Reading the printed table and the report's table                             #
# --------------------------------------------------------------------------- #
def printed_rows(stdout: str) -> list[tuple[str, ...]]:
    """The verdict rows of rich's printed table: lines ``│ a │ b │ ... │``; a line whose
    first cell is empty continues the row above (rich wraps a long check text, such as a
    failure's evidence, at its spaces)."""
    rows: list[list[str]] = []
    for line in stdout.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if cells[0] or not rows:
            rows.append(cells)
        else:
            rows[-1] = [f"{a} {b}" if b else a for a, b in zip(rows[-1], cells, strict=True)]
    return [tuple(row) for row in rows]


class _TableReader(html.parser.HTMLParser):
    """Collects the cell texts of the ``<table id=...>`` named ``table_id``."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.inside, self.rows, self.cell = table_id, False, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag == "td":
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag == "td" and self.cell is not None:
            self.rows[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def report_rows(page: str, table_id: str = "verdicts") -> list[tuple[str, ...]]:
    reader = _TableReader(table_id)
    reader.feed(page)
    return [tuple(row) for row in reader.rows if row]


def run_verify(tmp_path, capsys, argv, factory=None) -> tuple[int, str, str]:
    """(exit status, stdout, report HTML) of ``datarax-ops verify argv``."""
    out = tmp_path / "report.html"
    argv = [*argv, "--seed", SEED, "--samples", SAMPLES, "--out", str(out), "--no-gallery"]
    if factory is None:
        status = cli.main(["verify", *argv])
    else:
        status = cli.verify(argv, factory=factory)
    return status, capsys.readouterr().out, out.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- #
# Wrong operators, injected through the factory                                #
# --------------------------------------------------------------------------- #
def std_times_1_3(config, *, rngs=None):
    """Gaussian noise with its std scaled by 1.3; every other mode untouched."""
    if config.mode == "gaussian":
        config = dataclasses.replace(config, noise_std=config.noise_std * 1.3)
    return checks.default_factory(config, rngs=rngs)


def keeps_at_wrong_rate(config, *, rngs=None):
    """Pixel dropout with ``dropout_rate + 0.05`` (keeps 0.75 of values instead of 0.8)."""
    if config.mode == "pixel":
        config = dataclasses.replace(config, dropout_rate=config.dropout_rate + 0.05)
    return checks.default_factory(config, rngs=rngs)


# --------------------------------------------------------------------------- #
# Tests                                                                        #
# --------------------------------------------------------------------------- #
def test_verify_passes_on_the_real_operators(tmp_path, capsys):
    status, stdout, page = run_verify(tmp_path, capsys, ["--mode", FAST_MODES])
    rows = printed_rows(stdout)
    assert status == 0, stdout
    assert rows and all(row[-1] == "pass" for row in rows)
    modes = FAST_MODES.split(",")
    settings = {"range", "shared channels", "apply_prob"}
    training = {row[0] for row in rows} - set(modes)  # "<mode> · <setting>" runs
    assert {row[0] for row in rows} >= set(modes)
    assert {name.split(" · ")[0] for name in training} == set(modes)
    assert {name.split(" · ")[1] for name in training} == settings
    assert f"{modes[-1]} · shared channels" not in training  # not for channel dropout
    assert "PASSED" in stdout and f"seed {SEED}" in stdout
    assert re.search(r"False-alarm budget: \d+ statistical checks at alpha = 1e-05", stdout)
    assert report_rows(page) == rows  # the report's table is the printed one
    properties = {row[1] for row in rows}
    assert {
        "law vs scipy",
        "vs reference",
        "params",
        "clip range",
        "independence",
        "batch split",
        "determinism",
        "dtypes",
        "keep rate",
        "channel sharing",
        "strength law",
        "output law",
        "shared channels",
        "apply_prob",
    } <= properties


@pytest.mark.parametrize(
    ("factory", "mode", "failing"),
    [
        (std_times_1_3, "gaussian", "variance of residual out - x"),
        (keeps_at_wrong_rate, "pixel", "kept values ~ Binomial"),
    ],
    ids=["gaussian-std-x1.3", "pixel-wrong-keep-rate"],
)
def test_verify_fails_on_a_wrong_operator(tmp_path, capsys, factory, mode, failing):
    status, stdout, page = run_verify(tmp_path, capsys, ["--mode", mode], factory=factory)
    assert status == 1, stdout
    rows = printed_rows(stdout)
    failed = [row for row in rows if row[-1] == "FAIL"]
    assert any(row[0] == mode and row[2].startswith(failing) for row in failed), stdout
    assert "FAILED" in stdout
    html_rows = report_rows(page)
    assert html_rows == rows
    assert any(row[2].startswith(failing) and row[-1] == "FAIL" for row in html_rows)
    summary = page.split('id="summary"')[1].split("</p>")[0]
    assert "checks failed" in summary and failing in html.unescape(summary)
    # the exact properties of a merely mis-scaled operator still hold
    assert all(row[-1] == "pass" for row in rows if row[1] in ("batch split", "dtypes"))


def test_unknown_mode_is_an_error(capsys):
    assert cli.main(["verify", "--mode", "gaussian,sparkle"]) == 2
    assert "sparkle" in capsys.readouterr().err


def test_mode_list_comes_from_the_reference():
    assert cli.parse_modes(None) == [m.name for m in MODES] == list(LAWS)
    assert cli.parse_modes(["channel", "gaussian,pixel"]) == ["gaussian", "pixel", "channel"]


def test_a_mode_without_a_law_is_named():
    """Every mode has its law file; a missing one is an error naming the file to add."""
    assert [law.mode for law in LAWS.values()] == [m.name for m in MODES]
    with pytest.raises(LookupError, match=r"laws/sparkle\.py"):
        load_law("sparkle")


def test_main_without_a_command_prints_usage(capsys):
    assert cli.main([]) == 2
    assert "verify" in capsys.readouterr().out


def probe(mode: str) -> tuple[object, np.ndarray]:
    law = law_for(mode)
    return law.config(), checks.probe_batch([images.synthetic_image()], 30_000, law.patch)


@pytest.mark.parametrize("mode", checks.MODE_NAMES)
def test_output_law_accepts_the_reference(mode):
    """The law checks pass on the reference's own outputs (two independent draws)."""
    config, batch = probe(mode)
    out = checks.reference_output(config, batch, np.random.default_rng(1))
    ref = checks.reference_output(config, batch, np.random.default_rng(2))
    run = checks.output_law(config, batch, out, ref, seed=3)
    assert run.verdicts and run.passed, [v for v in run.verdicts if not v.passed]


WRONG = {
    "gaussian": {"noise_std": 0.13},
    "salt_pepper": {"salt_prob": 0.08},
    "poisson": {"lam_scale": 20.0},  # variance x / 20 instead of x / 30
    "pixel": {"dropout_rate": 0.25},
    "channel": {"dropout_rate": 0.4},
    "speckle": {"noise_std": 0.26},
    "coarse": {"hole_count_range": (2, 3), "hole_size_range": (0.4, 0.8)},  # 0..3, 20..50%
}


@pytest.mark.parametrize("mode", checks.MODE_NAMES)
def test_output_law_rejects_a_wrong_law(mode):
    """Outputs drawn with a wrong parameter fail the law checks against scipy and the
    reference (checks a mode without a wrong case here: a new mode needs one)."""
    config, batch = probe(mode)
    wrong = dataclasses.replace(config, **WRONG[mode])
    out = checks.reference_output(wrong, batch, np.random.default_rng(1))
    ref = checks.reference_output(config, batch, np.random.default_rng(2))
    run = checks.output_law(config, batch, out, ref, seed=3)
    failed = {v.aspect for v in run.verdicts if not v.passed}
    assert failed >= {"vs reference"} and failed & {"law vs scipy", "keep rate"}, run.verdicts
