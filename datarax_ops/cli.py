"""The ``datarax-ops`` command (also ``python -m datarax_ops``).

Subcommands:

* ``verify``: runs the conformance checks of ``datarax_ops.conformance.checks``
  for every mode, and of ``conformance.training`` for each mode's training
  settings (strength range, shared channels, apply probability), on the
  backend JAX finds, prints the verdict table and the
  false-alarm budget, writes an HTML report, and exits 1 when a check fails.
  ``--target NAME`` checks another library's operators (``datarax_ops.targets``):
  the checks it lacks a capability for, and the modes it has no operator for,
  show n/a with the reason.
* ``demo``: every mode at several strengths on a picture (``conformance.gallery``).
* ``bench``: the speed table (``datarax_ops.bench``).

The heavy modules (scipy, matplotlib, rich, JAX) are imported inside the
subcommands, so ``import datarax_ops.cli`` stays light.

Bad input (an unknown mode, too few samples, pictures that cannot be read, a report
that cannot be written) ends a command before any compile or sampling with one line,
``datarax-ops <command>: error: ...``, and exit status 2 (``datarax_ops.cli_input``).
Each command checks its inputs in one function (``verify_inputs`` here,
``gallery.demo_inputs``, ``bench.run.check_args``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datarax_ops import compile_cache
from datarax_ops.cli_input import (
    InputError,
    OneLineParser,
    at_least,
    one_line,
    os_reason,
    report_input_error,
    writable_file,
)

DEFAULT_REPORT = "datarax-ops-report.html"
TABLE_WIDTH = 200  # when stdout is not a terminal: one line per row, never wrapped
VERIFY_PROG = "datarax-ops verify"
# Below this many values per sample the statistical checks detect nothing that matters.
MIN_SAMPLES = 1000


def mode_names() -> tuple[str, ...]:
    """Every mode name, from ``datarax_ops.reference.MODES`` (NumPy only: no JAX import)."""
    from datarax_ops import reference

    return tuple(mode.name for mode in reference.MODES)


def parse_modes(values: Sequence[str] | None) -> list[str]:
    """``--mode`` values (repeated and/or comma-separated) as mode names, in the order of
    ``MODES``; all modes when none are given.

    Raises:
      InputError: an unknown mode name, or ``--mode`` values that name none.
    """
    known = mode_names()
    if values is None:
        return list(known)
    wanted = {name.strip() for value in values for name in value.split(",") if name.strip()}
    if not wanted:
        raise InputError(f"--mode names no mode; choose from {list(known)}")
    unknown = sorted(wanted - set(known))
    if unknown:
        raise InputError(f"--mode: unknown mode(s) {unknown}; choose from {list(known)}")
    return [name for name in known if name in wanted]


def report_path(out: str) -> str:
    """``--out`` as a file path: a directory (existing, or ending in a separator) gets
    ``datarax-ops-report.html`` inside it."""
    if out.endswith(("/", os.sep)) or os.path.isdir(out):
        return os.path.join(out, DEFAULT_REPORT)
    return out


def verify_parser() -> argparse.ArgumentParser:
    from datarax_ops import targets
    from datarax_ops.conformance.checks import DEFAULT_SAMPLES

    parser = OneLineParser(
        prog=VERIFY_PROG,
        description="Checks every operator mode, on this machine's JAX backend, against "
        "scipy.stats and the NumPy reference; prints the verdicts and writes an HTML report. "
        "Exit status 1 when a check fails.",
    )
    parser.add_argument(
        "--mode",
        action="append",
        metavar="MODE",
        help=f"a mode to check (repeat, or comma-separate); default: all of {list(mode_names())}",
    )
    parser.add_argument(
        "--target",
        default=targets.DEFAULT,
        metavar="NAME",
        help=f"whose operators to check, one of {list(targets.target_names())} "
        f"(default {targets.DEFAULT}: this package's)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=DEFAULT_SAMPLES,
        help=f"values per statistical sample (default {DEFAULT_SAMPLES}); detectable "
        "deviations shrink as 1/sqrt(samples)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the run's seed (default: a fresh one, printed so the run can be replayed)",
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_REPORT,
        help=f"HTML report file, or a directory for {DEFAULT_REPORT} (default: ./{DEFAULT_REPORT})",
    )
    parser.add_argument(
        "--images",
        metavar="DIR",
        help="PNG/JPEG pictures to check on (default: the built-in synthetic image)",
    )
    parser.add_argument(
        "--no-gallery", action="store_true", help="leave the gallery out of the report (faster)"
    )
    parser.add_argument(
        "--no-training",
        action="store_true",
        help="skip the training settings' checks (strength ranges, shared channels, "
        "apply_prob; faster)",
    )
    compile_cache.add_arguments(parser)
    return parser


def load_pictures(images_dir: str | None) -> tuple[list[Any], str]:
    """The pictures to check on and a description of them.

    Raises:
      InputError: ``images_dir`` is missing or unreadable, holds no PNG/JPEG, or holds
        one that does not decode (the message names the file).
    """
    from datarax_ops.conformance import images

    if images_dir is None:
        picture = images.synthetic_image()
        return [picture], f"built-in synthetic image {picture.shape[1]}x{picture.shape[0]}"
    try:
        pictures = images.load_images(images_dir)
    except (OSError, ValueError) as error:
        raise InputError(f"--images: {error}") from error
    return pictures, f"{len(pictures)} picture(s) from {images_dir}"


@dataclass(frozen=True)
class VerifyInputs:
    """``verify``'s checked inputs: the modes, the pictures (float32 ``(H, W, 3)`` in
    [0, 1]) and their description, the report's absolute path (writable), and the
    target (``datarax_ops.targets.Target``, its packages installed)."""

    modes: list[str]
    pictures: list[Any]
    source: str
    report: str
    target: Any


def load_target(name: str) -> Any:
    """The ``--target`` named ``name``.

    Raises:
      InputError: an unknown target (the message lists them), or one whose packages
        are not installed (the message names them).
    """
    from datarax_ops import targets

    try:
        target = targets.load_target(name)
    except LookupError as error:
        raise InputError(f"--target: {error.args[0]}") from None
    missing = targets.missing_packages(target)
    if missing:
        raise InputError(f"--target {name} needs {', '.join(missing)} installed (pip install)")
    return target


def verify_inputs(args: argparse.Namespace) -> VerifyInputs:
    """Checks every input of ``verify`` before any work; the pictures are read here.

    Raises:
      InputError: a bad ``--mode`` or ``--target``, ``--samples`` below ``MIN_SAMPLES``,
        an ``--out`` that cannot be written, or ``--images`` that cannot be read.
    """
    modes = parse_modes(args.mode)
    target = load_target(args.target)
    at_least(args.samples, MIN_SAMPLES, "--samples")
    report = writable_file(report_path(args.out), "--out")
    pictures, source = load_pictures(args.images)
    return VerifyInputs(modes, pictures, source, report, target)


def write_report(page: str, path: str) -> str | None:
    """Writes ``page`` to ``path``; when that fails, to a new file in the temporary
    directory. Says on stderr what failed and where the report went.

    Returns:
      The path written, or None when neither could be written.
    """
    try:
        write_text(path, page)
        return path
    except OSError as error:
        failed = f"cannot write the report to {path}: {os_reason(error)}"
    fallback = fallback_report_path()
    try:
        write_text(fallback, page)
    except OSError as error:
        failed += f"; nor to {fallback}: {os_reason(error)}"
        print(f"{VERIFY_PROG}: error: {one_line(failed)}", file=sys.stderr)
        return None
    print(f"{VERIFY_PROG}: error: {one_line(failed)}; wrote it to {fallback}", file=sys.stderr)
    return fallback


def fallback_report_path() -> str:
    """A new, empty file in the temporary directory, ``datarax-ops-report-*.html``."""
    handle, path = tempfile.mkstemp(prefix="datarax-ops-report-", suffix=".html")
    os.close(handle)
    return path


def write_text(path: str, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path``, creating its directory."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


def print_table(
    verdicts: Sequence[Any], budget: str, seed: int, replay: str, target: str = "datarax_ops"
) -> None:
    """The verdict table (rich), the budget, the seed and the command replaying the run;
    failed rows bold red, n/a rows dim."""
    from rich.console import Console
    from rich.table import Table

    from datarax_ops.conformance.report import TABLE_COLUMNS, verdict_row

    console = Console(width=None if sys.stdout.isatty() else TABLE_WIDTH, highlight=False)
    table = Table(title=f"{target} verify")
    for column in TABLE_COLUMNS:
        table.add_column(column, no_wrap=column in ("mode", "verdict", "p-value"))
    for verdict in verdicts:
        row = verdict_row(verdict)
        style = "bold red" if verdict.failed else None if verdict.applicable else "dim"
        table.add_row(*row, style=style)
    console.print(table)
    console.print(f"False-alarm budget: {budget}")
    failed = [v for v in verdicts if v.failed]
    applicable = sum(v.applicable for v in verdicts)
    na = f"; {len(verdicts) - applicable} n/a" if applicable < len(verdicts) else ""
    if failed:
        console.print(f"[bold red]FAILED[/]: {len(failed)} of {applicable} checks{na}")
        for v in failed:
            console.print(f"  FAIL {v.mode} / {v.aspect} / {v.what} {v.detail}".rstrip())
    else:
        console.print(f"[bold green]PASSED[/]: all {applicable} checks{na}")
    console.print(f"seed {seed} (replay: {replay})")


def verify(argv: Sequence[str] | None = None, *, factory: Any = None) -> int:
    """``datarax-ops verify``; returns the exit status (0: no applicable check failed).

    Args:
      argv: the options after ``verify``.
      factory: builds the operators under test for every mode, ``factory(config,
        rngs=...)`` (default: the target's); tests pass a deliberately wrong one.
    """
    try:
        args = verify_parser().parse_args(argv)
        inputs = verify_inputs(args)
    except InputError as error:
        return report_input_error(VERIFY_PROG, error)
    seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    compile_cache.enable_from_args(args, VERIFY_PROG)

    from datarax_ops import targets
    from datarax_ops.conformance import report
    from datarax_ops.environment import environment

    target, modes = inputs.target, inputs.modes
    ours = target.name == targets.DEFAULT
    named = "" if ours else f"target {target.name} {target.version()}; "
    print(
        f"datarax-ops verify: {named}modes {', '.join(modes)}; {args.samples:,} values per "
        f"sample; seed {seed}; input {inputs.source}",
        flush=True,
    )
    # the gallery draws this package's operators: only a report on them shows it
    gallery = not args.no_gallery and ours
    runs, gallery_png = run_checks(inputs, args, seed, factory, gallery)
    verdicts = [v for run in runs for v in run.verdicts]
    replay = shlex.join(replay_command(args, seed, modes, ours))
    print_table(verdicts, report.budget_text(verdicts), seed, replay, target.name)
    page = report.render(
        runs,
        seed=seed,
        samples=args.samples,
        source=inputs.source,
        environment=environment(),
        gallery_png=gallery_png,
        command=replay,
        target=f"{target.name} {target.version()}: {target.about}",
    )
    written = write_report(page, inputs.report)
    if written is not None:
        print(f"report: {written}")
    return 1 if any(v.failed for v in verdicts) else 0


def replay_command(args: argparse.Namespace, seed: int, modes: list[str], ours: bool) -> list[str]:
    """The command line that replays a ``verify`` run."""
    replay = ["datarax-ops", "verify", "--seed", str(seed), "--samples", str(args.samples)]
    replay += [] if ours else ["--target", args.target]
    replay += ["--mode", ",".join(modes)] if len(modes) < len(mode_names()) else []
    replay += ["--images", args.images] if args.images else []
    replay += ["--no-training"] if args.no_training else []
    return replay


def run_checks(
    inputs: VerifyInputs, args: argparse.Namespace, seed: int, factory: Any, gallery: bool
) -> tuple[list[Any], bytes | None]:
    """Every mode's checks and its training settings' on ``inputs.target``'s operators
    (``factory``'s, when given), with a progress bar on stderr; and the gallery's PNG
    (None when ``gallery`` is false).  A mode the target has no operator for is one
    n/a run (``checks.mode_not_applicable``)."""
    from rich.console import Console
    from rich.progress import Progress

    from datarax_ops.conformance import checks, training
    from datarax_ops.targets import NotApplicable

    target, pictures, runs = inputs.target, inputs.pictures, []
    options = {"samples": args.samples, "seed": seed, "target": target}
    with Progress(console=Console(stderr=True), transient=True) as progress:
        steps = (1 if args.no_training else 2) * len(inputs.modes) + int(gallery)
        task = progress.add_task("verifying", total=steps)
        for mode in inputs.modes:
            progress.update(task, description=f"verifying {mode}")
            built = target.operators(mode) if factory is None else factory
            if isinstance(built, NotApplicable):
                runs.append(checks.mode_not_applicable(mode, target, built.reason))
            else:
                runs.append(checks.verify_mode(mode, pictures, factory=built, **options))
            progress.advance(task)
            if args.no_training or isinstance(built, NotApplicable):
                continue
            progress.update(task, description=f"verifying {mode}'s training settings")
            runs.extend(training.verify_training(mode, pictures, factory=built, **options))
            progress.advance(task)
        gallery_png = None
        if gallery:
            progress.update(task, description="drawing the gallery")
            gallery_png = gallery_picture(pictures[0], seed)
            progress.advance(task)
    return runs, gallery_png


def gallery_picture(picture: Any, seed: int) -> bytes:
    """The gallery of every mode on ``picture`` (shrunk to the demo's size), as PNG."""
    from datarax_ops.conformance import gallery, report

    small = gallery.fit_size(picture, gallery.DEFAULT_MAX_SIZE)
    return report.figure_png(gallery.gallery_figure(small, seed=seed))


def main(argv: Sequence[str] | None = None) -> int:
    """``datarax-ops <verify|demo|bench> [options]``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"verify": verify, "demo": _demo, "bench": _bench}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print(
            "usage: datarax-ops {verify,demo,bench} [options]  (datarax-ops <command> --help)\n"
            "  verify  check every mode against scipy.stats and the NumPy reference; HTML report\n"
            "  demo    every mode at several strengths on a picture (PNG)\n"
            "  bench   the speed table"
        )
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return int(commands[argv[0]](argv[1:]) or 0)


def _demo(argv: Sequence[str]) -> int:
    from datarax_ops.conformance import gallery

    return gallery.main(list(argv), prog="datarax-ops demo")


def _bench(argv: Sequence[str]) -> int:
    from datarax_ops.bench import run

    return run.main(list(argv), prog="datarax-ops bench")
