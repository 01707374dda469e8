"""Compiled programs kept between runs: JAX's persistent compilation cache, switched on
on request.

Most of a first run is XLA compiling (a poisson program takes seconds to compile on a
CPU).  JAX can keep every compiled executable on disk and load it in the next process
instead of compiling again.  Importing ``datarax_ops`` never turns that on: JAX's
configuration is global to the process, so it is the pipeline's call
(:func:`enable_compile_cache`) or the command line's (``datarax-ops verify``, ``demo``
and ``bench`` use the cache unless told not to: :func:`add_arguments`,
:func:`enable_from_args`).

Where the cache lives, in order of precedence for the command line:

1. ``--no-compile-cache`` (off) or ``--compile-cache DIR``;
2. the environment variable ``DATARAX_OPS_COMPILE_CACHE``: a directory, or ``off``,
   ``0`` or ``none`` (any case) for no cache;
3. :func:`default_cache_dir`: ``$XDG_CACHE_HOME/datarax_ops/jax-compilation-cache``
   (``~/.cache/...`` when ``XDG_CACHE_HOME`` is unset).

Only the standard library is imported here; JAX is imported when the cache is switched on.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

ENV_VAR = "DATARAX_OPS_COMPILE_CACHE"
"""The environment variable that moves the command line's cache or turns it off."""
OFF_WORDS = frozenset({"off", "0", "none"})
"""Values of :data:`ENV_VAR` (compared in lower case) that turn the cache off."""
CACHE_SUBDIR = Path("datarax_ops") / "jax-compilation-cache"


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user's cache directory for compiled programs, per the XDG base directories:
    ``$XDG_CACHE_HOME/datarax_ops/jax-compilation-cache``, or ``~/.cache/...`` when
    ``XDG_CACHE_HOME`` is unset, empty or relative (the XDG spec ignores relative paths).

    Args:
      environ: the environment to read (default ``os.environ``).
    """
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / CACHE_SUBDIR


def writable_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as an absolute directory that this process can write, created if missing.

    Raises:
      ValueError: ``path`` is not a directory, cannot be created, or cannot be written;
        the message names the path and the reason.
    """
    directory = Path(path).expanduser().absolute()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):  # the only sure test of "writable"
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ValueError(
            f"compile cache {str(directory)!r} is not a writable directory: {reason}"
        ) from error
    return directory


def jax_settings(directory: Path) -> dict[str, str | float | int]:
    """JAX's options that keep every compiled program in ``directory``: the cache's
    directory, and no minimum compile time or entry size (JAX's defaults leave out
    programs that compile in under a second, most of them here)."""
    return {
        "jax_compilation_cache_dir": str(directory),
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_persistent_cache_min_entry_size_bytes": -1,
    }


def enable_compile_cache(path: str | os.PathLike[str] | None = None) -> Path:
    """Keeps every program JAX compiles from now on in ``path``, and loads it from there
    instead of compiling it again, in this process and in later ones.

    Sets JAX's persistent compilation cache (``jax_compilation_cache_dir``) with no
    threshold, so that quickly compiled programs are kept too
    (``jax_persistent_cache_min_compile_time_secs = 0``,
    ``jax_persistent_cache_min_entry_size_bytes = -1``).  These settings are global to
    the process (every JAX program, not only datarax_ops'), which is why importing
    ``datarax_ops`` never makes them: a pipeline calls this once, before its first step.
    They are also set as JAX's environment variables (``JAX_COMPILATION_CACHE_DIR``, ...),
    so that processes started afterwards, such as grain's worker processes that run the
    transforms, keep and load their programs in the same directory.

    Outputs are unchanged: a program loaded from the cache is the executable XLA
    compiled before, bit for bit, so ``op(batch)`` gives the same bytes with or without
    the cache; only the time to the first result changes.  Share a cache directory only
    with users you trust: JAX runs what it finds there.

    Args:
      path: the cache directory, created if missing; default :func:`default_cache_dir`
        (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``datarax_ops/jax-compilation-cache``).

    Returns:
      The cache directory, absolute.

    Raises:
      ValueError: ``path`` is not a writable directory (JAX's settings are left as
        they were).
    """
    directory = writable_dir(default_cache_dir() if path is None else path)
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    for name, value in jax_settings(directory).items():
        jax.config.update(name, value)
        # processes started from here on (grain's worker processes, which run the
        # transforms) import JAX anew and read its settings from the environment
        os.environ[name.upper()] = str(value)
    # JAX opens its cache once, at the first compile after a directory is set; forget an
    # earlier one so that this directory is the one used from now on
    compilation_cache.reset_cache()
    return directory


def active_cache_dir() -> str | None:
    """The directory of JAX's persistent compilation cache in this process, or None when
    it is off (what the ``verify`` report and the bench record)."""
    import jax

    return jax.config.values.get("jax_compilation_cache_dir") or None


def cache_setting(
    directory: str | None, off: bool, environ: Mapping[str, str] | None = None
) -> Path | None:
    """Where the command line keeps compiled programs (None: nowhere), from its flags
    and the environment; the flags win over :data:`ENV_VAR`, which wins over the default.

    Args:
      directory: ``--compile-cache DIR`` (None when not given).
      off: ``--no-compile-cache``.
      environ: the environment to read (default ``os.environ``).
    """
    if off:
        return None
    if directory is not None:
        return Path(directory)
    environ = os.environ if environ is None else environ
    value = environ.get(ENV_VAR, "").strip()
    if value.lower() in OFF_WORDS:
        return None
    return Path(value) if value else default_cache_dir(environ)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--compile-cache DIR`` and ``--no-compile-cache`` to a command's parser."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--compile-cache",
        metavar="DIR",
        help="keep compiled programs in DIR for the next run (default: "
        f"${ENV_VAR} if set, else $XDG_CACHE_HOME or ~/.cache, then /{CACHE_SUBDIR})",
    )
    group.add_argument(
        "--no-compile-cache",
        action="store_true",
        help=f"compile everything afresh and keep nothing (also {ENV_VAR}=off)",
    )


def enable_from_args(
    args: argparse.Namespace, prog: str, environ: Mapping[str, str] | None = None
) -> Path | None:
    """Switches the cache on as the flags of :func:`add_arguments` and the environment
    say (:func:`cache_setting`); returns its directory, or None when it stays off.

    Args:
      args: the parsed options, with ``compile_cache`` and ``no_compile_cache``.
      prog: the command's name, for the error line (``datarax-ops verify``).
      environ: the environment to read (default ``os.environ``).

    Raises:
      SystemExit: (status 2, after one line ``<prog>: error: ...`` on stderr) the
        directory is not writable.
    """
    where = cache_setting(args.compile_cache, args.no_compile_cache, environ)
    if where is None:
        return None
    try:
        return enable_compile_cache(where)
    except ValueError as error:
        print(
            f"{prog}: error: {error} (--no-compile-cache or {ENV_VAR}=off runs without it)",
            file=sys.stderr,
        )
        raise SystemExit(2) from error
