"""Statistical checks shared by the test suite and ``datarax-ops verify``.

Each ``assert_*`` function runs one classical test (``scipy.stats``), appends
its :class:`CheckResult` to :data:`RESULTS` and raises :class:`StatCheckError`
(an ``AssertionError``) when the p-value falls below ``alpha``.
:func:`collect` runs one of them without raising, for callers (``verify``)
that gather every verdict instead of stopping at the first failure.

This module needs ``scipy`` (the ``verify`` extra); ``import datarax_ops``
never imports it.

False-alarm budget
------------------
A correct implementation still fails a check with probability ``alpha``.
Every check runs at ``ALPHA = 1e-5`` unless its test states otherwise, and
the suite counts its checks (:data:`RESULTS`).  Most statistical tests are
Hypothesis tests, so every example is one to three checks: the examples
multiply the checks.  Measured: the reference and kit tests make about 370
checks under the ``ci`` profile (25 examples a test, plus the explicit
``@example`` cases) and about 2300 under ``thorough`` (200 examples).  The
tests of the compiled operators add their own (each file states its count);
budgeting 1000 checks for ``ci`` and 5000 for ``thorough``, the union bound
puts a fresh-seeded run's false-alarm probability below ``1000 * 1e-5 = 1 %``
and ``5 %`` respectively.  (A derandomized run with fixed seeds has none:
see below.)

By default every seed is fixed (:func:`seed_for` hashes the test's name and
the ``ci`` Hypothesis profile is derandomized), so a green run stays green:
the only way to turn it red is a change of the code under test.  Setting
``DATARAX_OPS_STATS_SEED=fresh`` mixes fresh entropy into every seed (the
salt is printed in the pytest header); ``DATARAX_OPS_STATS_SEED=<integer>``
replays a fresh run's seeds with that salt (the ``thorough`` profile's
Hypothesis examples are random too: a failure prints its ``@reproduce_failure``
blob).  ``DATARAX_OPS_STATS_SCALE=k`` multiplies
every sample size by ``k``: the detectable deviations quoted in the tests'
docstrings shrink by ``sqrt(k)``.

Power: ``mde_mean``, ``mde_proportion``, ``mde_two_proportions``,
``mde_variance_ratio``, ``mde_ks``, ``mde_correlation`` and ``mde_multinomial_shift``
give the smallest error a check catches at its ``alpha`` with power
:data:`POWER` (0.9); ``python -m tests.power.table`` prints them for every check of
the suite.  Every result records its sample size ``n``.

Sizing: at ``alpha = 1e-5`` a two-sided z-type test detects a shift of
``(4.417 + 2.326) = 6.74`` standard errors with power 0.99; a chi-square test
with 1 or 2 degrees of freedom needs a non-centrality of about 45 or 50; the
Kolmogorov-Smirnov test needs ``sqrt(n) * D`` of about 3.6.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

ALPHA: float = 1e-5
"""Default per-check false-alarm level (see the module docstring for the suite budget)."""

SCALE_ENV = "DATARAX_OPS_STATS_SCALE"
SEED_ENV = "DATARAX_OPS_STATS_SEED"


# --------------------------------------------------------------------------- #
# Sample sizes and seeds                                                       #
# --------------------------------------------------------------------------- #
def stats_scale() -> int:
    """The sample-size multiplier ``DATARAX_OPS_STATS_SCALE`` (default 1, at least 1)."""
    raw = os.environ.get(SCALE_ENV, "1")
    try:
        scale = int(raw)
    except ValueError:
        raise ValueError(f"{SCALE_ENV} must be a positive integer, got {raw!r}") from None
    if scale < 1:
        raise ValueError(f"{SCALE_ENV} must be a positive integer, got {raw!r}")
    return scale


def scaled(n: int) -> int:
    """``n`` multiplied by :func:`stats_scale`: the sample size a test should use."""
    return int(n) * stats_scale()


def tiled(element: np.ndarray, n: int) -> np.ndarray:
    """``element`` repeated along a new leading axis until it holds at least ``n`` values.

    The reference applies element-wise modes to an array of any shape, so a
    tiled element is a cheap way to get a large sample from a small image.
    """
    element = np.asarray(element)
    copies = max(1, -(-int(n) // max(1, element.size)))
    return np.broadcast_to(element, (copies, *element.shape)).copy()


def fresh_seeds() -> bool:
    """True when ``DATARAX_OPS_STATS_SEED=fresh``: seeds change from run to run."""
    return os.environ.get(SEED_ENV) == "fresh"


_FRESH_SALT: int | None = None


def seed_salt() -> int | None:
    """The salt mixed into every seed: None by default (fixed seeds).

    ``fresh`` draws one salt per process from ``os.urandom``; an integer value
    of ``DATARAX_OPS_STATS_SEED`` is used as the salt (to replay a fresh run).
    """
    global _FRESH_SALT
    value = os.environ.get(SEED_ENV, "")
    if value == "fresh":
        if _FRESH_SALT is None:
            _FRESH_SALT = int.from_bytes(os.urandom(8), "little") & (2**63 - 1)
        return _FRESH_SALT
    if value.strip().isdigit():
        return int(value)
    return None


REPEAT_ENV = "DATARAX_OPS_STATS_REPEAT"
# The pytest node id of the running test (conftest sets it), recorded with each check.
current_test = ""
# Which repetition of a statistical test is running (set by conftest when
# DATARAX_OPS_STATS_REPEAT=N reruns every statistical test N times in one process).
current_repeat = 0


def seed_for(name: str, *, run_seed: int | None = None, bits: int = 63) -> int:
    """A stable ``bits``-bit seed for ``name`` (sha256, not ``hash()``, which is salted
    per process): the package's one way from a name to a seed.

    Tests call ``seed_for(test_id)``: the salt (``DATARAX_OPS_STATS_SEED``) and the
    repetition index (``DATARAX_OPS_STATS_REPEAT``) are mixed in.  ``datarax-ops
    verify`` passes its ``--seed`` as ``run_seed``: the hashed text is
    ``"<run_seed>/<name>"`` and nothing else, so the seed alone replays a run.

    Args:
      name: what the seed is for (a test id, ``"gaussian/op"``, ...).
      run_seed: verify's run seed, or None for the tests' salted seeds.
      bits: 1 to 64; 31 gives seeds ``nnx.Rngs`` and ``jax.random.key`` take.
    """
    if not 1 <= bits <= 64:
        raise ValueError(f"bits must be in 1..64, got {bits}")
    if run_seed is None:
        salt = seed_salt()
        text = name if salt is None else f"{name}#salt={salt}"
        if current_repeat:
            text = f"{text}#repeat={current_repeat}"
    else:
        text = f"{run_seed}/{name}"
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & (2**bits - 1)


def rng_for(name: str) -> np.random.Generator:
    """A ``numpy.random.Generator`` seeded with :func:`seed_for` ``(name)``."""
    return np.random.default_rng(seed_for(name))


# --------------------------------------------------------------------------- #
# Results                                                                      #
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class CheckResult:
    """One statistical check: which test, of what, its statistic and p-value, its level."""

    check: str
    what: str
    statistic: float
    pvalue: float
    alpha: float
    test: str = ""  # the pytest node that ran it (set by conftest)
    n: int = 0  # the sample size: values, trials, pairs (two samples: the smaller)

    @property
    def rejected(self) -> bool:
        return self.pvalue < self.alpha


class StatCheckError(AssertionError):
    """A statistical check rejected its null hypothesis; ``.result`` holds the details."""

    def __init__(self, result: CheckResult) -> None:
        self.result = result
        super().__init__(
            f"{result.check} rejected {result.what}: p={result.pvalue:.3g} < "
            f"alpha={result.alpha:.1g} (statistic={result.statistic:.6g}, n={result.n})"
        )


RESULTS: list[CheckResult] = []
"""Every check made in this process, in order (read by the power tooling)."""


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return alpha


def _finish(
    check: str, what: str, statistic: float, pvalue: float, alpha: float, n: int
) -> CheckResult:
    pvalue = float(pvalue)
    if math.isnan(pvalue):
        pvalue = 0.0  # a statistic that cannot be computed is a failure, not a pass
    result = CheckResult(
        check=check,
        what=what,
        statistic=float(statistic),
        pvalue=min(max(pvalue, 0.0), 1.0),
        alpha=alpha,
        test=current_test,
        n=int(n),
    )
    RESULTS.append(result)
    if result.rejected:
        raise StatCheckError(result)
    return result


def collect(check: Callable[..., CheckResult], *args: Any, **kwargs: Any) -> CheckResult:
    """``check(*args, **kwargs)`` (one of the ``assert_*`` functions), returning its
    :class:`CheckResult` whether or not it rejected, instead of raising.

    ``ValueError`` for bad arguments still propagates: that is a caller's bug,
    not a verdict.
    """
    try:
        return check(*args, **kwargs)
    except StatCheckError as error:
        return error.result


def _sample(sample: Any, name: str = "sample", min_size: int = 1) -> np.ndarray:
    values = np.asarray(sample, dtype=np.float64).ravel()
    if values.size < min_size:
        raise ValueError(f"{name} needs at least {min_size} values, got {values.size}")
    return values


# --------------------------------------------------------------------------- #
# Continuous distributions                                                     #
# --------------------------------------------------------------------------- #
def assert_ks_1samp(
    sample: Any,
    cdf: Callable[[np.ndarray], np.ndarray] | Any,
    *,
    what: str,
    alpha: float = ALPHA,
) -> CheckResult:
    """Kolmogorov-Smirnov test of ``sample`` against a continuous ``cdf``.

    ``cdf`` is a callable or a frozen ``scipy.stats`` distribution.  NaN or
    infinite values in the sample fail the check.
    """
    alpha = _check_alpha(alpha)
    values = _sample(sample)
    if not np.all(np.isfinite(values)):
        return _finish("ks_1samp", what, math.inf, 0.0, alpha, values.size)
    cdf_fn = cdf.cdf if hasattr(cdf, "cdf") else cdf
    res = stats.ks_1samp(values, cdf_fn)
    return _finish("ks_1samp", what, res.statistic, res.pvalue, alpha, values.size)


def assert_ks_2samp(a: Any, b: Any, *, what: str, alpha: float = ALPHA) -> CheckResult:
    """Two-sample Kolmogorov-Smirnov test: ``a`` and ``b`` have the same distribution."""
    alpha = _check_alpha(alpha)
    xa, xb = _sample(a, "a"), _sample(b, "b")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(xb))):
        return _finish("ks_2samp", what, math.inf, 0.0, alpha, min(xa.size, xb.size))
    res = stats.ks_2samp(xa, xb)
    return _finish("ks_2samp", what, res.statistic, res.pvalue, alpha, min(xa.size, xb.size))


def assert_normal_mean(
    sample: Any, mean: float, std: float, *, what: str, alpha: float = ALPHA
) -> CheckResult:
    """Two-sided z-test that ``sample`` (known ``std``) has mean ``mean``."""
    alpha = _check_alpha(alpha)
    values = _sample(sample)
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std!r}")
    z = (values.mean() - mean) / (std / math.sqrt(values.size))
    if not math.isfinite(z):
        return _finish("normal_mean", what, math.inf, 0.0, alpha, values.size)
    return _finish("normal_mean", what, z, 2.0 * stats.norm.sf(abs(z)), alpha, values.size)


def assert_normal_variance(
    sample: Any, variance: float, *, what: str, alpha: float = ALPHA
) -> CheckResult:
    """Two-sided chi-square test that a normal ``sample`` has variance ``variance``.

    The mean is estimated: ``(n - 1) s^2 / variance ~ chi2(n - 1)``.
    """
    alpha = _check_alpha(alpha)
    values = _sample(sample, min_size=2)
    if not variance > 0:
        raise ValueError(f"variance must be > 0, got {variance!r}")
    dof = values.size - 1
    statistic = dof * values.var(ddof=1) / variance
    if not math.isfinite(statistic):
        return _finish("normal_variance", what, math.inf, 0.0, alpha, values.size)
    pvalue = 2.0 * min(stats.chi2.cdf(statistic, dof), stats.chi2.sf(statistic, dof))
    return _finish("normal_variance", what, statistic, pvalue, alpha, values.size)


def assert_uncorrelated(x: Any, y: Any, *, what: str, alpha: float = ALPHA) -> CheckResult:
    """Two-sided test that paired samples ``x`` and ``y`` have correlation 0.

    The Pearson correlation ``r`` of the pairs, with the t statistic
    ``r sqrt((n - 2) / (1 - r^2))`` on ``n - 2`` degrees of freedom: exact for
    independent normal pairs, and for any independent pairs with finite
    variance as ``n`` grows (``sqrt(n) r`` is then asymptotically N(0, 1)).  At
    ``alpha = 1e-5`` it detects ``|rho| >= 6.74 / sqrt(n)`` with power 0.99.
    A sample that is constant (or has NaN / infinite values) fails.
    """
    alpha = _check_alpha(alpha)
    a, b = _sample(x, "x", min_size=3), _sample(y, "y", min_size=3)
    if a.shape != b.shape:
        raise ValueError(f"x has {a.size} values, y {b.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return _finish("uncorrelated", what, math.inf, 0.0, alpha, a.size)
    da, db = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    if denominator == 0.0:
        return _finish("uncorrelated", what, math.nan, 0.0, alpha, a.size)
    r = min(max(float(np.dot(da, db)) / denominator, -1.0), 1.0)
    dof = a.size - 2
    t = r * math.sqrt(dof / max(1.0 - r * r, 1e-300))
    return _finish("uncorrelated", what, r, 2.0 * stats.t.sf(abs(t), dof), alpha, a.size)


def assert_poisson_variance(
    sample: Any, mean: float, step: float, *, what: str, alpha: float = ALPHA
) -> CheckResult:
    """Two-sided z-test that ``sample = step * K``, ``K ~ Poisson(mean / step)``, has
    variance ``mean * step`` (shot noise: ``step = s / lam_scale``).

    The test statistic is the mean of ``(v - mean)^2`` (the mean is known), whose
    standard deviation per value is ``step^2 sqrt(lam + 2 lam^2)`` with
    ``lam = mean / step`` (the Poisson fourth central moment ``lam + 3 lam^2``).
    A relative variance error of ``r`` is caught (power 0.9) when
    ``r > 5.70 sqrt(lam + 2 lam^2) / (lam sqrt(n))``: 2.5% for ``lam >= 4`` at
    ``n = 200000``.
    """
    alpha = _check_alpha(alpha)
    values = _sample(sample)
    mean, step = float(mean), float(step)
    if not (mean > 0 and step > 0):
        raise ValueError(f"mean and step must be > 0, got {mean!r} and {step!r}")
    lam = mean / step
    squared = (values - mean) ** 2
    spread = step**2 * math.sqrt(lam + 2.0 * lam**2) / math.sqrt(values.size)
    z = (squared.mean() - mean * step) / spread
    if not math.isfinite(z):
        return _finish("poisson_variance", what, math.inf, 0.0, alpha, values.size)
    return _finish("poisson_variance", what, z, 2.0 * stats.norm.sf(abs(z)), alpha, values.size)


def assert_mean_vector(rows: Any, mean: Any, *, what: str, alpha: float = ALPHA) -> CheckResult:
    """Hotelling's one-sample T^2 test (Hotelling 1931) that independent ``rows``
    ``(n, d)`` have mean vector ``mean`` (``(d,)``, or ``(n, d)``: each row's own
    expectation), with their covariance estimated from the rows.

    ``T^2 = n m' S^-1 m`` (``m`` the mean of ``rows - mean``, ``S`` their sample
    covariance); ``(n - d) T^2 / (d (n - 1)) ~ F(d, n - d)``: exact for normal rows,
    and for any independent rows with finite covariance as ``n`` grows.  This is the
    test for dependent coordinates (the covered pixels of one record), where a
    chi-square over the coordinates would assume independence.  A singular covariance
    (a coordinate that never varies) tests its non-degenerate directions, and
    rejects exactly a mean off along the others; NaN or
    infinite values fail.  Detects a mean shift of ``delta`` standard deviations along
    a direction when ``n delta^2`` reaches :func:`chisquare_noncentrality` of ``d``.
    """
    alpha = _check_alpha(alpha)
    values = np.asarray(rows, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < values.shape[1] + 2:
        raise ValueError(f"rows must be (n, d) with n >= d + 2, got shape {values.shape}")
    n = values.shape[0]
    differences = values - np.broadcast_to(np.asarray(mean, np.float64), values.shape)
    if not np.all(np.isfinite(differences)):
        return _finish("mean_vector", what, math.inf, 0.0, alpha, n)
    centre = differences.mean(axis=0)
    covariance = np.atleast_2d(np.cov(differences, rowvar=False))
    eigenvalues, vectors = np.linalg.eigh(covariance)
    keep = eigenvalues > eigenvalues.max(initial=0.0) * 1e-10
    d = int(keep.sum())
    projected = vectors[:, keep].T @ centre
    # along a direction that never varies the mean is exact or wrong
    if not np.allclose(vectors[:, ~keep].T @ centre, 0.0, atol=1e-9):
        return _finish("mean_vector", what, math.inf, 0.0, alpha, n)
    if d == 0:
        return _finish("mean_vector", what, 0.0, 1.0, alpha, n)
    t2 = n * float(np.sum(projected**2 / eigenvalues[keep]))
    f = (n - d) * t2 / (d * (n - 1))
    return _finish("mean_vector", what, t2, float(stats.f.sf(f, d, n - d)), alpha, n)


# --------------------------------------------------------------------------- #
# Counts                                                                       #
# --------------------------------------------------------------------------- #
def _pool_ordered(
    observed: np.ndarray, expected: np.ndarray, min_expected: float
) -> tuple[np.ndarray, np.ndarray]:
    """Merges adjacent bins left to right until each has ``expected >= min_expected``.

    A sparse bin joins its right neighbour; a sparse remainder at the end joins
    the last complete bin.  Totals are preserved.
    """
    pooled_o: list[float] = []
    pooled_e: list[float] = []
    acc_o = acc_e = 0.0
    for o, e in zip(observed, expected, strict=True):
        acc_o += float(o)
        acc_e += float(e)
        if acc_e >= min_expected:
            pooled_o.append(acc_o)
            pooled_e.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_o > 0 or acc_e > 0:
        if pooled_e:
            pooled_o[-1] += acc_o
            pooled_e[-1] += acc_e
        else:
            pooled_o.append(acc_o)
            pooled_e.append(acc_e)
    return np.asarray(pooled_o), np.asarray(pooled_e)


def _chisquare_gof(
    observed: np.ndarray, probs: np.ndarray, min_expected: float
) -> tuple[float, float]:
    """(statistic, p-value) of a pooled chi-square goodness-of-fit test."""
    total = observed.sum()
    # An outcome of probability exactly 0 that happens is an exact rejection.
    if np.any((probs == 0) & (observed > 0)):
        return math.inf, 0.0
    pooled_o, pooled_e = _pool_ordered(observed, probs * total, min_expected)
    if pooled_o.size < 2:
        return 0.0, 1.0
    statistic = float(np.sum((pooled_o - pooled_e) ** 2 / pooled_e))
    return statistic, float(stats.chi2.sf(statistic, pooled_o.size - 1))


def _counts(values: Any, name: str) -> np.ndarray:
    counts = np.asarray(values, dtype=np.float64).ravel()
    if counts.size == 0:
        raise ValueError(f"{name} is empty")
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError(f"{name} must be finite non-negative counts, got {counts!r}")
    return counts


def assert_chisquare_gof(
    observed_counts: Sequence[float] | np.ndarray,
    expected_probs: Sequence[float] | np.ndarray,
    *,
    what: str,
    alpha: float = ALPHA,
    min_expected: float = 5.0,
) -> CheckResult:
    """Chi-square goodness of fit of category counts against category probabilities.

    Bins are taken in the given order; a bin whose expected count is below
    ``min_expected`` is pooled with its neighbour (so order them so that
    neighbours are comparable, e.g. by value).  When a single bin remains the
    check passes trivially with p-value 1.  A category of probability exactly 0
    that was observed fails with p-value 0.
    """
    alpha = _check_alpha(alpha)
    observed = _counts(observed_counts, "observed_counts")
    probs = np.asarray(expected_probs, dtype=np.float64).ravel()
    if probs.shape != observed.shape:
        raise ValueError(f"{observed.size} observed bins but {probs.size} probabilities")
    if np.any(probs < 0) or abs(probs.sum() - 1.0) > 1e-6:
        raise ValueError(f"expected_probs must be >= 0 and sum to 1, got {probs!r}")
    if observed.sum() == 0:
        raise ValueError("observed_counts are all zero: nothing to test")
    statistic, pvalue = _chisquare_gof(observed, probs / probs.sum(), min_expected)
    return _finish("chisquare_gof", what, statistic, pvalue, alpha, observed.sum())


def assert_chisquare_homogeneity(
    counts_a: Sequence[float] | np.ndarray,
    counts_b: Sequence[float] | np.ndarray,
    *,
    what: str,
    alpha: float = ALPHA,
    min_expected: float = 5.0,
) -> CheckResult:
    """Chi-square test that two samples of category counts share one distribution.

    A 2 x K contingency table; empty columns are dropped and adjacent sparse
    columns pooled until every expected cell is at least ``min_expected``.
    One remaining column passes trivially with p-value 1.
    """
    alpha = _check_alpha(alpha)
    a = _counts(counts_a, "counts_a")
    b = _counts(counts_b, "counts_b")
    if a.shape != b.shape:
        raise ValueError(f"counts_a has {a.size} bins, counts_b {b.size}")
    rows = np.array([a.sum(), b.sum()])
    if np.any(rows == 0):
        raise ValueError("both samples need at least one count")
    total = rows.sum()
    columns = a + b
    # Expected cell = row * column / total: pool columns until the smaller row's cell is big enough.
    column_needed = min_expected * total / rows.min()
    keep = columns > 0
    pooled_a, _ = _pool_ordered(a[keep], columns[keep], column_needed)
    pooled_b, _ = _pool_ordered(b[keep], columns[keep], column_needed)
    if pooled_a.size < 2:
        return _finish("chisquare_homogeneity", what, 0.0, 1.0, alpha, rows.min())
    table = np.vstack([pooled_a, pooled_b])
    expected = np.outer(rows, table.sum(axis=0)) / total
    statistic = float(np.sum((table - expected) ** 2 / expected))
    pvalue = float(stats.chi2.sf(statistic, table.shape[1] - 1))
    return _finish("chisquare_homogeneity", what, statistic, pvalue, alpha, rows.min())


def assert_binomial(
    successes: int, trials: int, p: float, *, what: str, alpha: float = ALPHA
) -> CheckResult:
    """Exact two-sided binomial test (``scipy.stats.binomtest``) of ``successes`` of ``trials``.

    ``p == 0`` and ``p == 1`` are exact: any success (any failure) fails with p-value 0.
    """
    alpha = _check_alpha(alpha)
    k, n, p = int(successes), int(trials), float(p)
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= successes <= trials, got {k} of {n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if n == 0:
        return _finish("binomial", what, 0.0, 1.0, alpha, n)
    if p == 0.0 or p == 1.0:
        expected = 0 if p == 0.0 else n
        mismatch = abs(k - expected)
        return _finish("binomial", what, k / n, 1.0 if mismatch == 0 else 0.0, alpha, n)
    res = stats.binomtest(k, n, p, alternative="two-sided")
    return _finish("binomial", what, k / n, res.pvalue, alpha, n)


def assert_poisson_counts(
    counts: Any, lam: float, *, what: str, alpha: float = ALPHA
) -> CheckResult:
    """Chi-square goodness of fit of integer ``counts`` to ``Poisson(lam)``.

    Bins are the counts ``0, 1, ...`` up to far into the upper tail, then one
    tail bin; sparse bins are pooled with their neighbours.  Counts that are
    negative or not integers fail with p-value 0; ``lam == 0`` requires every
    count to be 0.
    """
    alpha = _check_alpha(alpha)
    values = np.asarray(counts, dtype=np.float64).ravel()
    lam = float(lam)
    if values.size == 0:
        raise ValueError("counts is empty")
    if not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be finite and >= 0, got {lam!r}")
    finite = np.all(np.isfinite(values))
    if not finite or np.any(values < 0) or np.any(values != np.round(values)):
        return _finish("poisson_counts", what, math.inf, 0.0, alpha, values.size)
    if lam == 0.0:
        nonzero = int(np.count_nonzero(values))
        return _finish(
            "poisson_counts", what, nonzero, 1.0 if nonzero == 0 else 0.0, alpha, values.size
        )
    dist = stats.poisson(lam)
    cap = int(dist.isf(1e-15)) + 1  # mass above the cap is < 1e-15: the tail bin
    ks = np.arange(cap + 1)
    observed = np.bincount(np.minimum(values, cap + 1).astype(np.int64), minlength=cap + 2)
    probs = np.concatenate([dist.pmf(ks), [dist.sf(cap)]])
    statistic, pvalue = _chisquare_gof(observed.astype(np.float64), probs / probs.sum(), 5.0)
    return _finish("poisson_counts", what, statistic, pvalue, alpha, values.size)


# --------------------------------------------------------------------------- #
# Power: the smallest error each check catches                                  #
# --------------------------------------------------------------------------- #
POWER: float = 0.9
"""The power at which :func:`mde_proportion` and the other ``mde_*`` functions state the
minimal detectable effect (MDE): an error of that size is caught with probability 0.9."""


def _z_sum(alpha: float, power: float) -> float:
    """``z(1 - alpha/2) + z(power)``: standard errors a two-sided z-test needs (5.70 at
    ``alpha = 1e-5``, power 0.9)."""
    return float(stats.norm.isf(_check_alpha(alpha) / 2.0) + stats.norm.ppf(_check_power(power)))


def _check_power(power: float) -> float:
    power = float(power)
    if not 0.5 <= power < 1.0:
        raise ValueError(f"power must be in [0.5, 1), got {power!r}")
    return power


def _check_n(n: float) -> float:
    if not n >= 2:
        raise ValueError(f"n must be at least 2, got {n!r}")
    return float(n)


def mde_mean(n: int, sd: float, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest shift of a mean that :func:`assert_normal_mean` catches: ``(z(1 - alpha/2)
    + z(power)) sd / sqrt(n)`` for ``n`` values of standard deviation ``sd``."""
    return _z_sum(alpha, power) * float(sd) / math.sqrt(_check_n(n))


def mde_correlation(n: int, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest correlation :func:`assert_uncorrelated` catches on ``n`` pairs (small rho:
    ``sqrt(n) r`` is about N(sqrt(n) rho, 1))."""
    return _z_sum(alpha, power) / math.sqrt(_check_n(n))


def mde_proportion(n: int, p: float, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest absolute error of a probability ``p`` that :func:`assert_binomial` on ``n``
    trials catches (normal approximation with the null and the alternative's variances;
    the worse of an error up and down).  ``p`` in (0, 1)."""
    trials, p = _check_n(n), float(p)
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    z_alpha = float(stats.norm.isf(_check_alpha(alpha) / 2.0))
    z_power = float(stats.norm.ppf(_check_power(power)))
    worst = 0.0
    for sign in (1.0, -1.0):
        room = (1.0 - p) if sign > 0 else p  # the largest error possible this way

        def short(delta: float, sign: float = sign) -> float:
            q = p + sign * delta
            null = z_alpha * math.sqrt(p * (1.0 - p) / trials)
            return null + z_power * math.sqrt(q * (1.0 - q) / trials) - delta

        worst = max(worst, room if short(room) > 0 else _root(short, 0.0, room))
    return worst


def mde_two_proportions(
    n_a: int, n_b: int, p: float, *, alpha: float = ALPHA, power: float = POWER
) -> float:
    """Smallest difference of two probabilities near ``p`` that a 2 x 2
    :func:`assert_chisquare_homogeneity` on ``n_a`` and ``n_b`` trials catches."""
    spread = math.sqrt(p * (1.0 - p) * (1.0 / _check_n(n_a) + 1.0 / _check_n(n_b)))
    return _z_sum(alpha, power) * spread


def mde_variance_ratio(n: int, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest relative variance error ``r - 1`` (``r`` = true / stated variance, the worse
    of up and down) that :func:`assert_normal_variance` catches on ``n`` normal values:
    exact, ``(n - 1) s^2 / v ~ r chi2(n - 1)``.  A standard deviation error is
    ``sqrt(1 + that) - 1``, about half."""
    dof = _check_n(n) - 1.0
    alpha, power = _check_alpha(alpha), _check_power(power)
    up = stats.chi2.isf(alpha / 2.0, dof) / stats.chi2.ppf(1.0 - power, dof)
    down = stats.chi2.ppf(alpha / 2.0, dof) / stats.chi2.isf(1.0 - power, dof)
    return float(max(up - 1.0, 1.0 - down))


def mde_ks(n: float, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest sup-distance ``D`` between the true and the stated CDF that a
    Kolmogorov-Smirnov test on ``n`` values catches: ``(c(alpha) + z(power) / 2) / sqrt(n)``,
    with ``c(alpha)`` the asymptotic Kolmogorov critical value (2.47 at 1e-5) and the
    empirical CDF's error at the worst point at most ``1 / (2 sqrt(n))`` in standard
    deviation (conservative).  Two samples of ``n`` and ``m``: pass ``n m / (n + m)``."""
    n = _check_n(n)
    critical = float(stats.kstwobign.isf(_check_alpha(alpha)))
    return (critical + float(stats.norm.ppf(_check_power(power))) / 2.0) / math.sqrt(n)


def chisquare_noncentrality(df: int, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """The non-centrality a chi-square test with ``df`` degrees of freedom needs to reject
    with probability ``power`` at level ``alpha`` (32.5 at df 1, 35.8 at df 2, for 1e-5
    and 0.9)."""
    if not df >= 1:
        raise ValueError(f"df must be at least 1, got {df!r}")
    critical = stats.chi2.isf(_check_alpha(alpha), df)
    target = _check_power(power)
    return _root(lambda lam: float(stats.ncx2.sf(critical, df, lam)) - target, 1e-9, 1e4)


def mde_multinomial_shift(
    n: int,
    p_from: float,
    p_to: float,
    *,
    df: int,
    alpha: float = ALPHA,
    power: float = POWER,
) -> float:
    """Smallest probability ``delta`` moved from a category of probability ``p_from`` to one
    of ``p_to`` that a chi-square goodness of fit with ``df`` degrees of freedom on ``n``
    values catches: ``n delta^2 (1 / p_from + 1 / p_to)`` reaches
    :func:`chisquare_noncentrality`."""
    needed = chisquare_noncentrality(df, alpha=alpha, power=power)
    return math.sqrt(needed / (_check_n(n) * (1.0 / p_from + 1.0 / p_to)))


def _root(f: Callable[[float], float], low: float, high: float) -> float:
    from scipy.optimize import brentq

    return float(brentq(f, low, high, xtol=1e-12, rtol=1e-10))


__all__ = [
    "ALPHA",
    "POWER",
    "RESULTS",
    "CheckResult",
    "StatCheckError",
    "assert_binomial",
    "assert_chisquare_gof",
    "assert_chisquare_homogeneity",
    "assert_ks_1samp",
    "assert_ks_2samp",
    "assert_mean_vector",
    "assert_normal_mean",
    "assert_normal_variance",
    "assert_poisson_counts",
    "assert_poisson_variance",
    "assert_uncorrelated",
    "chisquare_noncentrality",
    "collect",
    "fresh_seeds",
    "mde_correlation",
    "mde_ks",
    "mde_mean",
    "mde_multinomial_shift",
    "mde_proportion",
    "mde_two_proportions",
    "mde_variance_ratio",
    "rng_for",
    "scaled",
    "seed_for",
    "seed_salt",
    "stats_scale",
    "tiled",
]
