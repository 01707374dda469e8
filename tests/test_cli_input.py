"""Bad input to ``datarax-ops verify``, ``demo`` and ``bench``: one line on stderr,
``datarax-ops <command>: error: ...``, exit status 2, no traceback, and before any work.

"Before any work" is proven by the ``no_work`` fixture: every function that compiles,
samples or times (the checks, the gallery, the bench's measurements) is replaced by one
that fails the test if called.  The commands run in-process (``cli.main``); one slow test
runs the installed command as a user would.

Also here: a report that cannot be written at the end goes to a named fallback file,
after the verdict table was printed, and the exit status is still the verdict's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from datarax_ops import cli
from datarax_ops.bench import records as bench_records
from datarax_ops.bench import run as bench_run
from datarax_ops.bench import training as bench_training
from datarax_ops.conformance import checks, gallery, training
from datarax_ops.conformance.results import ModeRun, Verdict

PROC_FORBIDDEN = "/proc/forbidden/x.html"  # /proc takes no new directories, even from root
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def _no_work(*args, **kwargs):
    raise AssertionError("work started before the inputs were checked")


@pytest.fixture
def no_work(monkeypatch):
    """Every function that compiles, samples or times fails the test if called."""
    for module, name in (
        (checks, "verify_mode"),
        (training, "verify_training"),
        (cli, "gallery_picture"),
        (gallery, "gallery_figure"),
        (bench_run, "build_cases"),
        (bench_run, "measure_case"),
        (bench_run, "measure_fixed_costs"),
        (bench_records, "measure_records"),
        (bench_training, "measure_training"),
    ):
        monkeypatch.setattr(module, name, _no_work)


def error_line(argv: list[str], capsys) -> str:
    """Runs ``datarax-ops argv`` in-process; asserts exit status 2 and exactly one line on
    stderr, ``datarax-ops <command>: error: ...``, and returns that line."""
    status = cli.main(argv)
    captured = capsys.readouterr()
    assert status == 2, captured
    lines = captured.err.splitlines()
    assert len(lines) == 1 and captured.err.endswith("\n"), captured.err
    assert lines[0].startswith(f"datarax-ops {argv[0]}: error: "), lines[0]
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


@pytest.fixture
def pictures(tmp_path):
    """Directories of pictures as users hand them: broken, empty, non-image files only."""
    from PIL import Image

    broken = tmp_path / "broken"
    broken.mkdir()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(broken / "a_good.png")
    (broken / "notes.png").write_text("not a picture")
    empty = tmp_path / "empty"
    empty.mkdir()
    text_only = tmp_path / "text_only"
    text_only.mkdir()
    (text_only / "readme.txt").write_text("no pictures here")
    return {"broken": broken, "empty": empty, "text_only": text_only, "good": broken / "a_good.png"}


# --------------------------------------------------------------------------- #
# verify                                                                       #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--mode", "sparkle"], "sparkle"),
        (["--mode", "gaussian,sparkle"], "unknown mode"),
        (["--mode", ","], "--mode names no mode"),
        (["--samples", "0"], "--samples must be at least 1000, got 0"),
        (["--samples", "-5"], "--samples must be at least 1000, got -5"),
        (["--samples", "999"], "--samples must be at least 1000, got 999"),
        (["--samples", "many"], "--samples: invalid int value: 'many'"),
        (["--samples", "1e5"], "invalid int value: '1e5'"),
        (["--seed", "x"], "--seed: invalid int value"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["--out", PROC_FORBIDDEN], f"--out {PROC_FORBIDDEN}: cannot write there"),
    ],
)
def test_verify_rejects_options_before_any_work(args, says, no_work, tmp_path, capsys):
    out = [] if "--out" in args else ["--out", str(tmp_path / "r.html")]
    assert says in error_line(["verify", *args, *out], capsys)


def test_verify_rejects_an_out_it_cannot_write(no_work, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    line = error_line(["verify", "--out", str(a_file / "r.html")], capsys)
    assert f"--out {a_file / 'r.html'}: cannot write there: {a_file} is a file" in line


@pytest.mark.parametrize(
    ("which", "says"),
    [
        ("missing", "--images: no such file or directory: "),
        ("broken", "notes.png as an image"),
        ("empty", "no images (.png, .jpg, .jpeg) in directory"),
        ("text_only", "no images (.png, .jpg, .jpeg) in directory"),
    ],
)
def test_verify_rejects_images_it_cannot_read(which, says, pictures, no_work, tmp_path, capsys):
    folder = tmp_path / "nonexistent" if which == "missing" else pictures[which]
    argv = ["verify", "--images", str(folder), "--out", str(tmp_path / "r.html")]
    line = error_line(argv, capsys)
    assert says in line and str(folder) in line


@pytest.mark.skipif(ROOT, reason="root reads any directory")
def test_verify_rejects_an_unreadable_images_directory(pictures, no_work, tmp_path, capsys):
    folder = pictures["empty"]
    folder.chmod(0)
    try:
        line = error_line(["verify", "--images", str(folder), "--out", f"{tmp_path}/"], capsys)
    finally:
        folder.chmod(0o755)
    assert f"cannot list directory {folder}: Permission denied" in line


def test_verify_inputs_accepts_good_ones(pictures, tmp_path):
    args = cli.verify_parser().parse_args(
        ["--mode", "pixel", "--images", str(pictures["good"]), "--out", f"{tmp_path}/new/"]
    )
    inputs = cli.verify_inputs(args)
    assert inputs.modes == ["pixel"] and len(inputs.pictures) == 1
    assert inputs.pictures[0].shape == (32, 32, 3)
    assert inputs.report == str(tmp_path / "new" / cli.DEFAULT_REPORT)
    assert (tmp_path / "new").is_dir() and not os.listdir(tmp_path / "new")  # probe removed


# --------------------------------------------------------------------------- #
# demo and bench                                                               #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--image", "/nonexistent.png"], "--image: image file not found: /nonexistent.png"),
        (["--image", "BROKEN"], "notes.png as an image"),
        (["--out", PROC_FORBIDDEN], f"--out {PROC_FORBIDDEN}: cannot write there"),
        (["--max-size", "-1"], "--max-size must be at least 0, got -1"),
        (["--seed", "1.5"], "--seed: invalid int value: '1.5'"),
        (["--seed", str(2**70)], "--seed must fit in 64 bits"),
    ],
)
def test_demo_rejects_bad_input_before_any_work(args, says, pictures, no_work, tmp_path, capsys):
    args = [str(pictures["broken"] / "notes.png") if a == "BROKEN" else a for a in args]
    out = [] if "--out" in args else ["--out", str(tmp_path / "demo.png")]
    assert says in error_line(["demo", *args, *out], capsys)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--rounds", "0"], "--rounds must be at least 1, got 0"),
        (["--ref-rounds", "-1"], "--ref-rounds must be at least 0, got -1"),
        (["--records", "-1"], "--records must be at least 0, got -1"),
        (["--case-budget", "-2"], "--case-budget must be at least 0, got -2.0"),
        (["--case-budget", "nan"], "--case-budget must be at least 0, got nan"),
        (["--modes", "sparkle"], "unknown 'sparkle'"),
        (["--dtypes", "int3"], "unknown 'int3'"),
        (["--shapes", "8x32"], "must be BxHxWxC"),
        (["--impl", "numpy"], "--impl: invalid choice: 'numpy'"),
        (["--out", PROC_FORBIDDEN], f"--out {PROC_FORBIDDEN}: cannot write there"),
    ],
)
def test_bench_rejects_bad_input_before_any_work(args, says, no_work, tmp_path, capsys):
    out = [] if "--out" in args else ["--out", str(tmp_path / "bench")]
    assert says in error_line(["bench", *args, *out], capsys)


def test_bench_rejects_an_out_that_is_a_file(no_work, tmp_path, capsys):
    a_file = tmp_path / "results"
    a_file.write_text("")
    assert "is a file, not a directory" in error_line(["bench", "--out", str(a_file)], capsys)


def test_bench_names_a_missing_datarax(no_work, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "datarax", None)  # makes `import datarax` fail
    line = error_line(["bench", "--impl", "datarax", "--out", str(tmp_path)], capsys)
    assert f"--impl datarax needs datarax=={bench_run.DATARAX_VERSION} installed" in line


# --------------------------------------------------------------------------- #
# A report that cannot be written at the end                                   #
# --------------------------------------------------------------------------- #
def canned_run(mode, pictures, *, samples, seed, factory, target=None) -> ModeRun:
    """Stands in for ``checks.verify_mode``: two exact verdicts, one failing for channel."""
    run = ModeRun(mode, config=None)
    for what, passed in (("first", True), ("second", mode != "channel")):
        run.verdicts.append(Verdict(mode, "params", what, "exact", None, None, 0.0, passed))
    return run


@pytest.fixture
def unwritable_report(monkeypatch, tmp_path):
    """verify with canned checks, and a report writer that fails for ``tmp_path/r.html``
    only; yields that path and the fallback files made (removed afterwards)."""
    monkeypatch.setattr(checks, "verify_mode", canned_run)
    target = str(tmp_path / "r.html")
    real_write = cli.write_text

    def write_text(path, text):
        if path == target:
            raise PermissionError(13, "Permission denied", path)
        real_write(path, text)

    monkeypatch.setattr(cli, "write_text", write_text)
    made: list[str] = []
    yield target, made
    for path in made:
        os.remove(path)


@pytest.mark.parametrize(("mode", "status"), [("pixel", 0), ("channel", 1)])
def test_a_report_that_cannot_be_written_goes_to_a_fallback(
    mode, status, unwritable_report, capsys
):
    target, made = unwritable_report
    argv = ["verify", "--mode", mode, "--no-training", "--no-gallery", "--out", target]
    assert cli.main(argv) == status
    captured = capsys.readouterr()
    assert "│ " + mode in captured.out  # the verdict table was printed
    (line,) = [line for line in captured.err.splitlines() if line]  # rich's progress: blank
    assert line.startswith(f"datarax-ops verify: error: cannot write the report to {target}")
    fallback = line.rsplit("; wrote it to ", 1)[1]
    made.append(fallback)
    assert captured.out.rstrip().endswith(f"report: {fallback}")
    page = open(fallback, encoding="utf-8").read()
    overall = "pass" if status == 0 else "FAIL"
    assert '<table id="grid">' in page and f'"verdict-{overall}"' in page.split("</h1>")[0]
    assert not os.path.exists(target)


def test_when_no_report_can_be_written_the_verdict_still_counts(
    unwritable_report, monkeypatch, capsys
):
    target, _ = unwritable_report
    monkeypatch.setattr(cli, "fallback_report_path", lambda: "/dev/null/report.html")
    argv = ["verify", "--mode", "channel", "--no-training", "--no-gallery", "--out", target]
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    (line,) = [line for line in captured.err.splitlines() if line]
    assert "cannot write the report to" in line and "nor to" in line
    assert "report:" not in captured.out


# --------------------------------------------------------------------------- #
# As a user runs it                                                            #
# --------------------------------------------------------------------------- #
@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["verify", "--images", "/nonexistent"], "no such file or directory"),
        (["verify", "--out", PROC_FORBIDDEN], "cannot write there"),
        (["demo", "--out", PROC_FORBIDDEN], "cannot write there"),
        (["bench", "--out", PROC_FORBIDDEN], "cannot write there"),
    ],
)
def test_the_command_answers_bad_input_in_one_line_at_once(argv, says, tmp_path):
    """The installed module as a process: one line, exit 2, in seconds (a JAX compile of
    any check takes longer than the whole command may)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "datarax_ops", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        timeout=120,
    )
    seconds = time.perf_counter() - started
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"datarax-ops {argv[0]}: error: ") and says in done.stderr
    assert done.stdout == ""
    assert seconds < 30, seconds
    assert not list(tmp_path.iterdir())  # nothing written
