"""Sessions that CI and users run.  ``nox`` alone runs ``tests``.

tests      the fast default suite (< 10 minutes on 2 cores) with datarax 0.1.4; CI runs
           this one, which queues slow and datarax_latest
slow       the tests that start processes or run whole commands and pipelines (marked
           slow): two JAX processes, 8 host devices, grain workers, datarax 0.1.4's
           Pipeline, verify, report, demo, the examples, the offline accelerator command
datarax_latest  the datarax pipeline tests and examples against datarax 0.1.17 (Python 3.12)
matrix     the same suite on Python 3.11, 3.12 and 3.13 (pyenv's interpreters)
stats      the statistical checks again with 8x samples, fresh seeds, more examples
power      every deliberately wrong operator against the statistical tests alone (the
           law-keeping ones against the exact tests); prints the rejection table and
           the power table (check, n, alpha, smallest error caught)
power_slice  one wrong variant per mode and one for the training settings against the
           statistical tests alone (a few minutes; queued by tests, so CI runs it)
gpu        the suite on an accelerator backend; skips cleanly without one
lint       ruff check + ruff format --check
typecheck  mypy on both packages
verify     the main job: `datarax-ops verify`, every mode against scipy.stats and the NumPy
           reference on this machine's backend; verdict table + datarax-ops-report.html
demo       `datarax-ops demo`: every mode at several strengths on a picture (PNG)
bench      speed: every mode, dtype and shape against a jitted copy of the same array,
           interleaved rounds, and 1,000 records of random sizes through the grain transform
           (python -m datarax_ops.bench; `-- --quick` to try it);
           writes JSON + Markdown to bench-results/.  Speed claims come from here only.
bench_datarax  the same benchmark against datarax==0.1.17's operators (Python 3.12), for
           the side-by-side column, with albumentations==2.0.8 beside the records workload;
           then one datarax Pipeline.step() with datarax's stage or ours
           (python -m datarax_ops.bench_pipeline)
dieharder  dieharder -a on the raw random stream (needs the dieharder binary; ~30 min, ~250 GB)
browser    (not in CI) the verify HTML report opened in headless Chromium: images load, no
           console errors, every mode's section; saves a full-page screenshot
           (needs Debian's chromium and chromium-driver; `-- --screenshot PATH`)
"""

from __future__ import annotations

import glob
import os
import shutil

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

DATARAX_VERSION = "0.1.17"  # the datarax release datarax_ops is a drop-in for
# The seed pages' datarax, tested in the default session on any Python it supports (3.11+).
DATARAX_SEED_VERSION = "0.1.4"
# datarax 0.1.4 requires tensorflow and tensorflow-datasets, which it imports only in its
# TFDS sources (never on the paths tested here): it is installed without them, and with the
# rest of its requirements (its METADATA's Requires-Dist, less those two).
DATARAX_SEED_REQUIREMENTS = [
    "array-record>=0.4",
    "calibrax>=0.1.0",
    "jaxtyping>=0.2.20",
    "optax>=0.1.4",
    "protobuf>=5.28.0,<6",
    "psutil>=5.9.0",
    "pyyaml>=6",
    "tomli-w>=1",
]
ALBUMENTATIONS_VERSION = "2.0.8"  # the per-record side-by-side of the bench's records workload


def _pyenv_interpreters_first() -> None:
    """Puts pyenv's real 3.11+ interpreters ahead of its shims on PATH.

    A pyenv shim such as ``python3.12`` fails unless that version is active, so
    nox would skip a ``python="3.12"`` session on a machine that has it installed.
    """
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = glob.glob(os.path.join(root, "versions", "3.*", "bin"))
    wanted = [d for d in found if _minor(d) >= 11]
    wanted.sort(key=_minor)
    if wanted:
        os.environ["PATH"] = os.pathsep.join([*wanted, os.environ.get("PATH", "")])


def _minor(bin_dir: str) -> int:
    version = os.path.basename(os.path.dirname(bin_dir))  # "3.12.1"
    parts = version.split(".")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1


_pyenv_interpreters_first()


def _install(session: nox.Session, *extras: str) -> None:
    """Installs the project, editable, with ``extras``.

    Editable because sessions run from the repository root, where ``datarax_ops``
    is imported from the source folder: only the editable install's import hook
    maps ``datarax_ops.reference`` onto the top-level ``reference/`` folder there.
    """
    session.install("-e", f".[{','.join(extras)}]" if extras else ".")


@nox.session
def verify(session: nox.Session) -> None:
    """The main job: ``datarax-ops verify`` (options after ``--``, e.g. ``-- --seed 1``);
    fails when a check fails.  Runs on the backend JAX finds."""
    _install(session, "verify")
    session.run("datarax-ops", "verify", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """``datarax-ops demo``: every mode at several strengths on a picture, as a PNG."""
    _install(session, "verify")
    session.run("datarax-ops", "demo", *session.posargs)


PYTHONS = ["3.11", "3.12", "3.13"]  # every Python requires-python admits that we test


def _install_seed_datarax(session: nox.Session) -> None:
    """datarax 0.1.4, for the pipeline tests and the pinned datarax messages."""
    session.install(*DATARAX_SEED_REQUIREMENTS)
    session.install("--no-deps", f"datarax=={DATARAX_SEED_VERSION}")


def _fast_suite(session: nox.Session) -> None:
    """Installs the test extras and runs the fast suite on CPU; prints the JAX line used."""
    _install(session, "test", "verify")  # the tests import the conformance kit (verify extra)
    _install_seed_datarax(session)
    session.run(
        "python",
        "-c",
        "import sys, jax, jaxlib, flax, numpy, datarax; print(f'python {sys.version.split()[0]}: "
        "jax {jax.__version__}, jaxlib {jaxlib.__version__}, flax {flax.__version__}, "
        "numpy {numpy.__version__}, datarax {datarax.__version__}')",
    )
    session.run("pytest", *PARALLEL, "-m", "not gpu and not slow", *session.posargs, env=TEST_ENV)


# pytest-xdist: one worker per core (at most 4), whole files per worker (module fixtures
# and compile caches stay together); the same hash seed in every worker, so that they
# collect the same test ids.
PARALLEL = ["-q", "-n", "auto", "--maxprocesses", "4", "--dist", "loadfile"]
TEST_ENV = {"JAX_PLATFORMS": "cpu", "PYTHONHASHSEED": "0"}


@nox.session
def tests(session: nox.Session) -> None:
    """Fast default suite on the running Python: reference vs mathematics, datarax_ops vs
    reference, the API, datarax 0.1.4's messages and stage call.  CI runs this one.

    Then queues ``slow`` (the tests marked slow: processes, whole commands),
    ``power_slice`` (wrong variants that the statistics alone must reject) and
    ``datarax_latest`` (the datarax tests against datarax 0.1.17 on Python 3.12, skipped
    with nox's notice where no Python 3.12 is found outside CI): nothing is left out of CI.
    """
    _fast_suite(session)
    session.notify("slow")
    session.notify("power_slice")
    session.notify("datarax_latest")


@nox.session
def slow(session: nox.Session) -> None:
    """The tests marked slow: two JAX processes with gloo, 8 host devices, grain with
    worker processes, datarax 0.1.4's ``Pipeline``, ``datarax-ops verify`` runs, the report
    and the demo, the examples, the offline accelerator command on the CPU."""
    _install(session, "test", "verify")
    _install_seed_datarax(session)
    session.run("pytest", *PARALLEL, "-m", "slow and not gpu", *session.posargs, env=TEST_ENV)


DATARAX_TESTS = ["tests/test_datarax_pipeline.py", "tests/test_examples.py"]


@nox.session(python="3.12")
def datarax_latest(session: nox.Session) -> None:
    """The datarax pipeline tests and examples against datarax 0.1.17 (needs Python >= 3.12)."""
    _install(session, "test")
    session.install(f"datarax=={DATARAX_VERSION}")
    session.run("python", "-c", "import datarax; print('datarax', datarax.__version__)")
    session.run("pytest", *PARALLEL, *DATARAX_TESTS, *session.posargs, env=TEST_ENV)


@nox.session(python=PYTHONS)
def matrix(session: nox.Session) -> None:
    """The fast suite on each of Python 3.11, 3.12 and 3.13 (``nox -s matrix``;
    one of them: ``nox -s matrix-3.12``).  pip picks each Python's own JAX line."""
    _fast_suite(session)


@nox.session
def stats(session: nox.Session) -> None:
    """The statistical checks with 8x samples, fresh seeds and 200 examples a test.

    The seed salt is printed in pytest's header; DATARAX_OPS_STATS_SEED=<salt>
    replays a run.
    """
    _install(session, "test")
    env = {
        "DATARAX_OPS_STATS_SCALE": "8",
        "DATARAX_OPS_STATS_SEED": "fresh",
        "JAX_PLATFORMS": "cpu",
    }
    session.run("pytest", "-q", "-m", "stats", *session.posargs, env=env)


@nox.session
def power(session: nox.Session) -> None:
    """Every law-changing variant against the statistical tests alone (a rejection is a
    ``StatCheckError``), the others against the exact tests; then the power table.  Fails
    if a variant is not rejected or a run errs.  ``-- NAME ...`` runs some variants."""
    _install(session, "test", "verify")
    _install_seed_datarax(session)
    env = {"JAX_PLATFORMS": "cpu"}
    session.run("python", "-m", "tests.power.table", env=env)
    session.run("python", "-m", "tests.power.run", "--exact", *session.posargs, env=env)


@nox.session
def power_slice(session: nox.Session) -> None:
    """One law-changing variant per mode and one for the training settings, each against
    its mode's statistical tests alone (``tests/power/run.py``'s SLICE)."""
    _install(session, "test", "verify")
    session.run("python", "-m", "tests.power.run", "--slice", env={"JAX_PLATFORMS": "cpu"})


@nox.session
def gpu(session: nox.Session) -> None:
    """The whole suite on the accelerator backend, plus CPU-vs-GPU checks."""
    if shutil.which("nvidia-smi") is None:
        session.skip("no NVIDIA GPU on this machine (nvidia-smi not found)")
    _install(session, "test")
    session.install("jax[cuda12]")
    session.run("python", "-c", "import jax; assert jax.default_backend() == 'gpu', jax.devices()")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over both packages."""
    _install(session, "test", "dev")
    session.run("mypy", "reference", "datarax_ops")


def _bench_env() -> dict[str, str]:
    """CPU unless JAX_PLATFORMS says otherwise (the backend is recorded in the results)."""
    return {"JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}


@nox.session
def bench(session: nox.Session) -> None:
    """Times every case against a jitted copy; writes bench-results/*.json and *.md.

    Options after ``--``: --quick, --modes, --dtypes, --shapes, --rounds, --records,
    --records-only, --out (python -m datarax_ops.bench --help).
    """
    _install(session, "grain", "verify")  # records: the grain transform; tables: rich
    session.run("python", "-m", "datarax_ops.bench", *session.posargs, env=_bench_env())


@nox.session(python="3.12")
def bench_datarax(session: nox.Session) -> None:
    """The same benchmark with datarax's NoiseOperator / DropoutOperator (--impl datarax),
    and albumentations' closest transforms beside datarax_ops' grain transform on the
    same records (the records workload; ``-- --records-only`` runs just that).

    datarax 0.1.17 needs jax >= 0.11.1, so this venv's jax may differ from the
    bench session's (both are recorded); ``-- --impl datarax_ops`` runs
    datarax_ops in this same venv for a same-versions comparison.
    """
    session.install(
        "-e",
        ".[grain,verify]",
        f"datarax=={DATARAX_VERSION}",
        f"albumentations=={ALBUMENTATIONS_VERSION}",
    )
    session.run(
        "python",
        "-m",
        "datarax_ops.bench",
        "--impl",
        "datarax",
        *session.posargs,
        env=_bench_env(),
    )
    # one datarax Pipeline.step() with datarax's stage or ours (bench-results/pipeline.md)
    session.run("python", "-m", "datarax_ops.bench_pipeline", env=_bench_env())


@nox.session
def dieharder(session: nox.Session) -> None:
    """dieharder -a on the raw stream operators consume; writes the results file.

    The words of ``datarax_ops.stream`` (records of one base key, little-endian
    uint32) are piped into ``dieharder -g 200 -a`` (an unbounded stream: no
    rewinds); ``tests/stream_quality/dieharder-results.txt`` gets the output
    and a summary.  Fails if a test FAILED or WEAK results are improbably many.
    Options go to ``tests/stream_quality/run_dieharder.py``, e.g.
    ``nox -s dieharder -- --tests "-d 0" --output /tmp/quick.txt``.
    """
    if shutil.which("dieharder") is None:
        session.error(
            "the dieharder binary is not on PATH. Install it: `sudo apt-get install dieharder` "
            "(Debian/Ubuntu), `sudo dnf install dieharder` (Fedora) or `brew install dieharder` "
            "(macOS), then rerun `nox -s dieharder`."
        )
    _install(session)
    session.run(
        "python",
        "tests/stream_quality/run_dieharder.py",
        *session.posargs,
        env={"JAX_PLATFORMS": "cpu"},
    )


@nox.session
def browser(session: nox.Session) -> None:
    """Renders the ``datarax-ops verify`` report in headless Chromium and checks it.

    Runs ``datarax-ops verify`` with small samples and seed 0 into a temporary
    directory, then ``tests/browser/check_report.py``: every <img> loaded,
    no SEVERE console entries, a section for every mode.  Saves a full-page
    screenshot to ``-- --screenshot PATH`` (default: next to the report) and prints
    its path.  Not in CI: needs Debian's ``chromium`` and ``chromium-driver``.
    """
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        session.error(
            f"{' and '.join(missing)} not found on PATH. Install Debian's packages: "
            "`sudo apt-get install chromium chromium-driver`, then rerun `nox -s browser`"
        )
    screenshot = None
    args = list(session.posargs)
    if "--screenshot" in args:
        at = args.index("--screenshot")
        if at + 1 >= len(args):
            session.error("--screenshot needs a path: nox -s browser -- --screenshot out.png")
        screenshot = os.path.abspath(args[at + 1])
    _install(session, "verify")
    session.install("selenium>=4.10")
    out_dir = os.path.join(session.create_tmp(), "browser-report")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    env = {"JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    session.run(
        "datarax-ops", "verify", "--samples", "20000", "--seed", "0", "--out", out_dir, env=env
    )
    reports = sorted(glob.glob(os.path.join(out_dir, "**", "*.html"), recursive=True))
    if not reports:
        session.error(f"datarax-ops verify wrote no HTML report under {out_dir}")
    screenshot = screenshot or os.path.join(out_dir, "report-screenshot.png")
    # Run as a script, not `-m`: from the repository root `datarax_ops` would resolve to the
    # source folder, which lacks the installed `datarax_ops.reference` (kept in reference/).
    checker = os.path.join("tests", "browser", "check_report.py")
    session.run("python", checker, reports[0], "--screenshot", screenshot)
