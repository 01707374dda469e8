"""The ``verify`` HTML report: self-contained, every image decodes, every mode has its
section, the verdict table is the printed one.

The report is rendered from law checks on the NumPy reference's outputs for every
mode (``checks.output_law``: no compilation, so every mode fits in a fast test);
one CLI run (channel mode, fixed seed) checks the file ``verify`` writes.
"""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from datarax_ops import cli
from datarax_ops.conformance import checks, images, report
from datarax_ops.conformance.laws import law_for
from datarax_ops.conformance.results import ModeRun, false_alarm_budget
from datarax_ops.environment import environment
from tests.test_report_grid import anchor_problems, grid_problems, read_page
from tests.test_verify import printed_rows, report_rows

# Runs whole commands: `nox -s slow` (CI runs it after `tests`).
pytestmark = pytest.mark.slow

IMG_SRC = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def reference_runs() -> list[ModeRun]:
    """A ``ModeRun`` per mode: the law checks of the reference's outputs (seeds fixed)."""
    runs = []
    for i, mode in enumerate(checks.MODE_NAMES):
        law = law_for(mode)
        config = law.config()
        batch = checks.probe_batch([images.synthetic_image()], 20_000, law.patch)
        out = checks.reference_output(config, batch, np.random.default_rng(10 + i))
        ref = checks.reference_output(config, batch, np.random.default_rng(20 + i))
        runs.append(checks.output_law(config, batch, out, ref, seed=i))
    return runs


def gallery_stub() -> bytes:
    """A small real PNG standing in for the gallery (the gallery has its own tests)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.imshow(images.synthetic_image(32, 32))
    ax.set_title("gallery stand-in")
    return report.figure_png(fig)


@pytest.fixture(scope="module")
def runs() -> list[ModeRun]:
    return reference_runs()


@pytest.fixture(scope="module")
def page(runs) -> str:
    return report.render(
        runs,
        seed=5,
        samples=20_000,
        source="built-in synthetic image",
        environment=environment(),
        gallery_png=gallery_stub(),
        command="datarax-ops verify --seed 5",
    )


def test_every_embedded_image_decodes(page):
    encoded = IMG_SRC.findall(page)
    # per mode: one distribution plot and (except gaussian and poisson) a rates plot; the gallery
    assert len(encoded) >= len(checks.MODE_NAMES) + 1
    for data in encoded:
        with Image.open(io.BytesIO(base64.b64decode(data))) as picture:
            picture.load()
            assert picture.format == "PNG"
            assert picture.width >= 150 and picture.height >= 100


def test_every_mode_has_its_section_with_plots(page, runs):
    assert report_rows(page) == [report.verdict_row(v) for run in runs for v in run.verdicts]
    for mode in checks.MODE_NAMES:
        match = re.search(rf'<section id="mode-{mode}">(.*?)</section>', page, re.S)
        assert match, f"no section for {mode}"
        assert IMG_SRC.search(match.group(1)), f"no plot in the {mode} section"
    assert '<section id="gallery">' in page and '<section id="environment">' in page


def test_grid_and_anchors_of_a_report_of_real_checks(page, runs):
    reader = read_page(page)
    assert anchor_problems(reader) == []
    assert grid_problems(reader, runs) == []
    assert [name for name, _, _ in reader.grid] == list(checks.MODE_NAMES)


def test_report_is_self_contained(page):
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert not re.search(r"<link\b", page)


def test_budget_and_environment_are_reported(page, runs):
    verdicts = [v for run in runs for v in run.verdicts]
    count, total = false_alarm_budget(verdicts)
    assert count > 0 and total == pytest.approx(count * checks.ALPHA)
    assert f"{count} statistical checks at alpha = 1e-05" in page
    environment = dict(report_rows(page, "versions"))
    for name in (
        "backend",
        "devices",
        "cpu",
        "git",
        "python",
        "datarax-ops",
        "jax",
        "jaxlib",
        "flax",
        "numpy",
        "scipy",
    ):
        assert environment.get(name), name


def test_keep_rate_intervals_are_reported(page):
    section = re.search(r'<section id="mode-pixel">(.*?)</section>', page, re.S).group(1)
    assert "99% interval" in section and "keep rate of values, op(batch)" in section


def test_cli_writes_the_report_into_a_directory(tmp_path, capsys):
    status = cli.main(
        [
            "verify",
            "--mode",
            "channel",
            "--samples",
            "20000",
            "--seed",
            "11",
            "--out",
            f"{tmp_path}/",
            "--no-gallery",
        ]
    )
    stdout = capsys.readouterr().out
    assert status == 0, stdout
    written = (tmp_path / cli.DEFAULT_REPORT).read_text(encoding="utf-8")
    assert report_rows(written) == printed_rows(stdout) != []
    assert '<section id="mode-channel">' in written
    for data in IMG_SRC.findall(written):
        Image.open(io.BytesIO(base64.b64decode(data))).load()
