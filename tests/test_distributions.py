"""The compiled operators' draws vs scipy.stats and vs the reference (distributional equivalence).

Every sample here is drawn by ``datarax_ops`` through its public batch API
(``op(batch)``, or ``op.generate_random_params`` for the params) from an
operator built by ``tests.factory.make_operator`` with seed
``seed_for(<test id>) % 2**31``.  It is compared

* with ``scipy.stats`` (one-sample: KS, z-tests of mean and variance, exact
  binomial, chi-square goodness of fit, Poisson counts), and
* with the NumPy reference's own draws, from ``rng_for(<test id>/reference)``
  (two-sample KS, chi-square homogeneity).

Constant or value-separated images make the distribution of every output value
known: gaussian residuals ``out - 0.5``, salt / pepper / unchanged categories,
Poisson counts ``k = out * lam_scale / s``, kept / dropped values.  Batches are
``(16, 64, 64, 3)`` (196608 values) unless a test says otherwise; all sizes go
through ``scaled`` (``DATARAX_OPS_STATS_SCALE``).

False alarms: every statistical check runs at ``ALPHA = 1e-5``; the file makes
about 150 of them at scale 1 (a fixed-seed run is deterministic), so a fresh-seeded
run fails by chance with probability below ``150 * 1e-5 = 0.15 %``.  Power: the
smallest error each check catches with power 0.9 is computed by the kit's ``mde_*``
functions from the sizes defined here and printed by ``python -m tests.power.table``
(``tests/test_power_table.py`` holds every strength, probability and rate to a 3%
error); some docstrings also quote the older power-0.99 sizing.  The statistical
checks of a test run before its exact checks, and an impossible outcome (a value
that is neither kept nor dropped, off the Poisson lattice, ...) is a category of
probability 0, so the statistics alone reject a wrong law (``nox -s power``).
"""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
import pytest
from scipy import stats

import datarax_ops as dx
from datarax_ops import reference
from datarax_ops.conformance.stats import (
    assert_binomial,
    assert_chisquare_gof,
    assert_chisquare_homogeneity,
    assert_ks_1samp,
    assert_ks_2samp,
    assert_normal_mean,
    assert_normal_variance,
    assert_poisson_counts,
    assert_poisson_variance,
    assert_uncorrelated,
    rng_for,
    scaled,
    seed_for,
)
from tests.factory import make_operator, run_batch

pytestmark = pytest.mark.stats


def batch_shape() -> tuple[int, int, int, int]:
    """``(16 * scale, 64, 64, 3)``: 196608 values at scale 1, one compiled shape for most tests."""
    return (scaled(16), 64, 64, 3)


def channel_shape() -> tuple[int, int, int, int]:
    """``(8192 * scale, 2, 2, 64)``: 524288 channel decisions at scale 1 (a 3% error of
    dropout_rate 0.1 is caught)."""
    return (scaled(8192), 2, 2, 64)


def salt_pepper_shape() -> tuple[int, int, int, int]:
    """``(64 * scale, 64, 64, 3)``: 786432 values at scale 1 (a 3% error of salt_prob 0.05,
    or of the pixel dropout_rate 0.1, is caught)."""
    return (scaled(64), 64, 64, 3)


# --------------------------------------------------------------------------- #
# Helpers                                                                      #
# --------------------------------------------------------------------------- #
def noise_config(mode: str, **kw) -> dx.NoiseOperatorConfig:
    return dx.NoiseOperatorConfig(field_key="image", mode=mode, stochastic=True, **kw)


def dropout_config(mode: str, rate: float, **kw) -> dx.DropoutOperatorConfig:
    return dx.DropoutOperatorConfig(
        field_key="image", mode=mode, dropout_rate=rate, stochastic=True, **kw
    )


def operator_for(config, test_id: str):
    """The operator under test, seeded from the test's id."""
    return make_operator(config, seed=seed_for(test_id) % 2**31)


def reference_batch(config, images: np.ndarray, test_id: str) -> np.ndarray:
    """The reference's output for ``images``: ``reference.draw`` + ``reference.apply_batch``."""
    rng = rng_for(f"{test_id}/reference")
    params = reference.draw(config, rng, images.shape[1:], images.shape[0])
    return reference.apply_batch(config, images, params)


def uniform_images(test_id: str, shape, low: float, high: float) -> np.ndarray:
    """float32 images uniform in ``[low, high]`` (away from the fill values 0, 1 and 255)."""
    return rng_for(f"{test_id}/image").uniform(low, high, shape).astype(np.float32)


def pair_statistics(rows_a: np.ndarray, rows_b: np.ndarray | None = None) -> np.ndarray:
    """``sqrt(m - 1) * r`` (Pearson) for record pairs: ~ N(0, 1) when records are independent.

    ``rows_a`` (and ``rows_b``) are ``(records, m)``.  Without ``rows_b`` the
    pairs are ``i < j`` within ``rows_a``; with it, every ``(i, j)`` across.
    The statistics of different pairs are uncorrelated under independence.
    """
    rows_a = np.asarray(rows_a, np.float64)
    m = rows_a.shape[1]
    if rows_b is None:
        r = np.corrcoef(rows_a)[np.triu_indices(rows_a.shape[0], k=1)]
    else:
        count = rows_a.shape[0]
        r = np.corrcoef(np.vstack([rows_a, np.asarray(rows_b, np.float64)]))[:count, count:]
    return np.sqrt(m - 1.0) * r.ravel()


def distinct_rows(rows: np.ndarray) -> int:
    """How many different rows ``rows`` (records x values) holds, bit for bit."""
    return len({np.ascontiguousarray(row).tobytes() for row in rows})


# --------------------------------------------------------------------------- #
# Params: generate_random_params vs scipy and vs the reference's draw          #
# --------------------------------------------------------------------------- #
PARAM_CASES = {
    "gaussian": noise_config("gaussian", noise_std=0.1, noise_mean=0.0, clip_range=None),
    "salt_pepper": noise_config("salt_pepper", salt_prob=0.05, pepper_prob=0.1),
    "poisson": noise_config("poisson", lam_scale=10.0, clip_range=None),
    "speckle": noise_config("speckle", noise_std=0.1, noise_mean=0.0, clip_range=None),
}
# Modes whose params are the normal noise ``mean + std * z`` (speckle's: the multiplier - 1).
NORMAL_PARAM_MODES = ("gaussian", "speckle")


@pytest.mark.parametrize("mode", list(PARAM_CASES))
def test_noise_params_match_scipy_and_reference(mode):
    """``generate_random_params``: gaussian (and speckle) noise ~ N(mean, std^2), levels ~ U[0, 1).

    Shapes and dtypes equal the reference draw's.  Gaussian: 4 checks at 1e-5
    on 196608 values (KS vs scipy: CDF error 0.008; mean: 0.015 sigma; variance:
    a 2.2% error; two-sample KS vs the reference: CDF error 0.011), so a
    ``std * 1.03`` (variance +6.1%) or ``mean + 0.01`` (0.1 sigma) draw fails.
    Uniform levels: 2 checks (KS vs U[0, 1): 0.008; two-sample: 0.011), enough
    for e.g. levels ``u ** 1.05``.  Verified: the gaussian checks reject std x1.03 and
    mean +0.01 and the level checks reject ``u ** 1.05`` (temporary kernel hacks).
    """
    test_id = f"test_noise_params_match_scipy_and_reference/{mode}"
    config = PARAM_CASES[mode]
    shape = batch_shape()
    op = operator_for(config, test_id)
    key = jax.random.key(seed_for(f"{test_id}/key") % 2**31)
    params = op.generate_random_params(key, {"image": shape})
    ref = reference.draw(config, rng_for(f"{test_id}/reference"), shape[1:], shape[0])
    assert list(params) == list(ref)
    name = next(iter(ref))
    got = np.asarray(params[name])
    assert got.shape == ref[name].shape == shape
    assert got.dtype == ref[name].dtype == np.float32
    what = f"{mode} params {name!r} of generate_random_params"
    if mode in NORMAL_PARAM_MODES:
        mean, std = config.noise_mean, config.noise_std
        assert_ks_1samp(got, stats.norm(mean, std), what=what)
        assert_normal_mean(got, mean, std, what=what)
        assert_normal_variance(got, std**2, what=what)
    else:
        assert np.all((got >= 0.0) & (got < 1.0)), "uniform levels outside [0, 1)"
        assert_ks_1samp(got, stats.uniform(0.0, 1.0), what=what)
    assert_ks_2samp(got, ref[name], what=f"{what} vs the reference's draw")


# --------------------------------------------------------------------------- #
# gaussian                                                                     #
# --------------------------------------------------------------------------- #
GAUSS_CASES = [(1e-5, 2e-5), (0.1, 0.0), (20.0, -3.0)]  # (noise_std, noise_mean)


@pytest.mark.parametrize(("std", "mean"), GAUSS_CASES, ids=[f"{s}-{m}" for s, m in GAUSS_CASES])
def test_gaussian_residuals_are_normal(std, mean):
    """``op(batch)`` on a constant 0.5 image, ``clip_range=None``: ``out - 0.5 ~ N(mean, std^2)``.

    4 checks at 1e-5 on 196608 values: KS vs ``scipy.stats.norm`` (detects a
    CDF error of 0.008), the mean (z-test: a shift of 0.015 sigma), the
    variance (chi-square: a 2.2% error) and two-sample KS vs the reference's
    residuals (CDF error 0.011).  At std 0.1 a ``std * 1.03`` operator
    (variance +6.1%, 2.8x the detectable error) or ``mean + 0.01`` (0.1 sigma,
    6.6x) is rejected.  Verified with temporary variants: std x1.03 (variance
    check) and mean +0.01 (mean and KS checks) fail.  The float32 output
    rounds ``0.5 + noise`` to 6e-8, i.e. 0.006 sigma at std 1e-5: far below
    what these checks resolve.
    """
    test_id = f"test_gaussian_residuals_are_normal/{std}/{mean}"
    config = noise_config("gaussian", noise_std=std, noise_mean=mean, clip_range=None)
    images = np.full(batch_shape(), 0.5, np.float32)
    out = run_batch(operator_for(config, test_id), images)
    assert out.shape == images.shape and out.dtype == np.float32
    residual = out.astype(np.float64) - 0.5
    what = f"gaussian residuals of op(batch), std={std}, mean={mean}"
    assert_ks_1samp(residual, stats.norm(mean, std), what=what)
    assert_normal_mean(residual, mean, std, what=what)
    assert_normal_variance(residual, std**2, what=what)
    ref_residual = reference_batch(config, images, test_id).astype(np.float64) - 0.5
    assert_ks_2samp(residual, ref_residual, what=f"{what} vs the reference's")


# --------------------------------------------------------------------------- #
# speckle                                                                      #
# --------------------------------------------------------------------------- #
SPECKLE_CASES = [(0.1, 0.0), (0.5, -0.2)]  # (noise_std, noise_mean)


@pytest.mark.parametrize(("std", "mean"), SPECKLE_CASES, ids=[f"{s}-{m}" for s, m in SPECKLE_CASES])
def test_speckle_relative_change_is_normal(std, mean):
    """``op(batch)`` on images uniform in [0.05, 1], ``clip_range=None``:
    ``out / x - 1 ~ N(mean, std^2)`` (the multiplier minus 1, whatever ``x``).

    4 checks at 1e-5 on 196608 values, sized as gaussian's: KS vs ``scipy.stats.norm``
    (CDF error 0.008), the mean (a shift of 0.015 sigma), the variance (a 2.2% error)
    and two-sample KS vs the reference's (0.011).  So ``std * 1.05`` (variance +10%)
    and an additive ``x + noise`` (``out / x - 1 = noise / x``: variance x ~4, heavy
    tails) are rejected.  The float32 product moves ``out / x`` by about 6e-8, far below
    what these checks resolve.
    """
    test_id = f"test_speckle_relative_change_is_normal/{std}/{mean}"
    config = noise_config("speckle", noise_std=std, noise_mean=mean, clip_range=None)
    images = uniform_images(test_id, batch_shape(), 0.05, 1.0)
    out = run_batch(operator_for(config, test_id), images)
    assert out.shape == images.shape and out.dtype == np.float32
    x = images.astype(np.float64)
    change = out.astype(np.float64) / x - 1.0
    what = f"speckle out / x - 1 of op(batch), std={std}, mean={mean}"
    assert_ks_1samp(change, stats.norm(mean, std), what=what)
    assert_normal_mean(change, mean, std, what=what)
    assert_normal_variance(change, std**2, what=what)
    ref_change = reference_batch(config, images, test_id).astype(np.float64) / x - 1.0
    assert_ks_2samp(change, ref_change, what=f"{what} vs the reference's")


def test_gaussian_zero_std_is_the_identity():
    """``noise_std=0`` (mean 0.3): the law is the point mass at x, whatever the mean; the
    values that moved number Binomial(n, 0) (one fails the check with p = 0)."""
    test_id = "test_gaussian_zero_std_is_the_identity"
    config = noise_config("gaussian", noise_std=0.0, noise_mean=0.3, clip_range=None)
    images = np.full(batch_shape(), 0.5, np.float32)
    out = run_batch(operator_for(config, test_id), images)
    moved = out != images
    assert_binomial(int(moved.sum()), moved.size, 0.0, what="values moved by std 0")


def test_gaussian_default_clip_point_masses():
    """Default ``clip_range=(0, 1)``, x = 0.5, std 0.3, mean 0.1: masses at 0 and 1.

    ``P(out == 0) = Phi(-2) = 0.0228`` and ``P(out == 1) = 1 - Phi(4/3) = 0.0912``
    (exact binomial tests, 2 checks at 1e-5 on 196608 values: they detect
    errors of 0.0023 and 0.0044, i.e. 10% and 4.8% of the masses); the values
    strictly inside follow the normal truncated to (0, 1) (KS, CDF error 0.009)
    and the three categories (0, inside, 1) match the reference's counts
    (chi-square homogeneity, 2 dof).  4 checks in all.  Verified with temporary
    variants: no clipping fails the exact range check; std x1.03 (mass at 1
    +7%) and mean +0.01 (mass at 1 +6%, at 0 -8%) fail all four checks.
    """
    test_id = "test_gaussian_default_clip_point_masses"
    std, mean = 0.3, 0.1
    config = noise_config("gaussian", noise_std=std, noise_mean=mean)
    assert config.clip_range == (0.0, 1.0)
    images = np.full(batch_shape(), 0.5, np.float32)
    out = run_batch(operator_for(config, test_id), images).astype(np.float64).ravel()
    loc = 0.5 + mean
    p_low = stats.norm.cdf(0.0, loc, std)
    p_high = stats.norm.sf(1.0, loc, std)
    low, high = out == 0.0, out == 1.0
    assert_binomial(int(low.sum()), out.size, p_low, what="gaussian mass clipped to 0")
    assert_binomial(int(high.sum()), out.size, p_high, what="gaussian mass clipped to 1")
    assert np.all((out >= 0.0) & (out <= 1.0)), "values outside the clip range"
    inside = out[~(low | high)]
    truncated = stats.truncnorm((0.0 - loc) / std, (1.0 - loc) / std, loc=loc, scale=std)
    assert_ks_1samp(inside, truncated, what="gaussian values inside the clip range")
    ref = reference_batch(config, images, test_id).astype(np.float64).ravel()

    def categories(values):
        return [np.sum(values == 0.0), np.sum((values > 0.0) & (values < 1.0)), np.sum(values == 1)]

    assert_chisquare_homogeneity(
        categories(out), categories(ref), what="clipped gaussian categories vs the reference"
    )


# --------------------------------------------------------------------------- #
# salt & pepper                                                                #
# --------------------------------------------------------------------------- #
# id: (salt_prob, pepper_prob, record ranges, clip_range)
SP_CASES = {
    "unit": (0.05, 0.10, "unit", (0.0, 1.0)),
    "unit-salt0": (0.0, 0.3, "unit", (0.0, 1.0)),
    "unit-salt1": (1.0, 0.0, "unit", (0.0, 1.0)),
    "unit-none": (0.0, 0.0, "unit", (0.0, 1.0)),
    "byte-noclip": (0.02, 0.05, "byte", None),
    "byte-clip255": (0.3, 0.1, "byte", (0.0, 255.0)),
    "mixed-noclip": (0.05, 0.10, "mixed", None),
    "threshold-noclip": (0.05, 0.10, "threshold", None),
}


def salt_pepper_images(test_id: str, ranges: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and each record's automatic salt value (1.0 for 0..1, 255 for 0..255 records).

    0..1 records are uniform in [0.1, 0.9], 0..255 records in [10, 245], so
    salt, pepper (0) and unchanged values are told apart exactly.  "mixed":
    even records 0..255, odd records 0..1 (the range rule is per record).
    "threshold": 0..255 records (max > 1.5) of values in [0.1, 1.8].
    """
    shape = salt_pepper_shape()
    unit = uniform_images(f"{test_id}/unit", shape, 0.1, 0.9)
    top = (0.1, 1.8) if ranges == "threshold" else (10.0, 245.0)
    byte = uniform_images(f"{test_id}/byte", shape, *top)
    is_byte = np.zeros(shape[0], bool)
    if ranges in ("byte", "threshold"):
        is_byte[:] = True
    elif ranges == "mixed":
        is_byte[::2] = True
    images = np.where(is_byte[:, None, None, None], byte, unit)
    salts = np.where(is_byte, 255.0, 1.0).astype(np.float32)
    return images, salts


def salt_pepper_counts(images, out, salts) -> np.ndarray:
    """``[salt, pepper, unchanged, other]`` counts (other: not exactly one of the three,
    a category of probability 0)."""
    salt = out == salts[:, None, None, None]
    pepper = out == 0.0
    unchanged = out == images
    category_count = salt.astype(int) + pepper.astype(int) + unchanged.astype(int)
    other = category_count != 1
    return np.array(
        [(salt & ~other).sum(), (pepper & ~other).sum(), (unchanged & ~other).sum(), other.sum()],
        dtype=np.float64,
    )


@pytest.mark.parametrize("case", list(SP_CASES))
def test_salt_pepper_counts_are_multinomial(case):
    """Counts of salt / pepper / unchanged values of ``op(batch)`` ~ Multinomial(n, probs).

    ``probs = (salt_prob, pepper_prob, 1 - both)``; salt is the automatic value
    of each record (1.0 for 0..1 records, 255 for 0..255 records, with
    ``clip_range`` None or (0, 255)), checked exactly by the categories.  2
    checks at 1e-5 on 196608 values: chi-square GOF (2 dof; at (0.05, 0.10) a
    salt_prob of 0.055, i.e. x1.1, gives non-centrality 104, twice the 50
    needed) and homogeneity vs the reference's counts (non-centrality 52 for the
    same error).  Probabilities 0 and 1 are exact: an impossible category
    fails with p = 0.  Verified with temporary variants: salt_prob x1.1 and
    salt/pepper swapped fail the GOF and homogeneity checks (every case with
    salt_prob != pepper_prob); pepper 0.1 instead of 0, and salt 255 in the
    0..1 records of "mixed" (a batch-wide range rule), fail the exact categories.
    """
    test_id = f"test_salt_pepper_counts_are_multinomial/{case}"
    salt_prob, pepper_prob, ranges, clip_range = SP_CASES[case]
    config = noise_config(
        "salt_pepper", salt_prob=salt_prob, pepper_prob=pepper_prob, clip_range=clip_range
    )
    images, salts = salt_pepper_images(test_id, ranges)
    out = run_batch(operator_for(config, test_id), images)
    assert out.dtype == np.float32
    counts = salt_pepper_counts(images, out, salts)
    probs = [salt_prob, pepper_prob, 1.0 - salt_prob - pepper_prob, 0.0]
    what = f"salt/pepper/unchanged counts of op(batch), {case}"
    assert_chisquare_gof(counts, probs, what=what)
    ref_counts = salt_pepper_counts(images, reference_batch(config, images, test_id), salts)
    assert_chisquare_homogeneity(counts, ref_counts, what=f"{what} vs the reference's")


# --------------------------------------------------------------------------- #
# poisson                                                                      #
# --------------------------------------------------------------------------- #
POISSON_CONVENTIONS = {"unit": (0.5, 1.0), "byte": (100.0, 255.0)}  # constant x, scale s
LAM_SCALES = (0.1, 1.0, 10.0, 100.0, 1000.0)


def poisson_config(lam_scale: float) -> dx.NoiseOperatorConfig:
    return noise_config("poisson", lam_scale=lam_scale, clip_range=None)


def poisson_counts(out: np.ndarray, lam_scale: float, scale: float) -> np.ndarray:
    """``k = out * lam_scale / s``: whole numbers to float32 rounding (snapped to them);
    an output off the lattice stays fractional, which ``assert_poisson_counts`` rejects."""
    raw = out.astype(np.float64) * (lam_scale / scale)
    k = np.rint(raw)
    on_lattice = np.abs(raw - k) <= 1e-5 * np.maximum(k, 1.0)
    return np.where(on_lattice, k, raw)


@functools.cache
def poisson_draw(convention: str, lam_scale: float) -> np.ndarray:
    """``op(batch)`` on the constant image of ``convention`` (float32 output, cached)."""
    test_id = f"test_poisson/{convention}/{lam_scale}"
    x, _ = POISSON_CONVENTIONS[convention]
    images = np.full(batch_shape(), x, np.float32)
    out = run_batch(operator_for(poisson_config(lam_scale), test_id), images)
    out.setflags(write=False)
    return out


@pytest.mark.parametrize("lam_scale", LAM_SCALES)
@pytest.mark.parametrize("convention", list(POISSON_CONVENTIONS))
def test_poisson_counts_mean_and_variance(convention, lam_scale):
    """Constant x: ``out = k * s / lam_scale`` with ``k ~ Poisson(x * lam_scale / s)``.

    x = 0.5 (0..1, s = 1: lam = 0.05 ... 500) or x = 100 (0..255, s = 255:
    lam = 0.039 ... 392), ``clip_range=None``.  Exact: every output is on the
    lattice ``k * s / lam_scale``.  4 checks at 1e-5 on 196608 values: the
    counts vs ``scipy.stats.poisson`` (chi-square GOF); the mean of ``out`` is x
    (z-test); its variance is ``x * s / lam_scale`` -- a *larger* lam_scale
    gives *less* variance -- as a z-test of ``E[(out - x)^2]`` with the exact
    Poisson fourth moment (sd of ``(k - lam)^2`` = ``sqrt(lam + 2 lam^2)``), which
    detects a variance error of 8% at lam = 0.039, 3.2% at 0.39 and 2.3% or
    less from lam = 3.9 on, so variance x1.1 fails everywhere; and homogeneity
    of the counts vs the reference's.  Verified with temporary variants:
    variance x1.1 fails all 10 cases, both as ``lam_scale / 1.1`` (lattice;
    and, lattice check disabled, counts, variance and homogeneity) and as the
    output spread about x by sqrt(1.1) (variance check, p <= 2e-15); the 255
    scaling dropped fails every "byte" case (lattice; without it all three
    count/variance checks, p = 0); an inverted lam_scale fails all but
    lam_scale = 1.
    """
    test_id = f"test_poisson/{convention}/{lam_scale}"
    x, scale = POISSON_CONVENTIONS[convention]
    lam = x * lam_scale / scale
    out = poisson_draw(convention, lam_scale)
    what = f"poisson op(batch), x={x}, lam_scale={lam_scale} (lam={lam:.4g})"
    step = scale / lam_scale  # the output value of one count
    values = out.astype(np.float64).ravel()
    assert_normal_mean(values, x, math.sqrt(x * step), what=f"mean of {what}")
    assert_poisson_variance(values, x, step, what=f"variance of {what}")
    k = poisson_counts(out, lam_scale, scale)
    assert_poisson_counts(k, lam, what=f"counts of {what}")
    config = poisson_config(lam_scale)
    images = np.full(batch_shape(), x, np.float32)
    ref_k = poisson_counts(reference_batch(config, images, test_id), lam_scale, scale)
    top = int(max(k.max(), ref_k.max())) + 1
    assert_chisquare_homogeneity(
        np.bincount(k.astype(np.int64).ravel(), minlength=top),  # k is whole: checked above
        np.bincount(ref_k.astype(np.int64).ravel(), minlength=top),
        what=f"counts of {what} vs the reference's",
    )


@pytest.mark.parametrize("convention", list(POISSON_CONVENTIONS))
def test_poisson_variance_falls_as_lam_scale_grows(convention):
    """The sample variance of ``out`` falls about tenfold per tenfold lam_scale (0.1 ... 1000).

    Exact up to sampling: each ratio must lie in (5, 20) around the specified
    10; its relative error is below 2% here, so a chance failure is beyond 40
    sigma.  The seed page's "higher = more noise" reading fails at once.
    Reuses the draws of ``test_poisson_counts_mean_and_variance``.
    """
    variances = [poisson_draw(convention, ls).astype(np.float64).var() for ls in LAM_SCALES]
    ratios = np.array(variances[:-1]) / np.array(variances[1:])
    assert np.all((ratios > 5.0) & (ratios < 20.0)), (
        f"variance per lam_scale {LAM_SCALES}: {variances} (ratios {ratios})"
    )


def test_poisson_negative_inputs_give_zero_counts():
    """A constant x = -0.5 has ``lam = max(x, 0) * lam_scale = 0``: every count is 0
    (``assert_poisson_counts`` with lam 0 on 196608 values: one non-zero count fails
    it with p = 0)."""
    test_id = "test_poisson_negative_inputs_give_zero_counts"
    images = np.full(batch_shape(), -0.5, np.float32)
    out = run_batch(operator_for(poisson_config(10.0), test_id), images)
    k = poisson_counts(out, 10.0, 1.0)
    assert_poisson_counts(k, 0.0, what="poisson counts of op(batch) on x = -0.5")


# --------------------------------------------------------------------------- #
# integer outputs                                                              #
# --------------------------------------------------------------------------- #
def test_gaussian_uint8_outputs_are_the_rounded_normal():
    """uint8 x = 100, std 2, mean 0.3 (raw units), clip (0, 255): ``out - x`` is
    ``N(0.3, 4)`` rounded to the nearest integer, ``P(k) = Phi((k + 0.5 - 0.3) / 2) -
    Phi((k - 0.5 - 0.3) / 2)`` (ties have probability 0).  Chi-square GOF at 1e-5 on
    196608 values over k = -12..12; truncation toward zero instead of rounding moves
    0.5 of a count of mass (non-centrality in the thousands)."""
    test_id = "test_gaussian_uint8_outputs_are_the_rounded_normal"
    std, mean, x = 2.0, 0.3, 100
    config = noise_config("gaussian", noise_std=std, noise_mean=mean, clip_range=(0.0, 255.0))
    images = np.full(batch_shape(), x, np.uint8)
    out = run_batch(operator_for(config, test_id), images)
    assert out.dtype == np.uint8
    k = out.astype(np.int64).ravel() - x
    edges = np.arange(-12, 13)
    cdf = stats.norm.cdf(np.concatenate([[-np.inf], edges[1:] - 0.5, [np.inf]]), mean, std)
    observed = np.bincount(np.clip(k, -12, 12) + 12, minlength=edges.size)
    assert_chisquare_gof(observed, np.diff(cdf), what="uint8 gaussian residuals of op(batch)")


# --------------------------------------------------------------------------- #
# dropout                                                                      #
# --------------------------------------------------------------------------- #
def kept_and_dropped(
    images: np.ndarray, out: np.ndarray, rate: float, what: str, kept_value=None
) -> np.ndarray:
    """Bool keep decisions per value, after a chi-square GOF of the categories kept
    (``out == kept_value``, default the image), dropped (0) and neither (probability 0:
    one such value fails the check with p = 0)."""
    kept_value = images if kept_value is None else kept_value
    kept, dropped = out == kept_value, out == 0
    neither = kept == dropped
    assert_chisquare_gof(
        [np.sum(kept & ~neither), np.sum(dropped & ~neither), np.sum(neither)],
        [1.0 - rate, rate, 0.0],
        what=f"kept / dropped / neither, {what}",
    )
    return kept


PIXEL_RATES = (0.0, 0.02, 0.1, 0.3, 0.5, 1.0)


@pytest.mark.parametrize("rate", PIXEL_RATES)
def test_pixel_keep_rate_is_binomial(rate):
    """Pixel mode ``op(batch)``: each value kept with probability ``1 - rate``, independently.

    Images uniform in [0.1, 1] (so kept and dropped are told apart exactly).
    Rate 0: the output is the input; rate 1: all zero (exact binomials).
    Otherwise 3 checks at 1e-5 on 196608 values: the exact binomial test of
    the kept count (detects a keep-rate error of 0.0046 at rate 0.1, 0.0076 at
    rate 0.5: so rate+0.02 at rate 0.1 fails at 30 standard errors and a keep
    rate of p instead of 1 - p at rate 0.3 at 390); the kept count per pixel
    (3 channels) vs Binomial(3, 1 - rate) (chi-square: decisions shared by a
    pixel's channels); homogeneity with the reference's kept/dropped counts.
    Verified with temporary variants: keep rate p instead of 1 - p (rate 0.3)
    and rate + 0.02 (rate 0.1) fail the binomial check; a decision per pixel
    shared over the channels fails the per-pixel check.
    """
    test_id = f"test_pixel_keep_rate_is_binomial/{rate}"
    config = dropout_config("pixel", rate)
    images = uniform_images(test_id, salt_pepper_shape(), 0.1, 1.0)
    out = run_batch(operator_for(config, test_id), images)
    what = f"pixel keep decisions of op(batch), rate={rate}"
    kept = kept_and_dropped(images, out, rate, what)
    keep = 1.0 - rate
    assert_binomial(int(kept.sum()), kept.size, keep, what=what)
    if rate == 0.0:
        np.testing.assert_array_equal(out, images)
    if 0.0 < rate < 1.0:
        per_pixel = kept.sum(axis=-1).ravel()
        channels = kept.shape[-1]
        observed = np.bincount(per_pixel, minlength=channels + 1)
        expected = stats.binom.pmf(np.arange(channels + 1), channels, keep)
        assert_chisquare_gof(observed, expected, what=f"kept channels per pixel, rate={rate}")
        ref_out = reference_batch(config, images, test_id)
        ref_kept = kept_and_dropped(images, ref_out, rate, f"{what}, the reference's")
        assert_chisquare_homogeneity(
            [kept.sum(), kept.size - kept.sum()],
            [ref_kept.sum(), ref_kept.size - ref_kept.sum()],
            what=f"{what} vs the reference's",
        )


# --------------------------------------------------------------------------- #
# Coarse dropout (issue 24): the holes' law, and the coverage map               #
# --------------------------------------------------------------------------- #
COARSE_SHAPE = (12, 20, 3)  # H != W, neither a power of two (a bucket's shape would be)
COARSE_RECORDS = 4_000  # records of the params checks (16000 holes)
COARSE_COVERAGE_RECORDS = 2_000  # records of the coverage map (a binomial per pixel)


def coarse_config(**kw) -> dx.DropoutOperatorConfig:
    fields = {"hole_count_range": (0, 4), "hole_size_range": (0.15, 0.7), "fill_value": 0.05}
    return dx.DropoutOperatorConfig(
        field_key="image", mode="coarse", stochastic=True, **{**fields, **kw}
    )


def test_coarse_params_follow_the_law():
    """``generate_random_params`` of 4000 records: the count vs ``randint(0, 5)`` and each
    side vs ``max(1, floor(U * side + 0.5))`` (scipy's uniform CDF at the rounding edges)
    by chi-square; the corners, randomized to ``(y0 + U) / (H - h + 1)``, vs U(0, 1) by KS;
    height vs width uncorrelated (square holes: rho ~ 0.9; at n = 16000 the test catches
    |rho| >= 0.053); and each vs the reference's draws.  10 checks at 1e-5."""
    from datarax_ops.conformance.laws.coarse import corner_levels, ideal_sides

    test_id = "test_coarse_params_follow_the_law"
    config = coarse_config()
    records = scaled(COARSE_RECORDS)
    params = operator_for(config, test_id).generate_random_params(
        jax.random.key(seed_for(test_id) % 2**31), {"image": (records, *COARSE_SHAPE)}
    )
    params = {name: np.asarray(value) for name, value in params.items()}
    ref = reference.draw(config, rng_for(f"{test_id}/reference"), COARSE_SHAPE, records)
    values = np.arange(5)
    counts = [np.sum(params["hole_count"] == v) for v in values]
    assert_chisquare_gof(counts, stats.randint(0, 5).pmf(values), what="hole count")
    ref_counts = [np.sum(ref["hole_count"] == v) for v in values]
    assert_chisquare_homogeneity(counts, ref_counts, what="hole count vs the reference's")
    sizes, corners = params["hole_sizes"].reshape(-1, 2), params["hole_corners"].reshape(-1, 2)
    rng = rng_for(f"{test_id}/corners")
    for axis, length in enumerate(COARSE_SHAPE[:2]):
        observed = np.bincount(sizes[:, axis], minlength=length + 1)
        expected = ideal_sides(length, *config.hole_size_range)
        assert_chisquare_gof(observed, expected, what=f"hole sides along axis {axis}")
        ref_observed = np.bincount(ref["hole_sizes"].reshape(-1, 2)[:, axis], minlength=length + 1)
        assert_chisquare_homogeneity(observed, ref_observed, what=f"sides {axis} vs reference")
        levels = corner_levels(corners[:, axis], sizes[:, axis], length, rng)
        assert_ks_1samp(levels, stats.uniform(), what=f"hole corners along axis {axis}")
    assert_uncorrelated(sizes[:, 0], sizes[:, 1], what="hole height vs width")


def test_coarse_coverage_map_is_the_exact_expectation():
    """``op(batch)`` on 2000 constant records: each pixel covered (the fill on every
    channel) in Binomial(2000, p) records, ``p`` the reference's exact coverage
    probability; 240 checks at 1e-5 / 240 (1e-5 for the map).  Then (exact) every
    other value is its input."""
    from datarax_ops.reference.modes.coarse import coverage_probability

    test_id = "test_coarse_coverage_map_is_the_exact_expectation"
    config = coarse_config(hole_count_range=(1, 3))
    records = scaled(COARSE_COVERAGE_RECORDS)
    images = np.full((records, *COARSE_SHAPE), 0.5, np.float32)
    out = run_batch(operator_for(config, test_id), images)
    covered = np.all(out == np.float32(0.05), axis=-1).sum(axis=0)
    probability = coverage_probability(config, *COARSE_SHAPE[:2])
    alpha = 1e-5 / probability.size
    for (y, x), p in np.ndenumerate(probability):
        assert_binomial(
            int(covered[y, x]), records, float(p), what=f"pixel ({y}, {x})", alpha=alpha
        )
    untouched = np.all(out == images, axis=-1) | np.all(out == np.float32(0.05), axis=-1)
    assert untouched.all()


CHANNEL_RATES = (0.1, 0.3)


@pytest.mark.parametrize("rate", CHANNEL_RATES)
def test_channel_mask_is_per_channel_and_binomial(rate):
    """Channel mode ``op(batch)`` on ``(256, 4, 4, 64)``: one decision per (record, channel).

    Exact: within each record and channel all 16 values are kept or all are
    zeroed (a mask drawn per pixel fails this at once).  3 checks at 1e-5 on
    16384 decisions: exact binomial of the kept count (detects a keep-rate
    error of 0.016 at rate 0.1, 0.024 at rate 0.3: rate + 0.02 at rate 0.1 is
    8.5 standard errors, p instead of 1 - p at rate 0.3 is 110); the kept
    channels per record vs Binomial(64, 1 - rate) (chi-square: decisions shared
    within a record); homogeneity with the reference's channel keep masks.
    Verified with temporary variants: a mask per pixel fails the exact check;
    p for 1 - p (rate 0.3) and rate + 0.02 (rate 0.1) fail the binomial check.
    """
    test_id = f"test_channel_mask_is_per_channel_and_binomial/{rate}"
    config = dropout_config("channel", rate)
    shape = channel_shape()
    images = uniform_images(test_id, shape, 0.1, 1.0)
    out = run_batch(operator_for(config, test_id), images)
    what = f"channel keep decisions of op(batch), rate={rate}"
    kept_values = kept_and_dropped(images, out, rate, what)
    # kept values per (record, channel) slice: 0 or all, never between (probability 0)
    per_slice = kept_values.sum(axis=(1, 2)).ravel()
    size = shape[1] * shape[2]
    slice_probs = np.zeros(size + 1)
    slice_probs[0], slice_probs[size] = rate, 1.0 - rate
    assert_chisquare_gof(
        np.bincount(per_slice, minlength=size + 1),
        slice_probs,
        what=f"kept values per (record, channel), rate={rate}",
    )
    decisions = kept_values.all(axis=(1, 2))  # (records, channels)
    mixed = int(np.sum(decisions != kept_values.any(axis=(1, 2))))
    assert mixed == 0, f"{mixed} (record, channel) slices are partly kept and partly dropped"
    keep = 1.0 - rate
    assert_binomial(int(decisions.sum()), decisions.size, keep, what=what)
    channels = shape[-1]
    observed = np.bincount(decisions.sum(axis=1), minlength=channels + 1)
    expected = stats.binom.pmf(np.arange(channels + 1), channels, keep)
    assert_chisquare_gof(observed, expected, what=f"kept channels per record, rate={rate}")
    ref_mask = reference.draw(config, rng_for(f"{test_id}/reference"), shape[1:], shape[0])
    ref_mask = ref_mask["keep_mask"]
    assert ref_mask.shape == decisions.shape
    assert_chisquare_homogeneity(
        [decisions.sum(), decisions.size - decisions.sum()],
        [ref_mask.sum(), ref_mask.size - ref_mask.sum()],
        what=f"{what} vs the reference's",
    )


KEEP_MASK_CASES = [("pixel", 0.3), ("channel", 0.3), ("channel", 0.1)]


@pytest.mark.parametrize(
    ("mode", "rate"), KEEP_MASK_CASES, ids=[f"{m}-{r}" for m, r in KEEP_MASK_CASES]
)
def test_generate_random_params_keep_mask(mode, rate):
    """``generate_random_params``: keep_mask shape (B, H, W, C) pixel / (B, C) channel, bool.

    Shapes equal the reference draw's (exact).  2 checks at 1e-5 on 65536
    decisions: the exact binomial of the keep rate (detects an error of 0.012
    at rate 0.3, 0.008 at rate 0.1: p for 1 - p and rate + 0.02 fail) and
    homogeneity with the reference's keep masks.  Verified: a channel mask
    drawn per pixel fails the shape check; p for 1 - p and rate + 0.02 fail
    the binomial.
    """
    test_id = f"test_generate_random_params_keep_mask/{mode}/{rate}"
    config = dropout_config(mode, rate)
    shape = (scaled(64), 8, 8, 16) if mode == "pixel" else (scaled(4096), 8, 8, 16)
    op = operator_for(config, test_id)
    key = jax.random.key(seed_for(f"{test_id}/key") % 2**31)
    params = op.generate_random_params(key, {"image": shape})
    ref = reference.draw(config, rng_for(f"{test_id}/reference"), shape[1:], shape[0])
    assert list(params) == ["keep_mask"]
    mask = np.asarray(params["keep_mask"])
    expected_shape = shape if mode == "pixel" else (shape[0], shape[-1])
    assert mask.shape == ref["keep_mask"].shape == expected_shape
    assert mask.dtype == np.bool_
    what = f"{mode} keep_mask of generate_random_params, rate={rate}"
    assert_binomial(int(mask.sum()), mask.size, 1.0 - rate, what=what)
    ref_mask = ref["keep_mask"]
    assert_chisquare_homogeneity(
        [mask.sum(), mask.size - mask.sum()],
        [ref_mask.sum(), ref_mask.size - ref_mask.sum()],
        what=f"{what} vs the reference's",
    )


# --------------------------------------------------------------------------- #
# independence: between records, between calls                                 #
# --------------------------------------------------------------------------- #
INDEPENDENCE_CONFIG = noise_config("gaussian", noise_std=0.1, noise_mean=0.0, clip_range=None)


def gaussian_rows(op, images: np.ndarray) -> np.ndarray:
    """One ``op(batch)`` call's noise, one row per record."""
    out = run_batch(op, images).astype(np.float64)
    return (out - 0.5).reshape(out.shape[0], -1)


def test_gaussian_records_are_independent():
    """The gaussian noise of the records of one batch: all different, uncorrelated.

    Exact: no two of the 16 records are identical.  2 checks at 1e-5 on the
    120 pair statistics ``sqrt(m - 1) r`` (m = 12288 values a record; ~ N(0, 1)
    and uncorrelated under independence): their mean (z-test: a correlation
    of 0.0056 shared by all pairs) and variance (chi-square, 119 dof: any one
    pair with |r| >= 0.1).  Verified with temporary variants: one key for all
    records fails the exact check (and, exact checks disabled, both statistical
    ones); records sharing 5% of their noise (r = 0.05 for every pair) fail the
    mean check.
    """
    test_id = "test_gaussian_records_are_independent"
    images = np.full(batch_shape(), 0.5, np.float32)
    rows = gaussian_rows(operator_for(INDEPENDENCE_CONFIG, test_id), images)
    t = pair_statistics(rows)
    what = "correlation of the noise of record pairs in one batch"
    assert_normal_mean(t, 0.0, 1.0, what=what)
    assert_normal_variance(t, 1.0, what=what)
    assert distinct_rows(rows) == rows.shape[0], "two records of one batch got the same noise"


def test_gaussian_successive_calls_are_independent():
    """Two ``op(batch)`` calls on the same batch: every record's noise differs, uncorrelated.

    Exact: no record of the second call equals any record of the first.  2
    checks at 1e-5 on the 256 cross-call pair statistics ``sqrt(m - 1) r``:
    mean (a correlation of 0.0038 shared by all pairs) and variance (any one
    pair with |r| >= 0.12).  Verified with temporary variants: a record counter
    that does not advance, or advances by 1 per call, fails the exact check
    (and, exact checks disabled, both statistical ones); calls sharing 5% of
    their noise (r = 0.05 for the same record) fail both checks.
    """
    test_id = "test_gaussian_successive_calls_are_independent"
    images = np.full(batch_shape(), 0.5, np.float32)
    op = operator_for(INDEPENDENCE_CONFIG, test_id)
    first, second = gaussian_rows(op, images), gaussian_rows(op, images)
    t = pair_statistics(first, second)
    what = "correlation of the noise of two successive calls"
    assert_normal_mean(t, 0.0, 1.0, what=what)
    assert_normal_variance(t, 1.0, what=what)
    both = np.vstack([first, second])
    assert distinct_rows(both) == both.shape[0], "a record's noise repeats across calls"


def test_pixel_keep_decisions_are_independent():
    """Pixel dropout at rate 0.5: keep decisions independent across records and calls.

    Exact: all 32 record masks of two successive calls differ.  2 chi-square
    homogeneity checks (2 x 2 tables, 1 dof) at 1e-5: record 2i+1's decision
    vs record 2i's (98304 pairs: detects a phi correlation of 0.021) and call
    2's vs call 1's for the same record (196608 pairs: phi 0.015).  Verified
    with temporary variants: one mask for all records, and a counter that does
    not advance, fail the exact check and (exact check disabled) the matching
    homogeneity check; a counter advancing by 1 per call fails the exact check.
    """
    test_id = "test_pixel_keep_decisions_are_independent"
    config = dropout_config("pixel", 0.5)
    images = uniform_images(test_id, batch_shape(), 0.1, 1.0)
    op = operator_for(config, test_id)
    first = kept_and_dropped(images, run_batch(op, images), 0.5, "call 1")
    second = kept_and_dropped(images, run_batch(op, images), 0.5, "call 2")

    def table(a, b):
        return [np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]

    row_kept, row_dropped = table(first[1::2], first[0::2])
    assert_chisquare_homogeneity(
        row_kept, row_dropped, what="keep decisions of record 2i+1 given record 2i's"
    )
    row_kept, row_dropped = table(second, first)
    assert_chisquare_homogeneity(
        row_kept, row_dropped, what="keep decisions of call 2 given call 1's"
    )
    masks = np.vstack([first, second]).reshape(2 * first.shape[0], -1)
    assert distinct_rows(masks) == masks.shape[0], "two records or calls share a keep mask"


def test_pixel_dropout_clips_kept_values():
    """``clip_range=(0, 0.9)`` on values uniform in [0.3, 1]: kept values are
    ``min(x, 0.9)``, dropped ones 0 (kept / dropped / neither GOF at rate 0.3, 196608
    values: a kept value left unclipped is in the impossible category)."""
    test_id = "test_pixel_dropout_clips_kept_values"
    config = dropout_config("pixel", 0.3, clip_range=(0.0, 0.9))
    images = uniform_images(test_id, batch_shape(), 0.3, 1.0)
    out = run_batch(operator_for(config, test_id), images)
    kept_and_dropped(images, out, 0.3, "pixel dropout, clip (0, 0.9)", np.minimum(images, 0.9))
