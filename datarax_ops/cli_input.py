"""The input checks of the ``datarax-ops`` commands (``verify``, ``demo``, ``bench``).

A bad input (an option argparse rejects, a picture that cannot be read, an output
that cannot be written) ends a command before any compile or sampling, with one
line on stderr, ``<prog>: error: <what is wrong>``, and exit status 2: argparse's
convention, without its usage lines and never with a traceback.

Each command parses with :class:`OneLineParser`, checks its inputs in one function
that raises :class:`InputError`, and turns that into the line with
:func:`report_input_error`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import NoReturn

INPUT_ERROR_STATUS = 2  # argparse's exit status for a usage error


class InputError(ValueError):
    """A bad command input; the message names the option or file and what is wrong."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors raise :class:`InputError` (argparse prints its
    usage lines and exits; a command prints one line and returns 2)."""

    def error(self, message: str) -> NoReturn:
        raise InputError(message)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) as one space."""
    return " ".join(str(text).split())


def report_input_error(prog: str, error: BaseException) -> int:
    """Prints ``<prog>: error: <error>`` as one line on stderr; returns 2, the exit status."""
    print(f"{prog}: error: {one_line(str(error))}", file=sys.stderr, flush=True)
    return INPUT_ERROR_STATUS


def os_reason(error: OSError) -> str:
    """An ``OSError``'s reason without the path it repeats (``"Permission denied"``)."""
    return error.strerror or str(error)


def _probe_directory(directory: str) -> None:
    """Creates ``directory`` (and its parents) if needed and a file in it, then removes
    the file. Raises OSError when either is not possible."""
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".datarax-ops-write-check-"):
        pass


def _no_file_above(target: str, path: str, option: str) -> None:
    """Raises InputError when the nearest existing folder above ``target`` (absolute) is a
    file: no directory can be made there (``makedirs`` would only say "File exists")."""
    above = os.path.dirname(target)
    while not os.path.exists(above) and os.path.dirname(above) != above:
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise InputError(f"{option} {path}: cannot write there: {above} is a file")


def writable_file(path: str, option: str) -> str:
    """``path`` as an absolute path, once a file can be written there.

    Creates the file's directory if missing (so the check is the real write's first
    step), creates and removes a file in it, and refuses a directory.

    Raises:
      InputError: naming ``option``, ``path`` and the reason.
    """
    target = os.path.abspath(path)
    if os.path.isdir(target):
        raise InputError(f"{option} {path}: is a directory, not a file")
    _no_file_above(target, path, option)
    try:
        _probe_directory(os.path.dirname(target))
    except OSError as error:
        raise InputError(f"{option} {path}: cannot write there: {os_reason(error)}") from error
    if os.path.exists(target) and not os.access(target, os.W_OK):
        raise InputError(f"{option} {path}: the file exists and is not writable")
    return target


def writable_directory(path: str, option: str) -> str:
    """``path`` as an absolute path, once it is a directory files can be written in
    (created if missing).

    Raises:
      InputError: naming ``option``, ``path`` and the reason.
    """
    target = os.path.abspath(path)
    if os.path.exists(target) and not os.path.isdir(target):
        raise InputError(f"{option} {path}: is a file, not a directory")
    _no_file_above(target, path, option)
    try:
        _probe_directory(target)
    except OSError as error:
        raise InputError(f"{option} {path}: cannot write there: {os_reason(error)}") from error
    return target


def at_least(value: int | float, low: int | float, option: str) -> None:
    """Raises InputError naming ``option`` unless ``value >= low``."""
    if not value >= low:  # also refuses NaN
        raise InputError(f"{option} must be at least {low}, got {value}")
