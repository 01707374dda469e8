"""CI loses no session silently: ``.ci/run`` fails where a session's Python is missing.

``nox -s tests`` queues ``datarax_latest``, which needs Python 3.12; nox skips a
session whose interpreter it cannot find unless told to fail.  ``.ci/run`` tells it
(``--error-on-missing-interpreters``), so a CI machine without 3.12 fails instead of
passing without the datarax 0.1.17 tests.
"""

from __future__ import annotations

import os
import pathlib
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CI_RUN = ROOT / ".ci" / "run"


def ci_nox_arguments() -> list[str]:
    """The arguments ``.ci/run`` gives nox (its one command starting ``.venv/bin/nox``)."""
    lines = [line for line in CI_RUN.read_text().splitlines() if not line.startswith("#")]
    commands = [c.strip() for line in lines for c in line.split("&&")]
    nox_runs = [c for c in commands if c.startswith(".venv/bin/nox")]
    assert len(nox_runs) == 1, f".ci/run should run nox once, found {nox_runs}"
    return shlex.split(nox_runs[0])[1:]


def test_ci_runs_the_tests_session_failing_on_missing_interpreters():
    arguments = ci_nox_arguments()
    assert "--error-on-missing-interpreters" in arguments, arguments
    assert arguments[-2:] == ["-s", "tests"], arguments


@pytest.mark.slow  # starts nox (`nox -s slow` installs it)
def test_ci_options_fail_a_session_whose_python_is_missing(tmp_path):
    """nox with ``.ci/run``'s options, ``datarax_latest`` forced onto a Python that does
    not exist, ``CI`` unset: the run fails and names the interpreter."""
    pytest.importorskip("nox")
    options = [a for a in ci_nox_arguments() if a not in ("-s", "tests")]
    command = [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), *options]
    command += ["-s", "datarax_latest", "--force-python", "3.99", "--envdir", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "interpreter 3.99 not found" in output, output
