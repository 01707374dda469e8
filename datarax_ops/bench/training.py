"""The training settings' cost in ``python -m datarax_ops.bench`` (issue 17).

For each mode, on one batch (the bench's first shape, float32, 0..1: 32x224x224x3
by default), the jitted ``op(batch)`` step of the fixed-strength operator (the
case table's config) and of the same config with one training setting on --
a strength range (each strength's declared ``example_range``), shared channels
(``per_channel=False``, for modes with per-value draws), ``apply_prob=0.5`` -- are
timed in interleaved rounds together with a jitted copy of the batch.  The figure is
the ratio of minima ``setting / fixed`` from the same rounds (equal to the ratio of
their op/copy ratios); the target is at most ``TARGET`` (1.1).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import datarax_ops as dx
from datarax_ops.bench.kit import (
    DEFAULT_LABELS,
    MODES,
    SEED,
    fmt,
    markdown_table,
    spec_of,
    summary,
    time_interleaved,
)

TARGET = 1.1
# The bench modes timed with the training settings: each mode's default example.
TRAINING_MODES = DEFAULT_LABELS
APPLY_PROB = 0.5


def settings(mode: str) -> dict[str, dict[str, Any]]:
    """``{setting: config overrides}`` of a bench mode (``poisson30`` is poisson): every
    strength's ``example_range``; shared channels where the draws are per value."""
    spec = spec_of(mode)
    out: dict[str, dict[str, Any]] = {
        "range": {strength.range_field: strength.example_range for strength in spec.strengths}
    }
    if spec.per_value_draws:
        out["shared channels"] = {"per_channel": False}
    out[f"apply_prob {APPLY_PROB:g}"] = {"apply_prob": APPLY_PROB}
    return out


def _step(config: Any) -> Any:
    """A jitted ``state, images -> (output, state)`` step of ``config``'s operator."""
    import jax
    from flax import nnx

    cls = dx.NoiseOperator if isinstance(config, dx.NoiseOperatorConfig) else dx.DropoutOperator
    graphdef, state = nnx.split(cls(config, rngs=nnx.Rngs(0)))

    def step(state: Any, images: Any) -> tuple[Any, Any]:
        operator = nnx.merge(graphdef, state)
        output = operator({"image": images})["image"]
        return output, nnx.state(operator)

    return jax.jit(step), state


def measure_mode(mode: str, shape: tuple[int, ...], rounds: int) -> dict[str, Any]:
    """Interleaved rounds of copy, fixed and every setting of ``mode``; seconds and ratios."""
    import jax
    import jax.numpy as jnp

    kind, kwargs = MODES[mode]
    config_cls = dx.NoiseOperatorConfig if kind == "noise" else dx.DropoutOperatorConfig
    images = jax.device_put(np.random.default_rng(SEED).random(shape, dtype=np.float32))
    configs = {"fixed": config_cls(field_key="image", stochastic=True, **kwargs)}
    for setting, overrides in settings(mode).items():
        configs[setting] = config_cls(field_key="image", stochastic=True, **kwargs, **overrides)
    calls = {}
    zero = jnp.zeros((), images.dtype)
    copy = jax.jit(lambda x, z: x + z)
    calls["copy"] = lambda: jax.block_until_ready(copy(images, zero))
    for name, config in configs.items():
        step, state = _step(config)
        holder = [state]

        def call(step: Any = step, holder: list = holder) -> Any:
            output, holder[0] = step(holder[0], images)
            return jax.block_until_ready(output)

        call()  # compile and warm up
        calls[name] = call
    calls["copy"]()
    seconds = time_interleaved(calls, rounds)
    best = {name: summary(times)["min_ms"] for name, times in seconds.items()}
    return {
        "mode": mode,
        "shape": list(shape),
        "configs": {name: repr(config) for name, config in configs.items()},
        "seconds": seconds,
        "min_ms": best,
        "over_fixed": {name: best[name] / best["fixed"] for name in configs if name != "fixed"},
        "fixed_over_copy": best["fixed"] / best["copy"],
    }


def measure_training(modes: Sequence[str], shape: tuple[int, ...], rounds: int) -> dict[str, Any]:
    """Every mode of ``modes`` that has training settings (``TRAINING_MODES``), on a
    float32 batch of ``shape``, ``rounds`` interleaved rounds."""
    import sys

    started = time.perf_counter()
    results = []
    for mode in modes:
        if mode in TRAINING_MODES:
            print(f"[training settings] {mode}", file=sys.stderr, flush=True)
            results.append(measure_mode(mode, shape, rounds))
    return {
        "shape": list(shape),
        "rounds": rounds,
        "target": TARGET,
        "modes": results,
        "wall_s": time.perf_counter() - started,
    }


HEADER = ("mode", "setting", "fixed / copy", "setting ms", "fixed ms", "setting / fixed", "target")


def training_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per (mode, setting) of ``measure_training``'s report."""
    rows = []
    for result in report["modes"]:
        for setting, ratio in result["over_fixed"].items():
            rows.append(
                [
                    result["mode"],
                    setting,
                    fmt(result["fixed_over_copy"]),
                    fmt(result["min_ms"][setting]),
                    fmt(result["min_ms"]["fixed"]),
                    fmt(ratio),
                    "met" if ratio <= report["target"] else "MISSED",
                ]
            )
    return rows


def training_markdown(report: dict[str, Any]) -> str:
    """The section of the benchmark's Markdown file."""
    shape = "x".join(map(str, report["shape"]))
    lines = [
        "## Training settings against the fixed-strength operator",
        "",
        f"float32 {shape}, 0..1; jitted `op(batch)` steps and a jitted copy, min over "
        f"{report['rounds']} interleaved rounds; setting / fixed is the ratio of their "
        f"minima (target <= {report['target']:g}).",
        "",
        markdown_table(list(HEADER), training_rows(report)),
        "",
    ]
    return "\n".join(lines)
