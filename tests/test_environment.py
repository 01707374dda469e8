"""``datarax_ops.environment``: one report of the machine and versions, light to import,
shared by the ``verify`` report and the bench's ``machine`` record."""

from __future__ import annotations

import json
import subprocess
import sys

from datarax_ops.bench import run as bench_run
from datarax_ops.environment import PACKAGES, as_text, device_kinds, environment


def test_import_is_light():
    code = (
        "import sys, datarax_ops.environment; "
        "print(sorted(m for m in ('jax', 'scipy', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_environment_names_the_machine_and_every_version():
    info = environment()
    json.dumps(info)  # the bench writes it as JSON
    assert set(info["versions"]) == set(PACKAGES)
    assert info["backend"] and info["devices"] and info["cpu_model"]
    text = as_text(info)
    assert all(isinstance(value, str) and value for value in text.values())
    for name in ("python", "cpu", "backend", "devices", "git", "compile cache", *PACKAGES):
        assert name in text, name


def test_device_kinds_are_counted():
    assert device_kinds(["cpu"]) == "1 x cpu"
    assert device_kinds(["b", "a", "b"]) == "1 x a, 2 x b"


def test_bench_machine_record_is_the_environment():
    info = bench_run.machine_info(bench_run.load_impl("datarax_ops"))
    shared = environment()
    for key in ("cpu_model", "cpu_count", "backend", "devices", "python", "git"):
        assert info[key] == shared[key], key
    assert info["versions"] == shared["versions"]  # datarax_ops' own version is not repeated
    assert info["date_utc"]
