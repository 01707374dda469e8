"""The offline accelerator run (``scripts/accelerator_run.py``), run here on the CPU.

What can run without an accelerator is run: the whole command with ``--cpu-ok``
and small settings (verify on one mode, a tiny bench, one file of the suite), in
a fresh Python with ``JAX_PLATFORMS=cpu``, checked for every result file in one
flat folder and for a summary that agrees with the files it summarises; without
``--cpu-ok`` it stops after the probe with exit status 2; a step past its time
limit is interrupted and pytest's JUnit file of it survives; the speed goal and
verify's verdict are read correctly, failures included; ``complete`` passes a complete
run and names each unmet condition of an incomplete one (a collection error, a failed
test, verify FAILED, a step not run or cut short).  The install step
(``pip install --no-deps --no-build-isolation --no-index -e .``) is run as
``--dry-run``: offline, without touching this environment's installation.  The tests
that start processes are marked slow; ``nox -s device_packages`` runs the whole command
on the GPU machine's package set, offline.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from typing import Any

import pytest

# Starts processes or runs whole commands: `nox -s slow` (CI runs it after `tests`).
slow = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "accelerator_run.py"
VERIFY_MODE = "pixel"
BENCH_MODES = ("pixel", "channel")
SUITE_FILE = "tests/test_config.py"


def load_script() -> Any:
    spec = importlib.util.spec_from_file_location("accelerator_run", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_script = load_script()


def run_command(out: pathlib.Path, *options: str) -> subprocess.CompletedProcess:
    """``scripts/accelerator_run.py --out OUT --no-install OPTIONS`` on the CPU."""
    command = [sys.executable, str(SCRIPT), "--out", str(out), "--no-install", *options]
    return subprocess.run(
        command,
        cwd=ROOT,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def counts(**given: int) -> dict[str, int]:
    """A ``junit_counts`` result: the ``given`` counts, 0 for the others."""
    return {key: 0 for key in ("tests", "passed", "failed", "errors", "skipped")} | given


def junit_cases(path: pathlib.Path) -> tuple[int, int, int]:
    """``(test cases, skipped, failed or errored)`` counted from a JUnit file's elements."""
    cases = list(ElementTree.parse(path).getroot().iter("testcase"))
    skipped = sum(1 for case in cases if case.find("skipped") is not None)
    bad = sum(1 for case in cases if case.find("failure") is not None)
    bad += sum(1 for case in cases if case.find("error") is not None)
    return len(cases), skipped, bad


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, Any]:
    """The whole command on the CPU with small settings: ``(out folder, finished process)``."""
    out = tmp_path_factory.mktemp("accelerator-results")
    (out / "bench.md").write_text("left over from an earlier run")  # must not survive
    done = run_command(
        out,
        "--cpu-ok",
        "--gpu-args",
        "tests/test_gpu.py",
        "--verify-args",
        f"--mode {VERIFY_MODE} --samples 1000 --no-gallery --no-training",
        "--bench-modes",
        ",".join(BENCH_MODES),
        "--bench-shapes",
        "2x8x8x3",
        "--bench-rounds",
        "3",
        "--suite-args",
        SUITE_FILE,
        "--time-limit",
        "300",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done


@slow
def test_every_result_lands_in_one_flat_folder(cpu_run):
    out, _ = cpu_run
    assert sorted(path.name for path in out.iterdir()) == sorted(run_script.OUTPUT_FILES)
    assert all(path.is_file() for path in out.iterdir())
    assert len(run_script.OUTPUT_FILES) <= 8  # what the device tool brings back
    assert "<html" in (out / "verify-report.html").read_text(encoding="utf-8")[:200].lower()


@slow
def test_summary_agrees_with_the_files_it_summarises(cpu_run):
    out, done = cpu_run
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["probe"]["backend"] == "cpu" and summary["accelerator"] is False
    assert summary["probe"]["versions"]["datarax-ops"] is not None
    assert set(summary["steps"]) == {"probe", "collect", "gpu-tests", "verify", "bench", "suite"}
    assert all(
        step["returncode"] == 0 and not step["timed_out"] for step in summary["steps"].values()
    )

    assert summary["unmet"] == [] and run_script.complete(summary) == []
    collected = summary["collected"]  # the whole suite, every marker
    assert collected["errors"] == 0 and collected["tests"] == sum(collected["modules"].values())
    assert {"tests/test_gpu.py", "tests/test_buckets.py", SUITE_FILE} <= set(collected["modules"])

    cases, skipped, bad = junit_cases(out / "junit-gpu.xml")
    assert cases > 0 and skipped == cases and bad == 0  # no accelerator: every gpu test skips
    assert summary["gpu_tests"] == counts(tests=cases, skipped=cases)
    cases, skipped, bad = junit_cases(out / "junit-suite.xml")
    assert cases > 0 and bad == 0
    assert summary["suite"] == counts(tests=cases, passed=cases - skipped, skipped=skipped)
    module = SUITE_FILE.removesuffix(".py").replace("/", ".")  # only the file asked for ran
    suite_cases = ElementTree.parse(out / "junit-suite.xml").getroot().iter("testcase")
    assert {case.get("classname") for case in suite_cases} == {module}

    assert summary["verify"]["verdict"] == "PASSED" and summary["verify"]["seed"] == 0
    assert summary["verify"]["checks"] > 0 and summary["verify"]["failed"] == 0

    bench = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert [row["mode"] for row in summary["bench"]] == list(BENCH_MODES)
    for row, case in zip(summary["bench"], bench["cases"], strict=True):
        assert case["case"]["shape"] == [2, 8, 8, 3] and case["input_dtype"] == "float32"
        assert row["op_over_copy_min"] == pytest.approx(row["op_ms"] / row["copy_ms"])
        assert row["op_ms"] == case["summary"]["jitted"]["min_ms"]
        assert "reference" not in case["summary"]  # --ref-rounds 0: not timed
        assert case["value_dependent_cost"] is False  # pixel, channel: the bench says so
        assert row["goal"] == run_script.SPEED_GOAL
        assert row["meets_goal"] == (row["op_over_copy_min"] <= run_script.SPEED_GOAL)
    assert summary["speed_goal_met"] == all(row["meets_goal"] for row in summary["bench"])
    assert "| pixel |" in (out / "bench.md").read_text(encoding="utf-8")

    markdown = (out / "summary.md").read_text(encoding="utf-8")
    assert markdown in done.stdout
    assert "backend cpu" in markdown and f"{summary['suite']['passed']} passed" in markdown
    assert "`datarax-ops verify`: PASSED" in markdown and "- complete: yes" in markdown
    assert (
        f"collection (every test module, every marker): {collected['tests']} tests, 0 errors"
        in (markdown)
    )
    assert markdown.count("| float32 | 2x8x8x3 |") == len(BENCH_MODES)
    log = (out / "run.log").read_text(encoding="utf-8")
    for step in summary["steps"]:
        assert f"=== {step}: exit 0" in log


@slow
def test_without_an_accelerator_it_stops_after_the_probe_with_status_2(tmp_path):
    done = run_command(tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no accelerator" in done.stdout
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert list(summary["steps"]) == ["probe"] and summary["gpu_tests"] is None
    assert summary["probe"]["backend"] == "cpu"


@slow
def test_a_step_past_its_limit_is_interrupted_and_its_junit_file_kept(tmp_path, monkeypatch):
    (tmp_path / "test_slow.py").write_text(
        "import time\n\ndef test_quick():\n    pass\n\ndef test_slow():\n    time.sleep(120)\n"
    )
    monkeypatch.setattr(run_script, "MIN_STEP_S", 0.0)
    monkeypatch.setattr(run_script, "RESERVE_S", 0.0)
    steps = run_script.Steps(tmp_path, 60.0, dict(os.environ))
    junit = tmp_path / "junit.xml"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    argv += [f"--rootdir={tmp_path}", str(tmp_path / "test_slow.py"), f"--junitxml={junit}"]
    steps.run("slow", argv, 6.0)
    record = steps.records["slow"]
    assert record["timed_out"] and record["returncode"] != 0 and not steps.passed("slow")
    assert record["seconds"] < 6.0 + run_script.GRACE_S
    assert run_script.junit_counts(junit) == counts(tests=1, passed=1)  # test_slow not counted
    assert "KeyboardInterrupt" in (tmp_path / "run.log").read_text(encoding="utf-8")


def test_a_step_past_the_overall_limit_is_not_started(tmp_path):
    steps = run_script.Steps(tmp_path, run_script.RESERVE_S + run_script.MIN_STEP_S - 1, {})
    assert steps.run("late", [sys.executable, "-c", "raise SystemExit(3)"], 100.0) == ""
    assert steps.records["late"]["returncode"] is None and not steps.passed("late")


def fake_case(
    mode: str, op_ms: float, copy_ms: float, value_dependent_cost: bool = False
) -> dict[str, Any]:
    """A bench.json case as ``datarax_ops.bench`` writes it, for the fields the summary reads."""
    return {
        "case": {"mode": mode, "dtype": "float32", "scale": 1, "shape": [32, 224, 224, 3]},
        "value_dependent_cost": value_dependent_cost,
        "summary": {"jitted": {"min_ms": op_ms}, "copy": {"min_ms": copy_ms}},
        "ratios": {"jit_over_copy_min": op_ms / copy_ms, "jit_over_copy_median": op_ms / copy_ms},
    }


def test_speed_goal_is_3_times_the_copy_and_10_where_the_cost_depends_on_the_values():
    cases = [
        fake_case("gaussian", 2.9, 1.0),
        fake_case("pixel", 3.1, 1.0),
        fake_case("poisson30", 9.9, 1.0, value_dependent_cost=True),
        fake_case("poisson255", 10.5, 1.0, value_dependent_cost=True),
    ]
    cases.append({"case": cases[0]["case"], "not_available": "RuntimeError: no"})
    rows = run_script.bench_rows({"cases": cases})
    assert [row["meets_goal"] for row in rows] == [True, False, True, False, False]
    assert [row["goal"] for row in rows] == [3.0, 3.0, 10.0, 10.0, 3.0]


def test_verify_verdict_reads_what_verify_prints(capsys):
    from datarax_ops import cli
    from datarax_ops.conformance.results import Verdict

    def verdict(passed: bool) -> Verdict:
        return Verdict("pixel", "law", "keep count", "binomial", 1.0, 0.5, 1e-5, passed)

    passing = {"verdict": "PASSED", "checks": 3, "failed": 0, "seed": 7}
    failing = {"verdict": "FAILED", "checks": 2, "failed": 1, "seed": 7}
    for verdicts, expected in (
        ([verdict(True)] * 3, passing),
        ([verdict(True), verdict(False)], failing),
    ):
        cli.print_table(verdicts, "budget", 7, "datarax-ops verify --seed 7")
        assert run_script.verify_verdict(capsys.readouterr().out) == expected
    assert run_script.verify_verdict("Traceback ...")["verdict"] == "no verdict"


@slow
def test_install_command_works_offline_as_a_dry_run():
    done = subprocess.run(
        [sys.executable, *run_script.INSTALL, "--dry-run", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_script.INSTALL[-5:] == ["--no-deps", "--no-build-isolation", "--no-index", "-e", "."]


def step_record(returncode: int | None = 0, timed_out: bool = False, note: str = "") -> dict:
    """A step's record as ``Steps.run`` writes it."""
    return {
        "command": "python ...",
        "limit_s": 100.0,
        "seconds": 1.0,
        "returncode": returncode,
        "timed_out": timed_out,
        "note": note,
    }


def complete_summary() -> dict[str, Any]:
    """summary.json of a complete CPU run (``--cpu-ok``), for the fields ``complete`` reads."""
    return {
        "options": {"no_install": False, "partial_suite_ok": False},
        "accelerator": False,
        "steps": {name: step_record() for name in run_script.STEP_NAMES},
        "collected": {
            "tests": 12,
            "modules": {"tests/test_gpu.py": 6, "tests/test_config.py": 6},
            "errors": 0,
            "error_modules": [],
            "skipped_modules": ["tests/test_grain.py: needs grain"],
        },
        "gpu_tests": counts(tests=6, skipped=6),
        "suite": counts(tests=6, passed=5, skipped=1),
        "verify": {"verdict": "PASSED", "checks": 3, "failed": 0, "seed": 0},
        "bench": run_script.bench_rows({"cases": [fake_case("pixel", 1.0, 1.0)]}),
    }


def test_a_complete_run_is_complete():
    assert run_script.complete(complete_summary()) == []
    summary = complete_summary()
    del summary["steps"]["install"]
    summary["options"]["no_install"] = True
    assert run_script.complete(summary) == []


def collection_error(summary: dict[str, Any]) -> None:
    summary["steps"]["collect"]["returncode"] = 2
    summary["collected"] |= {"errors": 1, "error_modules": ["tests/test_buckets.py"]}


def suite_cut_short(summary: dict[str, Any]) -> None:
    note = "interrupted at its time limit (300 s)"
    summary["steps"]["suite"] = step_record(2, timed_out=True, note=note)


def set_path(path: str, value: Any):
    """A change of ``summary``: the value at ``path`` ("steps.bench.returncode")."""

    def change(summary: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            summary = summary[key]
        summary[last] = value

    return change


def verify_and_bench_cut_short(summary: dict[str, Any]) -> None:
    """What a run on busy cores gave: verify and bench interrupted, so no results."""
    for name in ("verify", "bench"):
        summary["steps"][name] = step_record(-2, timed_out=True, note=f"{name} cut")
    summary["verify"] = run_script.verify_verdict("")
    summary["bench"] = []


INCOMPLETE = {
    "collection error": (
        collection_error,
        ["collect: exit 2", "collect: 1 errors during collection (tests/test_buckets.py)"],
    ),
    "nothing collected": (
        set_path("collected.tests", 0),
        ["collect: no test collected"],
    ),
    "no collection count": (set_path("collected", None), ["collect: no count of collected tests"]),
    "a suite failure": (
        set_path("suite", counts(tests=6, passed=5, failed=1)),
        ["suite: 1 failed"],
    ),
    "a gpu test error": (
        set_path("gpu_tests", counts(tests=6, skipped=5, errors=1)),
        ["gpu-tests: 1 errors"],
    ),
    "no suite JUnit file": (set_path("suite", None), ["suite: no JUnit file"]),
    "every suite test skipped": (
        set_path("suite", counts(tests=6, skipped=6)),
        ["suite: no test passed"],
    ),
    "verify FAILED": (
        set_path("verify", {"verdict": "FAILED", "checks": 3, "failed": 1, "seed": 0}),
        ["verify: FAILED"],
    ),
    "verify gave no verdict": (
        set_path("verify", run_script.verify_verdict("Traceback ...")),
        ["verify: no verdict"],
    ),
    "bench not run": (
        set_path("steps.bench", step_record(None, note="not run: the overall time limit")),
        ["bench: not run (not run: the overall time limit)"],
    ),
    "bench without results": (set_path("bench", []), ["bench: no results"]),
    "a bench case not measured": (
        set_path("bench", [{"mode": "pixel", "shape": "2x8x8x3", "error": "OOM"}]),
        ["bench: pixel 2x8x8x3 not measured (OOM)"],
    ),
    "install never started": (
        lambda summary: summary["steps"].pop("install"),
        ["install: not run (not started)"],
    ),
    "verify exited 1": (set_path("steps.verify.returncode", 1), ["verify: exit 1"]),
    "the suite cut at its limit": (
        suite_cut_short,
        ["suite: interrupted at its time limit (300 s)"],
    ),
    "verify and bench cut short (in step order)": (
        verify_and_bench_cut_short,
        ["verify: verify cut", "verify: no verdict", "bench: bench cut", "bench: no results"],
    ),
    "every gpu test skipped on an accelerator": (
        set_path("accelerator", True),
        ["gpu-tests: none passed on the accelerator"],
    ),
}


@pytest.mark.parametrize("case", list(INCOMPLETE))
def test_an_incomplete_run_names_each_unmet_condition(case):
    change, expected = INCOMPLETE[case]
    summary = complete_summary()
    change(summary)
    assert run_script.complete(summary) == expected


def test_partial_suite_ok_accepts_a_cut_suite_only_without_failures():
    summary = complete_summary()
    summary["options"]["partial_suite_ok"] = True
    suite_cut_short(summary)
    assert run_script.complete(summary) == []
    summary["suite"] = counts(tests=6, passed=5, failed=1)
    assert run_script.complete(summary) == ["suite: 1 failed"]
    summary["suite"] = None  # cut before pytest wrote its JUnit file
    assert run_script.complete(summary) == ["suite: no JUnit file"]
    summary = complete_summary()
    summary["options"]["partial_suite_ok"] = True
    summary["steps"]["verify"] = step_record(-2, timed_out=True, note="interrupted")
    assert run_script.complete(summary) == ["verify: interrupted"]  # the suite only


# What pytest 9 prints for `--collect-only -qq -rs` over a module that skips and one that
# cannot be imported (tests/test_buckets.py on the GPU machine before issue 21).
COLLECTION_WITH_AN_ERROR = """\
tests/test_config.py: 192
tests/test_gpu.py: 6

==================================== ERRORS ====================================
_________________ ERROR collecting tests/test_buckets.py _________________
E   ImportError: datarax_ops.grain_transform needs grain: pip install 'datarax-ops[grain]'
=========================== short test summary info ============================
SKIPPED [1] tests/test_grain.py:19: could not import 'grain': No module named 'grain'
ERROR tests/test_buckets.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
"""


def test_collect_counts_reads_modules_skips_and_errors():
    assert run_script.collect_counts(COLLECTION_WITH_AN_ERROR) == {
        "tests": 198,
        "modules": {"tests/test_config.py": 192, "tests/test_gpu.py": 6},
        "errors": 1,
        "error_modules": ["tests/test_buckets.py"],
        "skipped_modules": [
            "tests/test_grain.py: could not import 'grain': No module named 'grain'"
        ],
    }
    clean = COLLECTION_WITH_AN_ERROR.split("\n\n")[0] + "\n"
    assert run_script.collect_counts(clean)["errors"] == 0
    assert run_script.collect_counts("Traceback (most recent call last): ...") is None
