"""What every benchmark here shares: the mode table, interleaved timing, number and table
formatting.  ``run`` (cases), ``records`` (records of any size), ``training``, ``cache``
and ``pipeline`` (datarax's ``Pipeline.step``) build on it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

SEED = 0
MIN_ROUNDS = 3  # a case's time budget never cuts it below this many rounds

# mode name -> (operator kind, config keyword arguments shared by both implementations)
MODES: dict[str, tuple[str, dict[str, Any]]] = {
    "gaussian": ("noise", {"mode": "gaussian", "noise_std": 0.05}),
    "salt_pepper": ("noise", {"mode": "salt_pepper", "salt_prob": 0.05, "pepper_prob": 0.05}),
    "pixel": ("dropout", {"mode": "pixel", "dropout_rate": 0.2}),
    "channel": ("dropout", {"mode": "channel", "dropout_rate": 0.2}),
    "poisson1": ("noise", {"mode": "poisson", "lam_scale": 1.0}),
    "poisson30": ("noise", {"mode": "poisson", "lam_scale": 30.0}),
    "poisson255": ("noise", {"mode": "poisson", "lam_scale": 255.0}),
}
MODE_ALIASES: dict[str, tuple[str, ...]] = {"poisson": ("poisson1", "poisson30", "poisson255")}
QUICK_MODES = ("gaussian", "salt_pepper", "pixel", "channel", "poisson30")


def time_interleaved(
    calls: dict[str, Callable[[], Any]], rounds: int, budget_s: float | None = None
) -> dict[str, list[float]]:
    """Calls every function once per round, in the given order, for ``rounds`` rounds.

    Each function must block until its result is ready.  Returns the wall
    time of every call in **seconds**, by name, in round order.  Interleaving
    puts the machine's slow spells on every function alike, so ratios of
    minima (or medians) taken from the same rounds are fair.

    With ``budget_s``, stops after the first round that ends past ``budget_s``
    seconds, once ``MIN_ROUNDS`` rounds (or ``rounds``, if fewer) are done.
    """
    times: dict[str, list[float]] = {name: [] for name in calls}
    started = time.perf_counter()
    for done in range(1, rounds + 1):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
        over_budget = budget_s is not None and time.perf_counter() - started > budget_s
        if over_budget and done >= MIN_ROUNDS:
            break
    return times


def summary(seconds: Sequence[float]) -> dict[str, float]:
    """``{"min_ms", "median_ms"}`` of call times given in seconds."""
    return {"min_ms": min(seconds) * 1e3, "median_ms": statistics.median(seconds) * 1e3}


def fmt(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (no exponent below 1e6)."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    magnitude = int(np.floor(np.log10(abs(value))))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:.{decimals}f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    """Prints ``rows`` under ``header`` as a ``rich`` table (the Markdown file has them too)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name in header:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(width=200).print(table)
