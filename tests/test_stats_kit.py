"""The statistical kit itself: each check accepts right samples and rejects wrong ones.

The "rejects" tests use fixed seeds and deviations many standard errors wide,
so each is a deterministic statement about the check's power at the sample
sizes the reference tests use (the chance that the check would miss is
quoted per test).  The calibration tests check that p-values under the null
hypothesis are uniform, so a check's false-alarm rate is its ``alpha``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from datarax_ops.conformance import stats as stats_kit
from datarax_ops.conformance.stats import (
    ALPHA,
    RESULTS,
    CheckResult,
    StatCheckError,
    assert_binomial,
    assert_chisquare_gof,
    assert_chisquare_homogeneity,
    assert_ks_1samp,
    assert_ks_2samp,
    assert_mean_vector,
    assert_normal_mean,
    assert_normal_variance,
    assert_poisson_counts,
    assert_uncorrelated,
    rng_for,
    scaled,
    seed_for,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
N = 20_000  # the base sample size of the reference tests
NEVER = 1e-300  # an alpha no honest p-value falls below: returns the result without raising


@pytest.fixture
def keep_results():
    """Restores RESULTS afterwards: the calibration loops would flood the power tooling."""
    before = len(RESULTS)
    yield
    del RESULTS[before:]


def assert_rejects(check, *args, **kwargs) -> CheckResult:
    with pytest.raises(StatCheckError) as excinfo:
        check(*args, **kwargs)
    result = excinfo.value.result
    assert result.pvalue < result.alpha
    return result


# --------------------------------------------------------------------------- #
# Sizes and seeds                                                              #
# --------------------------------------------------------------------------- #
def test_alpha_default():
    assert ALPHA == 1e-5


def test_stats_scale(monkeypatch):
    monkeypatch.delenv(stats_kit.SCALE_ENV, raising=False)
    assert stats_kit.stats_scale() == 1
    assert scaled(100) == 100
    monkeypatch.setenv(stats_kit.SCALE_ENV, "8")
    assert stats_kit.stats_scale() == 8
    assert scaled(100) == 800
    for bad in ("0", "-2", "x"):
        monkeypatch.setenv(stats_kit.SCALE_ENV, bad)
        with pytest.raises(ValueError, match=stats_kit.SCALE_ENV):
            stats_kit.stats_scale()


def test_fresh_seeds_flag(monkeypatch):
    monkeypatch.delenv(stats_kit.SEED_ENV, raising=False)
    assert not stats_kit.fresh_seeds()
    monkeypatch.setenv(stats_kit.SEED_ENV, "fresh")
    assert stats_kit.fresh_seeds()


def test_seed_for_is_stable_and_distinct(monkeypatch):
    monkeypatch.delenv(stats_kit.SEED_ENV, raising=False)
    seeds = {seed_for(f"test_{i}") for i in range(100)}
    assert len(seeds) == 100
    assert all(0 <= s < 2**63 for s in seeds)
    assert seed_for("a") == seed_for("a")
    a, b = rng_for("same"), rng_for("same")
    np.testing.assert_array_equal(a.random(10), b.random(10))
    assert not np.array_equal(rng_for("one").random(10), rng_for("two").random(10))


def test_seed_for_is_stable_across_processes(monkeypatch):
    """A hash()-based seed would change with PYTHONHASHSEED; sha256 does not."""
    monkeypatch.delenv(stats_kit.SEED_ENV, raising=False)
    code = "from datarax_ops.conformance.stats import seed_for; print(seed_for('cross-process'))"
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO_ROOT)}
        env.pop(stats_kit.SEED_ENV, None)
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        outputs.add(int(out.stdout))
    assert outputs == {seed_for("cross-process")}


def test_verify_seeds_ignore_the_salt(monkeypatch):
    """``run_seed``: the hash of ``"<run_seed>/<name>"`` alone (the values verify has
    always used), whatever ``DATARAX_OPS_STATS_SEED`` says."""
    expected = {(0, "gaussian/op"): 86123259, (7, "channel/params/key"): 625262083}
    for salt in (None, "fresh", "12"):
        if salt is None:
            monkeypatch.delenv(stats_kit.SEED_ENV, raising=False)
        else:
            monkeypatch.setenv(stats_kit.SEED_ENV, salt)
        for (run_seed, name), seed in expected.items():
            assert seed_for(name, run_seed=run_seed, bits=31) == seed
    assert seed_for("x", run_seed=1) == seed_for("x", run_seed=1, bits=64) & (2**63 - 1)
    with pytest.raises(ValueError, match="bits"):
        seed_for("x", bits=0)


def test_fresh_seeds_differ_and_replay(monkeypatch):
    monkeypatch.delenv(stats_kit.SEED_ENV, raising=False)
    fixed = seed_for("x")
    monkeypatch.setenv(stats_kit.SEED_ENV, "fresh")
    fresh = seed_for("x")
    assert fresh != fixed
    assert seed_for("x") == fresh  # one salt per process: stable within a run
    salt = stats_kit.seed_salt()
    monkeypatch.setenv(stats_kit.SEED_ENV, str(salt))
    assert seed_for("x") == fresh  # replay of the fresh run
    assert not stats_kit.fresh_seeds()


# --------------------------------------------------------------------------- #
# Results and errors                                                           #
# --------------------------------------------------------------------------- #
def test_results_are_recorded_and_error_message():
    before = len(RESULTS)
    ok = assert_binomial(50, 100, 0.5, what="fair coin")
    assert RESULTS[before] == ok
    assert ok.check == "binomial" and ok.what == "fair coin" and ok.alpha == ALPHA
    assert ok.pvalue == pytest.approx(1.0)
    with pytest.raises(StatCheckError) as excinfo:
        assert_binomial(90, 100, 0.5, what="loaded coin")
    err = excinfo.value
    assert isinstance(err, AssertionError)
    assert RESULTS[-1] == err.result
    assert len(RESULTS) == before + 2
    message = str(err)
    assert message.startswith("binomial rejected loaded coin: p=")
    assert f"< alpha={ALPHA:.1g}" in message
    assert "(statistic=0.9, n=100)" in message
    assert err.result.n == 100 and ok.n == 100


def test_power_helpers_match_a_simulation():
    """The stated MDEs are what the checks catch: an error of exactly the MDE is rejected
    in about 90% of 400 simulated runs (binomial 0.8 to 0.97 allowed), at alpha = 1e-3 so
    that the simulation is cheap; the closed forms match their known values."""
    alpha, runs = 1e-3, 400
    before = len(stats_kit.RESULTS)
    rng = np.random.default_rng(2024)
    n, p = 20_000, 0.1
    delta = stats_kit.mde_proportion(n, p, alpha=alpha)
    rejected = sum(
        stats_kit.collect(
            assert_binomial, rng.binomial(n, p + delta), n, p, what="mde", alpha=alpha
        ).rejected
        for _ in range(runs)
    )
    assert 0.8 * runs <= rejected <= 0.97 * runs, rejected
    ratio = stats_kit.mde_variance_ratio(5_000, alpha=alpha)
    rejected = sum(
        stats_kit.collect(
            stats_kit.assert_normal_variance,
            rng.normal(0.0, math.sqrt(1.0 + ratio), 5_000),
            1.0,
            what="mde",
            alpha=alpha,
        ).rejected
        for _ in range(runs)
    )
    assert 0.8 * runs <= rejected <= 0.97 * runs, rejected
    shift = stats_kit.mde_mean(5_000, 1.0, alpha=alpha)
    rejected = sum(
        stats_kit.collect(
            stats_kit.assert_normal_mean,
            rng.normal(shift, 1.0, 5_000),
            0.0,
            1.0,
            what="mde",
            alpha=alpha,
        ).rejected
        for _ in range(runs)
    )
    assert 0.8 * runs <= rejected <= 0.97 * runs, rejected
    assert stats_kit.chisquare_noncentrality(1) == pytest.approx(
        (stats.norm.isf(0.5e-5) + stats.norm.ppf(0.9)) ** 2, rel=0.01
    )
    assert (
        stats_kit.mde_ks(10_000)
        < stats_kit.mde_ks(2_500)
        == pytest.approx(2 * stats_kit.mde_ks(10_000))
    )
    with pytest.raises(ValueError, match="p must be in"):
        stats_kit.mde_proportion(100, 1.0)
    del stats_kit.RESULTS[before:]  # simulations at 1e-3, not checks of the suite


def test_ks_mde_is_conservative():
    """A CDF error of the stated KS MDE (a uniform law shifted by it) is caught in at
    least 90% of 200 runs (alpha 1e-3)."""
    alpha, n = 1e-3, 4_000
    before = len(stats_kit.RESULTS)
    shift = stats_kit.mde_ks(n, alpha=alpha)
    rng = np.random.default_rng(7)
    rejected = sum(
        stats_kit.collect(
            assert_ks_1samp, rng.random(n) + shift, stats.uniform.cdf, what="mde", alpha=alpha
        ).rejected
        for _ in range(200)
    )
    del stats_kit.RESULTS[before:]  # simulations at 1e-3, not checks of the suite
    assert rejected >= 0.9 * 200, rejected


def test_alpha_is_validated():
    for bad in (0.0, 1.0, -0.1, 2.0):
        with pytest.raises(ValueError, match="alpha"):
            assert_binomial(1, 2, 0.5, what="x", alpha=bad)


# --------------------------------------------------------------------------- #
# Continuous checks                                                            #
# --------------------------------------------------------------------------- #
@pytest.mark.stats
def test_ks_1samp_accepts_and_rejects():
    """Accepts N(0, 1) (false alarm 1e-5); rejects a 0.1-sigma shift at n=20000.

    The shift gives a CDF distance D = 0.04, sqrt(n) D = 5.6 against a critical
    2.47: the chance of a miss is below 1e-20.
    """
    rng = rng_for("test_ks_1samp_accepts_and_rejects")
    sample = rng.standard_normal(N)
    assert_ks_1samp(sample, stats.norm.cdf, what="N(0,1) sample")
    assert_ks_1samp(sample, stats.norm(0, 1), what="N(0,1) sample, frozen dist")
    assert_rejects(assert_ks_1samp, sample + 0.1, stats.norm.cdf, what="shifted sample")
    assert_rejects(assert_ks_1samp, np.append(sample, np.nan), stats.norm.cdf, what="nan")


@pytest.mark.stats
def test_ks_2samp_accepts_and_rejects():
    """Accepts two N(0,1) samples (1e-5); rejects a 0.1-sigma shift, n=20000 each (miss < 1e-9)."""
    rng = rng_for("test_ks_2samp_accepts_and_rejects")
    a, b = rng.standard_normal(N), rng.standard_normal(N)
    assert_ks_2samp(a, b, what="two N(0,1) samples")
    assert_rejects(assert_ks_2samp, a, b + 0.1, what="shifted second sample")


@pytest.mark.stats
def test_normal_mean_accepts_and_rejects():
    """Accepts N(0.3, 2) (1e-5); rejects a 0.1-sigma shift at n=20000 (14 standard errors)."""
    rng = rng_for("test_normal_mean_accepts_and_rejects")
    sample = 0.3 + 2.0 * rng.standard_normal(N)
    assert_normal_mean(sample, 0.3, 2.0, what="N(0.3, 2^2)")
    assert_rejects(assert_normal_mean, sample + 0.2, 0.3, 2.0, what="shifted by 0.1 sigma")
    with pytest.raises(ValueError, match="std"):
        assert_normal_mean(sample, 0.0, 0.0, what="zero std")


@pytest.mark.stats
def test_normal_variance_accepts_and_rejects():
    """Accepts N(0, 4) (1e-5); rejects std * 1.05 at n=20000 (10 standard errors) and std * 0.95."""
    rng = rng_for("test_normal_variance_accepts_and_rejects")
    z = rng.standard_normal(N)
    assert_normal_variance(1.0 + 2.0 * z, 4.0, what="N(1, 2^2)")
    assert_rejects(assert_normal_variance, 2.0 * 1.05 * z, 4.0, what="std 5% too large")
    assert_rejects(assert_normal_variance, 2.0 * 0.95 * z, 4.0, what="std 5% too small")
    with pytest.raises(ValueError):
        assert_normal_variance([1.0], 1.0, what="one value")


@pytest.mark.stats
def test_uncorrelated_accepts_and_rejects():
    """Accepts independent pairs (1e-5); rejects rho = +-0.1 at n=20000 (14 standard errors,
    miss < 1e-20), a lag-1 moving average (rho = 1/2) and a constant sample."""
    rng = rng_for("test_uncorrelated_accepts_and_rejects")
    x, noise, u = rng.standard_normal(N), rng.standard_normal(N), rng.random(N + 1)
    assert_uncorrelated(x, u[:N], what="independent normal and uniform")
    assert_uncorrelated(u[:-1], u[1:], what="successive independent uniforms")
    correlated = 0.1 * x + np.sqrt(1 - 0.1**2) * noise
    assert_rejects(assert_uncorrelated, x, correlated, what="rho = 0.1")
    assert_rejects(assert_uncorrelated, x, -correlated, what="rho = -0.1")
    moving = u[:-1] + u[1:]  # successive sums share a term: lag-1 correlation 1/2
    assert_rejects(assert_uncorrelated, moving[:-1], moving[1:], what="moving average")
    assert_rejects(assert_uncorrelated, np.ones(N), x, what="constant")
    assert_rejects(assert_uncorrelated, np.append(x, np.nan), np.append(x, 0.0), what="nan")
    with pytest.raises(ValueError, match="values"):
        assert_uncorrelated(x, x[:-1], what="lengths differ")


@pytest.mark.stats
@pytest.mark.usefixtures("keep_results")
def test_uncorrelated_is_calibrated():
    """p-values of 400 null runs are U(0, 1) (KS at 1e-5): normal pairs of 30 (where the t
    test is exact) and uniform pairs of 200 (asymptotic).  Catches a one-sided test, a
    wrong scale of the statistic or wrong degrees of freedom (CDF off by 0.18)."""
    rng = rng_for("test_uncorrelated_is_calibrated")
    normal = [
        assert_uncorrelated(
            rng.standard_normal(30), rng.standard_normal(30), what="null", alpha=NEVER
        ).pvalue
        for _ in range(400)
    ]
    uniform = [
        assert_uncorrelated(rng.random(200), rng.random(200), what="null", alpha=NEVER).pvalue
        for _ in range(400)
    ]
    for name, values in (("normal", normal), ("uniform", uniform)):
        result = stats.ks_1samp(values, stats.uniform.cdf)
        assert result.pvalue > ALPHA, f"{name} p-values not uniform: {result}"


@pytest.mark.stats
def test_mean_vector_accepts_and_rejects():
    """Hotelling's T^2: accepts correlated normal rows and Bernoulli rows at their true
    means (1e-5); rejects a shift of 0.1 sd in one coordinate at n=20000 (14 standard
    errors), a mean off along a coordinate that never varies, and NaN; bad shapes raise."""
    rng = rng_for("test_mean_vector_accepts_and_rejects")
    mixing = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.5, 0.5, 0.7]])
    rows = rng.standard_normal((N, 3)) @ mixing.T
    assert_mean_vector(rows, np.zeros(3), what="correlated normal rows")
    p = rng.random((N, 4)) < np.array([0.1, 0.3, 0.5, 0.9])
    bernoulli = np.column_stack([p, p[:, :1] | p[:, 1:2]]).astype(float)
    expected = np.array([0.1, 0.3, 0.5, 0.9, 1 - 0.9 * 0.7])
    assert_mean_vector(bernoulli, expected, what="dependent Bernoulli rows")
    per_row = np.broadcast_to(expected, bernoulli.shape)
    assert_mean_vector(bernoulli, per_row, what="per-row expectations")
    assert_rejects(assert_mean_vector, rows + np.array([0.0, 0.1, 0.0]), np.zeros(3), what="0.1 sd")
    constant = np.column_stack([rows, np.ones(N)])
    assert_mean_vector(constant, [0, 0, 0, 1.0], what="a constant coordinate at its mean")
    assert_rejects(assert_mean_vector, constant, [0, 0, 0, 0.9], what="a constant one off")
    assert_rejects(assert_mean_vector, np.vstack([rows, [np.nan] * 3]), np.zeros(3), what="nan")
    with pytest.raises(ValueError, match="rows must be"):
        assert_mean_vector(rows[:4], np.zeros(3), what="too few rows")


@pytest.mark.stats
@pytest.mark.usefixtures("keep_results")
def test_mean_vector_is_calibrated():
    """p-values of 400 null runs of 60 dependent Bernoulli rows (d = 4, asymptotic) are
    U(0, 1) (KS at 1e-5): catches wrong degrees of freedom or a missing ``(n - d) /
    (d (n - 1))`` factor."""
    rng = rng_for("test_mean_vector_is_calibrated")
    expected = np.array([0.3, 0.5, 0.5, 0.75])
    pvalues = []
    for _ in range(400):
        a, b = rng.random((2, 60)) < 0.5
        rows = np.column_stack([rng.random(60) < 0.3, a, b, a | b]).astype(float)
        pvalues.append(assert_mean_vector(rows, expected, what="null", alpha=NEVER).pvalue)
    result = stats.ks_1samp(pvalues, stats.uniform.cdf)
    assert result.pvalue > ALPHA, f"p-values not uniform: {result}"


# --------------------------------------------------------------------------- #
# Count checks                                                                 #
# --------------------------------------------------------------------------- #
@pytest.mark.stats
def test_chisquare_gof_accepts_and_rejects():
    """Accepts a multinomial(0.05, 0.15, 0.8) sample (1e-5); rejects salt 0.06 at n=20000.

    A shift of 0.01 in a 0.05 category is a non-centrality of ~42 (plus its
    mirror in the large bin), near the 0.99-power point of 2 degrees of freedom.
    Here a shift of 0.02 is used: non-centrality ~170, a miss below 1e-20.
    """
    rng = rng_for("test_chisquare_gof_accepts_and_rejects")
    probs = np.array([0.05, 0.15, 0.8])
    counts = rng.multinomial(N, probs)
    assert_chisquare_gof(counts, probs, what="multinomial sample")
    wrong = rng.multinomial(N, [0.07, 0.15, 0.78])
    assert_rejects(assert_chisquare_gof, wrong, probs, what="salt 0.07 instead of 0.05")


def test_chisquare_gof_pools_sparse_bins():
    # Unpooled, one observation in a bin expecting 0.002 would be chi2 ~ 500.
    observed = [1, 499, 500]
    probs = [0.000002, 0.499998, 0.5]
    result = assert_chisquare_gof(observed, probs, what="sparse first bin")
    assert result.statistic < 1.0
    # Sparse bins on both sides: the tail remainder joins the last full bin.
    result = assert_chisquare_gof([0, 1, 50, 48, 1], [0.001, 0.004, 0.5, 0.49, 0.005], what="x")
    assert result.pvalue > 0.5


def test_chisquare_gof_single_bin_passes_trivially():
    result = assert_chisquare_gof([3, 0, 0], [0.98, 0.01, 0.01], what="three draws")
    assert result.pvalue == 1.0
    assert result.statistic == 0.0


def test_chisquare_gof_impossible_category_fails():
    with pytest.raises(StatCheckError) as excinfo:
        assert_chisquare_gof([99, 1], [1.0, 0.0], what="impossible pepper")
    assert excinfo.value.result.pvalue == 0.0
    assert assert_chisquare_gof([100, 0], [1.0, 0.0], what="none observed").pvalue == 1.0


def test_chisquare_gof_validates_inputs():
    with pytest.raises(ValueError):
        assert_chisquare_gof([1, 2], [0.5, 0.3], what="probs do not sum to 1")
    with pytest.raises(ValueError):
        assert_chisquare_gof([1, 2, 3], [0.5, 0.5], what="lengths differ")
    with pytest.raises(ValueError):
        assert_chisquare_gof([-1, 2], [0.5, 0.5], what="negative count")
    with pytest.raises(ValueError):
        assert_chisquare_gof([0, 0], [0.5, 0.5], what="no observations")


@pytest.mark.stats
def test_chisquare_homogeneity_accepts_and_rejects():
    """Accepts two samples of one multinomial (1e-5); rejects 0.05 vs 0.08 at n=20000 each."""
    rng = rng_for("test_chisquare_homogeneity_accepts_and_rejects")
    probs = [0.05, 0.15, 0.8]
    a, b = rng.multinomial(N, probs), rng.multinomial(N // 2, probs)
    assert_chisquare_homogeneity(a, b, what="same multinomial")
    c = rng.multinomial(N, [0.08, 0.15, 0.77])
    assert_rejects(assert_chisquare_homogeneity, a, c, what="0.05 vs 0.08")


def test_chisquare_homogeneity_pools_sparse_columns():
    # The sparse first column (one observation) and an empty column are pooled/dropped.
    result = assert_chisquare_homogeneity([1, 0, 500, 500], [0, 0, 500, 500], what="sparse")
    assert result.pvalue > 0.5
    single = assert_chisquare_homogeneity([3, 1], [2, 0], what="tiny samples")
    assert single.pvalue == 1.0
    with pytest.raises(ValueError):
        assert_chisquare_homogeneity([0, 0], [1, 2], what="empty sample")


@pytest.mark.stats
def test_binomial_accepts_and_rejects():
    """Accepts Binomial(20000, 0.3) (1e-5); rejects p=0.33 (9.3 standard errors; miss < 1e-6).

    The 0.99-power point at n=20000 is a shift of 6.74 standard errors (0.022 here).
    """
    rng = rng_for("test_binomial_accepts_and_rejects")
    assert_binomial(rng.binomial(N, 0.3), N, 0.3, what="Binomial(n, 0.3)")
    assert_rejects(assert_binomial, rng.binomial(N, 0.33), N, 0.3, what="p 0.33 vs 0.3")


def test_binomial_exact_at_zero_and_one():
    assert assert_binomial(0, 10, 0.0, what="never").pvalue == 1.0
    assert assert_binomial(10, 10, 1.0, what="always").pvalue == 1.0
    for k, p in ((1, 0.0), (9, 1.0)):
        with pytest.raises(StatCheckError) as excinfo:
            assert_binomial(k, 10, p, what="exact mismatch")
        assert excinfo.value.result.pvalue == 0.0
    assert assert_binomial(0, 0, 0.5, what="no trials").pvalue == 1.0
    with pytest.raises(ValueError):
        assert_binomial(11, 10, 0.5, what="too many successes")
    with pytest.raises(ValueError):
        assert_binomial(1, 10, 1.5, what="p out of range")


@pytest.mark.stats
@pytest.mark.parametrize("lam", [0.01, 0.7, 3.0, 40.0, 1000.0])
def test_poisson_counts_accepts_and_rejects(lam):
    """Accepts Poisson(lam) counts (1e-5); rejects Poisson(1.1 lam) for lam >= 0.7 at n=20000.

    A 10% error in lam is the deviation the reference's Poisson tests are
    sized for (for lam >= ~1); at lam = 0.01 the test only checks acceptance
    and that twice the rate is caught.
    """
    rng = rng_for(f"test_poisson_counts_accepts_and_rejects[{lam}]")
    assert_poisson_counts(rng.poisson(lam, N), lam, what=f"Poisson({lam})")
    wrong = 2.0 * lam if lam < 0.5 else 1.1 * lam
    assert_rejects(assert_poisson_counts, rng.poisson(wrong, N), lam, what=f"Poisson({wrong})")


def test_poisson_counts_exact_cases():
    assert assert_poisson_counts(np.zeros(50), 0.0, what="lam 0").pvalue == 1.0
    for counts, lam in (([0, 0, 1], 0.0), ([1.5, 2.0, 3.0], 2.0), ([-1, 2, 3], 2.0)):
        with pytest.raises(StatCheckError) as excinfo:
            assert_poisson_counts(counts, lam, what="impossible counts")
        assert excinfo.value.result.pvalue == 0.0
    # One huge count lands in the tail bin, not in an enormous histogram.
    with pytest.raises(StatCheckError):
        assert_poisson_counts(np.append(np.ones(999), 1e12), 1.0, what="one absurd count")


# --------------------------------------------------------------------------- #
# Calibration: under the null hypothesis the p-values are uniform              #
# --------------------------------------------------------------------------- #
@pytest.mark.stats
@pytest.mark.usefixtures("keep_results")
def test_continuous_checks_are_calibrated():
    """p-values of 400 null runs of each continuous check are U(0, 1) (KS at 1e-5).

    Sized to catch a p-value distribution off by 0.18 in CDF (e.g. a variance
    check with the wrong degrees of freedom, or a one-sided z-test).
    """
    rng = rng_for("test_continuous_checks_are_calibrated")
    pvalues: dict[str, list[float]] = {"mean": [], "variance": [], "ks": []}
    for _ in range(400):
        x = 1.0 + 3.0 * rng.standard_normal(30)
        pvalues["mean"].append(assert_normal_mean(x, 1.0, 3.0, what="null", alpha=NEVER).pvalue)
        pvalues["variance"].append(assert_normal_variance(x, 9.0, what="null", alpha=NEVER).pvalue)
        pvalues["ks"].append(
            assert_ks_1samp(x, stats.norm(1.0, 3.0), what="null", alpha=NEVER).pvalue
        )
    for name, values in pvalues.items():
        result = stats.ks_1samp(values, stats.uniform.cdf)
        assert result.pvalue > ALPHA, f"{name} p-values not uniform: {result}"


@pytest.mark.stats
@pytest.mark.usefixtures("keep_results")
def test_count_checks_do_not_over_reject():
    """At alpha=0.01, 1000 null runs of each count check reject at most ~1% of the time.

    The bound is the binomial(1000, 0.01) quantile at 1 - 1e-5 (at most 29
    rejections): catches a check whose real level is 3x its nominal one.
    """
    rng = rng_for("test_count_checks_do_not_over_reject")
    limit = int(stats.binom.isf(ALPHA, 1000, 0.01))
    probs = np.array([0.02, 0.08, 0.9])
    rejected = {"gof": 0, "homogeneity": 0, "binomial": 0, "poisson": 0}
    for _ in range(1000):
        pv = {
            "gof": assert_chisquare_gof(
                rng.multinomial(300, probs), probs, what="null", alpha=NEVER
            ),
            "homogeneity": assert_chisquare_homogeneity(
                rng.multinomial(200, probs), rng.multinomial(300, probs), what="null", alpha=NEVER
            ),
            "binomial": assert_binomial(rng.binomial(300, 0.2), 300, 0.2, what="null", alpha=NEVER),
            "poisson": assert_poisson_counts(rng.poisson(2.5, 300), 2.5, what="null", alpha=NEVER),
        }
        for name, result in pv.items():
            rejected[name] += result.pvalue < 0.01
    assert all(count <= limit for count in rejected.values()), (rejected, limit)
