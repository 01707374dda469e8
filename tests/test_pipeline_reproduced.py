"""The NumPy reference reproduces ``op(batch)`` from the operator's key and the records' indices.

Not a distributional check: the reference runs the same counter-based stream
(``reference/stream.py``) as the compiled operator (``datarax_ops/stream.py``),
so for every mode the whole pipeline (record keys, bits, conversions, the
mode's arithmetic) is compared value by value through the public API:

* masks and salt & pepper: bit for bit;
* gaussian: the compiled normal quantile is a float32 approximation, the
  reference's is exact (float64), so the noise may differ by a few float32 ulps
  (measured: at most 3.6 ulps of ``z`` over the stream's whole grid of 2^24
  levels, ``datarax_ops.stream.normal_from_bits``); float outputs agree within
  one output ulp plus ``NORMAL_ULPS`` ulps of the noise; integer outputs exactly,
  except where the unrounded value is a .5 tie to that precision
  (``test_equivalence.integer_gaussian_ok``);
* speckle: the same noise bound, times ``|x|``, plus one float32 ulp of the multiplier
  ``1 + noise`` (its rounding may flip with the noise's last bits);
* poisson: equal counts except where the level lies within the float32 CDF
  error of a step (``test_equivalence.poisson_boundary_ok``).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from datarax_ops.reference.config import DROPOUT_MODES

import datarax_ops as dx
from datarax_ops import reference
from tests.factory import batch_of, make_operator, training_config
from tests.test_equivalence import (
    FLOAT_NOISE_MODES,
    assert_matches_reference,
    integer_gaussian_ok,
    ulp,
)
from tests.test_stream import NORMAL_ULPS_MAX

MODE_NAMES = [mode.name for mode in dx.MODES]
# Each mode as the seed pages have it, and with issue 17's settings on ("<mode>+training").
CASES = MODE_NAMES + [f"{mode}+training" for mode in MODE_NAMES]
# The compiled noise std * z vs the reference's, in float32 ulps of std * z: z is within
# NORMAL_ULPS_MAX ulps of z (test_stream, every level of the grid); times std that is
# at most twice as many ulps of std * z (the mantissas' product is below 4); plus half
# an ulp for rounding the product.  (The sum with the mean: ``noise_tolerance``.)
NORMAL_ULPS = 2 * NORMAL_ULPS_MAX + 0.5


def _config(case: str, stochastic: bool = True):
    mode, _, setting = case.partition("+")
    config = _seed_config(mode, stochastic)
    if setting:  # the training settings on top of the same strengths
        config = dataclasses.replace(
            training_config(mode), **{"stochastic": stochastic, "clip_range": config.clip_range}
        )
    return config


def _seed_config(mode: str, stochastic: bool):
    if mode in DROPOUT_MODES:
        holes = {"hole_count_range": (1, 4), "hole_size_range": (0.1, 0.6), "fill_value": 0.25}
        return dx.DropoutOperatorConfig(
            field_key="image",
            mode=mode,
            dropout_rate=0.4,
            stochastic=stochastic,
            **(holes if mode == "coarse" else {}),
        )
    noise = {"noise_std": 0.3, "noise_mean": 0.05}
    extra = {"gaussian": noise, "speckle": noise, "poisson": {"lam_scale": 20.0}}
    return dx.NoiseOperatorConfig(
        field_key="image",
        mode=mode,
        stochastic=stochastic,
        clip_range=None,
        salt_prob=0.2,
        pepper_prob=0.3,
        **extra.get(mode, {}),
    )


def _images(dtype, shape=(6, 9, 7, 3), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 256, shape).astype(dtype)
    return rng.random(shape, dtype=np.float32).astype(dtype)


def noise_tolerance(config, noise: np.ndarray) -> np.ndarray:
    """``NORMAL_ULPS`` float32 ulps of ``std * z`` plus one ulp of ``mean + std * z`` (half
    for each of the compiled sum's rounding and the reference's rounding to float32)."""
    scaled = np.abs(noise.astype(np.float64) - config.noise_mean)
    return NORMAL_ULPS * ulp(scaled, np.float32) + ulp(noise, np.float32)


def output_tolerance(config, image: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """How far the compiled noise's error (``noise_tolerance``) may move the unrounded
    output: gaussian adds the noise; speckle multiplies ``x`` by ``1 + noise``, rounded to
    float32 (the noise's error plus a flipped rounding of that sum: one ulp of it)."""
    tolerance = noise_tolerance(config, noise)
    if config.mode == "gaussian":
        return tolerance
    multiplier = np.float32(1.0) + noise
    return np.abs(image.astype(np.float64)) * (tolerance + ulp(multiplier, np.float32))


def assert_reproduced(config, images: np.ndarray, params: dict, got: np.ndarray) -> None:
    """Every record of ``got`` equals the reference applied with the stream's ``params``."""
    for i in range(images.shape[0]):
        record = {key: np.asarray(value)[i] for key, value in params.items()}
        if config.mode not in FLOAT_NOISE_MODES:
            assert_matches_reference(config, images[i], record, got[i])
            continue
        expected = reference.apply(config, images[i], record)
        noise = np.asarray(record["noise"], np.float32)
        moved = output_tolerance(config, images[i], noise)
        if np.issubdtype(expected.dtype, np.integer):  # exact, but at a true .5 tie
            ok = integer_gaussian_ok(config, images[i], record, got[i], expected, moved)
            where = tuple(np.argwhere(~ok)[0]) if not ok.all() else None
            assert where is None, (
                f"record {i}: {np.count_nonzero(~ok)} of {ok.size} values differ from the "
                f"reference off a rounding tie; first at {where}: got {got[i][where]}, "
                f"expected {expected[where]} (image {images[i][where]}, noise {noise[where]})"
            )
            continue
        tolerance = ulp(expected, expected.dtype) + moved
        error = np.abs(got[i].astype(np.float64) - expected.astype(np.float64))
        worst = np.unravel_index(np.argmax(error - tolerance), error.shape)
        assert np.all(error <= tolerance), (
            f"record {i} at {worst}: error {error[worst]} above the bound {tolerance[worst]} "
            f"(got {got[i][worst]}, expected {expected[worst]}, noise {noise[worst]})"
        )


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
@pytest.mark.parametrize("mode", CASES)
def test_reference_reproduces_successive_calls_from_the_base_key(mode, dtype):
    """Two calls of ``op(batch)`` (records 0..5, then 6..11 of the counter)."""
    config = _config(mode)
    if dtype == np.uint8 and isinstance(config, dx.NoiseOperatorConfig):
        config = dataclasses.replace(config, clip_range=(0.0, 255.0))
    op = make_operator(config, seed=11)
    base_key = np.asarray(op.get_state()["_base_key"])
    for call in range(2):
        images = _images(dtype, seed=call)
        got = np.asarray(op(batch_of(images)).data.get_value()["image"])
        indices = np.arange(call * 6, call * 6 + 6)
        params = reference.stream_params(config, base_key, indices, images.shape[1:])
        assert_reproduced(config, images, params, got)


@pytest.mark.parametrize("mode", CASES)
def test_reference_reproduces_records_by_metadata_index(mode):
    """Records carrying ``Metadata(index=i)`` (large, unordered) use their own index."""
    config = _config(mode)
    op = make_operator(config, seed=5)
    images = _images(np.float32, (4, 5, 6, 3), seed=2)
    indices = np.array([4_000_000_000, 7, 123_456_789, 2])
    batch = dx.Batch.from_parts(
        data={"image": jnp.asarray(images)},
        metadata_list=[dx.Metadata(index=int(i)) for i in indices],
    )
    got = np.asarray(op(batch).data.get_value()["image"])
    base_key = np.asarray(op.get_state()["_base_key"])
    assert_reproduced(
        config, images, reference.stream_params(config, base_key, indices, (5, 6, 3)), got
    )


@pytest.mark.parametrize("mode", CASES)
def test_reference_reproduces_records_by_epoch_shard_and_64_bit_index(mode):
    """``Metadata(index, epoch, shard_id)``: the reference's ``stream.identity_key``."""
    config = _config(mode)
    op = make_operator(config, seed=6)
    images = _images(np.float32, (5, 5, 6, 3), seed=4)
    epochs = [0, 1, 7, 2**32 - 1, 1]
    shards = [None, 0, 3, 2**32 - 1, 5]
    indices = [9, 9, 2**40 + 3, 2**64 - 1, 0]
    batch = dx.Batch.from_parts(
        data={"image": jnp.asarray(images)},
        metadata_list=[
            dx.Metadata(index=i, epoch=e, shard_id=s)
            for e, s, i in zip(epochs, shards, indices, strict=True)
        ],
    )
    got = np.asarray(op(batch).data.get_value()["image"])
    base_key = np.asarray(op.get_state()["_base_key"])
    shard_ids = np.array([0 if s is None else s for s in shards], dtype=object)
    params = reference.stream_params(
        config,
        base_key,
        np.array(indices, dtype=object),
        (5, 6, 3),
        epochs=epochs,
        shards=shard_ids,
    )
    assert_reproduced(config, images, params, got)


@pytest.mark.parametrize("mode", CASES)
def test_reference_reproduces_the_deterministic_pattern(mode):
    """``stochastic=False``: every record gets ``reference.fixed_params``."""
    config = _config(mode, stochastic=False)
    op = make_operator(config)
    images = _images(np.float32, (3, 4, 5, 3), seed=3)
    got = np.asarray(op(batch_of(images)).data.get_value()["image"])
    params = reference.stream_params(config, None, np.arange(3), images.shape[1:])
    fixed = reference.fixed_params(config, images.shape[1:])
    for key, value in fixed.items():
        assert np.array_equal(np.asarray(params[key])[1], value)
    assert_reproduced(config, images, params, got)


@pytest.mark.parametrize("mode", CASES)
def test_generate_random_params_is_the_stream_of_split_keys(mode):
    """``generate_random_params(rng, ...)``: record i's params come from
    ``record_key(rng, i)`` (= ``jax.random.split(rng)[i]``); masks and levels exactly."""
    import jax

    config = _config(mode)
    op = make_operator(config)
    rng = jax.random.key(3)
    got = op.generate_random_params(rng, {"image": (5, 4, 3, 2)})
    keys = reference.stream.record_key(np.asarray(jax.random.key_data(rng)), np.arange(5))
    expected = reference.draw(config, reference.StreamSource(keys), (4, 3, 2), 5)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        if key == "noise":
            tolerance = noise_tolerance(config, value)
            assert np.all(np.abs(np.asarray(got[key]) - value) <= tolerance)
        elif key == "lam_scale":  # float32 exp against float64: a few ulps
            np.testing.assert_allclose(np.asarray(got[key]), value, rtol=4e-7)
        else:
            assert np.array_equal(np.asarray(got[key]), value), key
