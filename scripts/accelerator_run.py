"""The accelerator run: one offline command for a machine whose Python already has a CUDA JAX.

    python3 scripts/accelerator_run.py --out accelerator-results

For GPU machines with no network (no package index, no nox), where ``nox -s gpu``
cannot run.  Only the standard library is imported here, so it runs before the
project is installed.  From the checkout's root it:

0. installs the checkout into the running Python,
   ``pip install --no-deps --no-build-isolation --no-index -e .`` (``--no-install``
   skips it), and probes JAX: backend, devices, versions, and ``nvidia-smi``'s
   GPU and driver.  On a CPU-only JAX it stops there (exit 2) unless ``--cpu-ok``;
1. collects the whole suite, every marker (``pytest --collect-only``): every test
   module must import on this machine's packages, 0 collection errors.  A module
   that needs an absent optional package (grain, datarax, ...) skips, naming it;
2. runs the ``gpu``-marked tests (``pytest -m gpu``: CPU vs accelerator);
3. runs ``datarax-ops verify`` on the accelerator (``python -m datarax_ops verify``);
4. runs the bench (``python -m datarax_ops.bench``, NumPy reference untimed): every
   mode on float32 batches, each as op / copy against a jitted device copy of the
   same batch, and checks the speed goal (at most ``SPEED_GOAL`` times the copy; a mode
   whose cost depends on the values, as the bench records each case's
   ``value_dependent_cost``, at most ``VALUE_DEPENDENT_SPEED_GOAL``; reported, not part
   of the exit status);
5. runs the fast suite (``pytest -m "not gpu and not slow"``; the slow tests start
   processes or run whole commands, this script among them) on the accelerator
   backend, with the time that is left (it is the longest step, so it goes last).

Each step is a process of its own with a time limit (``STEP_LIMITS_S``), all inside
``--time-limit`` (default 450 s).  A step still running at its limit gets SIGINT (pytest
then stops, still writing its JUnit file and summary) and SIGKILL ``GRACE_S`` later.

Everything lands in ``--out``, a flat folder of ``len(OUTPUT_FILES)`` files:
``summary.json`` (device, versions, each step's exit status and seconds, test
counts, verify's verdict, the bench ratios against the goal), ``summary.md`` (the
same as Markdown, for docs/accelerator.md), ``run.log`` (every step's command and output),
``junit-gpu.xml`` and ``junit-suite.xml`` (pytest), ``verify-report.html``,
``bench.json`` and ``bench.md`` (the bench's own files).

Exit status: 0 when the run is complete (``complete``: every step ran and exited 0,
collection and the tests without errors or failures, verify PASSED, every bench
case measured), 1 otherwise, naming each unmet condition; 2 when JAX has no
accelerator (without ``--cpu-ok``).  ``--partial-suite-ok`` accepts a suite step
cut at its time limit when the tests that ran had no failure or error (the collect
step has proven that every module collects); ``nox -s device_packages`` runs the
script so on 2 CPU cores, offline, in a venv of the GPU machine's packages.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
INSTALL = ["-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-e", "."]
OUTPUT_FILES = (
    "summary.json",
    "summary.md",
    "run.log",
    "junit-gpu.xml",
    "junit-suite.xml",
    "verify-report.html",
    "bench.json",
    "bench.md",
)
SPEED_GOAL = 3.0  # op / copy of the same batch, every mode whose cost ignores the values
VALUE_DEPENDENT_SPEED_GOAL = 10.0  # a mode whose cost depends on the values (poisson's)
GRACE_S = 30.0  # between SIGINT and SIGKILL at a step's time limit
RESERVE_S = 10.0  # of the overall limit, kept for writing the summary
MIN_STEP_S = 15.0  # a step given less than this is not started
SUITE_MARKS = "not gpu and not slow"  # the suite step's pytest -m
# The steps ``complete`` requires, in the order they run ("install" unless --no-install),
# and each one's time limit in seconds (the suite: whatever is left).  Limits for 2 busy
# CPU cores (nox -s device_packages); an accelerator needs a fraction of each.
STEP_NAMES = ("install", "probe", "collect", "gpu-tests", "verify", "bench", "suite")
STEP_LIMITS_S = {
    "install": 120.0,
    "probe": 120.0,
    "collect": 180.0,
    "gpu-tests": 180.0,
    "verify": 420.0,
    "bench": 240.0,
}
PROBE = """
import importlib.metadata, json, platform
import jax
def version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
names = ("jax", "jaxlib", "flax", "numpy", "scipy", "pytest", "hypothesis", "datarax-ops",
         "grain", "orbax-checkpoint")
print("PROBE " + json.dumps({
    "python": platform.python_version(),
    "backend": jax.default_backend(),
    "devices": [{"platform": d.platform, "kind": d.device_kind} for d in jax.devices()],
    "versions": {name: version(name) for name in names},
}))
"""


def speed_goal(case: dict[str, Any]) -> float:
    """The op / copy goal of a bench.json case: the bench records whether its mode's cost
    depends on the values (``value_dependent_cost``)."""
    return VALUE_DEPENDENT_SPEED_GOAL if case.get("value_dependent_cost") else SPEED_GOAL


class Steps:
    """Runs the steps one after another inside one deadline, logging to ``run.log``.

    Every step's record (``self.records[name]``): ``command``, ``limit_s``,
    ``seconds``, ``returncode`` (None when not started), ``timed_out``, ``note``.
    """

    def __init__(self, out: pathlib.Path, time_limit_s: float, env: dict[str, str]) -> None:
        self.out = out
        self.deadline = time.monotonic() + time_limit_s
        self.env = env
        self.log_path = out / "run.log"
        self.log_path.write_text("", encoding="utf-8")
        self.records: dict[str, dict[str, Any]] = {}

    def left_s(self) -> float:
        """Seconds a step may still take, the summary's reserve kept back."""
        return self.deadline - time.monotonic() - RESERVE_S

    def run(self, name: str, argv: list[str], budget_s: float) -> str:
        """Runs ``argv`` from the checkout's root for at most ``budget_s`` seconds (less
        when the overall limit is nearer); returns its output (stdout and stderr)."""
        limit = min(budget_s, self.left_s())
        record: dict[str, Any] = {
            "command": shlex.join(argv),
            "limit_s": round(max(limit, 0.0), 1),
            "seconds": 0.0,
            "returncode": None,
            "timed_out": False,
            "note": "",
        }
        self.records[name] = record
        if limit < MIN_STEP_S:
            record["note"] = "not run: the overall time limit was reached"
            self._log(f"=== {name}: {record['note']}\n")
            print(f"[{name}] {record['note']}", flush=True)
            return ""
        self._log(f"=== {name}: {record['command']} (limit {limit:.0f} s)\n")
        start_offset = self.log_path.stat().st_size
        print(f"[{name}] {record['command']} (limit {limit:.0f} s)", flush=True)
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: signals reach its children
            )
            try:
                process.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                record["timed_out"] = True
                record["note"] = f"interrupted at its time limit ({limit:.0f} s)"
                stop(process)
        record["seconds"] = round(time.monotonic() - started, 1)
        record["returncode"] = process.returncode
        with open(self.log_path, "rb") as log:
            log.seek(start_offset)
            output = log.read().decode("utf-8", errors="replace")
        self._log(f"=== {name}: exit {process.returncode} after {record['seconds']} s\n\n")
        print(f"[{name}] exit {process.returncode} after {record['seconds']} s", flush=True)
        return output

    def passed(self, name: str) -> bool:
        """Whether step ``name`` ran to completion and exited 0."""
        record = self.records.get(name)
        return record is not None and record["returncode"] == 0 and not record["timed_out"]

    def _log(self, text: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(text)


def stop(process: subprocess.Popen) -> None:
    """SIGINT to ``process``'s group (pytest then finishes its reports), SIGKILL after
    ``GRACE_S`` if it is still running."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()


def junit_counts(path: pathlib.Path) -> dict[str, int] | None:
    """``{"tests", "passed", "failed", "errors", "skipped"}`` of a pytest JUnit file, or None."""
    if not path.exists():
        return None
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {
        key: sum(int(suite.get(attribute, 0)) for suite in suites)
        for key, attribute in (
            ("tests", "tests"),
            ("failed", "failures"),
            ("errors", "errors"),
            ("skipped", "skipped"),
        )
    }
    counts["passed"] = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return counts


def collect_counts(output: str) -> dict[str, Any] | None:
    """What ``pytest --collect-only -qq -rs`` printed: ``{"tests", "modules", "errors",
    "error_modules", "skipped_modules"}`` (``modules``: ``{path: tests}``;
    ``skipped_modules``: ``"path: reason"`` of every module skipped at collection), or
    None when it printed neither a count nor an error."""
    per_file = re.findall(r"^(\S+\.py): (\d+)$", output, re.MULTILINE)
    error_modules = re.findall(r"^ERROR (\S+)", output, re.MULTILINE)
    interrupted = re.search(r"Interrupted: (\d+) errors? during collection", output)
    if not per_file and not error_modules and not interrupted:
        return None
    skipped = re.findall(r"^SKIPPED \[\d+\] (\S+?):\d+: (.*)$", output, re.MULTILINE)
    return {
        "tests": sum(int(count) for _, count in per_file),
        "modules": {path: int(count) for path, count in per_file},
        "errors": max(len(error_modules), int(interrupted.group(1)) if interrupted else 0),
        "error_modules": error_modules,
        "skipped_modules": [f"{path}: {reason}" for path, reason in skipped],
    }


def verify_verdict(output: str) -> dict[str, Any]:
    """Verify's verdict from its printed output: ``{"verdict", "checks", "failed", "seed"}``."""
    seed = re.search(r"^seed (\d+)", output, re.MULTILINE)
    result: dict[str, Any] = {"seed": int(seed.group(1)) if seed else None}
    passed = re.search(r"PASSED: all (\d+) checks", output)
    failed = re.search(r"FAILED: (\d+) of (\d+) checks", output)
    if passed:
        return {**result, "verdict": "PASSED", "checks": int(passed.group(1)), "failed": 0}
    if failed:
        return {
            **result,
            "verdict": "FAILED",
            "checks": int(failed.group(2)),
            "failed": int(failed.group(1)),
        }
    return {**result, "verdict": "no verdict", "checks": None, "failed": None}


def bench_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per measured bench case: times in ms, op / copy ratios, the goal, and
    whether the min ratio meets it (cases the bench could not run have ``error``)."""
    rows = []
    for case in report["cases"]:
        mode = case["case"]["mode"]
        row: dict[str, Any] = {
            "mode": mode,
            "dtype": case["case"]["dtype"],
            "data": f"0..{case['case']['scale']}",
            "shape": "x".join(map(str, case["case"]["shape"])),
            "goal": speed_goal(case),
        }
        if "not_available" in case:
            rows.append({**row, "error": case["not_available"], "meets_goal": False})
            continue
        ratio = case["ratios"]["jit_over_copy_min"]
        rows.append(
            {
                **row,
                "op_ms": case["summary"]["jitted"]["min_ms"],
                "copy_ms": case["summary"]["copy"]["min_ms"],
                "op_over_copy_min": ratio,
                "op_over_copy_median": case["ratios"]["jit_over_copy_median"],
                "meets_goal": ratio <= row["goal"],
            }
        )
    return rows


def _step_unmet(name: str, record: dict[str, Any] | None, partial_ok: bool) -> list[str]:
    """Why step ``name`` did not run to completion with exit 0 (``partial_ok``: a step cut
    at its time limit counts as run)."""
    if record is None or record["returncode"] is None:
        return [f"{name}: not run ({record['note'] if record else 'not started'})"]
    if record["timed_out"]:
        return [] if partial_ok else [f"{name}: {record['note']}"]
    if record["returncode"] != 0:
        return [f"{name}: exit {record['returncode']}"]
    return []


def _tests_unmet(name: str, counts: dict[str, int] | None) -> list[str]:
    """Why the JUnit counts of step ``name`` are not a clean run of at least one test."""
    if counts is None:
        return [f"{name}: no JUnit file"]
    unmet = [f"{name}: {counts[key]} {key}" for key in ("failed", "errors") if counts[key]]
    if counts["tests"] == 0:
        unmet.append(f"{name}: no test collected")
    return unmet


def complete(summary: dict[str, Any]) -> list[str]:
    """The conditions of a complete run that ``summary`` (summary.json's content) does not
    meet, each a short line naming the step; empty when the run is complete.

    Complete: every step of ``STEP_NAMES`` ran and exited 0 ("install" unless
    ``--no-install``); the collection of the whole suite found tests and no errors; the
    gpu tests and the suite found tests, with no failure or error (on an accelerator at
    least one gpu test passed); verify PASSED; the bench measured every case.  With
    ``--partial-suite-ok`` the suite step may have been cut at its time limit.
    """
    options = summary.get("options", {})
    steps = summary["steps"]
    unmet: list[str] = []
    for name in STEP_NAMES:
        if name == "install" and options.get("no_install"):
            continue
        partial_ok = name == "suite" and bool(options.get("partial_suite_ok"))
        unmet += _step_unmet(name, steps.get(name), partial_ok)
    collected = summary.get("collected")
    if collected is None:
        unmet.append("collect: no count of collected tests")
    else:
        if collected["errors"]:
            modules = ", ".join(collected["error_modules"]) or "see run.log"
            unmet.append(f"collect: {collected['errors']} errors during collection ({modules})")
        if collected["tests"] == 0:
            unmet.append("collect: no test collected")
    unmet += _tests_unmet("gpu-tests", summary["gpu_tests"])
    if summary["accelerator"] and summary["gpu_tests"] and not summary["gpu_tests"]["passed"]:
        unmet.append("gpu-tests: none passed on the accelerator")
    unmet += _tests_unmet("suite", summary["suite"])
    if summary["suite"] and not summary["suite"]["passed"]:
        unmet.append("suite: no test passed")
    if summary["verify"]["verdict"] != "PASSED":
        unmet.append(f"verify: {summary['verify']['verdict']}")
    if not summary["bench"]:
        unmet.append("bench: no results")
    unmet += [
        f"bench: {row['mode']} {row['shape']} not measured ({row['error']})"
        for row in summary["bench"]
        if "error" in row
    ]
    return sorted(unmet, key=lambda line: STEP_NAMES.index(line.partition(":")[0]))


def command_output(argv: list[str]) -> str | None:
    """``argv``'s stdout, stripped, run from the checkout's root; None if it fails or is empty."""
    try:
        done = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def nvidia_smi() -> str | None:
    """``name, driver, memory`` of the GPUs as nvidia-smi prints them, or None."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = "--query-gpu=name,driver_version,memory.total"
    return command_output(["nvidia-smi", query, "--format=csv,noheader"])


def _fmt(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _counts_text(counts: dict[str, int] | None, record: dict[str, Any] | None) -> str:
    if record is None or record["returncode"] is None:
        return record["note"] if record else "not run"
    if counts is None:
        return f"no JUnit file (exit {record['returncode']})"
    text = ", ".join(f"{counts[k]} {k}" for k in ("passed", "failed", "errors", "skipped"))
    note = f"; {record['note']}" if record["note"] else ""
    return f"{text} ({record['seconds']:.0f} s{note})"


def _collected_text(collected: dict[str, Any] | None, record: dict[str, Any] | None) -> str:
    if collected is None:
        return _counts_text(None, record) if record else "not run"
    text = f"{collected['tests']} tests, {collected['errors']} errors"
    if collected["error_modules"]:
        text += f" ({', '.join(collected['error_modules'])})"
    if collected["skipped_modules"]:
        text += "; skipped at collection: " + "; ".join(collected["skipped_modules"])
    return text


def render_markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown: device, test counts, verify's verdict, whether the run is
    complete, the bench table."""
    probe = summary["probe"] or {}
    devices = probe.get("devices") or []
    kinds = sorted({d["kind"] for d in devices})
    versions = probe.get("versions") or {}
    device = f"{', '.join(kinds) or 'unknown'} ({len(devices)} device(s), backend "
    device += f"{probe.get('backend', 'unknown')})"
    steps = summary["steps"]
    verify = summary["verify"]
    verify_text = verify["verdict"]
    if verify["checks"] is not None:
        verify_text += f": {verify['checks'] - verify['failed']} of {verify['checks']} checks pass"
    verify_text += f" (seed {verify['seed']})"
    lines = [
        f"Accelerator run ({summary['date_utc']}, checkout {summary['git'] or 'unknown'}, "
        f"{summary['seconds']:.0f} s):",
        "",
        f"- device: {device}; nvidia-smi: {summary['nvidia_smi'] or 'none'}",
        f"- Python {probe.get('python')}, jax {versions.get('jax')}, "
        f"jaxlib {versions.get('jaxlib')}, flax {versions.get('flax')}, "
        f"numpy {versions.get('numpy')}",
        "- collection (every test module, every marker): "
        + _collected_text(summary.get("collected"), steps.get("collect")),
        f"- `gpu` tests: {_counts_text(summary['gpu_tests'], steps.get('gpu-tests'))}",
        f'- fast suite (`-m "{SUITE_MARKS}"`): '
        + _counts_text(summary["suite"], steps.get("suite")),
        f"- `datarax-ops verify`: {verify_text}",
    ]
    unmet = summary.get("unmet")
    if unmet is not None:
        lines.append("- complete: yes" if not unmet else "- NOT complete: " + "; ".join(unmet))
    if not summary["accelerator"]:
        lines.insert(2, "- NOT an accelerator run: JAX's backend was the CPU (--cpu-ok)")
    rows = summary["bench"]
    if rows:
        met = summary["speed_goal_met"]
        lines += [
            f"- speed goal (op / copy <= {SPEED_GOAL:g}; <= {VALUE_DEPENDENT_SPEED_GOAL:g} where "
            f"the cost depends on the values): "
            f"{'met' if met else 'NOT met'}",
            "",
            "| mode | data | dtype | batch | op ms (min) | copy ms (min) "
            "| op / copy (min; median) | goal | met |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            first = f"| {row['mode']} | {row['data']} | {row['dtype']} | {row['shape']} |"
            if "error" in row:
                lines.append(f"{first} n/a: {row['error']} | | | {row['goal']:g} | no |")
                continue
            lines.append(
                f"{first} {_fmt(row['op_ms'])} | {_fmt(row['copy_ms'])} | "
                f"{_fmt(row['op_over_copy_min'])}; {_fmt(row['op_over_copy_median'])} | "
                f"{row['goal']:g} | {'yes' if row['meets_goal'] else 'no'} |"
            )
    else:
        lines.append(f"- bench: {steps.get('bench', {}).get('note') or 'no results'}")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/accelerator_run.py",
        description="Offline accelerator run: gpu tests, verify, bench, fast suite; every "
        "result in one folder.",
    )
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("accelerator-results"))
    parser.add_argument("--time-limit", type=float, default=450.0, help="seconds, all steps")
    parser.add_argument("--no-install", action="store_true", help="use the installed project")
    parser.add_argument(
        "--cpu-ok", action="store_true", help="run every step even when JAX has no accelerator"
    )
    parser.add_argument("--seed", type=int, default=0, help="verify's seed")
    parser.add_argument(
        "--gpu-args", default="", help="more pytest arguments for the gpu tests (one string)"
    )
    parser.add_argument(
        "--verify-args", default="", help="more verify options, e.g. '--samples 20000' (one string)"
    )
    parser.add_argument(
        "--bench-modes",
        default=None,
        help="the bench's --modes (default: the bench's own, every mode and example)",
    )
    parser.add_argument("--bench-shapes", default="32x224x224x3", help="the bench's --shapes")
    parser.add_argument("--bench-rounds", type=int, default=20, help="the bench's --rounds")
    parser.add_argument(
        "--suite-args", default="", help="more pytest arguments for the fast suite (one string)"
    )
    parser.add_argument(
        "--partial-suite-ok",
        action="store_true",
        help="a suite cut at its time limit counts as complete when the tests that ran had "
        "no failure or error (the collect step has collected every module)",
    )
    return parser.parse_args(argv)


def run_checks(
    args: argparse.Namespace, steps: Steps, summary: dict[str, Any], python: str
) -> None:
    """Steps 1-5 (collection, gpu tests, verify, bench, fast suite); fills ``summary``."""
    out = steps.out
    collect = [python, "-m", "pytest", "-qq", "-rs", "-p", "no:cacheprovider", "--collect-only"]
    summary["collected"] = collect_counts(steps.run("collect", collect, STEP_LIMITS_S["collect"]))

    pytest = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    gpu_tests = [*pytest, "-m", "gpu", f"--junitxml={out / 'junit-gpu.xml'}"]
    gpu_tests += shlex.split(args.gpu_args)
    steps.run("gpu-tests", gpu_tests, STEP_LIMITS_S["gpu-tests"])
    summary["gpu_tests"] = junit_counts(out / "junit-gpu.xml")

    verify = [python, "-m", "datarax_ops", "verify", "--seed", str(args.seed)]
    verify += ["--out", str(out / "verify-report.html")]
    verify += shlex.split(args.verify_args)
    summary["verify"] = verify_verdict(steps.run("verify", verify, STEP_LIMITS_S["verify"]))

    with tempfile.TemporaryDirectory() as bench_dir:
        bench = [python, "-m", "datarax_ops.bench"]
        bench += ["--modes", args.bench_modes] if args.bench_modes else []
        bench += ["--dtypes", "float32", "--shapes", args.bench_shapes]
        bench += ["--rounds", str(args.bench_rounds), "--case-budget", "10", "--ref-rounds", "0"]
        bench += ["--records", "0", "--no-training", "--no-cache-runs"]  # only op / copy here
        steps.run("bench", [*bench, "--out", bench_dir], STEP_LIMITS_S["bench"])
        for suffix in ("json", "md"):
            for found in pathlib.Path(bench_dir).glob(f"*.{suffix}"):
                shutil.copyfile(found, out / f"bench.{suffix}")
    if (out / "bench.json").exists():
        summary["bench"] = bench_rows(json.loads((out / "bench.json").read_text("utf-8")))
        summary["speed_goal_met"] = all(row["meets_goal"] for row in summary["bench"])

    suite = [*pytest, "-m", SUITE_MARKS, f"--junitxml={out / 'junit-suite.xml'}"]
    steps.run("suite", [*suite, *shlex.split(args.suite_args)], steps.left_s())
    summary["suite"] = junit_counts(out / "junit-suite.xml")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:  # results of an earlier run must not pass for this one's
        (out / name).unlink(missing_ok=True)
    python = sys.executable
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    steps = Steps(out, args.time_limit, env)
    summary: dict[str, Any] = {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([python, *sys.argv]),
        "git": command_output(["git", "describe", "--always", "--dirty"]),
        "nvidia_smi": nvidia_smi(),
        "options": {"no_install": args.no_install, "partial_suite_ok": args.partial_suite_ok},
        "probe": None,
        "accelerator": False,
        "collected": None,
        "gpu_tests": None,
        "suite": None,
        "verify": verify_verdict(""),
        "bench": [],
        "speed_goal_met": None,
        "steps": steps.records,
    }
    if not args.no_install:
        steps.run("install", [python, *INSTALL], STEP_LIMITS_S["install"])
    probe_output = steps.run("probe", [python, "-c", PROBE], STEP_LIMITS_S["probe"])
    found = re.search(r"^PROBE (.*)$", probe_output, re.MULTILINE)
    summary["probe"] = json.loads(found.group(1)) if found else None
    backend = (summary["probe"] or {}).get("backend")
    summary["accelerator"] = backend not in (None, "cpu")
    if summary["accelerator"] or (args.cpu_ok and backend is not None):
        run_checks(args, steps, summary, python)
    summary["seconds"] = round(time.monotonic() - started, 1)
    ran_checks = "gpu-tests" in steps.records
    summary["unmet"] = complete(summary) if ran_checks else None
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    markdown = render_markdown(summary)
    (out / "summary.md").write_text(markdown, encoding="utf-8")
    print(markdown, flush=True)
    if backend is None:
        print("JAX did not start: see run.log", file=sys.stderr)
        return 1
    if not summary["accelerator"] and not args.cpu_ok:
        print(f"JAX's backend is {backend!r}: no accelerator (--cpu-ok runs anyway)", flush=True)
        return 2
    if summary["unmet"]:
        print("NOT complete:\n" + "\n".join(f"  {line}" for line in summary["unmet"]), flush=True)
        return 1
    return 0  # the checks ran (JAX started, on an accelerator or with --cpu-ok)


if __name__ == "__main__":
    sys.exit(main())
