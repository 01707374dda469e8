"""``datarax-ops demo``: every mode at several strengths on one picture, as a PNG grid.

One row per mode of ``datarax_ops.modes.MODES``, the original in the first
column and the mode at increasing strength in the next ones; then two rows of
the training settings (``training_rows``): four records of one batch under a
strength range, and channel sharing (monochrome noise, whole-pixel salt and
pepper and dropout).  Every panel is
produced by the compiled operators through the public API (``op(batch)`` on a
batch of one image); within a row every operator gets the same seed, so the
columns differ only by the strength (salt & pepper at a higher probability
replaces a superset of the values, say).  A row's strengths, its note and the
measured effect in each panel's title come from the mode's law
(``datarax_ops/conformance/laws/<mode>.py``).

Needs matplotlib and Pillow (the ``verify`` extra).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datarax_ops import compile_cache
from datarax_ops.batch import Batch
from datarax_ops.cli_input import (
    InputError,
    OneLineParser,
    at_least,
    report_input_error,
    writable_file,
)
from datarax_ops.conformance import images as images_module
from datarax_ops.conformance.laws import LAWS, law_for
from datarax_ops.modes import MODES
from datarax_ops.operator import DropoutOperator, NoiseOperator

PROG = "datarax-ops demo"
DEFAULT_OUT = "datarax-ops-demo.png"
DEFAULT_SEED = 0
DEFAULT_MAX_SIZE = 320
STREAM = "augment"

# Config overrides per mode name, weakest to strongest: each law's ``demo_strengths``.
DEFAULT_STRENGTHS: dict[str, tuple[Mapping[str, float], ...]] = {
    name: law.demo_strengths for name, law in LAWS.items()
}
_SHORT_NAMES = {
    "salt_prob": "salt",
    "pepper_prob": "pepper",
    "hole_count_range": "holes",
    "hole_size_range": "size",
}


@dataclass(frozen=True)
class Panel:
    """One cell of the grid: ``image`` float32 ``(H, W, 3)`` in ``[0, 1]`` and its title;
    ``tiled``: ``image`` is four records tiled 2x2 (``tile_records``)."""

    image: np.ndarray
    title: str
    tiled: bool = False


def operator_class(config_class: type) -> type:
    """The operator (``NoiseOperator`` / ``DropoutOperator``) whose config is ``config_class``."""
    for candidate in (NoiseOperator, DropoutOperator):
        if issubclass(config_class, candidate.config_class):
            return candidate
    raise TypeError(f"no operator takes {config_class.__name__}")


def run_mode(
    mode: Any, overrides: Mapping[str, Any], image: np.ndarray, seed: int, records: int = 1
) -> np.ndarray:
    """``op(batch)`` of ``mode``'s stochastic operator on a batch of ``records`` copies
    of one image.

    Args:
      mode: a ``datarax_ops.modes.Mode``.
      overrides: config fields of the strength (e.g. ``{"noise_std": 0.1}``).
      image: float32 ``(H, W, C)`` in ``[0, 1]``.
      seed: the seed of the operator's ``nnx.Rngs`` stream.
      records: the batch size (records 0, 1, ... of the operator's stream).

    Returns:
      float32 ``(records, H, W, C)``, the operator's output.
    """
    import jax.numpy as jnp
    from flax import nnx

    config = mode.config_class(
        field_key="image", mode=mode.name, stochastic=True, stream_name=STREAM, **overrides
    )
    op = operator_class(mode.config_class)(config, rngs=nnx.Rngs(**{STREAM: seed}))
    images = jnp.asarray(np.broadcast_to(image, (records, *image.shape)))
    batch = Batch.from_parts(data={"image": images}, states={})
    return np.asarray(op(batch).data.get_value()["image"], dtype=np.float32)


def tile_records(outputs: np.ndarray) -> np.ndarray:
    """Four records ``(4, H, W, C)`` as one ``(2 * (H // 2), 2 * (W // 2), C)`` image:
    each record averaged over 2x2 blocks (half size), placed row-major in a 2x2 grid.
    One record ``(1, H, W, C)`` is returned as ``(H, W, C)`` unchanged."""
    if outputs.shape[0] == 1:
        return outputs[0]
    if outputs.shape[0] != 4:
        raise ValueError(f"tile_records takes 1 or 4 records, got {outputs.shape[0]}")
    _, height, width, channels = outputs.shape
    h2, w2 = height // 2, width // 2
    small = (
        outputs[:, : 2 * h2, : 2 * w2]
        .reshape(4, h2, 2, w2, 2, channels)
        .mean(axis=(2, 4), dtype=np.float64)
        .astype(np.float32)
    )
    return np.concatenate(
        [
            np.concatenate([small[0], small[1]], axis=1),
            np.concatenate([small[2], small[3]], axis=1),
        ],
        axis=0,
    )


def strength_label(overrides: Mapping[str, float]) -> str:
    """A panel title for a strength: ``{"noise_std": 0.1}`` -> ``"noise_std=0.1"``;
    equal salt and pepper probabilities are shown once (``"salt=pepper=0.05"``)."""
    items = dict(overrides)
    if "salt_prob" in items and items.get("salt_prob") == items.get("pepper_prob"):
        value = items.pop("salt_prob")
        items.pop("pepper_prob")
        return "salt=pepper=" + _number(value) + (", " + strength_label(items) if items else "")
    return ", ".join(f"{_SHORT_NAMES.get(k, k)}={_number(v)}" for k, v in items.items())


def _number(value: float | tuple[float, float]) -> str:
    """``0.1`` -> ``"0.1"``; a range ``(1, 3)`` -> ``"1-3"`` (one number when lo == hi)."""
    if isinstance(value, (tuple, list)):
        low, high = value
        return _number(low) if low == high else f"{_number(low)}-{_number(high)}"
    return f"{value:g}"


def gallery_rows(
    image: np.ndarray,
    *,
    seed: int,
    strengths: Mapping[str, Sequence[Mapping[str, float]]] | None = None,
    modes: Sequence[Any] | None = None,
) -> list[tuple[str, list[Panel]]]:
    """The grid's contents: ``[(row label, [original, strength 1, ...]), ...]``.

    Args:
      image: float32 ``(H, W, 3)`` in ``[0, 1]``.
      seed: the seed of every operator's RNG stream.
      strengths: config overrides per mode name (default ``DEFAULT_STRENGTHS``);
        a mode missing from it is an error.
      modes: the rows (default every mode of ``datarax_ops.modes.MODES``).

    Returns:
      One row per mode; the first panel of each row is ``image`` itself.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"gallery needs an (H, W, 3) image, got shape {image.shape}")
    strengths = DEFAULT_STRENGTHS if strengths is None else strengths
    rows = []
    for mode in MODES if modes is None else modes:
        if mode.name not in strengths:
            raise KeyError(
                f"no demo strengths for mode {mode.name!r}; add demo_strengths to its law"
            )
        law = law_for(mode.name)
        panels = [Panel(image, "original")]
        for overrides in strengths[mode.name]:
            records = law.demo_records
            outputs = run_mode(mode, overrides, image, seed, records)
            title = strength_label(overrides) + "\n" + law.effect_label(image, outputs)
            panels.append(Panel(tile_records(outputs), title, tiled=records > 1))
        note = law.demo_note
        label = f"{mode.name}\n{mode.config_class.__name__.removesuffix('Config')}"
        rows.append((label + (f"\n{note}" if note else ""), panels))
    return rows


def rows_figure(rows: Sequence[tuple[str, Sequence[Panel]]], *, title: str = ""):
    """Draws ``rows`` as a grid of panels (nearest-neighbour, no smoothing of the noise).

    Returns a ``matplotlib.figure.Figure`` (no pyplot, so no GUI backend is needed)
    sized for 100 dpi: an image 232 to 392 pixels wide is drawn one screen pixel per
    image pixel (no resampling of the noise); smaller ones are enlarged to 2.4 inches,
    larger ones shrunk to 4 inches.  Titles stay readable at that size.
    """
    from matplotlib.figure import Figure

    n_rows = len(rows)
    n_cols = max(len(panels) for _, panels in rows)
    height, width = rows[0][1][0].image.shape[:2]
    panel_w = min(max(width / 100 + 0.08, 2.4), 4.0)  # + 0.08: the gap between panels
    panel_h = panel_w * height / width
    title_h, label_w, header_h = 0.55, 1.75, 0.6 if title else 0.15
    fig_w = label_w + n_cols * panel_w + 0.15
    fig_h = header_h + n_rows * (panel_h + title_h) + 0.1
    fig = Figure(figsize=(fig_w, fig_h), dpi=100, facecolor="white")
    for r, (label, panels) in enumerate(rows):
        top = fig_h - header_h - r * (panel_h + title_h) - title_h
        for c, panel in enumerate(panels):
            left = label_w + c * panel_w
            ax = fig.add_axes(
                (
                    (left + 0.04) / fig_w,
                    (top - panel_h) / fig_h,
                    (panel_w - 0.08) / fig_w,
                    panel_h / fig_h,
                )
            )
            ax.imshow(np.clip(panel.image, 0.0, 1.0), interpolation="nearest", vmin=0, vmax=1)
            if panel.tiled:  # white lines between the four records
                ax.axhline(panel.image.shape[0] / 2 - 0.5, color="white", linewidth=1.5)
                ax.axvline(panel.image.shape[1] / 2 - 0.5, color="white", linewidth=1.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(panel.title, fontsize=11, pad=3, linespacing=1.15)
        name, _, rest = label.partition("\n")
        middle = (top - panel_h / 2) / fig_h
        fig.text(0.12 / fig_w, middle, name, fontsize=13, weight="bold", va="bottom", ha="left")
        fig.text(0.12 / fig_w, middle, rest, fontsize=11, va="top", ha="left", linespacing=1.3)
    if title:
        fig.text(0.5, 1 - 0.3 / fig_h, title, fontsize=13, ha="center", va="center", weight="bold")
    return fig


# The training settings' rows (issue 17): a strength range, whose records each draw their
# own strength, and channel sharing, next to per-channel draws; each law declares its part.
def range_demo() -> tuple[Any, Mapping[str, Any]]:
    """``(mode, overrides)`` of the ranges row: the first mode of ``MODES`` whose law
    sets ``demo_range``."""
    for mode in MODES:
        overrides = law_for(mode.name).demo_range
        if overrides is not None:
            return mode, overrides
    raise LookupError("no law sets demo_range, so the gallery has no ranges row")


def shared_demo() -> list[tuple[Any, Mapping[str, Any]]]:
    """``[(mode, config overrides), ...]`` of the shared-channels row: every law's
    ``demo_shared_channels``, in the order of ``MODES``."""
    return [
        (mode, settings) for mode in MODES for settings in law_for(mode.name).demo_shared_channels
    ]


def training_rows(image: np.ndarray, *, seed: int) -> list[tuple[str, list[Panel]]]:
    """Two rows: four records of one batch under the ``range_demo`` strength range (each
    panel titled with its record's measured effect, e.g. the RMS change that reads back
    its drawn ``noise_std``), and the ``shared_demo`` settings."""
    image = np.asarray(image, dtype=np.float32)
    mode, overrides = range_demo()
    outputs = run_mode(mode, overrides, image, seed, records=4)
    range_panels = [Panel(image, "original")]
    for index, output in enumerate(outputs):
        label = law_for(mode.name).effect_label(image, output[None])
        range_panels.append(Panel(output, f"record {index}\n{label}"))
    ranges = "\n".join(f"{field}\n=({low:g}, {high:g})" for field, (low, high) in overrides.items())
    rows = [(f"ranges\n{mode.name}\n{ranges}", range_panels)]
    shared_panels = [Panel(image, "original")]
    for mode, settings in shared_demo():
        output = run_mode(mode, settings, image, seed)[0]
        shared = "per_channel=False" if settings.get("per_channel") is False else "per channel"
        shared_panels.append(Panel(output, f"{mode.name}, {shared}"))
    rows.append(("shared\nchannels\none draw per pixel\n(monochrome)", shared_panels))
    return rows


def gallery_figure(
    image: np.ndarray,
    *,
    seed: int,
    strengths: Mapping[str, Sequence[Mapping[str, float]]] | None = None,
    modes: Sequence[Any] | None = None,
    title: str | None = None,
):
    """The demo grid for ``image``: a ``matplotlib.figure.Figure``.

    One row per mode (``datarax_ops.modes.MODES`` unless ``modes`` is given), the
    original and then the mode at each strength of ``strengths`` (default
    ``DEFAULT_STRENGTHS``: 4 a mode), each panel titled with its parameter and a
    measured effect.  ``image`` is float32 ``(H, W, 3)`` in ``[0, 1]``.
    """
    rows = gallery_rows(image, seed=seed, strengths=strengths, modes=modes)
    if modes is None and strengths is None:  # the full demo: the training settings too
        rows += training_rows(image, seed=seed)
    if title is None:
        title = f"datarax_ops: every mode, weaker to stronger (seed {seed})"
    return rows_figure(rows, title=title)


def fit_size(image: np.ndarray, max_size: int) -> np.ndarray:
    """``image`` (float32 ``(H, W, 3)``) shrunk with Pillow so its longer side is at most
    ``max_size`` pixels (aspect kept); unchanged if it already fits or ``max_size <= 0``.

    Per-pixel noise is invisible once a large photo is scaled down to a panel,
    so the demo works on a picture about the size it is shown at.
    """
    height, width = image.shape[:2]
    if max_size <= 0 or max(height, width) <= max_size:
        return image
    from PIL import Image

    scale = max_size / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[..., c]), mode="F").resize(
                size, Image.Resampling.LANCZOS
            )
        )
        for c in range(image.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def parse_args(argv: Sequence[str] | None, prog: str = PROG) -> argparse.Namespace:
    """The ``datarax-ops demo`` options.

    Raises:
      InputError: an option argparse rejects (one line, no usage).
    """
    parser = OneLineParser(
        prog=prog,
        description="Every noise and dropout mode at several strengths on one picture, "
        "produced by the compiled operators, saved as a PNG grid.",
    )
    parser.add_argument(
        "--image",
        metavar="PATH",
        help="a PNG or JPEG to use (default: the built-in synthetic picture)",
    )
    parser.add_argument(
        "--out", metavar="PATH", default=DEFAULT_OUT, help=f"where to write the PNG ({DEFAULT_OUT})"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"operators' RNG seed ({DEFAULT_SEED})"
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=DEFAULT_MAX_SIZE,
        metavar="PIXELS",
        help=f"shrink --image so its longer side is at most this ({DEFAULT_MAX_SIZE}; 0: never)",
    )
    compile_cache.add_arguments(parser)
    return parser.parse_args(argv)


@dataclass(frozen=True)
class DemoInputs:
    """The demo's checked inputs: the picture (float32 ``(H, W, 3)`` in [0, 1], already
    fitted to ``--max-size``), its description, and the PNG's absolute path (writable)."""

    image: np.ndarray
    source: str
    out: str


def demo_inputs(args: argparse.Namespace) -> DemoInputs:
    """Checks every input of ``demo`` before any work; the picture is read here.

    Raises:
      InputError: a negative ``--max-size``, a ``--seed`` outside 64 bits, an ``--out``
        that cannot be written, or an ``--image`` that cannot be read (named).
    """
    at_least(args.max_size, 0, "--max-size")
    if not -(2**63) <= args.seed < 2**63:
        raise InputError(f"--seed must fit in 64 bits (|seed| < 2**63), got {args.seed}")
    out = writable_file(args.out, "--out")
    if not args.image:
        image = images_module.synthetic_image()
        return DemoInputs(
            image, f"built-in synthetic image ({image.shape[1]}x{image.shape[0]})", out
        )
    try:
        image = fit_size(images_module.load_image(args.image), args.max_size)
    except (OSError, ValueError) as error:
        raise InputError(f"--image: {error}") from error
    return DemoInputs(image, f"{args.image} ({image.shape[1]}x{image.shape[0]})", out)


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Writes the demo PNG; prints the seed and where the file went.

    Returns 0, or 2 (one line on stderr, ``<prog>: error: ...``) for bad input: checked
    before any operator runs.
    """
    try:
        args = parse_args(argv, prog)
        inputs = demo_inputs(args)
    except InputError as error:
        return report_input_error(prog, error)
    compile_cache.enable_from_args(args, prog)
    print(f"demo: {inputs.source}, seed {args.seed}")
    fig = gallery_figure(inputs.image, seed=args.seed)
    fig.savefig(inputs.out, dpi=100, facecolor="white")
    print(f"wrote {inputs.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
