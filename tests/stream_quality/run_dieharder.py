"""Runs dieharder on the raw stream of ``datarax_ops.stream`` and writes a results file.

The stream is ``write_stream.py``'s (the words a stochastic operator built with
``nnx.Rngs(SEED)`` consumes: records 0, 1, 2, ... of 64x64x3 elements under
one base key, little-endian ``uint32``).  Two ways to feed it:

* ``--source stdin`` (default): ``write_stream.py | dieharder -g 200 -a``.  An
  unbounded stream: no test ever sees a word twice (no rewinds).
* ``--source file --file-bytes N``: writes N bytes to a temporary file and runs
  ``dieharder -g 201 -f FILE -a``.  dieharder rewinds a file that is too short
  for a test (reusing words); the rewinds are counted and reported.

The results file gets a header (command, date, stream, bytes, rewinds, the
PASSED / WEAK / FAILED counts and what chance predicts for WEAK) and
dieharder's full output.  Exit status 1 if any test FAILED or the number of
WEAK results is improbable by chance (above the binomial 1 - 1e-4 quantile).

dieharder's verdicts (defaults ``-W 0.005`` / ``-X 0.000001``): a p-value in
the outer 1 % (p < 0.005 or p > 0.995) is WEAK, one in the outer 2e-6 FAILED.
For a good generator every test is WEAK with probability 0.01 independently.

Usage (from the repository root; ``nox -s dieharder`` runs the default)::

    python tests/stream_quality/run_dieharder.py [--output FILE] [--tests "-d 0"]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
WRITER = HERE / "write_stream.py"
DEFAULT_OUTPUT = HERE / "dieharder-results.txt"
P_WEAK = 0.01  # probability of a WEAK verdict per test under the null hypothesis
INSTALL_HINT = (
    "dieharder is not installed (no 'dieharder' on PATH). Install it with\n"
    "    sudo apt-get install dieharder      # Debian / Ubuntu\n"
    "    sudo dnf install dieharder          # Fedora\n"
    "    brew install dieharder              # macOS (Homebrew)\n"
    "then rerun `nox -s dieharder`."
)
VERDICTS = ("PASSED", "WEAK", "FAILED")


def binomial_upper(n: int, p: float, tail: float) -> int:
    """Smallest k with P(Binomial(n, p) > k) <= tail."""
    cdf = 0.0
    for k in range(n + 1):
        cdf += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if 1.0 - cdf <= tail:
            return k
    return n


def binomial_interval(n: int, p: float, tail: float) -> tuple[int, int]:
    """Central interval [lo, hi] of Binomial(n, p) with at most ``tail`` outside on each side."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    lo, acc = 0, 0.0
    while acc + pmf[lo] <= tail:
        acc += pmf[lo]
        lo += 1
    return lo, binomial_upper(n, p, tail)


def parse_results(output: str) -> list[tuple[str, str, float, str]]:
    """``(test, ntup, p-value, verdict)`` for each result row of dieharder's table."""
    rows = []
    for line in output.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) == 6 and fields[5] in VERDICTS:
            rows.append((fields[0], fields[1], float(fields[4]), fields[5]))
    return rows


def count_rewinds(output: str) -> int:
    """Total rewinds dieharder reports ("# The file ... was rewound N times")."""
    counts = [int(n) for n in re.findall(r"rewound (\d+) times", output)]
    return max(counts, default=0)  # dieharder reports a running total


def summary_lines(
    output: str, source: str, file_bytes: int, writer_summary: str
) -> tuple[list[str], bool]:
    """The results header's size / summary / chance / verdict lines, and whether it passed."""
    rows = parse_results(output)
    counts = {v: sum(1 for r in rows if r[3] == v) for v in VERDICTS}
    n, weak = len(rows), counts["WEAK"]
    lo, hi = binomial_interval(n, P_WEAK, 0.005)
    weak_limit = binomial_upper(n, P_WEAK, 1e-4)
    pmf = [math.comb(n, k) * P_WEAK**k * (1 - P_WEAK) ** (n - k) for k in range(n + 1)]
    at_most, at_least = sum(pmf[: weak + 1]), sum(pmf[weak:])
    weak_p = [f"{t} (ntup {k}) p={p:.8f}" for t, k, p, v in rows if v == "WEAK"]
    failed = [f"{t} (ntup {k}) p={p:.8f}" for t, k, p, v in rows if v == "FAILED"]
    verdict_ok = counts["FAILED"] == 0 and weak <= weak_limit
    if source == "stdin":
        written = re.search(r"(\d+) bytes", writer_summary)
        consumed = int(written.group(1)) if written else 0
        lines = [
            "# size:     unbounded stdin stream (-g 200), never rewound: rewinds 0. dieharder read "
            f"about {consumed / 1e9:.0f} GB (the writer's count above, taken when dieharder "
            f"closed the pipe); a 256 MiB file (-g 201) would have been rewound about "
            f"{consumed // 2**28} times",
        ]
    else:
        rewinds = count_rewinds(output)
        lines = [f"# size:     file of {file_bytes} bytes (-g 201); rewinds: {rewinds}"]
    lines += [
        f"# summary:  {n} results: {counts['PASSED']} PASSED, {weak} WEAK, "
        f"{counts['FAILED']} FAILED",
        f"# chance:   a good generator gives WEAK (p < 0.005 or p > 0.995) with probability "
        f"0.01 per result, independently: expected {n * P_WEAK:.1f} of {n}, 99 % interval "
        f"[{lo}, {hi}]; P(WEAK <= {weak}) = {at_most:.2f}, P(WEAK >= {weak}) = {at_least:.2f}; "
        f"more than {weak_limit} would be improbable (< 1e-4).  FAILED (p < 1e-6 or "
        f"p > 1 - 1e-6): expected {n * 2e-6:.1g}",
        f"# WEAK:     {'; '.join(weak_p) if weak_p else 'none'}",
        f"# FAILED:   {'; '.join(failed) if failed else 'none'}",
        f"# verdict:  {'consistent with a good generator' if verdict_ok else 'SUSPECT'}",
        "#",
    ]
    return lines, verdict_ok


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=("stdin", "file"), default="stdin")
    parser.add_argument("--file-bytes", type=int, default=2**28, help="file size (file source)")
    parser.add_argument("--seed", type=int, default=0, help="nnx.Rngs(SEED) (default 0)")
    parser.add_argument("--tests", default="-a", help="dieharder's test selection (default -a)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dieharder = shutil.which("dieharder")
    if dieharder is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    writer = [sys.executable, str(WRITER), "--seed", str(args.seed)]
    # The command as the results file shows it: relative paths, no machine-specific prefixes.
    writer_shown = ["python", os.path.relpath(WRITER), "--seed", str(args.seed)]
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        writer_log = Path(tmp) / "writer.log"
        if args.source == "file":
            data = Path(tmp) / "stream.bin"
            make = [*writer, "--bytes", str(args.file_bytes), "--output", str(data)]
            subprocess.run(make, check=True, stderr=writer_log.open("w"))
            command = [dieharder, "-g", "201", "-f", str(data), *shlex.split(args.tests)]
            make_shown = [*writer_shown, "--bytes", str(args.file_bytes), "--output", "FILE"]
            run_shown = ["dieharder", *command[1:4], "FILE", *command[5:]]
            shown = f"{shlex.join(make_shown)} && {shlex.join(run_shown)}"
            proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        else:
            command = [dieharder, "-g", "200", *shlex.split(args.tests)]
            shown = f"{shlex.join(writer_shown)} | {shlex.join(['dieharder', *command[1:]])}"
            feeder = subprocess.Popen(writer, stdout=subprocess.PIPE, stderr=writer_log.open("w"))
            proc = subprocess.Popen(
                command,
                stdin=feeder.stdout,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert feeder.stdout is not None
            feeder.stdout.close()  # dieharder holds the read end; the writer sees it close
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
        status = proc.wait()
        if args.source == "stdin":
            feeder.wait()
        writer_summary = writer_log.read_text().strip()
    finished = dt.datetime.now(dt.UTC)
    output = "".join(lines)
    minutes = (finished - started).total_seconds() / 60
    if status != 0:
        print(f"dieharder exited with status {status}", file=sys.stderr)
        return status

    version = subprocess.run([dieharder, "-l"], capture_output=True, text=True).stdout
    version_match = re.search(r"dieharder version (\S+)", version)
    header = [
        "# dieharder on the raw stream of datarax_ops.stream (threefry2x32-20)",
        f"# command:  {shown}",
        f"# dieharder {version_match.group(1) if version_match else '?'}; "
        f"started {started:%Y-%m-%d %H:%M} UTC, took {minutes:.0f} min",
        "# stream:   records 0, 1, 2, ... of 64x64x3 words under one base key drawn from "
        f"nnx.Rngs({args.seed}) (what a stochastic operator consumes), little-endian uint32",
        f"# writer:   {writer_summary}",
    ]
    summary, verdict_ok = summary_lines(output, args.source, args.file_bytes, writer_summary)
    header += summary
    args.output.write_text("\n".join(header) + "\n" + output)
    print("\n".join(header))
    print(f"results written to {args.output}")
    return 0 if verdict_ok else 1


if __name__ == "__main__":
    sys.exit(main())
