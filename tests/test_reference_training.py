"""The training settings of issue 17 in the reference, against the mathematics (``scipy.stats``).

Strength ranges (``noise_std_range``, ``salt_prob_range``, ``pepper_prob_range``,
``lam_scale_range``, ``dropout_rate_range``), ``per_channel`` and ``apply_prob``:

* the drawn strengths follow their laws, U[lo, hi] (``lam_scale``: log-uniform), one
  per record, independent of the record's values, of each other and of the apply
  decision;
* given each record's strength, its values follow the mode's law with that strength;
  the mixture over records matches a direct Monte-Carlo of the law;
* ``per_channel=False`` shares one draw per pixel over the channels;
* ``apply_prob``: a Binomial(B, p) number of records is transformed, the others come
  back bit for bit;
* the defaults draw exactly what the seed pages drew; invalid values are rejected.

Randomness comes both from ``numpy.random.Generator`` (``rng_for``) and from the
counter stream (``reference.StreamSource`` of ``stream.record_key(base, arange(B))``).
Every statistical check runs at the kit's ``ALPHA`` (1e-5) with fixed seeds
(``rng_for(<test>/<mode>/<source>/<example seed>)``), so a green run stays green; the
docstrings give the deviation each check is sized to detect with power 0.99 at
``DATARAX_OPS_STATS_SCALE=1``.  This file makes about 420 checks under the ``ci``
profile and 3000 under ``thorough`` (fresh seeds: a false-alarm probability below
0.5 % and 3 % by the union bound), five of them deliberate rejections of a wrong
variant (``test_independence_check_catches_strength_from_value_words``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np
import pytest
from datarax_ops.reference import stream
from datarax_ops.reference.config import (
    DROPOUT_MODES,
    PER_CHANNEL_MODES,
    RANGE_FIELDS,
    config_class_of,
)
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import stats

from datarax_ops import reference
from datarax_ops.conformance.stats import (
    StatCheckError,
    assert_binomial,
    assert_chisquare_homogeneity,
    assert_ks_1samp,
    assert_ks_2samp,
    assert_uncorrelated,
    rng_for,
    scaled,
)
from tests.strategies import element_shapes, images, ranged_configs

MODES = {mode.name: mode for mode in reference.MODES}
MODE_NAMES = tuple(MODES)
# Modes whose params are the normal noise ``noise_mean + noise_std * z`` (speckle's is its
# multiplier minus 1): the same draw as gaussian's.
NORMAL_NOISE_MODES = ("gaussian", "speckle")
# The modes with strength ranges (the range tests' modes).
RANGED = tuple(name for name in MODE_NAMES if RANGE_FIELDS[name])
# The modes whose default params have a closed formula in the seed's draws (``_seed_params``):
# the seed pages' modes and speckle (gaussian's draw); coarse's geometry has its own tests.
SEED_MODES = ("gaussian", "salt_pepper", "poisson", "pixel", "channel", "speckle")
SOURCES = ("generator", "stream")
SEEDS = st.integers(0, 2**32 - 1)
NAN, INF = math.nan, math.inf

# The strengths the spec declares log-uniform (every other strength is uniform).
LOG_UNIFORM = {
    s.scalar for mode in reference.MODES for s in mode.strengths if s.law == "log-uniform"
}
# A wide range per strength (the deterministic and Monte-Carlo tests use these).
WIDE = {
    "noise_std": (0.0, 1.0),
    "salt_prob": (0.05, 0.3),
    "pepper_prob": (0.0, 0.4),
    "lam_scale": (1.0, 100.0),
    "dropout_rate": (0.1, 0.9),
}

N_STRENGTHS = 8_000  # records per strength-law check
N_INDEPENDENCE = 4_000  # records per rank-correlation check
N_VALUES = 20_000  # pooled values of a conditional-law check
N_POISSON_VALUES = 10_000  # (poisson's apply is slower)
N_COUNT_RECORDS = 2_000  # records per per-record-count check
N_MIXTURE = 20_000  # records (one value each) of the gaussian mixture check
N_APPLY = 1_000  # records per apply-decision check (Hypothesis examples)
N_APPLY_FULL = 32_768  # records of the full-size apply check (a 3% error of 0.7 caught)
GRID = 2**24  # the uniform levels are multiples of 2**-24


# --------------------------------------------------------------------------- #
# Helpers                                                                      #
# --------------------------------------------------------------------------- #
def _config(mode: str, **kwargs: Any) -> Any:
    return config_class_of(mode)(field_key="image", mode=mode, **kwargs)


def _own(mode: str, **kwargs: Any) -> dict[str, Any]:
    """The items of ``kwargs`` that are fields of ``mode``'s config class."""
    names = {field.name for field in dataclasses.fields(config_class_of(mode))}
    return {k: v for k, v in kwargs.items() if k in names}


def _wide(mode: str, **kwargs: Any) -> Any:
    """``mode`` with every range it reads set to its ``WIDE`` range, no clipping."""
    ranges = {name: WIDE[scalar] for name, scalar in RANGE_FIELDS[mode]}
    return _config(mode, **{"clip_range": None, **ranges, **kwargs})


def _keys(name: str, batch: int) -> np.ndarray:
    """Record keys ``record_key(base, arange(batch))`` under a base key seeded by ``name``."""
    base = rng_for(f"{name}/base key").integers(0, 2**32, size=2, dtype=np.uint32)
    return stream.record_key(base, np.arange(batch))


def _randomness(source: str, name: str, batch: int) -> Any:
    """A ``Generator`` (``source == "generator"``) or a ``StreamSource`` of ``batch`` keys."""
    if source == "generator":
        return rng_for(name)
    return reference.StreamSource(_keys(name, batch))


def _strength(config: Any, params: dict[str, np.ndarray], scalar: str, batch: int) -> np.ndarray:
    """float64 ``(batch,)``: each record's ``scalar``, drawn (float32 param) or the config's."""
    if scalar in params:
        values = np.asarray(params[scalar])
        assert values.shape == (batch,) and values.dtype == np.float32
        return values.astype(np.float64)
    return np.full(batch, float(getattr(config, scalar)))


def _below(threshold: np.ndarray) -> np.ndarray:
    """``P(u < t)`` for a level ``u`` uniform on the ``2**-24`` grid of [0, 1) and float32 ``t``."""
    t = np.asarray(threshold, np.float32).astype(np.float64)
    return np.clip(np.ceil(t * GRID), 0, GRID) / GRID


def _per_value(config: Any, values: np.ndarray) -> np.ndarray:
    """``(B, H, W, C)`` values as independent draws: with ``per_channel=False`` the channels
    of a pixel are first checked equal, then only channel 0 is kept."""
    if config.per_channel:
        return values
    assert np.all(values == values[..., :1]), "per_channel=False: channels of a pixel differ"
    return values[..., :1]


def _binomial_pit(k: np.ndarray, n: np.ndarray, p: np.ndarray, rng: np.random.Generator):
    """Randomized PIT ``F(k - 1) + V P(k)`` of counts ``k ~ Binomial(n, p)`` (per record):
    exactly U(0, 1) and independent over records when each count has its law."""
    lower = stats.binom.cdf(k - 1, n, p)
    upper = stats.binom.cdf(k, n, p)
    assert np.all(upper > lower), "a count of probability 0 under its record's binomial"
    return lower + rng.random(np.shape(k)) * (upper - lower)


def _poisson_pit(k: np.ndarray, lam: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The randomized PIT of ``datarax_ops.conformance.laws.poisson.randomized_pit``, restated
    here: the laws package imports JAX, the reference tests stay NumPy-only."""
    lower = stats.poisson.cdf(k - 1, lam)
    upper = stats.poisson.cdf(k, lam)
    return lower + rng.random(np.shape(k)) * (upper - lower)


def _check_strength_law(values: np.ndarray, scalar: str, low: float, high: float, what: str):
    """float32 ``(B,)`` strengths in ``[f32(lo), f32(hi)]`` following U[lo, hi] (log-uniform
    for ``lam_scale``): one KS check; ``lo == hi`` must give exactly ``f32(lo)``."""
    values = np.asarray(values)
    assert values.dtype == np.float32 and values.ndim == 1
    assert np.all((values >= np.float32(low)) & (values <= np.float32(high))), "outside [lo, hi]"
    if low == high:
        np.testing.assert_array_equal(values, np.float32(low))
        return
    if scalar in LOG_UNIFORM:
        law, name = stats.loguniform(low, high), "log-uniform"
    else:
        law, name = stats.uniform(low, high - low), "U"
    assert_ks_1samp(values, law, what=f"{what}: {scalar} ~ {name}[{low!r}, {high!r}]")


def _check_unrelated(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """Rank correlation (Spearman's: Pearson on ranks, the kit's check) is 0."""
    a_ranks = stats.rankdata(np.asarray(a, np.float64))
    b_ranks = stats.rankdata(np.asarray(b, np.float64))
    assert_uncorrelated(a_ranks, b_ranks, what=f"rank correlation of {what}")


def _exact_bits(image: np.ndarray, out: np.ndarray) -> bool:
    return (
        out.dtype == image.dtype and out.shape == image.shape and out.tobytes() == image.tobytes()
    )


# --------------------------------------------------------------------------- #
# The strengths' laws                                                          #
# --------------------------------------------------------------------------- #
@pytest.mark.stats
@pytest.mark.parametrize("mode", RANGED)
@given(data=st.data(), source=st.sampled_from(SOURCES), seed=SEEDS)
def test_strengths_follow_their_law(mode, data, source, seed):
    """Each set range draws one float32 strength per record: U[lo, hi], ``lam_scale``
    log-uniform (KS against ``scipy.stats.uniform`` / ``loguniform``).

    One KS check per range per example at 1e-5 on 8000 records: detects a CDF error
    of 0.04, e.g. a range narrowed by 5 % of its width at each end (an error of 0.05),
    a midpoint or a value shared by the batch (0.5 or more), lo and hi swapped.
    """
    config = data.draw(ranged_configs(mode), label="config")
    batch = scaled(N_STRENGTHS)
    name = f"test_strengths_follow_their_law/{mode}/{source}/{seed}"
    params = reference.draw(config, _randomness(source, name, batch), (1, 1, 1), batch)
    for field, scalar in RANGE_FIELDS[mode]:
        bounds = getattr(config, field)
        if bounds is None:
            assert scalar not in params
            continue
        assert params[scalar].shape == (batch,)
        _check_strength_law(params[scalar], scalar, *bounds, what=f"{mode} ({source})")


def _first_value_of_each_record(config: Any, params: dict, keys: np.ndarray) -> np.ndarray:
    """Word 0 of each record's element bits as a uniform level, after checking that the
    params' first per-value draw is made from it (the check is then about the values)."""
    batch = keys.shape[0]
    first = stream.uniforms(keys, (batch, 1))[:, 0]
    values = np.asarray(params[MODES[config.mode].params_key]).reshape(batch, -1)[:, 0]
    if config.mode in NORMAL_NOISE_MODES:
        std = _strength(config, params, "noise_std", batch)
        z = stream.normals(keys, (batch, 1))[:, 0]
        expected = (config.noise_mean + std * z).astype(np.float32)
        np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-7)
    elif config.mode in DROPOUT_MODES:
        rate = _strength(config, params, "dropout_rate", batch).astype(np.float32)
        np.testing.assert_array_equal(values, first >= rate)
    else:
        np.testing.assert_array_equal(values, first)
    return first


def _check_record_draws_independent(config: Any, params: dict, keys: np.ndarray) -> None:
    """Rank correlations, all 0: each strength and the apply decision vs the record's first
    per-value level; the apply decision vs each strength; salt vs pepper probability."""
    first = _first_value_of_each_record(config, params, keys)
    drawn = [scalar for _, scalar in RANGE_FIELDS[config.mode] if scalar in params]
    assert drawn and "apply" in params
    for scalar in drawn:
        _check_unrelated(params[scalar], first, f"{scalar} and the first value level")
        _check_unrelated(params["apply"], params[scalar], f"apply and {scalar}")
    _check_unrelated(params["apply"], first, "apply and the first value level")
    if len(drawn) == 2:
        _check_unrelated(params[drawn[0]], params[drawn[1]], " and ".join(drawn))


@pytest.mark.stats
@pytest.mark.parametrize("mode", RANGED)
def test_record_draws_are_independent_of_the_values(mode):
    """Stream keys: a record's strengths and apply decision come from its own words, not
    from the words of its values.

    3 to 6 rank-correlation checks at 1e-5 on 4000 records (each detects a rank
    correlation of 0.107): a strength made from the first value's word has rank
    correlation 1 (``test_independence_check_catches_strength_from_value_words``).
    """
    batch = scaled(N_INDEPENDENCE)
    keys = _keys(f"test_record_draws_are_independent_of_the_values/{mode}", batch)
    config = _wide(mode, apply_prob=0.5)
    params = reference.draw(config, reference.StreamSource(keys), (2, 2, 3), batch)
    _check_record_draws_independent(config, params, keys)


@pytest.mark.parametrize("mode", RANGED)
def test_independence_check_catches_strength_from_value_words(mode, monkeypatch):
    """The check above rejects a reference whose record words are the value words
    (``stream.uniforms(key, (1,))``, counter (0, 0) instead of (1, slot))."""

    def value_words(self, batch_size, slot):
        return stream.uniforms(self.keys, (*self.keys.shape[:-1], 1))[..., 0]

    batch = scaled(N_INDEPENDENCE)
    keys = _keys(f"test_independence_check_catches/{mode}", batch)
    config = _wide(mode, apply_prob=0.5)
    monkeypatch.setattr(reference.StreamSource, "record_uniforms", value_words)
    params = reference.draw(config, reference.StreamSource(keys), (2, 2, 3), batch)
    with pytest.raises(StatCheckError, match="rank correlation"):
        _check_record_draws_independent(config, params, keys)


def _record_word_levels(keys: np.ndarray, slot: int) -> np.ndarray:
    """float32 ``(B,)``: ``(y0 ^ y1) >> 8`` times ``2**-24`` of ``threefry2x32(key, (1, slot))``."""
    high = np.ones(keys.shape[0], np.uint32)
    y0, y1 = stream.threefry2x32((keys[:, 0], keys[:, 1]), (high, np.full_like(high, slot)))
    return ((y0 ^ y1) >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_record_draws_use_the_record_words(mode):
    """Stream keys: the record words are at threefry counter ``(1, slot)``; the apply
    decision is slot 0, exactly ``u < f32(apply_prob)``; the mode's range fields take
    slots 1 and 2 in ``RANGE_FIELDS`` order: ``lo + (hi - lo) u`` within 3 float32 ulps
    of ``max(|lo|, |hi|)`` (``record.uniform_strength`` fixes the bits), log-uniform
    ``exp(log lo + (log hi - log lo) u)`` within 1e-6.  (What the compiled operator
    must draw; it shares no block with the values, whose counters are ``(0, j)``.)"""
    assert (stream.RECORD_COUNTER_HIGH, stream.APPLY_SLOT, stream.STRENGTH_SLOTS) == (1, 0, (1, 2))
    batch = 256
    keys = _keys(f"test_record_draws_use_the_record_words/{mode}", batch)
    config = _wide(mode, apply_prob=0.37)
    params = reference.draw(config, reference.StreamSource(keys), (3, 2, 2), batch)
    np.testing.assert_array_equal(params["apply"], _record_word_levels(keys, 0) < np.float32(0.37))
    for slot, (field, scalar) in enumerate(RANGE_FIELDS[mode], start=1):
        low, high = getattr(config, field)
        u = _record_word_levels(keys, slot).astype(np.float64)
        got = params[scalar]
        assert got.dtype == np.float32
        assert np.all((got >= np.float32(low)) & (got <= np.float32(high)))
        if scalar in LOG_UNIFORM:
            span = math.log(high) - math.log(low)
            expected = np.exp(math.log(low) + span * u)
            np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=scalar)
        else:
            ulp = float(np.spacing(np.float32(max(abs(low), abs(high)))))
            expected = low + (high - low) * u
            np.testing.assert_allclose(got, expected, rtol=0, atol=3 * ulp, err_msg=scalar)


# --------------------------------------------------------------------------- #
# The law given each record's strength                                         #
# --------------------------------------------------------------------------- #
def _float32_quantum(mean: float, std: np.ndarray) -> np.ndarray:
    """The float32 spacing at the noise's magnitude: the params are rounded to it."""
    return np.spacing(np.float32(abs(mean) + 6.0 * std)).astype(np.float64)


def _resolves_its_law(config: Any) -> bool:
    """The upper half of ``noise_std_range`` (at least half the records, the law being
    uniform) has float32 noise quantized finer than 1e-3 sigma under ``noise_mean``."""
    low, high = config.noise_std_range
    middle = (low + high) / 2.0
    return middle > 0 and bool(_float32_quantum(config.noise_mean, middle) <= 1e-3 * middle)


@pytest.mark.stats
@given(
    config=ranged_configs("gaussian", apply_prob=1.0).filter(_resolves_its_law),
    image=images(shape=element_shapes(max_side=8), dtype=np.float64),
    source=st.sampled_from(SOURCES),
    seed=SEEDS,
)
@example(_wide("gaussian"), np.full((4, 4, 3), 0.5), "stream", 0)
@example(
    _wide("gaussian", noise_mean=0.5, per_channel=False), np.full((4, 4, 3), 9.0), "generator", 1
)
def test_gaussian_given_its_strength_is_normal(config, image, source, seed):
    """``(noise - noise_mean) / noise_std_i ~ N(0, 1)``, pooled over records and values
    (the output is exactly ``x + noise``, no clip range).

    One KS check per example at 1e-5 on >= 20000 values: detects a CDF error of 0.026,
    e.g. noise drawn with the scalar ``noise_std`` or with a strength per value while
    the params report another.  Records whose float32 noise is quantized coarser than
    1e-3 sigma are left out (chosen by their sigma only); sigma 0 must add the mean only.
    Ranges whose upper half is that coarse (a tiny sigma under a large mean) are not
    drawn, so every example runs the KS check.
    """
    n = image.size if config.per_channel else image.size // image.shape[-1]
    batch = max(200, -(-scaled(N_VALUES) // n))
    name = f"test_gaussian_given_its_strength_is_normal/{source}/{seed}"
    big = np.broadcast_to(image, (batch, *image.shape))
    params = reference.draw(config, _randomness(source, name, batch), image.shape, batch)
    noise = params["noise"].astype(np.float64)
    np.testing.assert_array_equal(reference.apply_batch(config, big, params), big + noise)
    std = _strength(config, params, "noise_std", batch)
    zero = std == 0
    np.testing.assert_array_equal(noise[zero], np.float32(config.noise_mean))
    usable = ~zero & (_float32_quantum(config.noise_mean, std) <= 1e-3 * std)
    # about half the records resolve (_resolves_its_law): far more than 1000 values
    assert usable.sum() * n >= 1000, f"{usable.sum()} of {batch} records resolve sigma"
    shape = (-1,) + (1,) * image.ndim
    residual = (noise - config.noise_mean)[usable] / std[usable].reshape(shape)
    what = f"gaussian given noise_std_i ({source}), range {config.noise_std_range!r}"
    assert_ks_1samp(_per_value(config, residual), stats.norm.cdf, what=what)


@pytest.mark.stats
@given(
    config=ranged_configs("salt_pepper", apply_prob=1.0),
    shape=element_shapes(max_side=8),
    source=st.sampled_from(SOURCES),
    seed=SEEDS,
)
@example(_wide("salt_pepper"), (4, 4, 3), "stream", 0)
@example(_wide("salt_pepper", per_channel=False), (4, 4, 3), "generator", 1)
@example(
    _config("salt_pepper", salt_prob_range=(0.0, 1.0), pepper_prob=0.0, clip_range=None),
    (2, 2, 2),
    "stream",
    2,
)
def test_salt_pepper_given_its_strengths_is_multinomial(config, shape, source, seed):
    """Per record, (salt, pepper, unchanged) counts ~ Multinomial(n, (s_i, p_i, rest)).

    Written as two binomials per record: salt ~ Bin(n, s_i), pepper given salt ~
    Bin(n - salt, p_i / (1 - s_i)); their randomized PITs (exactly U(0, 1), independent)
    are pooled into one KS check per example at 1e-5 on 4000 values: detects a CDF
    error of 0.057 (e.g. the scalar probabilities used, or one probability per value).
    Probabilities are those of the float32 thresholds on the 2**-24 grid, so a count
    of probability 0 fails exactly.
    """
    batch = scaled(N_COUNT_RECORDS)
    name = f"test_salt_pepper_given_its_strengths/{source}/{seed}"
    image = rng_for(f"{name}/image").uniform(0.05, 0.95, shape)  # salt 1, pepper 0: readable
    big = np.broadcast_to(image, (batch, *shape))
    params = reference.draw(config, _randomness(source, name, batch), shape, batch)
    out = reference.apply_batch(config, big, params)
    assert np.all((out == 1.0) | (out == 0.0) | (out == big)), "neither salt, pepper nor x"
    category = _per_value(config, np.where(out == 1.0, 0, np.where(out == 0.0, 1, 2)))
    category = category.reshape(batch, -1)
    n = category.shape[1]
    salt, pepper = (category == 0).sum(1), (category == 1).sum(1)
    s = _strength(config, params, "salt_prob", batch).astype(np.float32)
    p = _strength(config, params, "pepper_prob", batch).astype(np.float32)
    p_salt = _below(s)
    p_pepper = _below(s + p) - p_salt  # the float32 sum of the two thresholds
    rest = 1.0 - p_salt
    q = np.divide(p_pepper, rest, out=np.zeros(batch), where=rest > 0)
    rng = rng_for(f"{name}/pit")
    u = np.concatenate(
        [_binomial_pit(salt, n, p_salt, rng), _binomial_pit(pepper, n - salt, q, rng)]
    )
    what = f"salt & pepper counts given s_i, p_i ({source}): PIT"
    assert_ks_1samp(u, stats.uniform.cdf, what=what)


@pytest.mark.stats
@given(
    config=ranged_configs("poisson", apply_prob=1.0),
    image=images(shape=element_shapes(min_side=4, max_side=8), dtype=np.float64),
    source=st.sampled_from(SOURCES),
    seed=SEEDS,
)
@example(_wide("poisson"), np.full((4, 4, 3), 0.5), "stream", 0)
@example(
    _config("poisson", lam_scale_range=(0.1, 1000.0), clip_range=None),
    np.full((4, 4, 4), 200.0),
    "generator",
    1,
)
def test_poisson_given_its_lam_scale_is_poisson(config, image, source, seed):
    """``k = out * lam_scale_i / s ~ Poisson(max(x, 0) * lam_scale_i / s)`` per value, with
    the record's drawn ``lam_scale_i``: outputs on the lattice, and the randomized PIT of
    every count pooled into one KS check per example at 1e-5 on >= 10000 values (detects
    a CDF error of 0.036 in the PIT: e.g. the scalar ``lam_scale`` used)."""
    batch = max(50, -(-scaled(N_POISSON_VALUES) // image.size))
    name = f"test_poisson_given_its_lam_scale/{source}/{seed}"
    big = np.broadcast_to(image, (batch, *image.shape))
    params = reference.draw(config, _randomness(source, name, batch), image.shape, batch)
    out = reference.apply_batch(config, big, params)
    scale = 255.0 if np.nanmax(image) > 1.5 else 1.0  # the spec's 0..255 rule
    gain = (_strength(config, params, "lam_scale", batch) / scale).reshape(-1, 1, 1, 1)
    raw = out * gain
    k = np.rint(raw)
    assert np.all(np.abs(raw - k) <= 1e-6 * np.maximum(k, 1.0)), "output off the lattice"
    lam = np.maximum(big, 0.0) * gain
    u = _poisson_pit(k, lam, rng_for(f"{name}/pit"))
    what = f"poisson counts given lam_scale_i ({source}), range {config.lam_scale_range!r}: PIT"
    assert_ks_1samp(u.ravel(), stats.uniform.cdf, what=what)


def _kept_counts(config: Any, big: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Kept values (pixel) or channels (channel) per record, read off ``out``."""
    batch = big.shape[0]
    if config.mode == "channel":
        x = big.reshape(batch, -1, big.shape[-1])
        o = out.reshape(batch, -1, big.shape[-1])
        kept, dropped = np.all(o == x, axis=1), np.all(o == 0, axis=1)
        assert np.all(kept ^ dropped), "a channel is partly dropped"
        return kept.sum(axis=1)
    kept, dropped = out == big, out == 0
    assert np.all(kept ^ dropped), "a value is neither kept nor zeroed"
    return _per_value(config, kept).reshape(batch, -1).sum(axis=1)


@pytest.mark.stats
@pytest.mark.parametrize("mode", [name for name in DROPOUT_MODES if name in RANGED])
@given(data=st.data(), source=st.sampled_from(SOURCES), seed=SEEDS)
def test_dropout_given_its_rate_is_binomial(mode, data, source, seed):
    """Kept values (pixel) or channels (channel) per record ~ Binomial(n, 1 - rate_i).

    The randomized PIT of each record's kept count under its own binomial, one KS
    check per example at 1e-5 on 2000 records: detects a CDF error of 0.08 (e.g. the
    scalar ``dropout_rate`` used, or a rate per value while the params report another).
    """
    config = data.draw(ranged_configs(mode, apply_prob=1.0), label="config")
    shape = data.draw(element_shapes(max_side=6, max_channels=16), label="shape")
    batch = scaled(N_COUNT_RECORDS)
    name = f"test_dropout_given_its_rate_is_binomial/{mode}/{source}/{seed}"
    image = rng_for(f"{name}/image").uniform(0.5, 1.0, shape).astype(np.float32)
    big = np.broadcast_to(image, (batch, *shape))
    params = reference.draw(config, _randomness(source, name, batch), shape, batch)
    kept = _kept_counts(config, big, reference.apply_batch(config, big, params))
    if mode == "channel":
        n = shape[-1]
    else:
        n = image.size if config.per_channel else image.size // shape[-1]
    keep = 1.0 - _below(_strength(config, params, "dropout_rate", batch))
    u = _binomial_pit(kept, n, keep, rng_for(f"{name}/pit"))
    what = f"{mode} kept count given rate_i ({source}), range {config.dropout_rate_range!r}: PIT"
    assert_ks_1samp(u, stats.uniform.cdf, what=what)


# --------------------------------------------------------------------------- #
# The mixture over records vs a direct Monte-Carlo of the law                  #
# --------------------------------------------------------------------------- #
@pytest.mark.stats
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("clip_range", [None, (0.0, 1.0)])
def test_gaussian_mixture_matches_monte_carlo(source, clip_range):
    """One value per record: ``x + noise_mean + sigma z`` with ``sigma ~ U[0, 1]`` drawn by
    the reference vs by NumPy (two-sample KS at 1e-5, 20000 records each).  A constant
    sigma at the midpoint is off by 0.059 (unclipped); the check detects 0.036."""
    batch = scaled(N_MIXTURE)
    name = f"test_gaussian_mixture_matches_monte_carlo/{source}/{clip_range}"
    config = _wide("gaussian", noise_mean=0.1, clip_range=clip_range)
    images_ = np.full((batch, 1, 1, 1), 0.5)
    params = reference.draw(config, _randomness(source, name, batch), (1, 1, 1), batch)
    out = reference.apply_batch(config, images_, params).ravel()
    mc = rng_for(f"{name}/monte-carlo")
    sigma = mc.uniform(*WIDE["noise_std"], batch)
    direct = 0.5 + 0.1 + sigma * mc.standard_normal(batch)
    if clip_range is not None:
        direct = np.clip(direct, *clip_range)
    assert_ks_2samp(out, direct, what=f"gaussian mixture over sigma ~ U{WIDE['noise_std']}")


def _histogram(counts: np.ndarray, top: int) -> np.ndarray:
    return np.bincount(np.asarray(counts, np.int64), minlength=top + 1)


@pytest.mark.stats
@pytest.mark.parametrize("mode", [name for name in RANGED if name not in NORMAL_NOISE_MODES])
def test_count_mixture_matches_monte_carlo(mode):
    """Per-record counts over the strength's law: reference vs a direct NumPy simulation.

    salt & pepper, pixel, channel: the histogram of each record's salt and pepper
    counts (kept count), 2000 records each, chi-square homogeneity at 1e-5 (the
    overdispersion a strength per record adds is missing from a constant strength:
    the variance of the counts drops by a factor 3 to 14).  poisson: one value per record,
    ``k / lam_scale`` with ``lam_scale`` log-uniform on [1, 100], two-sample KS at 1e-5
    (detects 0.11).
    """
    batch = scaled(N_COUNT_RECORDS)
    name = f"test_count_mixture_matches_monte_carlo/{mode}"
    config = _wide(mode)
    shape = {"poisson": (1, 1, 1), "channel": (2, 2, 16)}.get(mode, (4, 4, 4))
    big = np.full((batch, *shape), 0.5)
    params = reference.draw(config, reference.StreamSource(_keys(name, batch)), shape, batch)
    out = reference.apply_batch(config, big, params)
    mc = rng_for(f"{name}/monte-carlo")
    if mode == "poisson":
        low, high = WIDE["lam_scale"]
        lam_scale = np.exp(mc.uniform(math.log(low), math.log(high), batch))
        direct = mc.poisson(0.5 * lam_scale) / lam_scale
        assert_ks_2samp(out.ravel(), direct, what="poisson mixture, lam_scale log-uniform")
        return
    if mode == "salt_pepper":
        n = math.prod(shape)
        salt = mc.uniform(*WIDE["salt_prob"], batch)
        pepper = mc.uniform(*WIDE["pepper_prob"], batch)
        direct_salt = mc.binomial(n, salt)
        direct_pepper = mc.binomial(n - direct_salt, pepper / (1.0 - salt))
        got = out.reshape(batch, -1)
        for what, mine, theirs in (
            ("salt", (got == 1.0).sum(1), direct_salt),
            ("pepper", (got == 0.0).sum(1), direct_pepper),
        ):
            assert_chisquare_homogeneity(
                _histogram(mine, n), _histogram(theirs, n), what=f"{what} counts per record"
            )
        return
    n = shape[-1] if mode == "channel" else math.prod(shape)
    kept = _kept_counts(config, big, out)
    direct = mc.binomial(n, 1.0 - mc.uniform(*WIDE["dropout_rate"], batch))
    assert_chisquare_homogeneity(
        _histogram(kept, n), _histogram(direct, n), what=f"{mode} kept per record"
    )


# --------------------------------------------------------------------------- #
# per_channel                                                                  #
# --------------------------------------------------------------------------- #
def _pixel_draw(config: Any, keys: np.ndarray, params: dict, shape: tuple) -> np.ndarray:
    """What the stream draws for one value per pixel: the element bits of ``shape[:-1] + (1,)``."""
    pixel_shape = (keys.shape[0], *shape[:-1], 1)
    if config.mode in NORMAL_NOISE_MODES:
        std = _strength(config, params, "noise_std", keys.shape[0]).reshape(-1, 1, 1, 1)
        return (config.noise_mean + std * stream.normals(keys, pixel_shape)).astype(np.float32)
    levels = stream.uniforms(keys, pixel_shape)
    if config.mode == "pixel":
        rate = _strength(config, params, "dropout_rate", keys.shape[0]).astype(np.float32)
        return levels >= rate.reshape(-1, 1, 1, 1)
    return levels


@pytest.mark.parametrize("mode", PER_CHANNEL_MODES)
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("ranged", [False, True])
def test_per_channel_false_shares_each_pixel_draw(mode, source, ranged):
    """``per_channel=False``: every channel of a pixel has the same param and output (a
    constant image); with stream keys, the pixel's value is the stream's draw for
    ``(H, W, 1)``.  ``per_channel=True`` still gives the channels their own draws."""
    batch, shape = 16, (6, 5, 3)
    name = f"test_per_channel_false/{mode}/{source}/{ranged}"
    fields = _own(mode, noise_std=0.3, dropout_rate=0.5, salt_prob=0.3, pepper_prob=0.3)
    config = (
        _wide(mode, per_channel=False) if ranged else _config(mode, per_channel=False, **fields)
    )
    key = MODES[mode].params_key
    randomness = _randomness(source, name, batch)
    params = reference.draw(config, randomness, shape, batch)
    values = params[key]
    assert values.shape == (batch, *shape)
    assert np.all(values == values[..., :1]), "channels of a pixel got different draws"
    if source == "stream":
        expected = _pixel_draw(config, randomness.keys, params, shape)
        if expected.dtype == np.bool_:
            np.testing.assert_array_equal(values[..., :1], expected)
        else:
            np.testing.assert_allclose(values[..., :1], expected, rtol=1e-6)
    image = np.full(shape, 0.5, np.float32)
    out = reference.apply_batch(config, np.broadcast_to(image, values.shape), params)
    assert np.all(out == out[..., :1]), "channels of a pixel got different outputs"
    assert len(np.unique(out)) > 1, "nothing happened"

    separate = dataclasses.replace(config, per_channel=True)
    values = reference.draw(separate, _randomness(source, name, batch), shape, batch)[key]
    same = np.all(values == values[..., :1], axis=-1)
    if mode == "pixel":
        assert same.mean() < 0.75  # each pixel keeps all 3 channels or none w.p. 1/4
    else:
        assert not np.any(same)


# --------------------------------------------------------------------------- #
# apply_prob                                                                   #
# --------------------------------------------------------------------------- #
def _clip_for(mode: str) -> tuple[float, float]:
    """A clip range below 255: a transformed record holding a 255 always changes."""
    return (0.0, 1.0) if config_class_of(mode) is reference.NoiseOperatorConfig else (10.0, 200.0)


def _record(params: dict, i: int) -> dict:
    return {k: np.asarray(v)[i] for k, v in params.items()}


@pytest.mark.stats
@pytest.mark.parametrize("mode", MODE_NAMES)
def test_apply_prob_at_full_size(mode):
    """apply_prob 0.7 over 32768 records of the stream (the Hypothesis examples below use
    1000): the exact binomial at 1e-5 catches an error of 0.0144 (2.1%) with power 0.9."""
    batch = scaled(N_APPLY_FULL)
    name = f"test_apply_prob_at_full_size/{mode}"
    config = _config(mode, apply_prob=0.7)
    params = reference.draw(config, _randomness("stream", name, batch), (1, 1, 1), batch)
    applied = params["apply"]
    assert_binomial(int(applied.sum()), batch, 0.7, what=f"{mode} records applied, full size")


@pytest.mark.stats
@pytest.mark.parametrize("mode", MODE_NAMES)
@given(
    apply_prob=st.floats(0.01, 0.99),
    ranged=st.booleans(),
    dtype=st.sampled_from([np.uint8, np.float32]),
    source=st.sampled_from(SOURCES),
    seed=SEEDS,
)
@example(0.3, True, np.uint8, "stream", 0)
@example(0.8, False, np.float32, "generator", 1)
def test_apply_prob_transforms_a_binomial_number_of_records(
    mode, apply_prob, ranged, dtype, source, seed
):
    """``params["apply"]``: bool ``(B,)``, True for a Binomial(B, apply_prob) number of
    records (exact binomial test at 1e-5 on 1000 records: detects an error of 0.09 in
    the probability near 0.5 with power 0.9, so the decision inverted for
    ``|1 - 2p| > 0.09``, and one decision for the whole batch always; the 3% goal is
    ``test_apply_prob_at_full_size``'s).  The first 48 records: applied ones equal the
    mode's output (``apply_prob=1``), the others come back bit for bit (dtype included).
    """
    batch = scaled(N_APPLY)
    config = _wide(mode) if ranged else _config(mode)
    config = dataclasses.replace(config, apply_prob=apply_prob, clip_range=_clip_for(mode))
    shape = (3, 4, 2)
    name = f"test_apply_prob_transforms/{mode}/{source}/{seed}"
    params = reference.draw(config, _randomness(source, name, batch), shape, batch)
    apply = params["apply"]
    assert apply.shape == (batch,) and apply.dtype == np.bool_
    assert_binomial(int(apply.sum()), batch, apply_prob, what=f"{mode} records applied")
    shown = 48
    images_ = rng_for(f"{name}/images").integers(0, 256, (shown, *shape)).astype(dtype)
    images_[:, 0, 0, 0] = 255  # above every clip range: a transformed record always changes
    out = reference.apply_batch(config, images_, {k: v[:shown] for k, v in params.items()})
    always = dataclasses.replace(config, apply_prob=1.0)
    for i in range(shown):
        record = _record(params, i)
        if apply[i]:
            del record["apply"]
            expected = reference.apply(always, images_[i], record)
            assert _exact_bits(expected, out[i]) and not _exact_bits(images_[i], out[i])
        else:
            assert _exact_bits(images_[i], out[i]), f"record {i} not applied but changed"


@pytest.mark.parametrize("mode", MODE_NAMES)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_apply_prob_zero_never_and_one_always(mode, dtype):
    """``apply_prob=0``: no record is transformed (outputs are the inputs, bit for bit);
    ``apply_prob=1``: no decision is drawn and every record is the mode's output."""
    batch, shape = 32, (4, 4, 3)
    name = f"test_apply_prob_zero_never_and_one_always/{mode}"
    images_ = rng_for(f"{name}/images").integers(0, 256, (batch, *shape)).astype(dtype)
    images_[:, 0, 0, 0] = 255  # above every clip range: a transformed record always changes
    never = _wide(mode, apply_prob=0.0, clip_range=_clip_for(mode))
    params = reference.draw(never, reference.StreamSource(_keys(name, batch)), shape, batch)
    assert not np.any(params["apply"])
    out = reference.apply_batch(never, images_, params)
    assert _exact_bits(images_, out)
    always = dataclasses.replace(never, apply_prob=1.0)
    params = reference.draw(always, reference.StreamSource(_keys(name, batch)), shape, batch)
    assert "apply" not in params
    out = reference.apply_batch(always, images_, params)
    for i in range(batch):
        assert not _exact_bits(images_[i], out[i]), f"record {i} was not transformed"


# --------------------------------------------------------------------------- #
# The defaults draw what the seed pages drew                                   #
# --------------------------------------------------------------------------- #
class _SeedDraws:
    """The seed's draws (before issue 17) from a generator or from record keys."""

    def __init__(self, randomness: Any) -> None:
        self.randomness = randomness

    def normals(self, shape: tuple[int, ...]) -> np.ndarray:
        if isinstance(self.randomness, np.random.Generator):
            return self.randomness.standard_normal(shape)
        return stream.normals(self.randomness, shape)

    def uniforms(self, shape: tuple[int, ...]) -> np.ndarray:
        if isinstance(self.randomness, np.random.Generator):
            return self.randomness.random(shape, dtype=np.float32)
        return stream.uniforms(self.randomness, shape)


def _seed_params(config: Any, seed_draws: _SeedDraws, shape: tuple, batch: int) -> dict:
    """The params the seed's formulas draw, one formula per mode."""
    full = (batch, *shape)
    rate = np.float32(getattr(config, "dropout_rate", 0.0))
    formulas = {
        "gaussian": lambda: config.noise_mean + config.noise_std * seed_draws.normals(full),
        "speckle": lambda: config.noise_mean + config.noise_std * seed_draws.normals(full),
        "salt_pepper": lambda: seed_draws.uniforms(full),
        "poisson": lambda: seed_draws.uniforms(full),
        "pixel": lambda: seed_draws.uniforms(full) >= rate,
        "channel": lambda: seed_draws.uniforms((batch, shape[-1])) >= rate,
    }
    assert set(formulas) == set(SEED_MODES)
    values = formulas[config.mode]()
    if values.dtype == np.float64:
        values = values.astype(np.float32)
    return {MODES[config.mode].params_key: values}


@pytest.mark.parametrize("mode", SEED_MODES)
@pytest.mark.parametrize("source", SOURCES)
def test_defaults_draw_the_seed_params(mode, source):
    """A config without the new fields (or with them at their defaults) draws exactly the
    seed's params, with the seed's keys only, from the same randomness; two draws in a
    row from one generator match the seed's two (nothing unused is drawn in between)."""
    batch, shape = 8, (4, 5, 3)
    name = f"test_defaults_draw_the_seed_params/{mode}/{source}"
    fields = _own(mode, noise_std=0.3, noise_mean=0.1, dropout_rate=0.4)
    config = _config(mode, **fields)
    explicit = _config(
        mode,
        **fields,
        per_channel=True,
        apply_prob=1.0,
        **{field: None for field, _ in RANGE_FIELDS[mode]},
    )
    assert explicit == config and hash(explicit) == hash(config)
    randomness = _randomness(source, name, batch)
    seed_draws = _SeedDraws(rng_for(name) if source == "generator" else randomness.keys)
    for _ in range(2):
        params = reference.draw(config, randomness, shape, batch)
        expected = _seed_params(config, seed_draws, shape, batch)
        assert set(params) == set(expected) == {MODES[mode].params_key}
        for key, value in expected.items():
            assert params[key].dtype == value.dtype
            np.testing.assert_array_equal(params[key], value)
    one_record = (
        rng_for(name) if source == "generator" else reference.StreamSource(_keys(name, 1)[0])
    )
    assert set(reference.draw(_config(mode), one_record, shape)) == {MODES[mode].params_key}


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_new_params_are_named_after_their_scalar(mode):
    """The params gain a float32 ``(B,)`` array per set range, named after the scalar it
    replaces, and ``"apply"`` (bool ``(B,)``) when ``apply_prob < 1``; nothing else."""
    batch = 5
    keys = reference.StreamSource(_keys(f"test_new_params_are_named/{mode}", batch))
    for apply_prob in (1.0, 0.5):
        config = _wide(mode, apply_prob=apply_prob)
        params = reference.draw(config, keys, (2, 3, 4), batch)
        scalars = {scalar for _, scalar in RANGE_FIELDS[mode]}
        own = set(reference.draw(_config(mode), keys, (2, 3, 4), batch))  # the mode's arrays
        assert MODES[mode].params_key in own
        expected = own | scalars | ({"apply"} if apply_prob < 1 else set())
        assert set(params) == expected
        for scalar in scalars:
            assert params[scalar].shape == (batch,) and params[scalar].dtype == np.float32


# --------------------------------------------------------------------------- #
# Validation of the new fields                                                 #
# --------------------------------------------------------------------------- #
def _invalid_cases() -> list[tuple[str, dict[str, Any], type[Exception], str]]:
    """(mode, kwargs, exception, field the message names)."""
    cases: list[tuple[str, dict[str, Any], type[Exception], str]] = []
    for mode in MODE_NAMES:
        for field, scalar in RANGE_FIELDS[mode]:
            low, high = WIDE[scalar]
            bad = [
                ((high, low) if high > low else (0.5, 0.25), ValueError),  # lo > hi
                ((NAN, high), ValueError),
                ((low, NAN), ValueError),
                ((low, INF), ValueError),
                ((-INF, high), ValueError),
                ((low,), ValueError),
                ((low, high, high), ValueError),
                (high, ValueError),
                (f"{low},{high}", ValueError),
                ((True, high), TypeError),
                ((low, "1"), TypeError),
            ]
            if scalar == "noise_std":
                bad.append(((-0.1, 0.5), ValueError))
            elif scalar == "lam_scale":
                bad += [((0.0, 1.0), ValueError), ((-1.0, 1.0), ValueError)]
            else:  # a probability or a rate
                bad += [((-0.1, 0.5), ValueError), ((0.2, 1.2), ValueError)]
            cases += [(mode, {field: value}, exc, field) for value, exc in bad]
        # a range set for a mode that does not read it (a field of the same config class)
        for pairs in RANGE_FIELDS.values():
            for field, scalar in pairs:
                readers = {m for m, p in RANGE_FIELDS.items() if field in dict(p)}
                config_fields = {f.name for f in dataclasses.fields(config_class_of(mode))}
                if mode not in readers and field in config_fields:
                    cases.append((mode, {field: WIDE[scalar]}, ValueError, field))
        if mode not in PER_CHANNEL_MODES:
            cases.append((mode, {"per_channel": False}, ValueError, "per_channel"))
        for value in (0, 1, "False", None, np.bool_(False)):
            cases.append((mode, {"per_channel": value}, TypeError, "per_channel"))
        for value in (-0.1, 1.5, NAN, INF, -INF):
            cases.append((mode, {"apply_prob": value}, ValueError, "apply_prob"))
        for value in (True, False, "0.5", None, [0.5]):
            cases.append((mode, {"apply_prob": value}, TypeError, "apply_prob"))
    # salt & pepper: the largest salt and pepper probabilities sum to more than 1
    cases += [
        (
            "salt_pepper",
            {"salt_prob_range": (0.0, 0.6), "pepper_prob_range": (0.0, 0.5)},
            ValueError,
            "salt_prob_range",
        ),
        ("salt_pepper", {"salt_prob_range": (0.1, 0.995)}, ValueError, "pepper_prob"),  # + 0.01
        (
            "salt_pepper",
            {"pepper_prob_range": (0.0, 0.5), "salt_prob": 0.6, "pepper_prob": 0.0},
            ValueError,
            "pepper_prob_range",
        ),
    ]
    return cases


INVALID = _invalid_cases()


def _case_id(case: tuple) -> str:
    mode, kwargs = case[0], case[1]
    return f"{mode}-" + "-".join(f"{k}={v!r}" for k, v in kwargs.items())


@pytest.mark.parametrize("case", INVALID, ids=[_case_id(c) for c in INVALID])
def test_invalid_training_field_rejected_naming_the_field(case):
    mode, kwargs, exception, field = case
    with pytest.raises(exception, match=re.escape(field)):
        _config(mode, **kwargs)


@pytest.mark.parametrize(
    ("mode", "field", "scalar"),
    [(mode, field, scalar) for mode, pairs in RANGE_FIELDS.items() for field, scalar in pairs],
)
def test_range_is_stored_as_a_float_pair(mode, field, scalar):
    """A list, ints or NumPy scalars are stored as a tuple of two Python floats; the config
    stays hashable and equals the one built from the tuple."""
    low, high = WIDE[scalar]
    room = {"salt_prob": 0.0, "pepper_prob": 0.0} if mode == "salt_pepper" else {}
    for raw in ([low, high], (np.float32(low), np.float64(high)), [int(low), math.ceil(high)]):
        config = _config(mode, **{field: raw}, **room)
        stored = getattr(config, field)
        assert type(stored) is tuple and all(type(bound) is float for bound in stored)
        assert stored == (float(raw[0]), float(raw[1]))
        twin = _config(mode, **{field: stored}, **room)
        assert config == twin and hash(config) == hash(twin)
        assert {config: 1}[twin] == 1


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_valid_training_edge_values_accepted(mode):
    """lo == hi, the ends of the domains, apply_prob 0 and 1 (int or float), per_channel
    False where the mode has per-value draws."""
    for field, scalar in RANGE_FIELDS[mode]:
        low, high = WIDE[scalar]
        for bounds in ((low, low), (high, high), (low, high)):
            assert getattr(_config(mode, **{field: bounds}), field) == bounds
        edge = {"noise_std": (0.0, 0.0), "lam_scale": (1e-9, 1e9)}.get(scalar, (0.0, 1.0))
        if mode == "salt_pepper":  # the other probability's scalar leaves room for hi = 1
            other = "pepper_prob" if scalar == "salt_prob" else "salt_prob"
            _config(mode, **{field: edge, other: 0.0})
        else:
            _config(mode, **{field: edge})
    for apply_prob in (0, 1, 0.0, 1.0, np.float64(0.5)):
        assert _config(mode, apply_prob=apply_prob).apply_prob == apply_prob
    if mode in PER_CHANNEL_MODES:
        assert _config(mode, per_channel=False).per_channel is False
    if mode == "salt_pepper":  # hi + hi == 1 exactly
        _config(mode, salt_prob_range=(0.0, 0.5), pepper_prob_range=(0.5, 0.5))


@pytest.mark.parametrize("mode", RANGED)
@given(data=st.data())
def test_strategy_ranged_configs_are_valid(mode, data):
    """``tests.strategies.ranged_configs`` builds valid configs with a range set; fixed
    fields are kept."""
    config = data.draw(ranged_configs(mode))
    assert config.mode == mode and any(getattr(config, f) for f, _ in RANGE_FIELDS[mode])
    assert config.per_channel or mode in PER_CHANNEL_MODES
    field, scalar = RANGE_FIELDS[mode][-1]
    fixed = data.draw(ranged_configs(mode, apply_prob=0.25, **{field: WIDE[scalar]}))
    assert fixed.apply_prob == 0.25 and getattr(fixed, field) == WIDE[scalar]
