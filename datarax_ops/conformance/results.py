"""What the conformance checks produce: verdicts, the samples the report plots, rate
estimates, and the recorder that collects one mode's verdicts.

Shared by ``checks`` (the mode-agnostic checks), ``laws`` (one law per mode) and
``report`` (the HTML page).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from datarax_ops.conformance import stats as kit

PLOT_VALUES = 20_000  # values kept per sample for the report's plots
NOT_APPLICABLE = "n/a"  # the verdict of a check the target lacks a capability for
OPERATOR_LABEL = "datarax_ops"  # whose operator the plots show, unless a run names another


@dataclass(frozen=True)
class Verdict:
    """One row of the verdict table.

    ``test`` is the kit's check name (``ks_1samp``, ``binomial``, ...) or
    ``exact``; ``pvalue`` is None and ``alpha`` 0 for exact checks.
    """

    mode: str
    aspect: str  # the table's "property" column: what is checked (law, independence, ...)
    what: str
    test: str
    statistic: float | None
    pvalue: float | None
    alpha: float
    passed: bool
    detail: str = ""  # a failure's evidence, or why the check is n/a
    applicable: bool = True  # False: the target lacks what the check needs (never run)

    @property
    def statistical(self) -> bool:
        return self.pvalue is not None

    @property
    def failed(self) -> bool:
        """An applicable check that did not pass (n/a is neither a pass nor a failure)."""
        return self.applicable and not self.passed

    @property
    def verdict(self) -> str:
        if not self.applicable:
            return NOT_APPLICABLE
        return "pass" if self.passed else "FAIL"


@dataclass
class ContinuousSample:
    """A continuous statistic of the operator's output, the reference's, and its exact law."""

    title: str
    xlabel: str
    op_values: np.ndarray
    ref_values: np.ndarray
    exact: Any  # a frozen scipy.stats distribution
    exact_label: str


@dataclass
class CategoricalSample:
    """Category counts of the operator's output and the reference's, and the exact probabilities."""

    title: str
    labels: tuple[str, ...]
    op_counts: np.ndarray
    ref_counts: np.ndarray
    exact_probs: np.ndarray


@dataclass(frozen=True)
class RateEstimate:
    """A probability estimated from ``hits`` of ``trials``, with its target."""

    label: str
    hits: int
    trials: int
    target: float

    def interval(self, confidence: float = 0.99) -> tuple[float, float]:
        """Clopper-Pearson interval of the rate at ``confidence``."""
        if self.trials == 0:
            return (0.0, 1.0)
        ci = scipy_stats.binomtest(self.hits, self.trials).proportion_ci(confidence, "exact")
        return (float(ci.low), float(ci.high))

    @property
    def estimate(self) -> float:
        return self.hits / self.trials if self.trials else math.nan


@dataclass
class ModeRun:
    """Everything one mode's checks produced: verdicts and the samples the report plots."""

    mode: str
    config: Any
    verdicts: list[Verdict] = field(default_factory=list)
    samples: list[ContinuousSample | CategoricalSample] = field(default_factory=list)
    rates: list[RateEstimate] = field(default_factory=list)
    seconds: float = 0.0
    operator: str = OPERATOR_LABEL  # the target whose operator made the samples

    @property
    def passed(self) -> bool:
        """No applicable check failed."""
        return not any(v.failed for v in self.verdicts)

    @property
    def verdict(self) -> str:
        """``"FAIL"`` when a check failed, ``"n/a"`` when none applied, else ``"pass"``."""
        if not self.passed:
            return "FAIL"
        return "pass" if any(v.applicable for v in self.verdicts) else NOT_APPLICABLE


def false_alarm_budget(verdicts: Sequence[Verdict]) -> tuple[int, float]:
    """``(statistical checks, sum of their alphas)``: the union bound on the chance
    that a correct operator fails at least one of them."""
    statistical = [v for v in verdicts if v.statistical]
    return len(statistical), float(sum(v.alpha for v in statistical))


class Recorder:
    """Collects one mode's verdicts, statistical (via the kit) and exact."""

    def __init__(self, run: ModeRun, alpha: float) -> None:
        self.run, self.alpha, self.aspect = run, alpha, ""

    def stat(self, check: Callable[..., kit.CheckResult], *args: Any, what: str, **kw: Any) -> None:
        result = kit.collect(check, *args, what=what, alpha=self.alpha, **kw)
        self.run.verdicts.append(
            Verdict(
                mode=self.run.mode,
                aspect=self.aspect,
                what=what,
                test=result.check,
                statistic=result.statistic,
                pvalue=result.pvalue,
                alpha=result.alpha,
                passed=not result.rejected,
            )
        )

    def not_applicable(self, what: str, reason: str) -> None:
        """Records check ``what`` as n/a for ``reason`` (never run: not a pass, not a failure)."""
        self.run.verdicts.append(not_applicable(self.run.mode, self.aspect, what, reason))

    def exact(self, ok: bool, what: str, detail: str = "") -> bool:
        self.run.verdicts.append(
            Verdict(
                mode=self.run.mode,
                aspect=self.aspect,
                what=what,
                test="exact",
                statistic=None,
                pvalue=None,
                alpha=0.0,
                passed=bool(ok),
                detail="" if ok else detail,
            )
        )
        return bool(ok)


def not_applicable(mode: str, aspect: str, what: str, reason: str) -> Verdict:
    """The verdict row of a check that does not apply to the target, with the reason."""
    return Verdict(mode, aspect, what, "n/a", None, None, 0.0, False, reason, applicable=False)


def first_difference(expected: np.ndarray, got: np.ndarray) -> str:
    """A minimal reproduction of two arrays that should be equal: their shapes and dtypes,
    how many values differ, and the first index where they do with both values."""
    expected, got = np.asarray(expected), np.asarray(got)
    shapes = f"expected {expected.shape} {expected.dtype}, got {got.shape} {got.dtype}"
    if expected.shape != got.shape:
        return shapes
    differ = expected != got
    if not differ.any():
        return f"{shapes}; equal"
    first = tuple(int(i) for i in np.argwhere(differ)[0])
    return (
        f"{shapes}; {int(differ.sum())} of {differ.size} values differ, the first at "
        f"{first}: {expected[first]!r} vs {got[first]!r}"
    )


def plot_sample(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``values`` (any shape) as a flat float64 sample of at most ``PLOT_VALUES`` values
    (a random subset drawn with ``rng`` when there are more): what a plot keeps."""
    values = np.asarray(values, np.float64).ravel()
    if values.size <= PLOT_VALUES:
        return values
    return rng.choice(values, PLOT_VALUES, replace=False)
