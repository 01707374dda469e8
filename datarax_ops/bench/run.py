"""The benchmark that speed claims come from: ``python -m datarax_ops.bench`` (``nox -s bench``).

Every case (mode x dtype x value convention x batch shape) is measured in one
process, and every number that speaks about speed is a *ratio of two timings
taken in the same run*:

* **jitted**: ``op(batch)`` compiled with ``jax.jit`` (the operator is split into
  ``graphdef, state`` and merged inside the step, which is what ``nnx.jit``
  does, without its per-call Python cost; that cost is reported separately
  under "fixed cost").  Its new state is fed back, so every call draws fresh
  noise, as in training.
* **copy**: ``x + zero`` compiled with ``jax.jit``, where ``zero`` is a runtime
  scalar, so XLA can neither elide it nor reuse the input buffer: one read and
  one write of the image, the floor for any element-wise operator.
* **eager**: the same ``op(batch)`` called without any jit by the caller.

The three are called in interleaved rounds (jitted, copy, eager, jitted, copy,
eager, ...), each call blocked until its result is ready; the summaries are
the minimum and the median over rounds, and the ratios are
``min(jitted) / min(copy)``, ``median(jitted) / median(copy)`` and
``min(eager) / min(jitted)``.  With ``--impl datarax_ops`` the NumPy reference
(``reference.draw`` + ``reference.apply_batch``) is timed too, over fewer
rounds, as ``min(reference) / min(jitted)``.  The compiled step's temporary
memory comes from XLA's ``memory_analysis()``.

The compile-cache workload (``bench.cache``; ``--no-cache-runs`` skips it, ``--cache-only``
runs only it) times ``datarax-ops verify --seed 0`` and 400 varied-size poisson records in
fresh processes, first on an empty persistent compilation cache, then on the filled one.
This process itself keeps its compiled programs as the command line does
(``--compile-cache DIR``, ``--no-compile-cache``, ``DATARAX_OPS_COMPILE_CACHE``), so a
case's ``compile_s`` is a load from the cache when an earlier run compiled it.

The raw numbers (every round) go to a JSON file and a Markdown table to stdout
and next to the JSON (``bench-results/`` by default).  Importing this module
does nothing; ``main(argv)`` runs it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import datarax_ops as ops
from datarax_ops import compile_cache, reference
from datarax_ops.bench import cache, others, records, training
from datarax_ops.bench.kit import (
    DEFAULT_LABELS,
    MIN_ROUNDS,
    MODE_ALIASES,
    MODES,
    QUICK_MODES,
    SEED,
    fmt,
    markdown_table,
    print_table,
    summary,
    time_interleaved,
    value_dependent_cost,
)
from datarax_ops.cli_input import (
    InputError,
    OneLineParser,
    at_least,
    report_input_error,
    writable_directory,
)
from datarax_ops.environment import cache_text, environment, package_version

# --------------------------------------------------------------------------- #
# What is measured                                                             #
# --------------------------------------------------------------------------- #
FULL_SHAPES: tuple[tuple[int, ...], ...] = ((32, 224, 224, 3), (256, 32, 32, 3))
# --quick: one small shape, and poisson at lam_scale 30 only (poisson compiles slowly)
QUICK_SHAPES: tuple[tuple[int, ...], ...] = ((8, 32, 32, 3),)
DTYPES = ("float32", "bfloat16", "uint8")
IMPLS = ("datarax_ops", "datarax")
PROG = "python -m datarax_ops.bench"
DATARAX_VERSION = "0.1.17"


FULL_ROUNDS = 20  # interleaved rounds of jitted / copy / eager
CASE_BUDGET_S = 120.0  # default --case-budget: seconds of timed rounds per case
QUICK_ROUNDS = 3
TRAINING_ROUNDS = 30  # interleaved rounds of the training settings (bench.training)
FULL_FIXED_CALLS = 300  # calls per item of the fixed-cost table
QUICK_FIXED_CALLS = 30
BIG_BATCH_VALUES = 2_000_000  # above this many values the reference gets one round
FIXED_COST_SHAPE = (1, 8, 8, 3)
FIXED_COST_MODE = DEFAULT_LABELS[0]  # the first mode of the registry, its default example


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark case.

    Attributes:
      mode: a key of ``MODES`` (``poisson30`` is poisson with ``lam_scale=30``).
      dtype: ``float32``, ``bfloat16`` or ``uint8``.
      scale: value convention of the data: 1 (values in 0..1) or 255 (0..255).
      shape: batch shape ``(batch, height, width, channels)``.
    """

    mode: str
    dtype: str
    scale: int
    shape: tuple[int, ...]

    @property
    def kind(self) -> str:
        """``"noise"`` or ``"dropout"``: which operator runs the mode."""
        return MODES[self.mode][0]

    @property
    def value_dependent_cost(self) -> bool:
        """Whether the mode's cost depends on the pixel values (its kernel says so)."""
        return value_dependent_cost(self.mode)

    @property
    def name(self) -> str:
        """Readable id, e.g. ``poisson30/uint8/0..255/32x224x224x3``."""
        shape = "x".join(map(str, self.shape))
        return f"{self.mode}/{self.dtype}/0..{self.scale}/{shape}"

    def config_kwargs(self) -> dict[str, Any]:
        """Config fields of the case (without ``field_key`` and the randomness fields).

        Noise modes on 0..255 data get ``clip_range=(0, 255)`` (the default
        ``(0, 1)`` would clip every value to 1); everything else keeps the
        config's default ``clip_range``.
        """
        kwargs = dict(MODES[self.mode][1])
        if self.kind == "noise" and self.scale == 255:
            kwargs["clip_range"] = (0.0, 255.0)
        return kwargs


def conventions(mode: str, dtype: str) -> tuple[int, ...]:
    """The value conventions (1: 0..1 data, 255: 0..255 data) measured for ``mode``/``dtype``.

    Only a mode whose cost depends on the values (poisson's: lambda; its kernel's
    ``value_dependent_cost``) runs both; the other modes run 0..1 data.  uint8 data is
    0..255 only.
    """
    if dtype == "uint8":
        return (255,)
    return (1, 255) if value_dependent_cost(mode) else (1,)


def build_cases(
    modes: Sequence[str], dtypes: Sequence[str], shapes: Sequence[tuple[int, ...]]
) -> tuple[list[Case], list[dict[str, str]]]:
    """All cases to measure, shape by shape, and the ones skipped (with the reason)."""
    cases, skipped = [], []
    for shape in shapes:
        for dtype in dtypes:
            for mode in modes:
                for scale in conventions(mode, dtype):
                    cases.append(Case(mode, dtype, scale, tuple(shape)))
                if dtype == "uint8" and value_dependent_cost(mode):
                    case = Case(mode, dtype, 1, tuple(shape))
                    skipped.append({"case": case.name, "reason": "uint8 data is 0..255 only"})
    return cases, skipped


def make_images(case: Case) -> np.ndarray:
    """Host image batch of ``case``: uniform values over the case's range, in its dtype.

    The same seed for every case, so cases differ only in what they say.
    """
    import ml_dtypes

    values = np.random.default_rng(SEED).random(case.shape, dtype=np.float32) * case.scale
    if case.dtype == "uint8":
        return np.rint(values).astype(np.uint8)
    if case.dtype == "bfloat16":
        return values.astype(ml_dtypes.bfloat16)
    return values.astype(case.dtype)


# --------------------------------------------------------------------------- #
# The two implementations                                                      #
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class Impl:
    """The operator classes of one implementation and how to call them.

    Attributes:
      name: ``datarax_ops`` or ``datarax``.
      classes: ``{"noise": (Operator, Config), "dropout": (Operator, Config)}``.
      batch_cls: that implementation's ``Batch``.
      config_extras: config fields it needs besides the case's (datarax requires
        ``stream_name`` when stochastic; ``"default"`` is ``nnx.Rngs(0)``'s stream).
      versions: package versions that matter for this implementation.
    """

    name: str
    classes: dict[str, tuple[Any, Any]]
    batch_cls: Any
    config_extras: dict[str, Any]
    versions: dict[str, str]

    def make_operator(self, case: Case) -> Any:
        """A stochastic operator for ``case``, built from ``nnx.Rngs(0)``."""
        from flax import nnx

        operator_cls, config_cls = self.classes[case.kind]
        config = config_cls(
            field_key="image", stochastic=True, **self.config_extras, **case.config_kwargs()
        )
        return operator_cls(config, rngs=nnx.Rngs(0))

    def make_batch(self, images: Any) -> Any:
        """``Batch.from_parts(data={"image": images}, states={})``."""
        return self.batch_cls.from_parts(data={"image": images}, states={})


def load_impl(name: str) -> Impl:
    """Imports the operators of ``name`` (``datarax`` must be installed for that one).

    Raises:
      InputError: ``datarax`` is asked for and not installed.
    """
    if name == "datarax_ops":
        return Impl(
            name=name,
            classes={
                "noise": (ops.NoiseOperator, ops.NoiseOperatorConfig),
                "dropout": (ops.DropoutOperator, ops.DropoutOperatorConfig),
            },
            batch_cls=ops.Batch,
            config_extras={},
            versions={"datarax_ops": ops.__version__},
        )
    if name == "datarax":
        try:
            datarax = importlib.import_module("datarax")
            modality = importlib.import_module("datarax.operators.modality")
        except ImportError as error:
            raise InputError(
                f"--impl datarax needs datarax=={DATARAX_VERSION} installed "
                f"(nox -s bench_datarax does that): {error}"
            ) from error
        return Impl(
            name=name,
            classes={
                "noise": (modality.NoiseOperator, modality.NoiseOperatorConfig),
                "dropout": (modality.DropoutOperator, modality.DropoutOperatorConfig),
            },
            batch_cls=datarax.Batch,
            config_extras={"stream_name": "default"},
            versions={"datarax": package_version("datarax")},
        )
    raise ValueError(f"unknown implementation {name!r}; choose from {IMPLS}")


# --------------------------------------------------------------------------- #
# Timing                                                                       #
# --------------------------------------------------------------------------- #
def pure_step(impl: Impl, graphdef: Any) -> Callable[[Any, Any], tuple[Any, Any]]:
    """``step(state, images) -> (output images, new operator state)``, a pure function.

    The operator is merged from ``graphdef, state`` and called on a batch built
    inside the step, as ``nnx.jit`` would, so ``jax.jit`` can compile it.
    """
    from flax import nnx

    def step(state: Any, images: Any) -> tuple[Any, Any]:
        operator = nnx.merge(graphdef, state)
        output = operator(impl.make_batch(images)).data.get_value()["image"]
        return output, nnx.state(operator)

    return step


def memory_mb(stats: Any, input_bytes: int) -> dict[str, float]:
    """Temporary and output sizes of a compiled step (``memory_analysis()``), in MB
    (1e6 bytes) and the temporary size as a multiple of the input image's bytes."""
    temp, output = int(stats.temp_size_in_bytes), int(stats.output_size_in_bytes)
    return {
        "temp_mb": temp / 1e6,
        "output_mb": output / 1e6,
        "temp_x_input": temp / input_bytes,
        "temp_bytes": temp,
        "output_bytes": output,
    }


def measure_case(
    case: Case, impl: Impl, rounds: int, ref_rounds: int, budget_s: float | None = None
) -> dict[str, Any]:
    """Times one case (jitted / copy / eager interleaved, then the reference).

    ``rounds`` interleaved rounds (fewer if they run past ``budget_s`` seconds,
    see ``time_interleaved``), then ``ref_rounds`` calls of the reference (none when 0).

    Returns raw times in seconds (``"seconds"``), summaries in ms, ratios,
    GB/s (1e9 bytes per second: image bytes read + output bytes written,
    divided by the minimum time), and the compiled step's memory.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    host = make_images(case)
    images = jax.device_put(host)

    # jitted: one compile serves memory_analysis() and the timed calls
    graphdef, state = nnx.split(impl.make_operator(case))
    compile_start = time.perf_counter()
    compiled = jax.jit(pure_step(impl, graphdef)).lower(state, images).compile()
    compile_s = time.perf_counter() - compile_start
    holder = [state]
    last: list[Any] = [None]

    def jitted() -> Any:
        last[0], holder[0] = compiled(holder[0], images)
        return jax.block_until_ready(last[0])

    zero = jnp.zeros((), images.dtype)
    copy_compiled = jax.jit(lambda x, z: x + z).lower(images, zero).compile()

    def copy() -> Any:
        return jax.block_until_ready(copy_compiled(images, zero))

    eager_operator, batch = impl.make_operator(case), impl.make_batch(images)

    def eager() -> Any:
        return jax.block_until_ready(eager_operator(batch).data.get_value()["image"])

    output = jitted()  # warm-up calls: first-call allocations, the eager path's compile
    copied = copy()
    eager_start = time.perf_counter()
    eager()
    eager_first_s = time.perf_counter() - eager_start
    calls = {"jitted": jitted, "copy": copy, "eager": eager}
    other_calls: dict[str, Callable[[], Any]] = {}
    other_notes: dict[str, str] = {}
    if impl.name == "datarax_ops":
        other_calls, other_notes = others.batch_calls(case.mode, case.dtype, case.scale, host)
        for call in other_calls.values():
            call()  # warm-up
    times = time_interleaved({**calls, **other_calls}, rounds, budget_s)

    result: dict[str, Any] = {
        "case": dataclasses.asdict(case),
        "name": case.name,
        "value_dependent_cost": case.value_dependent_cost,
        "config": {
            k: list(v) if isinstance(v, tuple) else v for k, v in case.config_kwargs().items()
        },
        "input_dtype": str(images.dtype),
        "output_dtype": str(output.dtype),
        "input_bytes": int(images.nbytes),
        "output_bytes": int(output.nbytes),
        "copy_writes_new_buffer": copied.unsafe_buffer_pointer() != images.unsafe_buffer_pointer(),
        # the state is fed back, so the first and the last jitted call must differ
        "fresh_noise_per_call": bool(np.any(np.asarray(output) != np.asarray(last[0]))),
        "compile_s": compile_s,
        "eager_first_call_s": eager_first_s,
        "memory": memory_mb(compiled.memory_analysis(), int(images.nbytes)),
        "rounds_done": len(times["jitted"]),
        "seconds": times,
        "others": other_notes,
    }
    if impl.name == "datarax_ops" and ref_rounds > 0:
        times["reference"] = time_reference(case, host, ref_rounds)
    return add_summaries(result)


def time_reference(case: Case, host: np.ndarray, rounds: int) -> list[float]:
    """Seconds per call of the NumPy reference: ``draw`` then ``apply_batch``, ``rounds`` calls."""
    config_cls = (
        reference.NoiseOperatorConfig if case.kind == "noise" else reference.DropoutOperatorConfig
    )
    config = config_cls(field_key="image", stochastic=True, **case.config_kwargs())
    seeds = iter(range(rounds))

    def run() -> Any:
        params = reference.draw(
            config, np.random.default_rng(next(seeds)), host.shape[1:], host.shape[0]
        )
        return reference.apply_batch(config, host, params)

    return time_interleaved({"reference": run}, rounds)["reference"]


def add_summaries(result: dict[str, Any]) -> dict[str, Any]:
    """Adds min/median ms of every timing, the ratios and GB/s to ``result`` (in place)."""
    times = result["seconds"]
    stats = {name: summary(values) for name, values in times.items()}
    jit, copy = stats["jitted"], stats["copy"]
    moved = result["input_bytes"] + result["output_bytes"]
    copy_moved = 2 * result["input_bytes"]
    result["summary"] = stats
    result["ratios"] = {
        "jit_over_copy_min": jit["min_ms"] / copy["min_ms"],
        "jit_over_copy_median": jit["median_ms"] / copy["median_ms"],
        "eager_over_jit_min": stats["eager"]["min_ms"] / jit["min_ms"],
    }
    if "reference" in stats:
        result["ratios"]["reference_over_jit_min"] = stats["reference"]["min_ms"] / jit["min_ms"]
    for library in result.get("others", {}):
        result["ratios"][f"{library}_over_jit_min"] = stats[library]["min_ms"] / jit["min_ms"]
    result["gb_per_s"] = {
        "jitted": moved / (jit["min_ms"] * 1e-3) / 1e9,
        "copy": copy_moved / (copy["min_ms"] * 1e-3) / 1e9,
    }
    return result


def measure_fixed_costs(impl: Impl, calls: int) -> dict[str, Any]:
    """Per-call cost of a tiny (1x8x8x3 float32) batch of ``FIXED_COST_MODE``, in
    **microseconds**.

    Items: eager ``op(batch)``; ``op(batch)`` under ``nnx.jit``; the ``jax.jit``
    split/merge step the case table times; ``Batch.from_parts`` alone; a plain
    ``jax.jit`` identity call.  Interleaved, ``calls`` rounds; min and median.
    """
    import jax
    from flax import nnx

    case = Case(FIXED_COST_MODE, "float32", 1, FIXED_COST_SHAPE)
    images = jax.device_put(make_images(case))
    batch = impl.make_batch(images)
    eager_operator, jit_operator = impl.make_operator(case), impl.make_operator(case)
    nnx_step = nnx.jit(lambda op, b: op(b).data.get_value()["image"])
    graphdef, state = nnx.split(impl.make_operator(case))
    compiled = jax.jit(pure_step(impl, graphdef)).lower(state, images).compile()
    holder = [state]
    identity = jax.jit(lambda x: x)

    def split_merge_step() -> Any:
        output, holder[0] = compiled(holder[0], images)
        return jax.block_until_ready(output)

    items: dict[str, Callable[[], Any]] = {
        "eager op(batch)": lambda: jax.block_until_ready(
            eager_operator(batch).data.get_value()["image"]
        ),
        "nnx.jit op(batch)": lambda: jax.block_until_ready(nnx_step(jit_operator, batch)),
        "jax.jit split/merge step": split_merge_step,
        "Batch.from_parts": lambda: impl.make_batch(images),
        "jax.jit identity": lambda: jax.block_until_ready(identity(images)),
    }
    for call in items.values():  # warm-up (compiles)
        call()
    seconds = time_interleaved(items, calls)
    return {
        "shape": list(FIXED_COST_SHAPE),
        "mode": FIXED_COST_MODE,
        "seconds": seconds,
        "summary_us": {
            name: {"min_us": min(v) * 1e6, "median_us": statistics.median(v) * 1e6}
            for name, v in seconds.items()
        },
    }


# --------------------------------------------------------------------------- #
# Machine                                                                      #
# --------------------------------------------------------------------------- #
def machine_info(impl: Impl) -> dict[str, Any]:
    """The date of this run, ``datarax_ops.environment.environment()`` with ``impl``'s
    versions added, and the JAX flags set in the environment."""
    info = environment()
    impl_versions = {name.replace("_", "-"): v for name, v in impl.versions.items()}
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **info,
        "versions": {
            **info["versions"],
            **impl_versions,
            **{k: v for k, v in others.versions().items() if v != "not installed"},
        },
        "env": {k: os.environ[k] for k in ("JAX_PLATFORMS", "XLA_FLAGS") if k in os.environ},
    }


# --------------------------------------------------------------------------- #
# Report                                                                       #
# --------------------------------------------------------------------------- #
def case_row(result: dict[str, Any]) -> list[str]:
    """One Markdown table row of a measured (or n/a) case."""
    case = result["case"]
    first = [
        case["mode"],
        case["dtype"],
        f"0..{case['scale']}",
        "x".join(map(str, case["shape"])),
    ]
    if "not_available" in result:
        return [*first, "n/a: " + result["not_available"], *[""] * 13]
    s, r, m = result["summary"], result["ratios"], result["memory"]
    out_dtype = result["output_dtype"]
    return [
        *first,
        out_dtype if out_dtype != result["input_dtype"] else "same",
        fmt(s["jitted"]["min_ms"]),
        fmt(s["jitted"]["median_ms"]),
        fmt(s["copy"]["min_ms"]),
        fmt(r["jit_over_copy_min"]),
        fmt(r["jit_over_copy_median"]),
        fmt(result["gb_per_s"]["jitted"]),
        fmt(s["eager"]["min_ms"]),
        fmt(r["eager_over_jit_min"]),
        fmt(s["reference"]["min_ms"]) if "reference" in s else "-",
        fmt(r.get("reference_over_jit_min")),
        f"{m['temp_mb']:.2f}",
        f"{m['temp_x_input']:.2f}",
        str(result["rounds_done"]),
    ]


CASE_HEADER = [
    "mode",
    "dtype",
    "data",
    "batch shape",
    "out dtype",
    "jit min ms",
    "jit med ms",
    "copy min ms",
    "jit/copy (min)",
    "jit/copy (med)",
    "jit GB/s",
    "eager min ms",
    "eager/jit",
    "ref min ms",
    "ref/jit",
    "temp MB",
    "temp/input",
    "rounds",
]


def others_markdown(cases: Sequence[dict[str, Any]]) -> list[str]:
    """The other libraries' per-batch table (a row per case and library), and how each
    transform differs; nothing when none was timed."""
    rows, described = [], {}
    for result in cases:
        for library, note in result.get("others", {}).items():
            s, case = result["summary"], result["case"]
            rows.append(
                [
                    case["mode"],
                    case["dtype"],
                    "x".join(map(str, case["shape"])),
                    library,
                    fmt(s[library]["min_ms"]),
                    fmt(s["jitted"]["min_ms"]),
                    fmt(result["ratios"][f"{library}_over_jit_min"]),
                ]
            )
            described[f"{case['mode']}, {library}"] = note
    if not rows:
        return []
    header = ["mode", "dtype", "batch shape", "library", "its min ms", "jit min ms", "its/jit"]
    return [
        "Other libraries on the same batches (a loop over the records, one draw each; "
        "same interleaved rounds as jit):",
        "",
        markdown_table(header, rows),
        "",
        *[f"- {name}: {note}" for name, note in described.items()],
        "",
    ]


def constant_cost_modes() -> str:
    """The registry's modes whose cost does not depend on the values, as prose
    (``"a, b and c"``)."""
    names = [MODES[label][1]["mode"] for label in DEFAULT_LABELS if not value_dependent_cost(label)]
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


def render_markdown(report: dict[str, Any]) -> str:
    """The whole report as Markdown: machine, method, cases, fixed costs, notes."""
    info, params = report["machine"], report["parameters"]
    ref_rounds = params["ref_rounds"]
    if ref_rounds is None:
        ref_rounds = "1" if params["quick"] else "2 (1 above 2e6 values)"
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    lines = [
        f"# Benchmark: {report['impl']} ({'quick' if params['quick'] else 'full'} run)",
        "",
        f"- date (UTC): {info['date_utc']}; git: {info['git']}",
        f"- CPU: {info['cpu_model']}, {info['cpu_count']} cores ({info['cpus_usable']} usable); "
        f"backend {info['backend']}; Python {info['python']}",
        f"- {versions}",
        f"- compile cache of this process: {cache_text(info.get('compile_cache'))}",
        f"- rounds: {params['rounds']} interleaved (jitted, copy, eager), fewer when a case's "
        f"rounds pass {params['case_budget_s']:.0f} s (never below {MIN_ROUNDS}; 'rounds' "
        f"column); reference rounds: {ref_rounds or 'none (not timed)'}; "
        f"total time {report['wall_s']:.0f} s",
        "",
        "jit = `op(batch)` in a `jax.jit` split/merge step; copy = jitted `x + zero` "
        "(one read, one write of the image); ratios of minima (and of medians) from the "
        "same interleaved rounds; GB/s = (input + output bytes) / min jit time; "
        "temp = XLA temporary buffer of the compiled step (`memory_analysis()`), "
        "also as a multiple of the input's bytes; ref = NumPy reference draw + apply_batch.",
        "",
    ]
    if report["cases"]:
        lines += [markdown_table(CASE_HEADER, [case_row(r) for r in report["cases"]]), ""]
    lines += others_markdown(report["cases"])
    if "records" in report:
        lines += records.render_records(report["records"])
    if "training" in report:
        lines += [training.training_markdown(report["training"])]
    if "cache" in report:
        lines += cache.render_cache(report["cache"])
    fixed = report.get("fixed_cost")
    if fixed:
        rows = [
            [name, fmt(v["min_us"]), fmt(v["median_us"])] for name, v in fixed["summary_us"].items()
        ]
        lines += [
            f"Fixed cost per call (1x8x8x3 float32 {fixed['mode']}), microseconds:",
            "",
            markdown_table(["call", "min us", "median us"], rows),
            "",
        ]
    notes = [f"{s['case']} skipped: {s['reason']}" for s in report["skipped"]]
    notes += [
        f"{constant_cost_modes()} run 0..1 data for float dtypes (their cost does not "
        "depend on the values); noise modes on 0..255 data use clip_range=(0, 255)."
    ]
    if report["impl"] != "datarax_ops":
        notes.append("reference columns: the NumPy reference is timed with --impl datarax_ops only")
    copies = [r["name"] for r in report["cases"] if r.get("copy_writes_new_buffer") is False]
    if copies:
        notes.append(f"copy baseline reused the input buffer in: {', '.join(copies)}")
    same = [r["name"] for r in report["cases"] if r.get("fresh_noise_per_call") is False]
    if same:
        notes.append(
            "the first and last jitted calls gave the same output in: "
            f"{', '.join(same)} (expected where the noise rounds away, e.g. gaussian std 0.05 "
            "on uint8 data; anywhere else the operator's state is not advancing)"
        )
    failed = [f"{r['name']}: {r['not_available']}" for r in report["cases"] if "not_available" in r]
    notes += [f"n/a {line}" for line in failed]
    changed = sorted(
        {
            f"{r['input_dtype']} -> {r['output_dtype']} ({r['case']['mode']})"
            for r in report["cases"]
            if "output_dtype" in r and r["output_dtype"] != r["input_dtype"]
        }
    )
    if changed:
        notes.append("output dtype differs from the input's: " + "; ".join(changed))
    lines += ["Notes:", "", *[f"- {note}" for note in notes], ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# Command line                                                                 #
# --------------------------------------------------------------------------- #
def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"bad shape {text!r}; write e.g. 32x224x224x3") from error
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"shape {text!r} must be BxHxWxC with sizes >= 1")
    return shape


def _names(
    choices: Sequence[str], aliases: dict[str, tuple[str, ...]] | None = None
) -> Callable[[str], tuple[str, ...]]:
    """An argparse type: comma-separated names from ``choices`` (``aliases`` expand)."""

    def parse(text: str) -> tuple[str, ...]:
        names: list[str] = []
        for name in (part.strip() for part in text.split(",") if part.strip()):
            expanded = (aliases or {}).get(name, (name,))
            for item in expanded:
                if item not in choices:
                    raise argparse.ArgumentTypeError(
                        f"unknown {item!r}; choose from {', '.join(choices)}"
                    )
                names.append(item)
        return tuple(dict.fromkeys(names))

    return parse


def aliases_text() -> str:
    """``--modes``' aliases for its help, e.g. ``'poisson' = poisson1, poisson30, poisson255``."""
    return "; ".join(f"{name!r} = {', '.join(labels)}" for name, labels in MODE_ALIASES.items())


def parse_args(argv: Sequence[str] | None, prog: str = PROG) -> argparse.Namespace:
    """The bench's options, checked by :func:`check_args` (nothing is written).

    Raises:
      InputError: a bad option (one line, no usage).
    """
    parser = OneLineParser(
        prog=prog,
        description="Times the noise and dropout operators against a jitted copy of the "
        "same array (interleaved rounds); writes JSON + Markdown.",
    )
    parser.add_argument("--impl", choices=IMPLS, default="datarax_ops")
    parser.add_argument("--quick", action="store_true", help="small shapes, few rounds")
    parser.add_argument(
        "--modes",
        type=_names(tuple(MODES), MODE_ALIASES),
        default=None,
        help=f"comma-separated, from {', '.join(MODES)} ({aliases_text()}); "
        f"default all (with --quick: {', '.join(QUICK_MODES)})",
    )
    parser.add_argument(
        "--dtypes",
        type=_names(DTYPES),
        default=DTYPES,
        help="comma-separated, from " + ", ".join(DTYPES),
    )
    parser.add_argument(
        "--shapes",
        type=lambda text: tuple(_shape(part) for part in text.split(",")),
        default=None,
        help="comma-separated BxHxWxC (default 32x224x224x3,256x32x32x3; with --quick 8x32x32x3)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per case")
    parser.add_argument(
        "--ref-rounds",
        type=int,
        default=None,
        help="reference rounds per case (default 2, 1 above 2e6 values, 1 with --quick; "
        "0: the NumPy reference is not timed)",
    )
    parser.add_argument(
        "--case-budget",
        type=float,
        default=CASE_BUDGET_S,
        help=f"seconds of timed rounds per case before it stops early (at least {MIN_ROUNDS} "
        f"rounds; 0 = no limit; default {CASE_BUDGET_S:.0f})",
    )
    parser.add_argument(
        "--records",
        type=int,
        default=None,
        help="varied-size uint8 records through the grain transform, one at a time "
        "(default 1000, sides 64..1024; with --quick 12, sides 96..160; 0 = skip)",
    )
    parser.add_argument(
        "--records-only",
        action="store_true",
        help="only the records workload (no case table, no cache runs)",
    )
    parser.add_argument(
        "--no-training",
        action="store_true",
        help="skip the training settings' cost (ranges, shared channels, apply_prob)",
    )
    parser.add_argument(
        "--no-cache-runs",
        action="store_true",
        help="skip the compile-cache workload (datarax-ops verify and 400 records, each in "
        "a fresh process with an empty cache, then again with it filled; minutes)",
    )
    parser.add_argument("--cache-only", action="store_true", help="only the compile-cache workload")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory")
    compile_cache.add_arguments(parser)
    args = parser.parse_args(argv)
    check_args(args)
    return args


def check_args(args: argparse.Namespace) -> None:
    """Checks the bench's numeric options.

    Raises:
      InputError: ``--rounds`` below 1, or ``--ref-rounds``, ``--records`` or
        ``--case-budget`` negative; ``--cache-only`` with ``--records-only`` or
        ``--no-cache-runs``.
    """
    for value, low, option in (
        (args.rounds, 1, "--rounds"),
        (args.ref_rounds, 0, "--ref-rounds"),
        (args.records, 0, "--records"),
        (args.case_budget, 0, "--case-budget"),
    ):
        if value is not None:
            at_least(value, low, option)
    if args.cache_only and (args.records_only or args.no_cache_runs):
        raise InputError("--cache-only goes with neither --records-only nor --no-cache-runs")


def reference_rounds(args: argparse.Namespace, shape: tuple[int, ...]) -> int:
    """Rounds of the (slow) NumPy reference for a batch of ``shape``."""
    if args.ref_rounds is not None:
        return args.ref_rounds
    if args.quick or int(np.prod(shape)) > BIG_BATCH_VALUES:
        return 1
    return 2


def not_available(case: Case, error: BaseException) -> dict[str, Any]:
    """The record of a case the implementation could not run."""
    reason = f"{type(error).__name__}: {error}".splitlines()[0][:200]
    return {
        "case": dataclasses.asdict(case),
        "name": case.name,
        "value_dependent_cost": case.value_dependent_cost,
        "not_available": reason,
    }


def write_report(report: dict[str, Any], out: Path, name: str, quick: bool) -> Any:
    """Writes ``report`` as ``<out>/<name>[-quick]-<stamp>.json`` and ``.md``; returns the
    path without suffix."""
    markdown = render_markdown(report)
    out.mkdir(parents=True, exist_ok=True)
    stamp = report["machine"]["date_utc"].replace(":", "").replace("-", "").split("+")[0]
    stem = out / f"{name}{'-quick' if quick else ''}-{stamp}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(markdown, encoding="utf-8")
    return stem


def print_tables(report: dict[str, Any], name: str) -> None:
    """The report's tables on the console: cases, records, training settings, cache."""
    if report["cases"]:
        rows = [case_row(result) for result in report["cases"]]
        print_table(f"{name}: op / jitted copy, min over interleaved rounds", CASE_HEADER, rows)
    if "records" in report:
        print_table("records of any size", *records.records_table(report["records"]))
    if "training" in report:
        print_table(
            "training settings / the fixed-strength operator",
            list(training.HEADER),
            training.training_rows(report["training"]),
        )
    if "cache" in report:
        print_table(
            "compiled programs kept between runs: cold / warm process",
            *cache.cache_table(report["cache"]),
        )


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Runs the bench; returns 0, or 2 (one line on stderr, ``<prog>: error: ...``) for bad
    input: options, an ``--out`` that cannot be written, an ``--impl`` not installed,
    all checked before anything is timed."""
    try:
        args = parse_args(argv, prog)
        writable_directory(str(args.out), "--out")
        impl = load_impl(args.impl)
    except InputError as error:
        return report_input_error(prog, error)
    compile_cache.enable_from_args(args, prog)
    shapes = args.shapes or (QUICK_SHAPES if args.quick else FULL_SHAPES)
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else FULL_ROUNDS)
    modes = args.modes or (QUICK_MODES if args.quick else tuple(MODES))
    tables = not (args.records_only or args.cache_only)  # the case table and what goes with it
    cases, skipped = build_cases(modes, args.dtypes, shapes) if tables else ([], [])
    started = time.perf_counter()
    report: dict[str, Any] = {
        "impl": impl.name,
        "machine": machine_info(impl),
        "parameters": {
            "quick": args.quick,
            "modes": list(modes),
            "dtypes": list(args.dtypes),
            "shapes": [list(s) for s in shapes],
            "rounds": rounds,
            "ref_rounds": args.ref_rounds,
            "case_budget_s": args.case_budget,
            "argv": list(sys.argv[1:] if argv is None else argv),
        },
        "skipped": skipped,
        "cases": [],
    }
    for number, case in enumerate(cases, 1):
        print(f"[{number}/{len(cases)}] {case.name}", file=sys.stderr, flush=True)
        try:
            result = measure_case(
                case, impl, rounds, reference_rounds(args, case.shape), args.case_budget or None
            )
        except Exception as error:  # a case the implementation cannot express
            result = not_available(case, error)
        report["cases"].append(result)
    if tables:
        print("fixed cost per call", file=sys.stderr, flush=True)
        report["fixed_cost"] = measure_fixed_costs(
            impl, QUICK_FIXED_CALLS if args.quick else FULL_FIXED_CALLS
        )
    record_sizes = dict(records.QUICK if args.quick else records.FULL)
    if args.records is not None:
        record_sizes["count"] = args.records
    if record_sizes["count"] and not args.cache_only:
        report["records"] = records.measure_records(modes, **record_sizes)
    if tables and not args.no_training:
        training_rounds = args.rounds or (QUICK_ROUNDS if args.quick else TRAINING_ROUNDS)
        report["training"] = training.measure_training(modes, tuple(shapes[0]), training_rounds)
    if not (args.records_only or args.no_cache_runs):
        report["cache"] = cache.measure_cache(quick=args.quick)
    report["wall_s"] = time.perf_counter() - started

    stem = write_report(report, args.out, impl.name, args.quick)
    print_tables(report, impl.name)
    print(f"wrote {stem}.json and {stem}.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
