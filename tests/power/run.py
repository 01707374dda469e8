"""``python -m tests.power.run``: the statistical tests against every wrong variant.

Each law-changing variant in ``tests/power/variants.py`` runs against the
statistical tests alone (:data:`STATISTICAL_SUITE`, the tests marked ``stats`` that
test the compiled operators' laws, those of the variant's modes: :data:`MODE_TESTS`;
no exact reproduction) with ``DATARAX_OPS_VARIANT=<name>``.  It is rejected only
when a named check of ``datarax_ops.conformance.stats`` fails (``StatCheckError``, recorded by
``tests.power.plugin``); an exact assertion inside a statistical test does not
count, and a crash is an error.  The table gives the test, the check, its
statistic, p-value and n.

Variants that keep the law (key handling, batch identity, the datarax stage call)
are caught by exact tests only: ``--exact`` runs them against
:data:`EXACT_SUITE` and shows them in a separate table.

Exit status 1 if a law-changing variant is not rejected by a statistical check,
if any run errs, or (with ``--exact``) if an exact variant survives.

``--slice``: the variants of :data:`SLICE` only (one per mode, one for the
training settings), each against its mode's statistical tests (``nox -s
power_slice``, which ``nox -s tests`` queues).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from tests.factory import VARIANT_ENV
from tests.power.plugin import LOG_ENV
from tests.power.variants import VARIANTS

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The tests of the compiled operators' laws (``-m stats`` selects them in these files).
STATISTICAL_SUITE = [
    "tests/test_distributions.py",
    "tests/test_training_api.py",
    "tests/test_equivalence.py",
]
# The exact tests, for the variants that keep the law.
EXACT_SUITE = [
    "tests/test_equivalence.py",
    "tests/test_pipeline_reproduced.py",
    "tests/test_randomness.py",
    "tests/test_operator_api.py",
    "tests/test_stage_protocol.py",
    "tests/test_datarax_pipeline.py",  # with datarax installed (nox -s power installs 0.1.4)
]
# The statistical tests of each mode (pytest -k): a variant changes only its modes'
# operators (``variant_class``), so the other modes' tests cannot reject it.
MODE_TESTS = {
    "gaussian": "gaussian",
    "salt_pepper": "salt_pepper",
    "poisson": "poisson",
    "pixel": "pixel or deterministic_pattern",
    "channel": "channel",
    "speckle": "speckle",
    "coarse": "coarse",
}
# One law-changing variant per mode, and one for the training settings: each against the
# statistical tests of its mode (a pytest -k expression), to keep the CI slice short.
SLICE = {
    "gaussian_std_x1.03": "gaussian and not uint8",
    "salt_prob_x1.1": "salt_pepper",
    "poisson_variance_x1.1": "poisson_counts",
    "dropout_rate_plus_0.02": "pixel_keep_rate",
    "channel_mask_per_pixel": "channel_mask",
    "coarse_corners_clipped": "coarse_params",
    "range_narrowed_5pct": "compiled_strengths",
    "speckle_std_x1.05": "speckle_relative_change",
}
TIMEOUT_S = 1800


@dataclass(frozen=True)
class Outcome:
    """One variant's run: the verdict and, when a check rejected it, which and how."""

    name: str
    verdict: str  # "rejected", "exact only", "SURVIVED", "ERROR"
    test: str = "-"
    check: str = "-"
    statistic: str = "-"
    pvalue: str = "-"
    n: str = "-"
    seconds: float = 0.0
    note: str = ""


def _pytest(name: str, args: list[str], log: pathlib.Path) -> tuple[int, str]:
    env = dict(os.environ, **{VARIANT_ENV: name, "HYPOTHESIS_PROFILE": "power", LOG_ENV: str(log)})
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "no:xdist", "-p", "tests.power.plugin", *args]
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {TIMEOUT_S} s"
    return done.returncode, (done.stdout + done.stderr)[-2000:]


def _records(log: pathlib.Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


def run_statistical(name: str, select: str | None = None) -> Outcome:
    """``name`` against the statistical tests alone (those matching ``select``, a
    pytest ``-k`` expression, if given)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = pathlib.Path(tmp) / "failures.jsonl"
        started = time.perf_counter()
        chosen = ["-k", select] if select else []
        code, tail = _pytest(name, ["-m", "stats", *chosen, *STATISTICAL_SUITE], log)
        seconds = time.perf_counter() - started
        records = _records(log)
    statistical = [r for r in records if r["kind"] == "statistical"]
    errors = [r for r in records if r["kind"] == "error"]
    if statistical:
        r = statistical[0]
        return Outcome(
            name,
            "rejected",
            test=r["test"].split("::", 1)[-1],
            check=r["check"],
            statistic=f"{r['statistic']:.4g}",
            pvalue=f"{r['pvalue']:.3g}",
            n=str(r["n"]),
            seconds=seconds,
            note=r["what"],
        )
    if errors or code not in (0, 1):
        note = errors[0]["message"] if errors else f"pytest exit {code}: {tail[-300:]}"
        return Outcome(
            name, "ERROR", test=errors[0]["test"] if errors else "-", seconds=seconds, note=note
        )
    if records:  # only exact assertions failed
        return Outcome(
            name, "exact only", test=records[0]["test"], seconds=seconds, note=records[0]["message"]
        )
    return Outcome(name, "SURVIVED", seconds=seconds)


def run_exact(name: str) -> Outcome:
    """``name`` (a variant that keeps the law) against the exact tests; the first failure."""
    with tempfile.TemporaryDirectory() as tmp:
        log = pathlib.Path(tmp) / "failures.jsonl"
        started = time.perf_counter()
        code, tail = _pytest(name, ["-x", *EXACT_SUITE], log)
        seconds = time.perf_counter() - started
        records = _records(log)
    if records:
        r = records[0]
        verdict = "ERROR" if r["kind"] == "error" else "rejected"
        return Outcome(
            name,
            verdict,
            test=r["test"],
            check=r["kind"],
            seconds=seconds,
            note=r.get("message", ""),
        )
    if code not in (0, 1):
        return Outcome(name, "ERROR", seconds=seconds, note=f"pytest exit {code}: {tail[-300:]}")
    return Outcome(name, "SURVIVED", seconds=seconds)


def _mode_tests(name: str) -> str:
    """The -k expression of the statistical tests of variant ``name``'s modes."""
    return " or ".join(f"({MODE_TESTS[mode]})" for mode in VARIANTS[name].modes)


def _print_table(title: str, rows: list[Outcome]) -> None:
    print(f"\n### {title}\n")
    print("| variant | deviation | verdict | rejecting test | check | statistic | p-value | n |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for o in rows:
        print(
            f"| `{o.name}` | {VARIANTS[o.name].description} | {o.verdict} | `{o.test}` | "
            f"{o.check} | {o.statistic} | {o.pvalue} | {o.n} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("variants", nargs="*", help="names to run (default: every variant)")
    parser.add_argument("--slice", action="store_true", help="the CI slice (SLICE) only")
    parser.add_argument(
        "--exact",
        action="store_true",
        help="also run the law-keeping variants against the exact tests",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.variants if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    names = list(SLICE) if args.slice else (args.variants or list(VARIANTS))
    law = [name for name in names if VARIANTS[name].law_changing]
    keeping = [name for name in names if not VARIANTS[name].law_changing]
    started = time.perf_counter()
    statistical_rows: list[Outcome] = []
    for name in law:
        outcome = run_statistical(name, SLICE[name] if args.slice else _mode_tests(name))
        statistical_rows.append(outcome)
        print(
            f"{name:<34} {outcome.verdict:<10} {outcome.test} {outcome.check} "
            f"p={outcome.pvalue} ({outcome.seconds:.0f} s)  {outcome.note}",
            flush=True,
        )
    exact_rows: list[Outcome] = []
    if args.exact:
        for name in keeping:
            outcome = run_exact(name)
            exact_rows.append(outcome)
            print(
                f"{name:<34} {outcome.verdict:<10} {outcome.test} ({outcome.seconds:.0f} s)",
                flush=True,
            )
    _print_table("Law-changing variants vs the statistical tests alone", statistical_rows)
    if exact_rows:
        _print_table("Variants that keep the law, vs the exact tests", exact_rows)
    elif keeping:
        print(
            f"\n(not run: {len(keeping)} law-keeping variants, which --exact runs: "
            f"{', '.join(keeping)})"
        )
    failed = [o.name for o in statistical_rows + exact_rows if o.verdict != "rejected"]
    total = len(statistical_rows) + len(exact_rows)
    print(
        f"\n{total - len(failed)} of {total} variants rejected "
        f"in {time.perf_counter() - started:.0f} s"
    )
    if failed:
        print(f"NOT REJECTED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
