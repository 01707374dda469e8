"""Speed inside datarax's own ``Pipeline``: one ``Pipeline.step()`` whose augmentation stage
is datarax's operator or ours, measured in the same run (``nox -s bench_datarax``).

For every mode of ``datarax_ops.bench.kit.MODES`` (by default the quick set) three pipelines
read the same in-memory source of ``--records`` float32 images (``--shape`` per batch,
default 32x224x224x3) with the same batch size:

* ``copy``: no stage (the source's gather alone: the floor every step pays);
* ``datarax``: datarax's ``NoiseOperator`` / ``DropoutOperator`` as the only stage;
* ``datarax_ops``: ours, built from the same config fields.

Each ``step()`` is datarax's compiled step (``nnx.jit``), timed until its output is ready, in
interleaved rounds (``kit.time_interleaved``); the table reports the minimum of each and
``datarax / datarax_ops`` (above 1: our stage's step is faster).  Needs datarax >= 0.1.17.

    python -m datarax_ops.bench.pipeline [--modes gaussian,pixel] [--rounds 10] [--out DIR]
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from datarax_ops.bench import kit, run
from datarax_ops.environment import package_version

STAGES = ("copy", "datarax", "datarax_ops")
DEFAULT_SHAPE = (32, 224, 224, 3)
DEFAULT_RECORDS = 96  # three batches of 32: each step reads fresh records


def make_pipeline(stage: Any, images: np.ndarray, batch_size: int) -> Any:
    """A datarax ``Pipeline`` over ``images`` (float32 ``(records, H, W, C)``) with ``stage``
    as its only stage (no stage when None); epochs never end (``num_epochs=None``)."""
    from datarax import Pipeline
    from datarax.sources import MemorySource, MemorySourceConfig
    from flax import nnx

    source = MemorySource(MemorySourceConfig(), {"image": images}, rngs=nnx.Rngs(0))
    stages = [] if stage is None else [stage]
    return Pipeline(  # type: ignore[call-arg]  # num_epochs: datarax >= 0.1.17
        source=source, stages=stages, batch_size=batch_size, rngs=nnx.Rngs(0), num_epochs=None
    )


def stage_for(impl_name: str, mode: str, shape: tuple[int, ...]) -> Any:
    """The augmentation stage of ``impl_name`` for ``mode`` (None for ``copy``)."""
    if impl_name == "copy":
        return None
    case = run.Case(mode, "float32", 1, shape)
    return run.load_impl(impl_name).make_operator(case)


def _step_ready(pipeline: Any) -> Any:
    """One ``pipeline.step()``, waited for."""
    return jax.block_until_ready(pipeline.step())


def measure_mode(mode: str, images: np.ndarray, batch_size: int, rounds: int) -> dict[str, Any]:
    """``{stage: {"min_ms", "median_ms"}}`` of one ``step()`` for each of ``STAGES``, plus the
    ratio ``datarax_over_ops`` of the minima; each step compiled (and checked) first."""
    shape = (batch_size, *images.shape[1:])
    pipelines = {
        name: make_pipeline(stage_for(name, mode, shape), images, batch_size) for name in STAGES
    }
    calls: dict[str, Callable[[], Any]] = {}
    for name, pipeline in pipelines.items():
        out = pipeline.step()["image"]  # compiles
        if out.shape != shape or not bool(jax.numpy.all(jax.numpy.isfinite(out))):
            raise AssertionError(f"{name} step gave {out.shape}, expected {shape}")
        calls[name] = functools.partial(_step_ready, pipeline)
    times = kit.time_interleaved(calls, rounds)
    result: dict[str, Any] = {name: kit.summary(times[name]) for name in STAGES}
    result["datarax_over_ops"] = result["datarax"]["min_ms"] / result["datarax_ops"]["min_ms"]
    return result


def render_markdown(results: dict[str, dict[str, Any]], shape: tuple[int, ...]) -> str:
    """The results as a Markdown table (milliseconds per step, minima)."""
    lines = [
        f"datarax Pipeline.step(), batch {'x'.join(map(str, shape))} float32, min ms per step",
        "",
        "| mode | no stage (gather) | datarax stage | datarax_ops stage | datarax / datarax_ops |",
        "| --- | --- | --- | --- | --- |",
    ]
    for mode, row in results.items():
        lines.append(
            f"| {mode} | {row['copy']['min_ms']:.2f} | {row['datarax']['min_ms']:.2f} | "
            f"{row['datarax_ops']['min_ms']:.2f} | {row['datarax_over_ops']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default=",".join(kit.QUICK_MODES))
    parser.add_argument("--shape", default="x".join(map(str, DEFAULT_SHAPE)))
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", default="bench-results")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the pipeline benchmark; writes ``pipeline.json`` and ``pipeline.md`` under
    ``--out``; exits 1 when our stage's step is not faster for some mode."""
    args = parse_args(argv)
    shape = tuple(int(d) for d in args.shape.split("x"))
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in kit.MODES]
    if unknown:
        raise SystemExit(f"unknown modes {unknown}; choose from {sorted(kit.MODES)}")
    records = max(args.records, shape[0])
    images = np.random.default_rng(kit.SEED).random((records, *shape[1:]), dtype=np.float32)
    results = {}
    for mode in modes:
        results[mode] = measure_mode(mode, images, shape[0], args.rounds)
        row = results[mode]
        print(
            f"{mode}: copy {row['copy']['min_ms']:.2f} ms, datarax {row['datarax']['min_ms']:.2f}"
            f" ms, datarax_ops {row['datarax_ops']['min_ms']:.2f} ms "
            f"({row['datarax_over_ops']:.2f}x)",
            flush=True,
        )
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "shape": shape,
        "records": records,
        "rounds": args.rounds,
        "backend": jax.default_backend(),
        "versions": {name: package_version(name) for name in ("datarax", "jax", "flax")},
        "results": results,
    }
    (out / "pipeline.json").write_text(json.dumps(report, indent=2))
    markdown = render_markdown(results, shape)
    (out / "pipeline.md").write_text(markdown)
    print(markdown)
    slower = [mode for mode, row in results.items() if row["datarax_over_ops"] <= 1.0]
    if slower:
        print(f"our stage is not faster for: {slower}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
