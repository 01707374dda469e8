"""The reference DropoutOperator against the mathematics.

``keep ~ Bernoulli(1 - dropout_rate)``, independently per value (pixel mode)
or per channel of an ``(H, W, C)`` element (channel mode); dropped values
become 0.  Every statistical check runs at ``ALPHA = 1e-5`` with seeds from
``rng_for(<test name>/<example seed>)``; the docstrings give the deviation
each is sized to detect (power 0.99 at ``DATARAX_OPS_STATS_SCALE=1``).
"""

from __future__ import annotations

import numpy as np
import pytest
from datarax_ops.reference.config import DropoutOperatorConfig
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import stats

from datarax_ops import reference
from datarax_ops.conformance.stats import (
    assert_binomial,
    assert_chisquare_gof,
    rng_for,
    scaled,
    tiled,
)
from tests.strategies import dropout_configs, element_shapes, images

N = 20_000  # values (pixel mode) or channel decisions (keep_mask test)
N_CHANNEL_APPLY = 4_000  # channel decisions read back from applied images
SEEDS = st.integers(0, 2**32 - 1)
_RNG = np.random.default_rng(20240612)
UNIT_IMAGE = _RNG.uniform(0.0, 1.0, (16, 16, 3))
BYTE_IMAGE = np.round(_RNG.uniform(0.0, 255.0, (8, 8, 4)))


def _config(**kwargs) -> DropoutOperatorConfig:
    return DropoutOperatorConfig(field_key="image", **kwargs)


def _nonzero(image: np.ndarray) -> np.ndarray:
    """Zeros replaced by the image's top value (or 1): kept and dropped values differ."""
    top = image.max() if image.max() > 0 else 1
    return np.where(image == 0, top, image).astype(image.dtype)


def _kept_count_probs(channels: int, keep: float) -> np.ndarray:
    return stats.binom.pmf(np.arange(channels + 1), channels, keep)


# --------------------------------------------------------------------------- #
# pixel                                                                        #
# --------------------------------------------------------------------------- #
@pytest.mark.stats
@given(
    config=dropout_configs("pixel", clip_range=None),
    image=images(dtype=st.sampled_from([np.float32, np.float64, np.uint8])),
    seed=SEEDS,
)
@example(_config(mode="pixel", dropout_rate=0.1), UNIT_IMAGE, 0)  # the seed's default rate
@example(_config(mode="pixel", dropout_rate=0.5), BYTE_IMAGE, 1)
@example(_config(mode="pixel", dropout_rate=0.97), UNIT_IMAGE, 2)
@example(_config(mode="pixel", dropout_rate=1.0), BYTE_IMAGE.astype(np.uint8), 3)
def test_pixel_keep_counts_are_binomial(config, image, seed):
    """Pixel mode: each value kept (unchanged) or dropped (0), kept ~ Binomial(n, 1 - rate).

    Two checks per example at 1e-5 on n >= 20000 values: the exact binomial
    test of the kept count detects an error of 0.024 in the keep probability
    (0.007 near 0.95); for C >= 2 the chi-square test of the kept count per
    pixel against Binomial(C, 1 - rate) detects decisions shared across the
    channels of a pixel (whole-pixel dropout) or other dependence.
    """
    image = _nonzero(image)
    rng = rng_for(f"test_pixel_keep_counts_are_binomial/{seed}")
    big = tiled(image, scaled(N))
    params = reference.draw(config, rng, big.shape)
    out = reference.apply(config, big, params)
    kept, dropped = out == big, out == 0
    assert np.all(kept ^ dropped), "a value is neither kept nor zeroed"
    keep = 1.0 - config.dropout_rate
    what = f"pixel dropout kept values, rate={config.dropout_rate!r}"
    assert_binomial(int(kept.sum()), kept.size, keep, what=what)
    channels = image.shape[-1]
    if channels >= 2 and 0 < keep < 1:
        per_pixel = kept.reshape(-1, channels).sum(axis=1)
        counts = np.bincount(per_pixel, minlength=channels + 1)
        probs = _kept_count_probs(channels, keep)
        assert_chisquare_gof(counts, probs, what=f"{what}, kept channels per pixel")


# --------------------------------------------------------------------------- #
# channel                                                                      #
# --------------------------------------------------------------------------- #
def _channel_decisions(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    """(C,) bool kept per channel, read off ``out``; fails unless each channel is whole."""
    channels = image.shape[-1]
    x, o = image.reshape(-1, channels), out.reshape(-1, channels)
    kept = np.all(o == x, axis=0)
    dropped = np.all(o == 0, axis=0)
    assert np.all(kept ^ dropped), "a channel is partly dropped: the mask varies over H, W"
    return kept


@pytest.mark.stats
@given(
    config=dropout_configs("channel", clip_range=None),
    image=images(shape=element_shapes(max_side=16), dtype=np.float32),
    seed=SEEDS,
)
@example(_config(mode="channel", dropout_rate=0.5), UNIT_IMAGE.astype(np.float32), 0)
@example(_config(mode="channel", dropout_rate=0.1), BYTE_IMAGE.astype(np.float32), 1)
@example(_config(mode="channel", dropout_rate=0.0), BYTE_IMAGE.astype(np.float32), 2)
def test_channel_dropout_via_apply(config, image, seed):
    """Channel mode via ``apply``: whole channels kept or zeroed, kept ~ Binomial(B*C, 1 - rate).

    B elements are drawn at once (``batch_size``) and applied one by one; each
    channel must be entirely kept or entirely 0 (the mask is constant over H
    and W), and must agree with the drawn mask.  One exact binomial check per
    example at 1e-5 on >= 4000 channel decisions: detects an error of 0.053
    in the keep probability near 0.5 (0.032 near 0.9).
    """
    image = _nonzero(image)
    channels = image.shape[-1]
    batch = -(-scaled(N_CHANNEL_APPLY) // channels)
    rng = rng_for(f"test_channel_dropout_via_apply/{seed}")
    params = reference.draw(config, rng, image.shape, batch_size=batch)
    assert params["keep_mask"].shape == (batch, channels)
    decisions = np.empty((batch, channels), dtype=bool)
    for i in range(batch):
        out = reference.apply(config, image, {"keep_mask": params["keep_mask"][i]})
        decisions[i] = _channel_decisions(image, out)
    np.testing.assert_array_equal(decisions, params["keep_mask"])
    what = f"channel dropout kept channels (apply), rate={config.dropout_rate!r}"
    assert_binomial(int(decisions.sum()), decisions.size, 1.0 - config.dropout_rate, what=what)


@pytest.mark.stats
@given(config=dropout_configs("channel"), shape=element_shapes(), seed=SEEDS)
@example(_config(mode="channel", dropout_rate=0.1), (32, 32, 3), 0)
@example(_config(mode="channel", dropout_rate=0.5), (4, 4, 4), 1)
def test_channel_keep_mask_is_bernoulli(config, shape, seed):
    """The drawn channel mask: shape (B, C), i.i.d. Bernoulli(1 - rate).

    Two checks per example at 1e-5 on >= 20000 decisions: the binomial test of
    the kept count detects an error of 0.024 in the keep probability; for
    C >= 2, the chi-square test of kept channels per element against
    Binomial(C, 1 - rate) detects one decision shared by all channels.
    """
    channels = shape[-1]
    batch = -(-scaled(N) // channels)
    rng = rng_for(f"test_channel_keep_mask_is_bernoulli/{seed}")
    mask = reference.draw(config, rng, shape, batch_size=batch)["keep_mask"]
    assert mask.shape == (batch, channels) and mask.dtype == np.bool_
    keep = 1.0 - config.dropout_rate
    what = f"channel keep mask, rate={config.dropout_rate!r}"
    assert_binomial(int(mask.sum()), mask.size, keep, what=what)
    if channels >= 2 and 0 < keep < 1:
        counts = np.bincount(mask.sum(axis=1), minlength=channels + 1)
        assert_chisquare_gof(
            counts, _kept_count_probs(channels, keep), what=f"{what}, kept per element"
        )


@pytest.mark.parametrize(
    ("shape", "mask_shape"),
    [
        ((8, 8, 3), (3,)),
        ((1, 1, 1), (1,)),
        ((5, 7), (5, 7)),
        ((6,), (6,)),
        ((2, 3, 4, 5), (2, 3, 4, 5)),
    ],
)
def test_channel_mask_shape(shape, mask_shape):
    """(C,) for a 3-D element; one decision per value for any other rank (as the seed does)."""
    config = _config(mode="channel", dropout_rate=0.5)
    rng = rng_for(f"test_channel_mask_shape/{shape}")
    assert reference.draw(config, rng, shape)["keep_mask"].shape == mask_shape
    assert reference.draw(config, rng, shape, batch_size=2)["keep_mask"].shape == (2, *mask_shape)
    image = np.arange(1, np.prod(shape) + 1, dtype=np.float32).reshape(shape)
    params = reference.draw(config, rng, shape)
    out = reference.apply(config, image, params)
    expected = np.where(np.broadcast_to(params["keep_mask"], shape), image, 0)
    np.testing.assert_array_equal(out, expected)


# --------------------------------------------------------------------------- #
# rates 0 and 1                                                                #
# --------------------------------------------------------------------------- #
@given(
    mode=st.sampled_from(["pixel", "channel"]),
    image=images(dtype=st.sampled_from([np.float32, np.float64, np.uint8])),
    clip=st.sampled_from([None, (0.0, 255.0)]),
    seed=SEEDS,
)
def test_rate_zero_returns_input_unchanged(mode, image, clip, seed):
    """``dropout_rate == 0``: the output equals the input (a copy, same dtype)."""
    config = _config(mode=mode, dropout_rate=0.0, clip_range=clip)
    params = reference.draw(config, rng_for(f"test_rate_zero/{seed}"), image.shape)
    assert np.all(params["keep_mask"])
    out = reference.apply(config, image, params)
    assert out.dtype == image.dtype and out is not image
    np.testing.assert_array_equal(out, image)


@given(
    mode=st.sampled_from(["pixel", "channel"]),
    image=images(dtype=st.sampled_from([np.float32, np.float64, np.uint8])),
    seed=SEEDS,
)
def test_rate_one_zeroes_everything(mode, image, seed):
    """``dropout_rate == 1``: every value is 0 (no clip range), dtype kept."""
    config = _config(mode=mode, dropout_rate=1.0)
    params = reference.draw(config, rng_for(f"test_rate_one/{seed}"), image.shape)
    assert not np.any(params["keep_mask"])
    out = reference.apply(config, image, params)
    assert out.dtype == image.dtype
    np.testing.assert_array_equal(out, np.zeros_like(image))


def test_no_rescaling_of_kept_values():
    """Kept values are not divided by ``1 - rate`` (the seed does not rescale)."""
    config = _config(mode="pixel", dropout_rate=0.5)
    image = np.full((2, 2, 1), 0.4, np.float32)
    keep = np.array([True, False, True, False]).reshape(2, 2, 1)
    out = reference.apply(config, image, {"keep_mask": keep})
    np.testing.assert_array_equal(out.ravel(), np.float32([0.4, 0, 0.4, 0]))


def test_dropout_clip_range_applies_after_zeroing():
    """With ``clip_range``, kept and dropped values are clipped (0 goes to a positive min)."""
    config = _config(mode="pixel", dropout_rate=0.5, clip_range=(0.1, 0.5))
    image = np.array([0.05, 0.3, 0.9, 0.3], np.float64).reshape(2, 2, 1)
    keep = np.array([True, True, True, False]).reshape(2, 2, 1)
    out = reference.apply(config, image, {"keep_mask": keep})
    np.testing.assert_array_equal(out.ravel(), [0.1, 0.3, 0.5, 0.1])
