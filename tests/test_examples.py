"""Every script in ``examples/`` runs to completion (each asserts its own claim).

Examples are discovered by glob, so a new one is picked up without editing this
file.  Each runs in a fresh Python from the repository root with
``JAX_PLATFORMS=cpu`` (``tests.factory.run_python``) and must exit 0.
``COVERED_ELSEWHERE`` names examples that a dedicated test already runs with the
same checks and more (running them twice would double the suite's slowest
compile).
"""

from __future__ import annotations

import pathlib

import pytest

from tests.factory import run_python

# Starts processes or runs whole commands: `nox -s slow` (CI runs it after `tests`).
pytestmark = pytest.mark.slow

EXAMPLES_DIR = pathlib.Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))
COVERED_ELSEWHERE = {"sharded.py": "tests/test_sharding.py"}
# Examples that need an optional extra, and the module it provides.
NEEDS_MODULE = {
    "grain_pipeline.py": "grain",
    "orbax_resume.py": "orbax.checkpoint",
    "datarax_pipeline.py": "datarax",
}


def test_examples_exist():
    expected = {"train_step.py", "grain_pipeline.py", "sharded.py", "orbax_resume.py"}
    assert expected | {"datarax_pipeline.py"} <= {path.name for path in EXAMPLES}
    assert set(COVERED_ELSEWHERE) <= {path.name for path in EXAMPLES}


RUN_HERE = [path for path in EXAMPLES if path.name not in COVERED_ELSEWHERE]


# Examples that keep their compiled programs (datarax_ops.enable_compile_cache()).
KEEP_PROGRAMS = {"grain_pipeline.py", "datarax_pipeline.py"}


@pytest.mark.parametrize("example", RUN_HERE, ids=[path.name for path in RUN_HERE])
def test_example_runs(example: pathlib.Path, tmp_path: pathlib.Path):
    if example.name in NEEDS_MODULE:
        pytest.importorskip(NEEDS_MODULE[example.name])
    relative = example.relative_to(EXAMPLES_DIR.parent).as_posix()
    # the user's cache directory is a temporary one here, never the real home cache
    run_python(
        f"import runpy; runpy.run_path({relative!r}, run_name='__main__')",
        XDG_CACHE_HOME=str(tmp_path),
    )
    kept = tmp_path / "datarax_ops" / "jax-compilation-cache"
    programs = list(kept.iterdir()) if kept.is_dir() else []
    assert bool(programs) == (example.name in KEEP_PROGRAMS), programs
