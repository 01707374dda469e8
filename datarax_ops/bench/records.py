"""The records workload of ``python -m datarax_ops.bench``: one image at a time, any size.

What a grain pipeline does: every record goes through the grain transform
(``OperatorRandomMap.random_map``) on its own, uint8, 0..255.  Two sets of
records, built once from ``SEED``:

* **fixed**: ``fixed_count`` records of 224x224x3;
* **varied**: ``count`` records whose height and width are each uniform in
  ``sides`` (default 64..1024, as in photo collections before resizing).

Per mode, after one warm-up pass over each set (the fixed set first, so its
shape is the program's first and runs exactly; the varied records then run
in their size buckets, ``datarax_ops.buckets``), the passes are timed in
interleaved rounds: datarax_ops fixed, datarax_ops varied, and, when
albumentations is installed, its closest transform on the same fixed and
varied records.  Each figure is the minimum over rounds of a whole pass:
ms per record (pass / records) and ms per megapixel (pass / the set's
pixels, H x W), the per-pixel ratio varied / fixed of the same run, and
albumentations per record / datarax_ops per record.

Compiled programs: XLA compilations during the warm-up passes
(``buckets.count_compiles``), and, with the varied records warmed up in
order of their larger side, the count once every record up to 128, 256, 512
and 1024 px has run: it grows with the logarithm of the largest size
(bound: one exact program plus ``buckets.bucket_count`` of the largest
pixel count).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import datarax_ops as dx
from datarax_ops import buckets
from datarax_ops.bench.kit import (
    DEFAULT_LABELS,
    MODES,
    SEED,
    fmt,
    markdown_table,
    summary,
    time_interleaved,
)
from datarax_ops.conformance.laws import law_for
from datarax_ops.environment import package_version

# the modes of the workload, each its default example (poisson at lam_scale 30), on
# uint8 0..255 records
RECORD_MODES = DEFAULT_LABELS
FIXED_SHAPE = (224, 224, 3)
FULL: dict[str, Any] = {"count": 1000, "fixed_count": 100, "sides": (64, 1024), "rounds": 3}
QUICK: dict[str, Any] = {"count": 12, "fixed_count": 8, "sides": (96, 160), "rounds": 2}
# the larger sides at which the compilations of the ordered warm-up are read
SIDE_MARKS = (128, 256, 512, 1024)


def record_config_kwargs(mode: str) -> dict[str, Any]:
    """Config fields of ``mode`` for 0..255 records: the case table's, with noise clipped
    to (0, 255) and the fields in the data's value units (the law's
    ``value_unit_fields``: gaussian's std) scaled to the range (0.05 * 255, as
    albumentations' ``std_range`` is a fraction of the maximum value)."""
    kind, kwargs = MODES[mode]
    kwargs = dict(kwargs)
    if kind == "noise":
        kwargs["clip_range"] = (0.0, 255.0)
    for field in law_for(kwargs["mode"]).value_unit_fields:
        if field in kwargs:
            kwargs[field] = kwargs[field] * 255.0
    return kwargs


def make_records(count: int, sides: tuple[int, int], seed: int) -> list[np.ndarray]:
    """``count`` uint8 images ``(H, W, 3)``, H and W uniform in ``sides`` (inclusive)."""
    rng = np.random.default_rng(seed)
    shapes = rng.integers(sides[0], sides[1] + 1, size=(count, 2))
    return [rng.integers(0, 256, (int(h), int(w), 3), dtype=np.uint8) for h, w in shapes]


def pixels(records: Sequence[np.ndarray]) -> int:
    """Pixels (H x W) of all ``records``."""
    return sum(int(image.shape[0]) * int(image.shape[1]) for image in records)


def grain_transform(mode: str) -> Any:
    """datarax_ops' grain transform of ``mode`` (stochastic, ``nnx.Rngs(0)``)."""
    from flax import nnx

    from datarax_ops.grain_transform import OperatorRandomMap

    kind = MODES[mode][0]
    config_cls = dx.NoiseOperatorConfig if kind == "noise" else dx.DropoutOperatorConfig
    operator_cls = dx.NoiseOperator if kind == "noise" else dx.DropoutOperator
    config = config_cls(field_key="image", stochastic=True, **record_config_kwargs(mode))
    return OperatorRandomMap(operator_cls(config, rngs=nnx.Rngs(0)))


def albumentations_transform(mode: str) -> tuple[Any, str] | None:
    """albumentations' closest transform to ``mode`` (``p=1``), and how it differs (the
    mode's conformance law knows both); None when albumentations is not installed or
    the law names no counterpart (the records table then has no albumentations columns
    for the mode)."""
    try:
        import albumentations as album
    except ImportError:
        return None
    law = law_for(MODES[mode][1]["mode"])
    return law.albumentations_counterpart(record_config_kwargs(mode), album)


def _pass(
    transform: Callable[[np.ndarray], Any], records: Sequence[np.ndarray]
) -> Callable[[], None]:
    """A call that runs ``transform`` over every record once (each output is ready on return)."""

    def run() -> None:
        for image in records:
            transform(image)

    return run


def warm_up(
    run_record: Callable[[np.ndarray], Any],
    fixed: Sequence[np.ndarray],
    varied: Sequence[np.ndarray],
) -> dict[str, Any]:
    """One pass over the fixed records, then over the varied ones by larger side; the
    compilations and seconds of each, and the compilations at each ``SIDE_MARKS`` side."""

    ordered = sorted(varied, key=lambda image: max(image.shape[:2]))
    marks: dict[int, int] = {}
    with buckets.count_compiles() as compiles:
        start = time.perf_counter()
        _pass(run_record, fixed)()
        fixed_s, fixed_compiles = time.perf_counter() - start, compiles[0]
        start = time.perf_counter()
        for image in ordered:
            for side in SIDE_MARKS:
                if side not in marks and max(image.shape[:2]) > side:
                    marks[side] = compiles[0] - fixed_compiles
            run_record(image)
        varied_s = time.perf_counter() - start
    for side in SIDE_MARKS:
        marks.setdefault(side, compiles[0] - fixed_compiles)
    largest = max(int(image.shape[0]) * int(image.shape[1]) for image in varied)
    return {
        "fixed_first_pass_s": fixed_s,
        "varied_first_pass_s": varied_s,
        "programs_fixed": fixed_compiles,
        "programs_varied": compiles[0] - fixed_compiles,
        "programs_by_largest_side": {str(side): count for side, count in marks.items()},
        "bucket_bound": 1 + buckets.bucket_count(largest),
    }


def measure_mode(
    mode: str, fixed: Sequence[np.ndarray], varied: Sequence[np.ndarray], rounds: int
) -> dict[str, Any]:
    """Warm-up and interleaved timed passes of one mode (see the module docstring)."""
    transform = grain_transform(mode)
    rng = np.random.default_rng(SEED)

    def ours(image: np.ndarray) -> Any:
        return transform.random_map({"image": image}, rng)["image"]

    result: dict[str, Any] = {"mode": mode, "config": record_config_kwargs(mode)}
    result.update(warm_up(ours, fixed, varied))
    calls = {"datarax_ops fixed": _pass(ours, fixed), "datarax_ops varied": _pass(ours, varied)}
    counterpart = albumentations_transform(mode)
    if counterpart is not None:
        album, result["albumentations"] = counterpart
        run_album = lambda image: album(image=image)["image"]  # noqa: E731
        run_album(fixed[0])
        calls["albumentations fixed"] = _pass(run_album, fixed)
        calls["albumentations varied"] = _pass(run_album, varied)
    result["seconds"] = time_interleaved(calls, rounds)
    return add_record_summaries(result, len(fixed), pixels(fixed), len(varied), pixels(varied))


def add_record_summaries(
    result: dict[str, Any], fixed_count: int, fixed_pixels: int, count: int, varied_pixels: int
) -> dict[str, Any]:
    """Per record (ms), per megapixel (ms) and the ratios, from the minimum pass of each."""
    sizes = {"fixed": (fixed_count, fixed_pixels), "varied": (count, varied_pixels)}
    per: dict[str, dict[str, float]] = {}
    for name, seconds in result["seconds"].items():
        records, pixel_count = sizes[name.rsplit(" ", 1)[1]]
        best = summary(seconds)["min_ms"]
        per[name] = {"ms_per_record": best / records, "ms_per_megapixel": best / pixel_count * 1e6}
    result["summary"] = per
    ours_fixed, ours_varied = per["datarax_ops fixed"], per["datarax_ops varied"]
    result["varied_over_fixed_per_pixel"] = (
        ours_varied["ms_per_megapixel"] / ours_fixed["ms_per_megapixel"]
    )
    for which in ("fixed", "varied"):
        album = per.get(f"albumentations {which}")
        if album is not None:
            ours = per[f"datarax_ops {which}"]["ms_per_record"]
            result[f"albumentations_over_ours_{which}"] = album["ms_per_record"] / ours
    return result


def measure_records(
    modes: Sequence[str], count: int, fixed_count: int, sides: tuple[int, int], rounds: int
) -> dict[str, Any]:
    """The whole workload: records built once, every mode of ``modes`` in ``RECORD_MODES``."""
    import sys

    fixed = [
        np.random.default_rng(SEED + 1 + i).integers(0, 256, FIXED_SHAPE, dtype=np.uint8)
        for i in range(fixed_count)
    ]
    varied = make_records(count, sides, SEED)
    report: dict[str, Any] = {
        "count": count,
        "fixed_count": fixed_count,
        "fixed_shape": list(FIXED_SHAPE),
        "sides": list(sides),
        "rounds": rounds,
        "varied_megapixels": pixels(varied) / 1e6,
        "varied_mean_pixels": pixels(varied) / count,
        "albumentations": package_version("albumentations"),
        "modes": [],
    }
    for mode in (m for m in RECORD_MODES if m in modes):
        print(f"[records] {mode}", file=sys.stderr, flush=True)
        report["modes"].append(measure_mode(mode, fixed, varied, rounds))
    return report


RECORD_HEADER = [
    "mode",
    "fixed ms/record",
    "fixed ms/MP",
    "varied ms/record",
    "varied ms/MP",
    "varied/fixed per pixel",
    "albumentations fixed ms/record",
    "albumentations varied ms/record",
    "albumentations/ours (varied)",
    "programs (fixed; varied)",
    "varied programs up to 128/256/512/1024 px",
    "bound",
]


def record_row(result: dict[str, Any]) -> list[str]:
    """One Markdown row of ``measure_mode``'s result."""
    per = result["summary"]
    album = lambda which: per.get(f"albumentations {which}", {}).get("ms_per_record")  # noqa: E731
    marks = result["programs_by_largest_side"]
    return [
        result["mode"],
        fmt(per["datarax_ops fixed"]["ms_per_record"]),
        fmt(per["datarax_ops fixed"]["ms_per_megapixel"]),
        fmt(per["datarax_ops varied"]["ms_per_record"]),
        fmt(per["datarax_ops varied"]["ms_per_megapixel"]),
        fmt(result["varied_over_fixed_per_pixel"]),
        fmt(album("fixed")),
        fmt(album("varied")),
        fmt(result.get("albumentations_over_ours_varied")),
        f"{result['programs_fixed']}; {result['programs_varied']}",
        "/".join(str(marks[str(side)]) for side in SIDE_MARKS),
        str(result["bucket_bound"]),
    ]


def render_records(report: dict[str, Any]) -> list[str]:
    """Markdown lines of the records section."""
    low, high = report["sides"]
    lines = [
        "## Records through the grain transform (uint8, one record a call)",
        "",
        f"fixed: {report['fixed_count']} records of "
        f"{'x'.join(map(str, report['fixed_shape']))}; varied: {report['count']} records, "
        f"H and W uniform in [{low}, {high}] ({report['varied_megapixels']:.1f} MP, mean "
        f"{report['varied_mean_pixels']:.0f} px); min over {report['rounds']} interleaved "
        "rounds of whole passes; MP = 1e6 pixels (H x W); programs = XLA compilations in "
        "the warm-up passes (varied: counted with the records ordered by larger side); "
        "bound = 1 exact + bucket_count(largest H x W); "
        f"albumentations {report['albumentations']}.",
        "",
        markdown_table(*records_table(report)),
        "",
    ]
    described = [
        f"{r['mode']}: {r['albumentations']}" for r in report["modes"] if "albumentations" in r
    ]
    if described:
        lines += ["albumentations transforms (p=1):", "", *[f"- {d}" for d in described], ""]
    return lines


def records_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of the records section, one row per mode (console and Markdown)."""
    return RECORD_HEADER, [record_row(r) for r in report["modes"]]
