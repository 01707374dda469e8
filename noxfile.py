"""Sessions that CI and users run.  ``nox`` alone runs ``tests``.

tests      the fast default suite (< 10 minutes on 2 cores) with datarax 0.1.4; CI runs
           this one, which queues slow, datarax_latest, docs and device_packages
slow       the tests that start processes or run whole commands and pipelines (marked
           slow): two JAX processes, 8 host devices, grain workers, datarax 0.1.4's
           Pipeline, verify, report, demo, the examples, the offline accelerator command,
           the suite collected with the optional packages unimportable, and
           `verify --target` on datarax 0.1.4 and albumentations 2.0.8
datarax_latest  the datarax pipeline tests, examples, docs page and verify --target datarax
           against datarax 0.1.17 (Python 3.12)
device_packages  scripts/accelerator_run.py as the GPU machine runs it, on the CPU: a
           Python 3.12 venv of exactly that machine's packages (jax/jaxlib 0.11.2, flax,
           scipy, hypothesis, pytest, matplotlib, rich, Pillow, orbax-checkpoint,
           setuptools; no grain, datarax, pytest-xdist or nox), the network off, a time
           limit; fails unless every step ran and passed (install, probe, the whole
           suite collected with 0 errors, gpu tests, verify PASSED, bench, the fast suite
           with 0 failures: cut at its time limit on 2 cores).  ~12 minutes
matrix     the same suite on Python 3.11, 3.12 and 3.13 (pyenv's interpreters)
stats      the statistical checks again with 8x samples, fresh seeds, more examples
power      every deliberately wrong operator against the statistical tests alone (the
           law-keeping ones against the exact tests); prints the rejection table and
           the power table (check, n, alpha, smallest error caught)
power_slice  one wrong variant per mode and one for the training settings against the
           statistical tests alone (a few minutes; queued by tests, so CI runs it)
gpu        the suite on an accelerator backend; skips cleanly without one
lint       ruff check + ruff format --check
docs       the Sphinx site (MyST pages, API reference from the docstrings) into
           docs/_build/html, warnings as errors; tests queues it
typecheck  mypy on both packages
verify     the main job: `datarax-ops verify`, every mode against scipy.stats and the NumPy
           reference on this machine's backend; verdict table + datarax-ops-report.html
demo       `datarax-ops demo`: every mode at several strengths on a picture (PNG)
bench      speed: every mode, dtype and shape against a jitted copy of the same array,
           interleaved rounds, 1,000 records of random sizes through the grain transform,
           and verify and 400 records in fresh processes without and with the compile cache
           (python -m datarax_ops.bench; `-- --quick` to try it);
           writes JSON + Markdown to bench-results/.  Speed claims come from here only.
bench_datarax  the same benchmark against datarax==0.1.17's operators (Python 3.12), for
           the side-by-side column, with albumentations==2.0.8 beside the records workload;
           then one datarax Pipeline.step() with datarax's stage or ours
           (python -m datarax_ops.bench.pipeline)
dieharder  dieharder -a on the raw random stream (needs the dieharder binary; ~30 min, ~250 GB)
browser    (not in CI) the verify HTML report opened in headless Chromium: images load, no
           console errors, every mode's section; saves a full-page screenshot
           (needs Debian's chromium and chromium-driver; `-- --screenshot PATH`)
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
# Where CI is set, a session whose Python is missing fails instead of being skipped
# (nox's own default since 2022.8.7, stated here whatever nox runs).  `.ci/run` passes
# --error-on-missing-interpreters too: CI fails even where CI is not set.
if "CI" in os.environ:
    nox.options.error_on_missing_interpreters = True

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
# Tells the datarax tests which datarax the session installed; they fail on another one
# (tests/datarax_version.py).
EXPECT_DATARAX_ENV = "DATARAX_OPS_EXPECT_DATARAX"
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
    session.run(
        "pytest", *PARALLEL, "-m", "not gpu and not slow", *session.posargs, env=SEED_DATARAX_ENV
    )


# pytest-xdist: one worker per core (at most 4), whole files per worker (module fixtures
# and compile caches stay together); the same hash seed in every worker, so that they
# collect the same test ids.
PARALLEL = ["-q", "-n", "auto", "--maxprocesses", "4", "--dist", "loadfile"]
TEST_ENV = {"JAX_PLATFORMS": "cpu", "PYTHONHASHSEED": "0"}
SEED_DATARAX_ENV = {**TEST_ENV, EXPECT_DATARAX_ENV: DATARAX_SEED_VERSION}


@nox.session
def tests(session: nox.Session) -> None:
    """Fast default suite on the running Python: reference vs mathematics, datarax_ops vs
    reference, the API, datarax 0.1.4's messages and stage call.  CI runs this one.

    Then queues ``slow`` (the tests marked slow: processes, whole commands),
    ``power_slice`` (wrong variants that the statistics alone must reject),
    ``datarax_latest`` (the datarax tests against datarax 0.1.17 on Python 3.12),
    ``docs`` (the site, warnings as errors) and ``device_packages`` (the accelerator
    command on the GPU machine's packages, Python 3.12). Where no Python 3.12 is found
    the 3.12 sessions are skipped with nox's notice, except in CI, where they fail:
    nothing is left out of CI.
    """
    _fast_suite(session)
    session.notify("slow")
    session.notify("power_slice")
    session.notify("datarax_latest")
    session.notify("docs")
    session.notify("device_packages")


@nox.session
def slow(session: nox.Session) -> None:
    """The tests marked slow: two JAX processes with gloo, 8 host devices, grain with
    worker processes, datarax 0.1.4's ``Pipeline``, ``datarax-ops verify`` runs (also
    ``--target datarax`` and ``--target albumentations``), the report and the demo, the
    examples, the offline accelerator command on the CPU."""
    _install(session, "test", "verify")
    _install_seed_datarax(session)
    session.install(f"albumentations=={ALBUMENTATIONS_VERSION}")  # verify --target
    session.install("nox")  # tests/test_ci.py runs nox with .ci/run's options
    session.run(
        "pytest", *PARALLEL, "-m", "slow and not gpu", *session.posargs, env=SEED_DATARAX_ENV
    )


DATARAX_TESTS = [
    "tests/test_datarax_pipeline.py",
    "tests/test_examples.py",
    "tests/test_docs.py::test_page_code_runs[datarax.md]",  # the docs' datarax Pipeline
    # verify --target datarax: what datarax's own operators hold, as measured per version
    "tests/test_targets.py::test_datarax_target_holds_what_it_holds",
    "tests/test_targets.py::test_verify_target_datarax_writes_its_report",
]


@nox.session(python="3.12")
def datarax_latest(session: nox.Session) -> None:
    """The datarax pipeline tests, the examples, the docs' datarax page and ``verify
    --target datarax`` against datarax 0.1.17 (needs Python >= 3.12)."""
    _install(session, "test", "verify")
    session.install(f"datarax=={DATARAX_VERSION}")
    session.run("python", "-c", "import datarax; print('datarax', datarax.__version__)")
    env = {**TEST_ENV, EXPECT_DATARAX_ENV: DATARAX_VERSION}
    session.run("pytest", *PARALLEL, *DATARAX_TESTS, *session.posargs, env=env)


# The GPU machine's Python 3.12 packages (issue 21), its CUDA jaxlib a CPU one here; jax
# 0.11.x is on the index for Python 3.12 only.  Nothing else: the accelerator command
# installs the project itself, offline, with --no-deps.
DEVICE_PACKAGES = [
    "jax==0.11.2",
    "jaxlib==0.11.2",
    "flax",
    "scipy",
    "hypothesis",
    "pytest",
    "matplotlib",
    "rich",
    "Pillow",
    "orbax-checkpoint",
    "setuptools",
]
DEVICE_ABSENT = ("grain", "datarax", "xdist", "nox")  # import names
# 2 CPU cores: verify of every mode at 20,000 samples without the gallery, a small bench
# (poisson at lam_scale 30 only: its programs compile slowest), and the fast suite with the
# time that is left (``--partial-suite-ok``: cut at its limit, the tests that ran must pass;
# the collect step has collected every module).
DEVICE_RUN_OPTIONS = [
    "--cpu-ok",
    "--partial-suite-ok",
    "--time-limit",
    "600",
    "--verify-args",
    "--samples 20000 --no-gallery",
    "--bench-modes",
    "gaussian,salt_pepper,pixel,channel,poisson30",
    "--bench-shapes",
    "4x32x32x3",
    "--bench-rounds",
    "5",
]


def _network_off() -> list[str]:
    """The command prefix that runs a command with no network: ``unshare -rn`` (a new,
    empty network namespace), or nothing where unshare cannot (the caller then blocks pip
    by its environment)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    probe = subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False)
    return [unshare, "-rn"] if probe.returncode == 0 else []


@nox.session(python="3.12")
def device_packages(session: nox.Session) -> None:
    """``scripts/accelerator_run.py --cpu-ok`` as the GPU machine runs it: a venv of exactly
    its packages (``DEVICE_PACKAGES``; no grain, datarax, pytest-xdist or nox), no network,
    a time limit.  Fails unless every step ran and passed (the script's ``complete``):
    install, probe, the whole suite collected with 0 errors, the gpu tests, verify PASSED,
    the bench, and the fast suite with 0 failures (cut at its time limit on 2 cores).

    The project is not installed by nox: the script installs it (``pip install --no-deps
    --no-build-isolation --no-index -e .``).  The results land in the session's temporary
    folder (printed); ``-- OPTIONS`` go to the script.
    """
    session.install(*DEVICE_PACKAGES)
    session.run("python", "-m", "pip", "uninstall", "--yes", "--quiet", "datarax-ops")
    absent = ", ".join(repr(name) for name in DEVICE_ABSENT)
    session.run(
        "python",
        "-c",
        "import importlib.util as u, sys, jax, jaxlib; "
        f"present = [n for n in ({absent}) if u.find_spec(n)]; "
        "assert not present, f'not on the GPU machine, yet installed: {present}'; "
        "print(f'python {sys.version.split()[0]}: jax {jax.__version__}, "
        "jaxlib {jaxlib.__version__}; absent: " + ", ".join(DEVICE_ABSENT) + "')",
    )
    out = os.path.join(session.create_tmp(), "accelerator-results")
    env = {"JAX_PLATFORMS": "cpu"}
    offline = _network_off()
    if not offline:
        # No network namespace: pip is kept off the index and every proxy leads nowhere.
        session.warn("unshare -rn is not available: the network is blocked for pip only")
        dead_end = "http://127.0.0.1:9"
        env |= {"PIP_NO_INDEX": "1", "HTTP_PROXY": dead_end, "HTTPS_PROXY": dead_end}
        env |= {"http_proxy": dead_end, "https_proxy": dead_end, "NO_PROXY": ""}
    python = os.path.join(session.bin, "python")
    script = [python, "scripts/accelerator_run.py", "--out", out]
    # timeout: a guard over the script's own --time-limit (its steps' limits are inside it)
    guard = ["timeout", "--kill-after", "30", "720"]
    command = [*guard, *offline, *script, *DEVICE_RUN_OPTIONS, *session.posargs]
    session.run(*command, env=env, external=True)
    session.log(f"results: {out}")


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
    env = SEED_DATARAX_ENV  # the exact variants include datarax 0.1.4's stage call
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
def docs(session: nox.Session) -> None:
    """The Sphinx site: docs/*.md (MyST) and the API reference generated from the
    docstrings, into docs/_build/html.  Every warning fails the build (``-W``);
    ``--keep-going`` reports them all first, ``-E`` re-reads every page (an incremental
    build would not repeat the warnings of unchanged pages).  The pages' code runs in
    ``tests/test_docs.py``."""
    _install(session, "docs")
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-E",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
        *session.posargs,
    )


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
    """Times every case against a jitted copy (and albumentations 2.0.8's closest
    transforms looped over the batch); writes bench-results/*.json and *.md.

    Options after ``--``: --quick, --modes, --dtypes, --shapes, --rounds, --records,
    --records-only, --no-cache-runs, --cache-only, --out (python -m datarax_ops.bench --help).
    """
    _install(session, "grain", "verify")  # records: the grain transform; tables: rich
    # the other library's closest transforms, beside the case table and the records
    session.install(f"albumentations=={ALBUMENTATIONS_VERSION}")
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
    session.run("python", "-m", "datarax_ops.bench.pipeline", env=_bench_env())


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
    no SEVERE console entries, a section for every mode, the summary grid above
    the full table with a row per mode and counts that add up, every id valid
    and unique, every in-page link resolving.  Saves a full-page
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
