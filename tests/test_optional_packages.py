"""The suite without its optional packages: every module collects, only what needs one skips.

The GPU machine the accelerator run targets (``scripts/accelerator_run.py``) has no
grain, no datarax and no pytest-xdist.  Here every optional package (``OPTIONAL``) is
made unimportable in a child pytest by a ``sitecustomize`` on ``PYTHONPATH`` that puts a
blocker first on ``sys.meta_path``: importing a blocked package raises
``ModuleNotFoundError``, as on a machine without it (its distribution metadata stays
visible; nothing here reads it).  Then:

* the whole suite, every marker, collects with 0 errors; the modules skipped at
  collection are exactly those whose every test needs a blocked package, each naming it;
  every other test module is collected;
* in ``tests/test_buckets.py`` the buckets' own tests run and pass, and exactly the tests
  that take the ``grain_transform`` fixture skip, naming grain.

``nox -s device_packages`` proves the same on the real package set, offline.
"""

from __future__ import annotations

import inspect
import os
import pathlib
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree

import pytest

from tests import test_buckets
from tests.test_accelerator_run import run_script

# Starts processes or runs whole commands: `nox -s slow` (CI runs it after `tests`).
pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Top-level import names of the optional packages (pytest-xdist is ``xdist``).
OPTIONAL = ("grain", "datarax", "orbax", "xdist", "albumentations", "selenium")
# Test modules whose every test needs one package: they skip whole, naming it.
WHOLE_MODULE_SKIPS = {
    "tests/test_grain.py": "grain",
    "tests/test_datarax_pipeline.py": "datarax",
    "tests/test_orbax.py": "orbax",
}
BLOCKER = '''
import importlib.abc
import sys

BLOCKED = {blocked!r}


class Blocker(importlib.abc.MetaPathFinder):
    """Finds nothing of the blocked packages: their imports fail as if not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
'''


def blocked_environment(tmp_path: pathlib.Path) -> dict[str, str]:
    """This process's environment, on the CPU, with the blocker's ``sitecustomize`` (in
    ``tmp_path``) first on ``PYTHONPATH``: every package of ``OPTIONAL`` unimportable."""
    site = tmp_path / "blocker"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=set(OPTIONAL)))
    python_path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=python_path, JAX_PLATFORMS="cpu")


def run_blocked(tmp_path: pathlib.Path, *arguments: str) -> subprocess.CompletedProcess:
    """``python ARGUMENTS`` from the checkout's root in ``blocked_environment``."""
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=blocked_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def pytest_without_optional_packages(
    tmp_path: pathlib.Path, *arguments: str
) -> subprocess.CompletedProcess:
    """``pytest ARGUMENTS`` without the optional packages (pytest-xdist's plugin not
    loaded: its entry point would fail to import)."""
    return run_blocked(
        tmp_path, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", *arguments
    )


def test_the_blocker_makes_each_optional_package_unimportable(tmp_path):
    """The control: in a blocked Python each package's import fails, naming it; flax and
    datarax_ops still import."""
    check = textwrap.dedent(
        f"""
        import importlib
        for name in {OPTIONAL!r}:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as error:
                assert error.name == name, error
            else:
                raise AssertionError(name + " imported")
        import flax.nnx, datarax_ops
        print("blocked")
        """
    )
    done = run_blocked(tmp_path, "-c", check)
    assert done.returncode == 0 and "blocked" in done.stdout, done.stdout + done.stderr


def test_every_module_collects_without_the_optional_packages(tmp_path):
    done = pytest_without_optional_packages(tmp_path, "--collect-only", "-qq", "-rs")
    output = done.stdout + done.stderr
    collected = run_script.collect_counts(done.stdout)
    assert done.returncode == 0 and collected is not None, output
    assert collected["errors"] == 0 and collected["error_modules"] == [], output
    skipped = dict(line.split(": ", 1) for line in collected["skipped_modules"])
    assert set(skipped) == set(WHOLE_MODULE_SKIPS), output
    for module, package in WHOLE_MODULE_SKIPS.items():
        assert f"'{package}" in skipped[module], skipped[module]  # names the package
    every_module = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("test_*.py")}
    assert set(collected["modules"]) == every_module - set(WHOLE_MODULE_SKIPS), output
    assert all(count > 0 for count in collected["modules"].values())


def test_buckets_runs_its_own_tests_and_skips_only_the_grain_ones(tmp_path):
    """The bucket function's tests and every test that takes ``grain_transform``
    (``-k`` keeps the run short: no program-compiling test without grain)."""
    needs_grain = {
        name
        for name, function in vars(test_buckets).items()
        if name.startswith("test_") and "grain_transform" in inspect.signature(function).parameters
    }
    own = ["test_layouts", "test_bucket_count_is_logarithmic"]
    assert len(needs_grain) >= 5 and not needs_grain & set(own)
    junit = tmp_path / "junit.xml"
    selected = " or ".join(sorted(needs_grain | set(own)))
    done = pytest_without_optional_packages(
        tmp_path, "-q", "tests/test_buckets.py", "-k", selected, f"--junitxml={junit}"
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    outcomes: dict[str, set[str]] = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        function = case.get("name", "").partition("[")[0]
        skip = case.find("skipped")
        if skip is not None:
            assert "needs grain" in skip.get("message", ""), skip.get("message")
        bad = case.find("failure") is not None or case.find("error") is not None
        outcome = "skipped" if skip is not None else "failed" if bad else "passed"
        outcomes.setdefault(outcome, set()).add(function)
    assert outcomes == {"passed": set(own), "skipped": needs_grain}, output
