"""What every benchmark here shares: the mode table, interleaved timing, number and table
formatting.  ``run`` (cases), ``records`` (records of any size), ``training``, ``cache``
and ``pipeline`` (datarax's ``Pipeline.step``) build on it.

The mode table is the registry's (``datarax_ops.modes.MODES``): every example a mode
declares (``ModeSpec.examples``) is a bench mode labelled ``name + suffix``
(``poisson30`` is poisson's ``"30"`` example); nothing here names a mode.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from datarax_ops import modes as registry
from datarax_ops.reference.spec import ModeSpec

SEED = 0
MIN_ROUNDS = 3  # a case's time budget never cuts it below this many rounds

# label -> (operator family, config keyword arguments shared by both implementations),
# every example of every mode, in registry order
MODES: dict[str, tuple[str, dict[str, Any]]] = {
    mode.name + suffix: (mode.spec.family, {"mode": mode.name, **settings})
    for mode in registry.MODES
    for suffix, settings in mode.spec.examples
}
# a mode with several examples names all of them (``--modes poisson``)
MODE_ALIASES: dict[str, tuple[str, ...]] = {
    mode.name: mode.spec.example_labels for mode in registry.MODES if len(mode.spec.examples) > 1
}
# one example per mode, its default (``--quick``, the records and training workloads)
DEFAULT_LABELS: tuple[str, ...] = tuple(mode.spec.default_label for mode in registry.MODES)
QUICK_MODES = DEFAULT_LABELS


def registry_mode(label: str) -> registry.Mode:
    """The registry's mode of bench label ``label`` (a key of ``MODES``)."""
    return registry.by_name(MODES[label][1]["mode"])


def spec_of(label: str) -> ModeSpec:
    """The declaration (``ModeSpec``) of the mode of bench label ``label``."""
    return registry_mode(label).spec


def value_dependent_cost(label: str) -> bool:
    """Whether the cost of the mode of ``label`` depends on the pixel values (its kernel
    says so): the bench then times it on 0..1 and on 0..255 data."""
    return registry_mode(label).kernel_class.value_dependent_cost


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
