"""The compile-cache workload of ``python -m datarax_ops.bench``: how much of a first run
the persistent compilation cache (``datarax_ops.compile_cache``) saves the next one.

Two commands, each run twice as fresh processes sharing one new, empty temporary cache
directory (``--compile-cache DIR``): **cold** (the cache is empty: everything compiles
and is written) and **warm** (the same command again: programs load from the cache).

* **verify**: ``datarax-ops verify --seed 0`` (``python -m datarax_ops verify``); the
  figure is the process's wall time.  Goal: warm <= ``GOALS["verify"]`` x cold.
* **records**: the first ``count`` varied-size uint8 records (sides uniform in
  ``sides``, ``bench.records.make_records``) through the grain transform of
  ``RECORDS_MODE`` (the first mode whose cost depends on the values, its default example:
  poisson at lam_scale 30; ``bench.records.grain_transform``), one record a call, as a grain
  pipeline's first epoch does; the figure is that pass's time inside the process (the
  process's wall time, imports included, is recorded too).  Goal: warm <=
  ``GOALS["records"]`` x cold.

Each run also records its exit status, the programs of the records pass and how many
came from the cache (JAX's monitoring events), and the cache's files and bytes after it.

    python -m datarax_ops.bench.cache --records 400 --compile-cache DIR   (one records pass)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from datarax_ops import buckets, compile_cache
from datarax_ops.bench.kit import (
    DEFAULT_LABELS,
    SEED,
    fmt,
    markdown_table,
    spec_of,
    value_dependent_cost,
)
from datarax_ops.bench.records import grain_transform, make_records

GOALS = {"verify": 0.4, "records": 0.25}
"""Goals of warm / cold for each workload (issue 21)."""
# The records workload's mode: the first whose cost depends on the values (poisson, its
# default example lam_scale 30): its programs are the slowest to compile.
RECORDS_MODE = next(label for label in DEFAULT_LABELS if value_dependent_cost(label))
QUICK_VERIFY_MODE = spec_of(DEFAULT_LABELS[0]).name  # --quick verifies the registry's first
FULL: dict[str, Any] = {"verify_args": ("--seed", "0"), "count": 400, "sides": (64, 1024)}
QUICK: dict[str, Any] = {
    "verify_args": (
        *("--seed", "0", "--mode", QUICK_VERIFY_MODE, "--samples", "1000"),
        *("--no-gallery", "--no-training"),
    ),
    "count": 12,
    "sides": (96, 160),
}
RUN_TIMEOUT_S = 3600  # one process; a cold verify takes minutes on a slow CPU
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"
RESULT_PREFIX = "records-pass: "  # the line of a records process that holds its JSON result


@contextlib.contextmanager
def count_cache_hits() -> Iterator[list[int]]:
    """Counts programs loaded from the persistent cache in this process while the block
    runs (``hits[0]``), from JAX's monitoring event."""
    import jax

    hits = [0]

    def listener(event: str, **kwargs: Any) -> None:
        del kwargs
        if event == CACHE_HIT_EVENT:
            hits[0] += 1

    jax.monitoring.register_event_listener(listener)
    try:
        yield hits
    finally:
        jax.monitoring.unregister_event_listener(listener)


def records_pass(count: int, sides: tuple[int, int]) -> dict[str, Any]:
    """Pushes ``count`` varied-size records through the poisson grain transform, one at a
    time; returns the pass's seconds, its programs (``buckets.count_compiles``: compiled
    or loaded from the cache) and how many of them the cache supplied."""
    records = make_records(count, sides, SEED)
    transform = grain_transform(RECORDS_MODE)
    rng = np.random.default_rng(SEED)
    with buckets.count_compiles() as compiles, count_cache_hits() as hits:
        start = time.perf_counter()
        for image in records:
            np.asarray(transform.random_map({"image": image}, rng)["image"])
        seconds = time.perf_counter() - start
    return {"pass_s": seconds, "programs": compiles[0], "cache_hits": hits[0]}


def cache_size(directory: Path) -> dict[str, int]:
    """Files and bytes under ``directory``."""
    files = [path for path in directory.rglob("*") if path.is_file()]
    return {"files": len(files), "bytes": sum(path.stat().st_size for path in files)}


def run_process(command: list[str], cache_dir: Path) -> dict[str, Any]:
    """Runs ``command`` (a fresh Python) to the end; its wall time, exit status, the last
    lines of its output when it failed, the records result it printed (if any), and the
    cache's size afterwards."""
    start = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    run: dict[str, Any] = {"wall_s": time.perf_counter() - start, "exit_status": done.returncode}
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            run.update(json.loads(line.removeprefix(RESULT_PREFIX)))
    if done.returncode not in (0, 1):  # verify exits 1 when a check fails: still a run
        run["error"] = (done.stdout + done.stderr)[-2000:]
    run["cache"] = cache_size(cache_dir)
    return run


def cold_and_warm(name: str, command: list[str], figure: str) -> dict[str, Any]:
    """``command`` run twice on one new, empty cache directory (appended as
    ``--compile-cache DIR``); the ratio warm / cold of ``figure`` (a key of each run)
    against ``GOALS[name]``."""
    print(f"[cache] {name}: cold and warm", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="datarax-ops-cache-") as temporary:
        cache_dir = Path(temporary) / "cache"
        full = [*command, "--compile-cache", str(cache_dir)]
        cold = run_process(full, cache_dir)
        warm = run_process(full, cache_dir)
    ok = not any("error" in run for run in (cold, warm))
    ratio = warm[figure] / cold[figure] if ok else None
    return {
        "name": name,
        "command": shlex.join(["python", *command[1:], "--compile-cache", "DIR"]),
        "figure": figure,
        "cold": cold,
        "warm": warm,
        "ratio": ratio,
        "goal": GOALS[name],
        "goal_met": ratio is not None and ratio <= GOALS[name],
    }


def measure_cache(quick: bool = False) -> dict[str, Any]:
    """Both workloads (``QUICK`` or ``FULL`` sizes), each cold then warm."""
    sizes = QUICK if quick else FULL
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="datarax-ops-verify-") as out:
        verify = [python, "-m", "datarax_ops", "verify", *sizes["verify_args"]]
        verify_run = cold_and_warm("verify", [*verify, "--out", out], "wall_s")
    verify_run["command"] = shlex.join(["datarax-ops", "verify", *sizes["verify_args"]])
    low, high = sizes["sides"]
    records = [python, "-m", "datarax_ops.bench.cache", "--records", str(sizes["count"])]
    records += ["--sides", str(low), str(high)]
    return {
        "count": sizes["count"],
        "sides": list(sizes["sides"]),
        "records_mode": RECORDS_MODE,
        "workloads": [verify_run, cold_and_warm("records", records, "pass_s")],
    }


HEADER = [
    "workload",
    "cold s",
    "warm s",
    "warm/cold",
    "goal",
    "met",
    "process wall s (cold; warm)",
    "programs (cold; warm)",
    "from the cache (cold; warm)",
    "cache after cold (files, MB)",
]


def cache_row(workload: dict[str, Any]) -> list[str]:
    """One table row of a workload of ``measure_cache``."""
    cold, warm, figure = workload["cold"], workload["warm"], workload["figure"]

    def both(key: str) -> str:
        return "; ".join(
            str(run[key]) if isinstance(run.get(key), int) else fmt(run.get(key))
            for run in (cold, warm)
        )

    failed = [run for run in ("cold", "warm") if "error" in workload[run]]
    return [
        workload["name"],
        fmt(cold.get(figure)),
        fmt(warm.get(figure)),
        fmt(workload["ratio"]) if not failed else f"failed: {', '.join(failed)}",
        f"<= {workload['goal']:g}",
        "yes" if workload["goal_met"] else "no",
        both("wall_s"),
        both("programs"),
        both("cache_hits"),
        f"{cold['cache']['files']}, {cold['cache']['bytes'] / 1e6:.1f}",
    ]


def cache_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of the compile-cache section (console and Markdown)."""
    return HEADER, [cache_row(workload) for workload in report["workloads"]]


def render_cache(report: dict[str, Any]) -> list[str]:
    """Markdown lines of the compile-cache section."""
    verify, records = report["workloads"]
    low, high = report["sides"]
    return [
        "## Compiled programs kept between runs (persistent compilation cache)",
        "",
        "Each command run twice as a fresh process on one new, empty cache directory "
        "(`--compile-cache DIR`): cold (everything compiles) then warm (programs load from "
        f"the cache). verify: `{verify['command']}`, the process's wall time. records: the "
        f"first {report['count']} varied-size uint8 records (sides {low}..{high}) through "
        f"the {report['records_mode']} grain transform, one a call, the pass's time in the "
        "process; programs (compiled or loaded) and those from the cache: the records pass's.",
        "",
        markdown_table(*cache_table(report)),
        "",
        f"- verify: `{verify['command']} --compile-cache DIR --out DIR`",
        f"- records: `{records['command']}`",
        "",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """One records pass in this process (the warm and cold runs of ``measure_cache``);
    prints ``records-pass: {json}``."""
    parser = argparse.ArgumentParser(
        prog="python -m datarax_ops.bench.cache",
        description="Varied-size poisson records through the grain transform, one pass; "
        "prints its seconds, XLA compilations and cache hits as JSON.",
    )
    parser.add_argument("--records", type=int, default=FULL["count"])
    parser.add_argument("--sides", type=int, nargs=2, default=FULL["sides"], metavar=("LO", "HI"))
    compile_cache.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.records < 1 or not 1 <= args.sides[0] <= args.sides[1]:
        parser.error("--records must be >= 1 and --sides LO HI with 1 <= LO <= HI")
    compile_cache.enable_from_args(args, parser.prog)
    result = records_pass(args.records, (args.sides[0], args.sides[1]))
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
