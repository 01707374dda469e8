"""The reference NoiseOperator against the mathematics (``scipy.stats`` as the oracle).

Hypothesis draws the configuration and the image (1x1x1 to 64x64x4, values
0..1 or 0..255, constant or random); each example then draws a large sample
by tiling the image (the noise modes act value by value) to about
``20000 * DATARAX_OPS_STATS_SCALE`` values, from a generator seeded by
``rng_for(<test name>/<example seed>)``.  Every statistical check runs at
``ALPHA = 1e-5``; the docstrings give the deviation each is sized to detect
(power 0.99 at scale 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from datarax_ops.reference.config import NoiseOperatorConfig
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import stats

from datarax_ops import reference
from datarax_ops.conformance.stats import (
    assert_binomial,
    assert_chisquare_gof,
    assert_ks_1samp,
    assert_normal_mean,
    assert_normal_variance,
    assert_poisson_counts,
    assert_poisson_variance,
    rng_for,
    scaled,
    tiled,
)
from tests.strategies import element_shapes, images, lam_scales, log_uniform, noise_configs

N = 20_000
N_LAM_SCALE = 160_000  # values per lam_scale (a 3% variance error caught from lam = 0.5)
N_PROBABILITY = 800_000  # values of the fixed-size probability check (3% of 0.05 caught)
SEEDS = st.integers(0, 2**32 - 1)
_RNG = np.random.default_rng(20240611)
UNIT_IMAGE = _RNG.uniform(0.0, 1.0, (16, 16, 3))  # fixed images for the @example cases
BYTE_IMAGE = np.round(_RNG.uniform(0.0, 255.0, (16, 16, 3)))


def _config(**kwargs) -> NoiseOperatorConfig:
    return NoiseOperatorConfig(field_key="image", **kwargs)


def _convention_scale(image: np.ndarray) -> float:
    """The spec's range rule, restated: 255 when the largest non-NaN value exceeds 1.5."""
    finite = np.asarray(image, dtype=np.float64)
    finite = finite[~np.isnan(finite)]
    return 255.0 if finite.size and finite.max() > 1.5 else 1.0


def _float32_quantum(mean: float, std: float) -> float:
    """The float32 spacing at the noise's magnitude: the params are rounded to it."""
    return float(np.spacing(np.float32(abs(mean) + 6.0 * std)))


# --------------------------------------------------------------------------- #
# gaussian                                                                     #
# --------------------------------------------------------------------------- #
@pytest.mark.stats
@given(
    config=noise_configs("gaussian", clip_range=None),
    image=images(dtype=np.float64),
    seed=SEEDS,
)
@example(_config(mode="gaussian", clip_range=None), UNIT_IMAGE, 0)  # the seed's defaults
@example(_config(mode="gaussian", noise_std=0.3, noise_mean=0.5, clip_range=None), BYTE_IMAGE, 1)
@example(_config(mode="gaussian", noise_std=100.0, noise_mean=-1.0, clip_range=None), UNIT_IMAGE, 2)
@example(_config(mode="gaussian", noise_std=1e-6, noise_mean=1.0, clip_range=None), BYTE_IMAGE, 3)
def test_gaussian_residuals_are_normal(config, image, seed):
    """``out - x ~ N(noise_mean, noise_std^2)`` without clipping (``noise_std == 0``: ``out == x``).

    Three checks per example, each at false-alarm level 1e-5, on n >= 20000:
    the mean (z-test) detects a shift of 0.048 sigma; the variance (chi-square)
    a 6.7% error in the variance (3.4% in sigma); the KS test a CDF error of
    0.026 (uniform, Laplace or Student-t(5) noise of the right variance is off
    by 0.057, 0.062, 0.038).  The KS test is skipped when
    ``|noise_mean| / noise_std > ~8000``: the params are float32, so there the
    noise is quantized at a step near 0.1 sigma (by design of the spec), which
    the mean and variance checks tolerate but KS would detect.
    """
    rng = rng_for(f"test_gaussian_residuals_are_normal/{seed}")
    big = tiled(image, scaled(N))
    params = reference.draw(config, rng, big.shape)
    out = reference.apply(config, big, params)
    assert out.dtype == np.float64 and out.shape == big.shape
    if config.noise_std == 0:
        np.testing.assert_array_equal(out, big)
        return
    residual = (out - big).ravel()
    mean, std = config.noise_mean, config.noise_std
    what = f"gaussian residuals, mean={mean!r}, std={std!r}"
    assert_normal_mean(residual, mean, std, what=what)
    assert_normal_variance(residual, std**2, what=what)
    if _float32_quantum(mean, std) <= 1e-3 * std:
        assert_ks_1samp(residual, stats.norm(mean, std).cdf, what=what)


@st.composite
def _clip_cases(draw):
    std = draw(log_uniform(1e-6, 100.0))
    mean = draw(st.one_of(st.just(0.0), st.floats(-1.0, 1.0)))
    if _float32_quantum(mean, std) > 1e-3 * std:
        mean = 0.0  # keep the float32 rounding of the params far below the tested resolution
    x = draw(st.one_of(st.sampled_from([0.0, 0.5, 1.0, 255.0]), st.floats(0.0, 255.0)))
    low = draw(st.floats(-4.0, 3.5))
    width = draw(st.floats(0.1, 8.0))
    clip_range = (x + mean + low * std, x + mean + (low + width) * std)
    config = _config(mode="gaussian", noise_std=std, noise_mean=mean, clip_range=clip_range)
    return config, x, low, low + width


@pytest.mark.stats
@given(case=_clip_cases(), shape=element_shapes(max_side=16), seed=SEEDS)
@example(
    (_config(mode="gaussian", noise_std=0.1, clip_range=(0.4, 0.6)), 0.5, -1.0, 1.0), (4, 4, 3), 0
)
@example((_config(mode="gaussian", noise_std=0.05), 0.98, -19.6, 0.4), (8, 8, 1), 1)  # default clip
@example(
    (
        _config(mode="gaussian", noise_std=1e-6, clip_range=(255.0 - 2e-6, 255.0 + 5e-7)),
        255.0,
        -2.0,
        0.5,
    ),
    (2, 2, 2),
    2,
)
def test_gaussian_clipping_point_masses(case, shape, seed):
    """With clipping, the mass at each bound is the normal tail beyond it.

    The bounds sit at ``x + mean + a*std`` and ``x + mean + b*std`` (a, b drawn),
    so ``P(out == lo) = Phi(a)`` and ``P(out == hi) = Phi(-b)``.  Two exact
    binomial checks per example at 1e-5, n >= 20000: each detects an error of
    0.024 in a probability near 0.5 (0.005 near 0.01).
    """
    config, x, a, b = case
    rng = rng_for(f"test_gaussian_clipping_point_masses/{seed}")
    big = tiled(np.full(shape, x, dtype=np.float64), scaled(N))
    out = reference.apply(config, big, reference.draw(config, rng, big.shape))
    low, high = config.clip_range
    assert np.all((out >= low) & (out <= high))
    at_low, at_high = int(np.sum(out == low)), int(np.sum(out == high))
    what = f"gaussian clip point mass, x={x!r}, std={config.noise_std!r}"
    assert_binomial(at_low, out.size, stats.norm.cdf(a), what=f"{what}: at min (a={a:.3g})")
    assert_binomial(at_high, out.size, stats.norm.sf(b), what=f"{what}: at max (b={b:.3g})")


@given(image=images(), mean=st.floats(-1.0, 1.0), clip=st.sampled_from([None, (0.0, 1.0)]))
def test_gaussian_zero_std_is_clip_only(image, mean, clip):
    """``noise_std == 0``: all-zero params and ``out == clip(x)``, whatever ``noise_mean``."""
    config = _config(mode="gaussian", noise_std=0.0, noise_mean=mean, clip_range=clip)
    params = reference.draw(config, rng_for("test_gaussian_zero_std_is_clip_only"), image.shape)
    assert params["noise"].dtype == np.float32
    np.testing.assert_array_equal(params["noise"], np.zeros(image.shape, np.float32))
    expected = image if clip is None else np.clip(image, *clip)
    np.testing.assert_array_equal(reference.apply(config, image, params), expected)


def test_gaussian_params_are_added_as_drawn():
    """The params hold the scaled noise itself (float32, batch axis first); apply adds it, clips."""
    config = _config(mode="gaussian", noise_std=0.5, noise_mean=0.25)
    params = reference.draw(config, rng_for("test_gaussian_params"), (4, 5, 3), batch_size=7)
    noise = params["noise"]
    assert noise.shape == (7, 4, 5, 3) and noise.dtype == np.float32
    assert len(np.unique(noise)) == noise.size  # a value per element, not shared
    image = np.full((4, 5, 3), 0.5, np.float32)
    out = reference.apply(config, image, {"noise": noise[2]})
    expected_out = np.clip(0.5 + noise[2].astype(np.float64), 0, 1).astype(np.float32)
    np.testing.assert_array_equal(out, expected_out)


# --------------------------------------------------------------------------- #
# speckle                                                                      #
# --------------------------------------------------------------------------- #
@pytest.mark.stats
@given(
    config=noise_configs("speckle", clip_range=None),
    image=images(dtype=np.float64),
    seed=SEEDS,
)
@example(_config(mode="speckle", clip_range=None), UNIT_IMAGE, 0)  # the defaults
@example(_config(mode="speckle", noise_std=0.3, noise_mean=0.5, clip_range=None), BYTE_IMAGE, 1)
@example(_config(mode="speckle", noise_std=100.0, noise_mean=-1.0, clip_range=None), UNIT_IMAGE, 2)
@example(_config(mode="speckle", noise_std=1e-6, noise_mean=1.0, clip_range=None), BYTE_IMAGE, 3)
def test_speckle_relative_change_is_normal(config, image, seed):
    """``out / x - 1 ~ N(noise_mean, noise_std^2)`` where ``x > 0``, without clipping;
    ``out == 0`` where ``x == 0`` (a zero stays zero, whatever the multiplier).

    At least 20000 values with ``x > 0``; three checks per example at 1e-5, sized as
    gaussian's (mean: 0.048 sigma; variance: 6.7%; KS: a CDF error of 0.026, so an
    additive ``x + noise``, whose ``out / x - 1 = noise / x`` varies with ``x``, fails).
    The multiplier ``1 + noise`` is float32: where its spacing exceeds ``1e-3`` sigma the
    KS test is skipped (it would see the quantization, as in gaussian's test).
    """
    rng = rng_for(f"test_speckle_relative_change_is_normal/{seed}")
    positive = int(np.count_nonzero(image > 0))
    big = tiled(image, scaled(N) * image.size // max(positive, 1))
    params = reference.draw(config, rng, big.shape)
    out = reference.apply(config, big, params)
    assert out.dtype == np.float64 and out.shape == big.shape
    assert np.all(out[big == 0] == 0)
    if positive == 0:
        return
    change = out[big > 0] / big[big > 0] - 1.0
    mean, std = config.noise_mean, config.noise_std
    if std == 0:  # the multiplier is the constant float32 1 + mean
        expected = float(np.float32(1.0) + np.float32(mean)) - 1.0
        np.testing.assert_allclose(change, expected, rtol=0, atol=1e-12)
        return
    what = f"speckle out / x - 1, mean={mean!r}, std={std!r}"
    assert_normal_mean(change, mean, std, what=what)
    assert_normal_variance(change, std**2, what=what)
    if max(_float32_quantum(mean, std), _float32_quantum(1.0 + mean, std)) <= 1e-3 * std:
        assert_ks_1samp(change, stats.norm(mean, std).cdf, what=what)


def test_speckle_params_are_the_multiplier_minus_one():
    """The params hold ``noise_mean + noise_std * z`` (float32, batch axis first, a value per
    element); apply multiplies by ``float32(1 + noise)`` and clips; ``noise_std == 0``
    keeps the mean (unlike gaussian's datarax rule)."""
    config = _config(mode="speckle", noise_std=0.5, noise_mean=0.25)
    params = reference.draw(config, rng_for("test_speckle_params"), (4, 5, 3), batch_size=7)
    noise = params["noise"]
    assert noise.shape == (7, 4, 5, 3) and noise.dtype == np.float32
    assert len(np.unique(noise)) == noise.size
    image = np.full((4, 5, 3), 0.75, np.float32)
    out = reference.apply(config, image, {"noise": noise[2]})
    multiplier = (np.float32(1.0) + noise[2]).astype(np.float64)
    np.testing.assert_array_equal(out, np.clip(0.75 * multiplier, 0, 1).astype(np.float32))
    still = _config(mode="speckle", noise_std=0.0, noise_mean=-0.5, clip_range=None)
    flat = reference.draw(still, rng_for("test_speckle_params/still"), (4, 5, 3))
    np.testing.assert_array_equal(flat["noise"], np.full((4, 5, 3), -0.5, np.float32))
    np.testing.assert_array_equal(reference.apply(still, image, flat), np.full_like(image, 0.375))


# --------------------------------------------------------------------------- #
# salt & pepper                                                                #
# --------------------------------------------------------------------------- #
def _salt_and_pepper(config: NoiseOperatorConfig, image: np.ndarray) -> tuple[float, float]:
    """The spec's fill values: salt None -> 255 or 1 by the range rule, pepper None -> 0."""
    salt = config.salt_value
    if salt is None:
        salt = 255.0 if _convention_scale(image) == 255.0 else 1.0
    pepper = 0.0 if config.pepper_value is None else config.pepper_value
    return float(salt), float(pepper)


def _readable(config: NoiseOperatorConfig, image: np.ndarray) -> np.ndarray:
    """``image`` with values equal to the salt or pepper value moved one ulp down.

    Then every output value tells its category.  The range rule is re-applied
    after each move (a move can lower the max), until nothing collides.
    """
    image = image.copy()
    for _ in range(8):
        salt, pepper = _salt_and_pepper(config, image)
        collide = (image == salt) | (image == pepper)
        if not collide.any():
            return image
        image[collide] = np.nextafter(image[collide], -np.inf)
    raise AssertionError("could not make the image readable")  # pragma: no cover


def _sp(salt: float, pepper: float, **kwargs) -> NoiseOperatorConfig:
    return _config(
        mode="salt_pepper", salt_prob=salt, pepper_prob=pepper, clip_range=None, **kwargs
    )


@pytest.mark.stats
@given(
    config=noise_configs("salt_pepper", clip_range=None),
    image=images(dtype=np.float64),
    seed=SEEDS,
)
@example(_sp(0.05, 0.05), UNIT_IMAGE, 0)
@example(_sp(0.05, 0.05), BYTE_IMAGE, 1)  # salt 255
@example(_sp(0.3, 0.7), UNIT_IMAGE, 2)
@example(_sp(1.0, 0.0), BYTE_IMAGE, 3)
@example(_sp(0.0, 1.0), UNIT_IMAGE, 4)
@example(_sp(0.1, 0.2, salt_value=0.5, pepper_value=0.5), UNIT_IMAGE, 5)
@example(_sp(0.01, 0.01), np.zeros((16, 16, 3)), 6)  # every value collides with pepper
def test_salt_pepper_counts_are_multinomial(config, image, seed):
    """Each value is salt, pepper or unchanged with probabilities (salt_prob, pepper_prob, rest).

    Image values equal to the salt or pepper value are first moved one ulp
    down (their category could not be read off the output); salt == pepper
    merges the two categories.  One chi-square check per example at 1e-5 on
    n >= 20000 values: detects a shift of 0.011 in a probability near 0.05,
    or 0.024 near 0.5.  Probabilities of exactly 0 or 1 are exact: a single
    value in an impossible category fails.
    """
    image = _readable(config, image)
    rng = rng_for(f"test_salt_pepper_counts_are_multinomial/{seed}")
    big = tiled(image, scaled(N))
    out = reference.apply(config, big, reference.draw(config, rng, big.shape))
    salt, pepper = _salt_and_pepper(config, image)
    is_salt, is_pepper, unchanged = out == salt, out == pepper, out == big
    assert np.all(is_salt | is_pepper | unchanged), "a value is neither salt, pepper nor x"
    p_salt, p_pepper = config.salt_prob, config.pepper_prob
    p_unchanged = max(0.0, 1.0 - p_salt - p_pepper)
    what = f"salt/pepper/unchanged counts, probs=({p_salt!r}, {p_pepper!r})"
    if salt == pepper:
        counts = [int(is_salt.sum()), int(unchanged.sum())]
        probs = [p_salt + p_pepper, p_unchanged]
    else:
        counts = [int(is_salt.sum()), int(is_pepper.sum()), int(unchanged.sum())]
        probs = [p_salt, p_pepper, p_unchanged]
    probs = np.asarray(probs) / np.sum(probs)
    assert_chisquare_gof(counts, probs, what=what)


def test_salt_pepper_levels_map_to_categories():
    """``u < salt_prob`` -> salt; ``u < salt_prob + pepper_prob`` -> pepper; else unchanged."""
    config = _config(
        mode="salt_pepper",
        salt_prob=0.25,
        pepper_prob=0.5,
        salt_value=0.9,
        pepper_value=0.1,
        clip_range=None,
    )
    below = np.nextafter(np.float32(0.25), np.float32(0))
    below_top = np.nextafter(np.float32(0.75), np.float32(0))
    levels = np.array([0.0, below, 0.25, below_top, 0.75, 0.99999994], dtype=np.float32)
    image = np.full(levels.shape, 0.5)
    out = reference.apply(config, image, {"noise_mask": levels})
    np.testing.assert_array_equal(out, [0.9, 0.9, 0.1, 0.1, 0.5, 0.5])


def test_salt_pepper_params_are_float32_levels():
    config = _config(mode="salt_pepper")
    params = reference.draw(config, rng_for("test_salt_pepper_params"), (8, 8, 3), batch_size=5)
    levels = params["noise_mask"]
    assert levels.shape == (5, 8, 8, 3) and levels.dtype == np.float32
    assert np.all((levels >= 0) & (levels < 1))


@pytest.mark.parametrize(
    ("values", "dtype", "salt"),
    [
        ([0.2, 1.5], np.float64, 1.0),  # max exactly 1.5: the 0..1 convention
        ([0.2, 1.5], np.float32, 1.0),
        ([0.2, 1.51], np.float64, 255.0),  # just above: 0..255
        ([0.2, 1.51], np.float32, 255.0),
        ([0.0, 1.0], np.float32, 1.0),
        ([0.0, 0.0], np.float32, 1.0),
        ([3.0, 200.0], np.float32, 255.0),
        ([np.nan, 1.0], np.float64, 1.0),  # NaN ignored
        ([np.nan, 100.0], np.float64, 255.0),
        ([-5.0, -1.0], np.float64, 1.0),
        ([0, 1], np.uint8, 1.0),
        ([0, 2], np.uint8, 255.0),
        ([10, 255], np.uint8, 255.0),
    ],
)
def test_salt_value_auto_detect(values, dtype, salt):
    """``salt_value=None``: 255 when the image's max (NaN ignored) exceeds 1.5, else 1.0."""
    image = np.array(values, dtype=dtype).reshape(1, 2, 1)
    config = _config(mode="salt_pepper", salt_prob=1.0, pepper_prob=0.0, clip_range=None)
    params = {"noise_mask": np.full(image.shape, 0.5, np.float32)}
    out = reference.apply(config, image, params)
    assert out.dtype == image.dtype
    np.testing.assert_array_equal(out, np.full(image.shape, salt, dtype=dtype))


def test_salt_and_pepper_defaults_and_clipping():
    """pepper_value None is 0.0; salt 255 is clipped by the default (0, 1) range."""
    image = np.full((2, 2, 1), 100.0, np.float32)
    levels = {"noise_mask": np.array([0.0, 0.0, 0.6, 0.6], np.float32).reshape(2, 2, 1)}
    config = _config(mode="salt_pepper", salt_prob=0.5, pepper_prob=0.5)
    np.testing.assert_array_equal(reference.apply(config, image, levels).ravel(), [1, 1, 0, 0])
    unclipped = _config(mode="salt_pepper", salt_prob=0.5, pepper_prob=0.5, clip_range=None)
    out = reference.apply(unclipped, image, levels).ravel()
    np.testing.assert_array_equal(out, [255, 255, 0, 0])


# --------------------------------------------------------------------------- #
# poisson                                                                      #
# --------------------------------------------------------------------------- #
def _poisson_counts(config: NoiseOperatorConfig, image: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``k = out * lam_scale / s``: checks it is an integer and returns it."""
    raw = out.astype(np.float64) * (config.lam_scale / _convention_scale(image))
    counts = np.rint(raw)
    assert np.all(np.abs(raw - counts) <= 1e-3 + 1e-6 * counts), "output off the k * s / lam grid"
    return counts


_UNIT_VALUES = st.one_of(st.sampled_from([0.0, 1e-3, 1.0, 1.5]), st.floats(0.0, 1.5))
_BYTE_VALUES = st.one_of(st.sampled_from([1.51, 2.0, 128.0, 255.0]), st.floats(1.5001, 255.0))


@pytest.mark.stats
@given(
    lam_scale=lam_scales(),
    x=st.one_of(_UNIT_VALUES, _BYTE_VALUES),
    shape=element_shapes(max_side=16),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=SEEDS,
)
@example(1.0, 0.5, (8, 8, 3), np.float32, 0)
@example(1000.0, 1.5, (8, 8, 3), np.float64, 1)  # lambda 1500, the largest
@example(0.1, 255.0, (8, 8, 3), np.float32, 2)
@example(1.0, 128.0, (8, 8, 3), np.float64, 3)
@example(50.0, 0.01, (8, 8, 3), np.float32, 4)  # lambda 0.5
@example(3.0, 1.51, (1, 1, 1), np.float64, 5)  # just above the threshold: s = 255
def test_poisson_counts_per_lambda(lam_scale, x, shape, dtype, seed):
    """A constant image ``x``: ``out * lam_scale / s ~ Poisson(x * lam_scale / s)``.

    ``s`` is 1 (max <= 1.5) or 255, so both conventions are covered, with
    ``lam_scale`` in [0.1, 1000] (lambda from 0 to 1500).  One chi-square check
    per example at 1e-5 on n >= 20000 counts (``lam == 0``: all counts 0,
    exactly); sized to detect a 10% error in lambda for lambda >= ~1 (a wrong
    ``s``, or ``lam_scale`` applied the wrong way round, is far larger).
    """
    config = _config(mode="poisson", lam_scale=lam_scale, clip_range=None)
    image = np.full(shape, x, dtype=dtype)
    rng = rng_for(f"test_poisson_counts_per_lambda/{seed}")
    big = tiled(image, scaled(N))
    out = reference.apply(config, big, reference.draw(config, rng, big.shape))
    assert out.dtype == dtype
    lam = float(image.flat[0]) * lam_scale / _convention_scale(image)
    counts = _poisson_counts(config, image, out)
    assert_poisson_counts(counts, lam, what=f"poisson counts, x={x!r}, lam_scale={lam_scale!r}")


@pytest.mark.stats
@given(
    config=noise_configs("poisson", clip_range=None),
    image=images(dtype=np.float64),
    seed=SEEDS,
)
@example(_config(mode="poisson", lam_scale=50.0, clip_range=None), UNIT_IMAGE, 0)
@example(_config(mode="poisson", lam_scale=0.1, clip_range=None), BYTE_IMAGE, 1)
@example(_config(mode="poisson", lam_scale=1000.0, clip_range=None), UNIT_IMAGE, 2)
def test_poisson_random_images_probability_integral_transform(config, image, seed):
    """Random images: the randomized PIT of every count under its own Poisson law is U(0, 1).

    ``u = F(k - 1) + V (F(k) - F(k - 1))`` with ``F`` the ``Poisson(x lam_scale / s)``
    CDF and ``V ~ U(0, 1)`` is exactly uniform when ``k`` has that law.  One KS
    check per example at 1e-5 on n >= 20000: detects a CDF error of 0.026 in u.
    """
    rng = rng_for(f"test_poisson_random_images_pit/{seed}")
    big = tiled(image, scaled(N))
    out = reference.apply(config, big, reference.draw(config, rng, big.shape))
    counts = _poisson_counts(config, image, out).ravel()
    lam = np.maximum(big.ravel(), 0.0) * config.lam_scale / _convention_scale(image)
    upper = stats.poisson.cdf(counts, lam)
    lower = stats.poisson.cdf(counts - 1, lam)
    u = lower + rng.random(counts.size) * (upper - lower)
    assert_ks_1samp(u, stats.uniform.cdf, what=f"poisson PIT, lam_scale={config.lam_scale!r}")


@pytest.mark.stats
def test_salt_pepper_probabilities_at_full_size():
    """salt_prob 0.05, pepper_prob 0.10 on 800000 values (the Hypothesis examples above
    use 20000): chi-square GOF at 1e-5 catches salt_prob off by 0.0014 (2.9%) and
    pepper_prob by 0.0020 (2.0%) with power 0.9."""
    config = _sp(0.05, 0.10)
    big = np.full((scaled(N_PROBABILITY),), 0.5)
    rng = rng_for("test_salt_pepper_probabilities_at_full_size")
    out = reference.apply(config, big, reference.draw(config, rng, big.shape))
    counts = [np.sum(out == 1.0), np.sum(out == 0.0), np.sum(out == 0.5)]
    other = big.size - sum(counts)
    assert_chisquare_gof(
        [*counts, other], [0.05, 0.10, 0.85, 0.0], what="salt/pepper/unchanged at 800000 values"
    )


@pytest.mark.stats
@pytest.mark.parametrize(("x", "scale"), [(0.5, 1.0), (128.0, 255.0)])
def test_poisson_larger_lam_scale_gives_less_noise(x, scale):
    """The seed's own formula wins over its wording: variance is ``x * s / lam_scale``.

    (The seed page says "higher = more noise"; ``Poisson(x * lam) / lam`` has
    variance ``x / lam``.)  n = 160000 per lam_scale (lam = 0.5, 5, 50): 2 checks
    at 1e-5 each, the mean (z-test) and the variance (``assert_poisson_variance``),
    which catches a variance (a lam_scale) off by 2.9% at lam = 0.5 and 2.2% or less
    from lam = 5 on, with power 0.9 (lam_scale applied the wrong way round: a factor 100).
    """
    image = np.full((scaled(N_LAM_SCALE),), x)
    rng = rng_for(f"test_poisson_larger_lam_scale_gives_less_noise/{x}")
    variances = []
    for lam_scale in (1.0, 10.0, 100.0):
        config = _config(mode="poisson", lam_scale=lam_scale, clip_range=None)
        out = reference.apply(config, image, reference.draw(config, rng, image.shape))
        variances.append(out.var())
        step = scale / lam_scale  # the output value of one count
        what = f"poisson x={x}, lam_scale={lam_scale}"
        assert_normal_mean(out, x, math.sqrt(x * step), what=f"mean of {what}")
        assert_poisson_variance(out, x, step, what=f"variance of {what}")
    assert variances[0] > variances[1] > variances[2]


@given(image=images(dtype=np.float64), lam_scale=lam_scales(), seed=SEEDS)
def test_poisson_negative_inputs_raised_to_zero(image, lam_scale, seed):
    """Negative values have ``lam = 0``: their output is exactly 0 (other values are unaffected)."""
    config = _config(mode="poisson", lam_scale=lam_scale, clip_range=None)
    signed = image.copy()
    flip = np.random.default_rng(seed).random(image.shape) < 0.5
    signed[flip] = -signed[flip] - 1e-3
    params = reference.draw(config, rng_for(f"test_poisson_negative/{seed}"), image.shape)
    out = reference.apply(config, signed, params)
    np.testing.assert_array_equal(out[flip], 0.0)
    # Raising negatives to 0 by hand gives the same result.
    np.testing.assert_array_equal(out, reference.apply(config, np.maximum(signed, 0.0), params))


def test_poisson_all_negative_or_zero_image_is_zero():
    config = _config(mode="poisson", lam_scale=5.0, clip_range=None)
    image = np.array([[-0.5, -200.0], [0.0, -1e-9]]).reshape(2, 2, 1)
    params = reference.draw(config, rng_for("test_poisson_all_negative"), image.shape)
    np.testing.assert_array_equal(reference.apply(config, image, params), np.zeros_like(image))
