"""The ``datarax-ops verify`` report: one self-contained HTML file.

Contents: a summary grid (one row per run, that is per mode and per training
setting, one column per property checked, each cell the passed/total count of
that run's checks of that property, linked to their rows), the false-alarm
budget, the full verdict table (the same rows ``verify`` prints, collapsed),
one section per run (``id="mode-<slug>"``, see ``anchor_slug``) with its plots (the
operator's sample against the reference's and the exact law: histogram and QQ
plot, or category and keep rates with confidence intervals) and its rows of the
table, the gallery of every mode on the input picture, and the environment (python,
CPU, backend, devices, git revision, package versions).  Images are embedded as
base64 PNG; there are no external resources and no JavaScript.  Plots use matplotlib's Agg backend.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window; must precede pyplot

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from datarax_ops.conformance.results import (
    NOT_APPLICABLE,
    OPERATOR_LABEL,
    CategoricalSample,
    ContinuousSample,
    ModeRun,
    RateEstimate,
    Verdict,
    false_alarm_budget,
)
from datarax_ops.environment import as_text

CONFIDENCE = 0.99  # of every interval drawn
TABLE_COLUMNS = ("mode", "property", "check", "statistic", "p-value", "verdict")
OP_COLOR, REF_COLOR, EXACT_COLOR = "#1f77b4", "#ff7f0e", "#222222"
plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "legend.fontsize": 10})


# --------------------------------------------------------------------------- #
# The verdict table (shared with the printed one)                              #
# --------------------------------------------------------------------------- #
def verdict_row(v: Verdict) -> tuple[str, str, str, str, str, str]:
    """One verdict as the strings of ``TABLE_COLUMNS``, printed and written alike; a
    failed exact check's evidence and an n/a check's reason follow its text."""
    if not v.applicable:
        statistic = "-"
    else:
        statistic = "exact" if v.statistic is None else f"{v.test} {v.statistic:.4g}"
    pvalue = "-" if v.pvalue is None else f"{v.pvalue:.3g}"
    what = f"{v.what}: {v.detail}" if v.detail else v.what
    return (v.mode, v.aspect, what, statistic, pvalue, v.verdict)


def css_class(verdict: str) -> str:
    """The HTML class of a verdict (``pass``, ``FAIL``, ``na`` for n/a)."""
    return verdict.replace("/", "")


def budget_text(verdicts: Sequence[Verdict]) -> str:
    """The false-alarm budget in one sentence (union bound over the statistical checks)."""
    count, total = false_alarm_budget(verdicts)
    alphas = sorted({v.alpha for v in verdicts if v.statistical})
    level = ", ".join(f"{a:g}" for a in alphas) or "-"
    exact = sum(1 for v in verdicts if v.applicable and not v.statistical)
    na = sum(1 for v in verdicts if not v.applicable)
    return (
        f"{count} statistical checks at alpha = {level} each: a correct operator fails one "
        f"of them with probability at most {total:.2g} (union bound); "
        f"{exact} exact checks cannot fail by chance."
        + (f" {na} checks n/a (not run: the target lacks what they need)." if na else "")
    )


# --------------------------------------------------------------------------- #
# Plots                                                                        #
# --------------------------------------------------------------------------- #
def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """``fig`` as PNG bytes (white background); the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def continuous_figure(sample: ContinuousSample, label: str = OPERATOR_LABEL) -> Any:
    """Histogram (densities) and QQ plot of the operator's and the reference's values
    against the exact law."""
    fig, (hist_ax, qq_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    both = np.concatenate([sample.op_values, sample.ref_values])
    low, high = np.quantile(both, [0.0005, 0.9995])
    bins = np.linspace(low, high, 61)
    hist_ax.hist(
        sample.op_values,
        bins=bins,
        density=True,
        histtype="step",
        lw=2,
        color=OP_COLOR,
        label=label,
    )
    hist_ax.hist(
        sample.ref_values,
        bins=bins,
        density=True,
        histtype="step",
        lw=1.5,
        ls="--",
        color=REF_COLOR,
        label="NumPy reference",
    )
    grid = np.linspace(low, high, 400)
    hist_ax.plot(grid, sample.exact.pdf(grid), color=EXACT_COLOR, lw=1, label=sample.exact_label)
    hist_ax.set(title=f"{sample.title}: histogram", xlabel=sample.xlabel, ylabel="density")
    hist_ax.legend(loc="lower center")
    probs = (np.arange(1, 200) - 0.5) / 199
    exact_q = sample.exact.ppf(probs)
    qq_ax.plot(
        exact_q,
        np.quantile(sample.op_values, probs),
        "o",
        ms=3,
        color=OP_COLOR,
        label=label,
    )
    qq_ax.plot(
        exact_q,
        np.quantile(sample.ref_values, probs),
        "x",
        ms=3,
        color=REF_COLOR,
        label="NumPy reference",
    )
    qq_ax.plot(exact_q, exact_q, color=EXACT_COLOR, lw=1, label="y = x")
    qq_ax.set(
        title=f"{sample.title}: QQ plot",
        xlabel=f"quantile of the {sample.exact_label}",
        ylabel="sample quantile",
    )
    qq_ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def category_rates(
    sample: CategoricalSample, label: str = OPERATOR_LABEL
) -> list[tuple[str, RateEstimate, RateEstimate]]:
    """Per category: (name, the operator's rate, the reference's rate), each with its target."""
    op_total, ref_total = int(sample.op_counts.sum()), int(sample.ref_counts.sum())
    return [
        (
            label,
            RateEstimate(label, int(sample.op_counts[i]), op_total, float(p)),
            RateEstimate("NumPy reference", int(sample.ref_counts[i]), ref_total, float(p)),
        )
        for i, (label, p) in enumerate(zip(sample.labels, sample.exact_probs, strict=True))
    ]


def _interval_axis(ax: Any, title: str) -> None:
    """Fraction axis of an interval panel: four plain ticks, no offset."""
    ax.set_title(title)
    ax.set_xlabel("fraction")
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.ticklabel_format(axis="x", useOffset=False)


def _interval_point(ax: Any, rate: RateEstimate, y: float, color: str, label: str) -> None:
    """``rate``'s estimate at height ``y`` with its ``CONFIDENCE`` interval as error bars."""
    lo, hi = rate.interval(CONFIDENCE)
    ax.errorbar(
        rate.estimate,
        y,
        xerr=[[rate.estimate - lo], [hi - rate.estimate]],
        fmt="o",
        color=color,
        capsize=4,
        label=label,
    )


def categorical_figure(sample: CategoricalSample, label: str = OPERATOR_LABEL) -> Any:
    """One panel per category: the operator's and the reference's fraction with 99%
    intervals, and the exact probability."""
    rows = category_rates(sample, label)
    fig, axes = plt.subplots(
        1, len(rows), figsize=(3.8 * len(rows), 3.0), squeeze=False, layout="constrained"
    )
    for ax, (label, op_rate, ref_rate) in zip(axes[0], rows, strict=True):
        for y, rate, color in ((1, op_rate, OP_COLOR), (0, ref_rate, REF_COLOR)):
            _interval_point(ax, rate, y, color, rate.label)
        ax.axvline(op_rate.target, color=EXACT_COLOR, ls="--", lw=1, label="exact probability")
        ax.set(yticks=[0, 1], ylim=(-0.7, 1.7))
        ax.set_yticklabels(["reference", label])
        _interval_axis(ax, label)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3)
    fig.suptitle(f"{sample.title}: fractions with {CONFIDENCE:.0%} intervals")
    return fig


def rates_figure(rates: Sequence[RateEstimate], title: str) -> Any:
    """Each rate estimate with its 99% Clopper-Pearson interval, and its target."""
    fig, axes = plt.subplots(
        1, len(rates), figsize=(4.8 * len(rates), 2.6), squeeze=False, layout="constrained"
    )
    for ax, rate in zip(axes[0], rates, strict=True):
        _interval_point(ax, rate, 0, OP_COLOR, f"estimate, {CONFIDENCE:.0%} interval")
        ax.axvline(rate.target, color=EXACT_COLOR, ls="--", lw=1, label="target")
        ax.set(yticks=[], ylim=(-1, 1))
        _interval_axis(ax, f"{rate.label}\n(n = {rate.trials:,})")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2)
    fig.suptitle(title)
    return fig


def mode_figures(run: ModeRun) -> list[tuple[str, bytes]]:
    """(caption, PNG) for every plot of one mode."""
    figures = []
    for sample in run.samples:
        if isinstance(sample, ContinuousSample):
            caption = (
                f"{sample.title}: {run.operator} (op(batch)) and the NumPy reference against "
                f"the {sample.exact_label}."
            )
            figures.append((caption, figure_png(continuous_figure(sample, run.operator))))
        else:
            caption = f"{sample.title}: observed fractions against the exact probabilities."
            figures.append((caption, figure_png(categorical_figure(sample, run.operator))))
    if run.rates:
        title = f"{run.mode}: rates against their targets"
        figures.append((title, figure_png(rates_figure(run.rates, title))))
    return figures


# --------------------------------------------------------------------------- #
# HTML                                                                         #
# --------------------------------------------------------------------------- #
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.pass { color: #176f2c; font-weight: bold; }
td.FAIL { color: #fff; background: #c62828; font-weight: bold; }
td.FAIL a { color: #fff; } td.pass a { color: #176f2c; }
td.none { color: #999; text-align: center; }
td.na { color: #555; background: #e8e8e8; }
div.grid { overflow-x: auto; }
table#grid th, table#grid td { text-align: center; white-space: nowrap; padding: 0.2em 0.45em; }
table#grid th[scope="row"] { text-align: left; }
table#grid thead th { vertical-align: bottom; }
table#grid thead th span { writing-mode: vertical-rl; transform: rotate(180deg); }
details > summary { cursor: pointer; font-weight: bold; margin: 1em 0 0.5em; }
.verdict-pass { color: #176f2c; } .verdict-FAIL { color: #c62828; } .verdict-na { color: #555; }
figure { margin: 1em 0; } figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _png_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(
    rows: Sequence[Sequence[str]],
    header: Sequence[str],
    table_id: str = "",
    row_ids: Sequence[str | None] = (),
) -> str:
    """An HTML table of ``rows`` (text, escaped here); ``row_ids[i]``, when given and not
    None, becomes row ``i``'s ``id`` (a target of the summary grid's links)."""
    attr = f' id="{table_id}"' if table_id else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for index, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            cls = f' class="{css_class(cell)}"' if header[i] == "verdict" else ""
            cells.append(f"<td{cls}>{html.escape(cell)}</td>")
        row_id = row_ids[index] if index < len(row_ids) else None
        tr = f'<tr id="{row_id}">' if row_id else "<tr>"
        body.append(f"{tr}{''.join(cells)}</tr>")
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _rates_table(rates: Sequence[RateEstimate]) -> str:
    rows = []
    for rate in rates:
        lo, hi = rate.interval(CONFIDENCE)
        inside = "yes" if lo <= rate.target <= hi else "no"
        rows.append(
            (
                rate.label,
                f"{rate.hits:,} / {rate.trials:,}",
                f"{rate.estimate:.5f}",
                f"[{lo:.5f}, {hi:.5f}]",
                f"{rate.target:.5f}",
                inside,
            )
        )
    header = (
        "rate",
        "hits / trials",
        "estimate",
        f"{CONFIDENCE:.0%} interval",
        "target",
        "target inside",
    )
    return _table(rows, header)


# --------------------------------------------------------------------------- #
# Anchors and the summary grid                                                 #
# --------------------------------------------------------------------------- #
# The page's fixed ids; a run's anchor never takes one of them.
FIXED_IDS = (
    "grid",
    "summary",
    "target",
    "budget",
    "all-verdicts",
    "verdicts",
    "gallery",
    "environment",
    "versions",
)
NO_CHECK = "\u2014"  # an em dash: the run has no check of that property
PASS_MARK, FAIL_MARK = "\u2713", "\u2717"  # check mark, ballot x: readable without colour
_NOT_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def anchor_slug(text: str, taken: set[str]) -> str:
    """``text`` as an HTML id not in ``taken``, which it is added to.

    The id holds only ASCII letters, digits, ``-`` and ``_`` (each run of other
    characters becomes one ``-``; ``"mode-gaussian · range"`` ->
    ``"mode-gaussian-range"``), starts with a letter (``x-`` is put in front
    otherwise), and gets ``-2``, ``-3``, ... appended when ``taken`` already holds it.
    """
    slug = _NOT_ID_CHARS.sub("-", text).strip("-") or "section"
    if not slug[0].isalpha():
        slug = f"x-{slug}"
    unique, number = slug, 1
    while unique in taken:
        number += 1
        unique = f"{slug}-{number}"
    taken.add(unique)
    return unique


def _aspects(run: ModeRun) -> list[str]:
    """The run's properties (verdict aspects), each once, in the order checked."""
    return list(dict.fromkeys(v.aspect for v in run.verdicts))


def property_columns(runs: Iterable[ModeRun]) -> list[str]:
    """Every property (verdict aspect) of ``runs``, each once: the grid's columns.

    In the order checked: a property new to the list goes just before the next
    property of its run already listed (``keep rate`` before ``vs reference``),
    or at the end when there is none (a training setting's own properties).
    """
    columns: list[str] = []
    for run in runs:
        aspects = _aspects(run)
        for i, aspect in enumerate(aspects):
            if aspect in columns:
                continue
            later = [a for a in aspects[i + 1 :] if a in columns]
            columns.insert(columns.index(later[0]) if later else len(columns), aspect)
    return columns


@dataclass(frozen=True)
class GridCell:
    """One run's checks of one property: how many passed of how many, and the id of the
    first of their rows in the run's section."""

    passed: int
    total: int  # applicable checks
    target: str
    na: int = 0  # checks that did not apply

    @property
    def verdict(self) -> str:
        """The cell's class: ``pass``, ``FAIL``, or ``na`` when no check applied."""
        if self.total == 0:
            return "na"
        return "pass" if self.passed == self.total else "FAIL"

    @property
    def text(self) -> str:
        """``"\u2713 3/3"`` when all passed, ``"\u2717 2/3"`` when not, ``"n/a"`` when
        none applied; ``" +1 n/a"`` after a count that leaves some out."""
        if self.total == 0:
            return NOT_APPLICABLE
        mark = PASS_MARK if self.passed == self.total else FAIL_MARK
        return f"{mark} {self.passed}/{self.total}" + (f" +{self.na} n/a" if self.na else "")


def grid_cell(verdicts: Sequence[Verdict], target: str) -> GridCell:
    """The cell of ``verdicts``: passed of the applicable ones, and the n/a count."""
    applicable = [v for v in verdicts if v.applicable]
    passed = sum(v.passed for v in applicable)
    return GridCell(passed, len(applicable), target, len(verdicts) - len(applicable))


@dataclass(frozen=True)
class RunAnchors:
    """The ids of one run's section and of the first table row of each of its properties."""

    section: str
    rows: dict[str, str]


def run_anchors(runs: Sequence[ModeRun]) -> list[RunAnchors]:
    """Valid, unique ids for every run's section and property rows (one per run)."""
    taken = set(FIXED_IDS)
    anchors = []
    for run in runs:
        section = anchor_slug(f"mode-{run.mode}", taken)
        rows = {aspect: anchor_slug(f"{section}-{aspect}", taken) for aspect in _aspects(run)}
        anchors.append(RunAnchors(section, rows))
    return anchors


def grid_row(run: ModeRun, columns: Sequence[str], anchors: RunAnchors) -> list[GridCell | None]:
    """One cell per column: the run's checks of that property, or None without any."""
    cells: list[GridCell | None] = []
    for aspect in columns:
        verdicts = [v for v in run.verdicts if v.aspect == aspect]
        if not verdicts:
            cells.append(None)
            continue
        cells.append(grid_cell(verdicts, anchors.rows[aspect]))
    return cells


def _grid_td(cell: GridCell | None, what: str) -> str:
    if cell is None:
        return f'<td class="none" title="{html.escape(what)}: not checked">{NO_CHECK}</td>'
    title = f"{what}: {cell.passed} of {cell.total} passed" + (
        f", {cell.na} n/a" if cell.na else ""
    )
    return (
        f'<td class="{cell.verdict}"><a href="#{cell.target}" title="{html.escape(title)}">'
        f"{html.escape(cell.text)}</a></td>"
    )


def summary_grid(runs: Sequence[ModeRun], anchors: Sequence[RunAnchors]) -> str:
    """``<table id="grid">``: a row per run (a mode, or a mode's training setting), a column
    per property, and ``all``; each cell the passed/total count, linked to its rows."""
    columns = property_columns(runs)
    head = "".join(f'<th scope="col"><span>{html.escape(c)}</span></th>' for c in columns)
    body = []
    for run, anchor in zip(runs, anchors, strict=True):
        name = html.escape(run.mode)
        cells = [
            _grid_td(cell, f"{run.mode} / {column}")
            for cell, column in zip(grid_row(run, columns, anchor), columns, strict=True)
        ]
        total = grid_cell(run.verdicts, anchor.section)
        cells.append(_grid_td(total, f"{run.mode}: every check"))
        body.append(
            f'<tr><th scope="row"><a href="#{anchor.section}">{name}</a></th>{"".join(cells)}</tr>'
        )
    return (
        '<div class="grid"><table id="grid"><thead><tr><th scope="col">mode / setting</th>'
        f'{head}<th scope="col"><span>all</span></th></tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def mode_section(run: ModeRun, anchors: RunAnchors) -> str:
    """One run's ``<section id="mode-<slug>">``: config, verdicts (the first row of each
    property carries its id from ``anchors``), rates, plots."""
    verdict = run.verdict
    seen: set[str] = set()
    row_ids = []
    for v in run.verdicts:
        row_ids.append(None if v.aspect in seen else anchors.rows[v.aspect])
        seen.add(v.aspect)
    parts = [
        f'<section id="{anchors.section}">',
        f'<h2>{html.escape(run.mode)} <span class="verdict-{css_class(verdict)}">{verdict}</span>'
        "</h2>",
        f"<p>Config: <code>{html.escape(repr(run.config))}</code> ({run.seconds:.1f} s)</p>",
        _table([verdict_row(v) for v in run.verdicts], TABLE_COLUMNS, row_ids=row_ids),
    ]
    rates = list(run.rates)
    for sample in run.samples:
        if isinstance(sample, CategoricalSample):
            rates += [r for _, r, _ in category_rates(sample, run.operator)]
    if rates:
        parts.append(f"<h3>Rates ({CONFIDENCE:.0%} Clopper-Pearson intervals)</h3>")
        parts.append(_rates_table(rates))
    for caption, png in mode_figures(run):
        parts.append(
            f"<figure>{_png_tag(png, caption)}<figcaption>{html.escape(caption)}"
            "</figcaption></figure>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def summary_text(verdicts: Sequence[Verdict]) -> str:
    """The report's first line: all passed, or which failed; and how many were n/a."""
    failed = [v for v in verdicts if v.failed]
    applicable = sum(v.applicable for v in verdicts)
    na = len(verdicts) - applicable
    counted = f"{applicable} applicable checks" if na else f"{len(verdicts)} checks"
    text = (
        f"All {counted} passed."
        if not failed
        else f"{len(failed)} of {counted} failed: "
        + "; ".join(f"{v.mode} / {v.aspect} / {v.what}" for v in failed)
    )
    if not na:
        return text
    return text + (f"; {na} checks n/a." if failed else f" {na} checks n/a.")


def render(
    runs: Sequence[ModeRun],
    *,
    seed: int,
    samples: int,
    source: str,
    environment: dict[str, Any],
    gallery_png: bytes | None = None,
    command: str = "",
    target: str = "",
) -> str:
    """The whole report as an HTML string.

    Args:
      runs: one ``ModeRun`` per verified mode.
      seed, samples, source: the run's seed, values per sample and input description.
      environment: ``datarax_ops.environment.environment()``.
      gallery_png: the gallery figure as PNG, or None to leave it out.
      command: the command line that replays the run.
      target: a line naming the operators checked (``--target``), or "" for none.
    """
    verdicts = [v for run in runs for v in run.verdicts]
    overall = "FAIL" if any(v.failed for v in verdicts) else "pass"
    summary = summary_text(verdicts)
    anchors = run_anchors(runs)
    toc = " · ".join(
        f'<a href="#{a.section}">{html.escape(r.mode)}</a>'
        for r, a in zip(runs, anchors, strict=True)
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>datarax_ops conformance report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>datarax_ops conformance report: "
        f'<span class="verdict-{overall}">{overall}</span></h1>',
        f'<p id="summary">{html.escape(summary)}</p>',
        f'<p id="target">Target: {html.escape(target)}</p>' if target else "",
        f"<p>Seed {seed}, {samples:,} values per sample, input: {html.escape(source)}. "
        f"Replay: <code>{html.escape(command)}</code></p>",
        "<h2>Summary</h2>",
        "<p>A row per mode and per training setting, a column per property checked: "
        f"passed / checks ({PASS_MARK}: all passed, {FAIL_MARK}: some failed, "
        f"{NO_CHECK}: not checked). Each count links to its rows below.</p>",
        summary_grid(runs, anchors),
        f'<p id="budget">False-alarm budget: {html.escape(budget_text(verdicts))}</p>',
        f'<p>Sections: {toc} · <a href="#gallery">gallery</a> · '
        '<a href="#environment">environment</a></p>',
        f'<details id="all-verdicts"><summary>All {len(verdicts)} verdicts '
        "(the table <code>verify</code> prints)</summary>",
        _table([verdict_row(v) for v in verdicts], TABLE_COLUMNS, "verdicts"),
        "</details>",
    ]
    parts += [mode_section(run, a) for run, a in zip(runs, anchors, strict=True)]
    parts.append('<section id="gallery"><h2>Gallery</h2>')
    if gallery_png is None:
        parts.append("<p>Left out (<code>--no-gallery</code>).</p>")
    else:
        caption = "Every mode at increasing strength on the input picture (op(batch))."
        parts.append(
            f"<figure>{_png_tag(gallery_png, caption)}<figcaption>{caption}</figcaption></figure>"
        )
    parts.append("</section>")
    parts.append('<section id="environment"><h2>Environment</h2>')
    parts.append(_table(list(as_text(environment).items()), ("item", "value"), "versions"))
    parts.append("</section></body></html>")
    return "\n".join(parts)
