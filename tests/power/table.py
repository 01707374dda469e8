"""``python -m tests.power.table``: every statistical check's smallest error caught.

One row per check of the operators' laws: the check, its sample size n (at
``DATARAX_OPS_STATS_SCALE``, so ``DATARAX_OPS_STATS_SCALE=8`` gives the ``stats``
session's table), its false-alarm level and the smallest error it catches with
power 0.9 (``datarax_ops.conformance.stats.POWER``), from the kit's ``mde_*``
functions.  The sizes are imported from the tests themselves, so the table cannot
drift from them.  Rows marked "goal" are a strength, probability or rate that the
default session must catch at a 3% relative error (``GOAL``);
``tests/test_power_table.py`` holds them to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from datarax_ops.conformance import stats as kit

GOAL = 0.03  # relative error of a strength, probability or rate the default session catches


@dataclass(frozen=True)
class Row:
    """One check: what it tests, n, its level, the smallest error caught (absolute or
    relative, as ``caught`` says) and whether it carries the 3% goal."""

    check: str
    n: int
    caught: str
    relative: float | None = None  # the relative error caught, for goal rows
    goal: bool = False
    alpha: float = kit.ALPHA


def _rate_row(check: str, n: int, p: float, *, goal: bool = False) -> Row:
    """A probability ``p`` tested by an exact binomial on ``n`` trials."""
    delta = kit.mde_proportion(n, p)
    return Row(check, n, f"{delta:.2g} ({delta / p:.1%} of {p:g})", delta / p, goal)


def _keep_row(check: str, n: int, rate: float, *, goal: bool = False) -> Row:
    """A dropout rate tested through the keep probability ``1 - rate``."""
    delta = kit.mde_proportion(n, 1.0 - rate)
    return Row(check, n, f"{delta:.2g} ({delta / rate:.1%} of rate {rate:g})", delta / rate, goal)


def _poisson_row(check: str, n: int, lam: float, *, goal: bool = False) -> Row:
    """Variance (i.e. lam_scale) error caught by ``assert_poisson_variance``."""
    relative = kit.mde_mean(n, math.sqrt(lam + 2.0 * lam**2)) / lam
    return Row(check, n, f"variance / lam_scale {relative:.1%} (lam {lam:g})", relative, goal)


def rows() -> list[Row]:
    """Every row, at the current ``DATARAX_OPS_STATS_SCALE``."""
    from tests import test_distributions as dist
    from tests import test_reference_noise as ref_noise
    from tests import test_reference_training as ref_training
    from tests import test_training_api as training

    values = math.prod(dist.batch_shape())
    sp = math.prod(dist.salt_pepper_shape())
    ch = dist.channel_shape()
    decisions = ch[0] * ch[3]
    records = training.STATS_RECORDS * kit.stats_scale()
    std_ratio = math.sqrt(1.0 + kit.mde_variance_ratio(values)) - 1.0
    out = [
        Row(
            "gaussian noise_std (variance chi-square, op(batch) and params)",
            values,
            f"std {std_ratio:.2%}",
            std_ratio,
            True,
        ),
        Row(
            "gaussian noise_mean (z-test)",
            values,
            f"{kit.mde_mean(values, 1.0):.3f} std",
        ),
        Row("gaussian law (KS vs scipy)", values, f"CDF {kit.mde_ks(values):.4f}"),
        Row(
            "gaussian vs the reference (two-sample KS)", values, f"CDF {kit.mde_ks(values / 2):.4f}"
        ),
        _rate_row("gaussian mass clipped at 0 (binomial)", values, 0.0228),
        _rate_row("gaussian mass clipped at 1 (binomial)", values, 0.0912),
        Row(
            "speckle noise_std (variance chi-square of out / x - 1, op(batch) and params)",
            values,
            f"std {std_ratio:.2%}",
            std_ratio,
            True,
        ),
        Row("speckle law of out / x - 1 (KS vs scipy)", values, f"CDF {kit.mde_ks(values):.4f}"),
        Row(
            "uint8 gaussian rounding (chi-square, 24 dof)",
            values,
            f"non-centrality {kit.chisquare_noncentrality(24):.0f}",
        ),
        Row(
            "salt_prob 0.05 (chi-square GOF, 2 dof)",
            sp,
            *_shift(sp, 0.05, 0.85),
            True,
        ),
        Row(
            "pepper_prob 0.10 (chi-square GOF, 2 dof)",
            sp,
            *_shift(sp, 0.10, 0.85),
            True,
        ),
        Row(
            "salt_prob 0.02 (byte case, chi-square GOF, 2 dof)",
            sp,
            *_shift(sp, 0.02, 0.93),
        ),
        Row(
            "salt / pepper vs the reference (homogeneity, 0.05)",
            sp,
            f"{kit.mde_two_proportions(sp, sp, 0.05) / 0.05:.1%} of 0.05",
        ),
    ]
    for lam in (0.05, 0.5, 5.0, 50.0, 500.0):
        out.append(_poisson_row("poisson variance (unit, x = 0.5)", values, lam, goal=lam >= 5))
    for rate in (0.02, 0.1, 0.3, 0.5):
        out.append(
            _keep_row("pixel dropout_rate (binomial, op(batch))", sp, rate, goal=rate >= 0.1)
        )
    for rate in dist.CHANNEL_RATES:
        out.append(
            _keep_row("channel dropout_rate (binomial, op(batch))", decisions, rate, goal=True)
        )
    out += [
        _keep_row("keep_mask of generate_random_params (binomial)", 65536 * kit.stats_scale(), 0.3),
        _keep_row("fixed pattern (stochastic=False) keep rate", 512 * 512 * 4, 0.25, goal=True),
        Row(
            "pair correlation of records (z-test of sqrt(m-1) r)",
            120,
            f"r {kit.mde_mean(120, 1.0) / math.sqrt(12287):.4f} shared by all pairs",
        ),
        Row(
            "training: each strength's law (KS, compiled)",
            records,
            f"CDF {kit.mde_ks(records):.4f} (a 5% narrowing is 0.05)",
            kit.mde_ks(records),
            True,
        ),
        _rate_row("training: apply_prob 0.7 (binomial, compiled)", records, 0.7, goal=True),
        Row(
            "training: strength vs first value (rank correlation, compiled)",
            records,
            f"rho {kit.mde_correlation(records):.3f}",
        ),
        _rate_row(
            "reference: apply_prob 0.7 (full size)",
            ref_training.N_APPLY_FULL * kit.stats_scale(),
            0.7,
            goal=True,
        ),
        _rate_row(
            "reference: apply_prob 0.5 (Hypothesis examples)",
            ref_training.N_APPLY * kit.stats_scale(),
            0.5,
        ),
        Row(
            "reference: salt_prob 0.05 (full size, GOF)",
            ref_noise.N_PROBABILITY * kit.stats_scale(),
            *_shift(ref_noise.N_PROBABILITY * kit.stats_scale(), 0.05, 0.85),
            True,
        ),
        Row(
            "reference: salt_prob 0.05 (Hypothesis examples, GOF)",
            ref_noise.N * kit.stats_scale(),
            *_shift(ref_noise.N * kit.stats_scale(), 0.05, 0.85),
        ),
        _poisson_row(
            "reference: poisson lam_scale (x = 0.5, lam_scale 1)",
            ref_noise.N_LAM_SCALE * kit.stats_scale(),
            0.5,
            goal=True,
        ),
    ]
    return out


def _shift(n: int, p: float, p_from: float) -> tuple[str, float]:
    """(text, relative) for a probability ``p`` taking mass from a category ``p_from``."""
    delta = kit.mde_multinomial_shift(n, p_from, p, df=2)
    return f"{delta:.2g} ({delta / p:.1%} of {p:g})", delta / p


def markdown() -> str:
    lines = [
        f"| check | n | alpha | smallest error caught (power {kit.POWER:g}) | 3% goal |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for row in rows():
        goal = "-" if not row.goal else ("met" if (row.relative or 1.0) <= GOAL else "MISSED")
        lines.append(f"| {row.check} | {row.n:,} | {row.alpha:g} | {row.caught} | {goal} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"scale {kit.stats_scale()} (DATARAX_OPS_STATS_SCALE)\n")
    print(markdown())
