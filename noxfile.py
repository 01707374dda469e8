"""Sessions that CI and users run.  ``nox`` alone runs ``tests``.

tests      the fast default suite (< 10 minutes on 2 cores); CI runs this one
stats      the statistical checks again with 8x samples, fresh seeds, more examples
power      the suite against deliberately wrong operators; prints the rejection table
gpu        the suite on an accelerator backend; skips cleanly without one
lint       ruff check + ruff format --check
typecheck  mypy on both packages
demo       the main job: each mode's effect and statistics (python -m reference)
"""

from __future__ import annotations

import shutil

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True


def _install(session: nox.Session, *extras: str) -> None:
    session.install(f".[{','.join(extras)}]" if extras else ".")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: python -m reference on a built-in synthetic image."""
    _install(session)
    session.run("python", "-m", "reference", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Fast default suite: reference vs mathematics, datarax_ops vs reference, API."""
    _install(session, "test")
    session.run("pytest", "-q", "-m", "not gpu", *session.posargs, env={"JAX_PLATFORMS": "cpu"})


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
    """Runs the suite against every wrong variant; fails if any survives."""
    _install(session, "test")
    session.run("python", "-m", "tests.power.run", *session.posargs, env={"JAX_PLATFORMS": "cpu"})


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
