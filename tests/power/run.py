"""``python -m tests.power.run``: the suite against every wrong variant; prints the table.

For each variant in ``tests/power/variants.py`` the operator-facing test files
run with ``DATARAX_OPS_VARIANT=<name>`` and ``-x``; the first failing test is
the check that rejected the variant, with its p-value when it is a
statistical check (exact checks print "exact").  Exit status 1 if any variant
survives the suite.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

from tests.factory import VARIANT_ENV
from tests.power.variants import VARIANTS

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The files that exercise the compiled operators, most discriminating first.
SUITE = [
    "tests/test_equivalence.py",
    "tests/test_pipeline_reproduced.py",
    "tests/test_distributions.py",
    "tests/test_randomness.py",
    "tests/test_operator_api.py",
    "tests/test_stage_protocol.py",
    "tests/test_datarax_pipeline.py",  # with datarax installed (nox -s power installs 0.1.4)
]
P_VALUE = re.compile(r"p=([0-9.eE+-]+)")


def run_variant(name: str) -> tuple[str, str, str, float]:
    """(verdict, rejecting check, p-value, seconds) for one variant."""
    env = dict(os.environ, **{VARIANT_ENV: name, "HYPOTHESIS_PROFILE": "power"})
    with tempfile.TemporaryDirectory() as tmp:
        report = pathlib.Path(tmp) / "report.xml"
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={report}",
                *SUITE,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        if not report.exists():
            return "ERROR", "pytest wrote no report", "", seconds
        for case in ET.parse(report).getroot().iter("testcase"):
            failure = case.find("failure")
            if failure is None:
                failure = case.find("error")
            if failure is not None:
                message = (failure.get("message") or "") + (failure.text or "")
                match = P_VALUE.search(message)
                check = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
                return "rejected", check, match.group(1) if match else "exact", seconds
    return "SURVIVED", "-", "-", seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variants", nargs="*", help="names to run (default: all)")
    args = parser.parse_args(argv)
    names = args.variants or list(VARIANTS)
    rows = []
    for name in names:
        verdict, check, pvalue, seconds = run_variant(name)
        rows.append((name, VARIANTS[name].description, verdict, check, pvalue, seconds))
        print(f"{name:<32} {verdict:<9} {check}  p={pvalue}  ({seconds:.0f} s)", flush=True)
    print("\n| variant | deviation | verdict | rejecting check | p-value |")
    print("| --- | --- | --- | --- | --- |")
    for name, description, verdict, check, pvalue, _ in rows:
        print(f"| `{name}` | {description} | {verdict} | `{check}` | {pvalue} |")
    survivors = [r[0] for r in rows if r[2] != "rejected"]
    print(f"\n{len(rows) - len(survivors)} of {len(rows)} variants rejected")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main())
