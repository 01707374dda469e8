"""PEP 561: both packages ship ``py.typed``, so users' type checkers read the annotations.

The installed package is checked through ``importlib.resources``; since an editable
install reads the source folders (which hold the files whatever the packaging says), a
wheel is also built from the checkout, offline, and its file list checked.
"""

from __future__ import annotations

import importlib.resources
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TYPED_PACKAGES = ("datarax_ops", "datarax_ops.reference")
# What the wheel is built from: a copy, so that no earlier build/ folder can supply files.
SOURCES = ("pyproject.toml", "README.md", "datarax_ops", "reference")


@pytest.mark.parametrize("package", TYPED_PACKAGES)
def test_installed_package_has_py_typed(package: str):
    marker = importlib.resources.files(package).joinpath("py.typed")
    assert marker.is_file(), f"{package} has no py.typed"


@pytest.mark.slow
def test_wheel_ships_py_typed(tmp_path: pathlib.Path):
    """The built wheel holds ``py.typed`` in both packages (the package-data of pyproject)."""
    pytest.importorskip("setuptools")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, checkout / name)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(tmp_path),
            str(checkout),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("datarax_ops-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in TYPED_PACKAGES:
        assert f"{package.replace('.', '/')}/py.typed" in names, (package, sorted(names)[:20])
