"""Issue 17's training settings through the compiled operators' public API.

The laws themselves are proven on the reference (``tests/test_reference_training.py``)
and ``op(batch)`` / ``generate_random_params`` reproduce the reference from the record
keys (``tests/test_pipeline_reproduced.py``, ``+training`` cases).  Here: the same
settings through ``apply`` (params or a record key), ``apply_batch``, the grain
transform and every batch path, the defaults unchanged, the compiled draws'
laws (strengths ~ their law, applied records ~ Binomial), bit-exact pass-through,
shared channels, and the errors a caller can meet.  Statistical checks run at the
kit's ``ALPHA`` (1e-5) with fixed seeds on 32768 records (``STATS_RECORDS``), with
power 0.9: 6 KS checks of the strengths (a CDF error of 0.017: a range narrowed by
5% at each end, or an end off by 3%), 5 binomial checks of the apply decisions (an
``apply_prob`` of 0.7 off by 0.0144, 2.1%), 2 binomial checks (probability 0) of the
shared channels and 3 correlation checks of each strength against the record's first
value level (a correlation of 0.031).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from datarax_ops.reference.config import PER_CHANNEL_MODES, RANGE_FIELDS
from scipy import stats

import datarax_ops as dx
from datarax_ops import reference
from datarax_ops.conformance.stats import assert_binomial, assert_ks_1samp, assert_uncorrelated
from tests.factory import (
    TRAINING_APPLY_PROB,
    batch_of,
    make_operator,
    mode_config,
    run_batch,
    training_config,
)
from tests.test_equivalence import assert_matches_reference
from tests.test_pipeline_reproduced import assert_reproduced

MODE_NAMES = [mode.name for mode in dx.MODES]
IMAGES = np.random.default_rng(17).random((12, 6, 5, 3), dtype=np.float32)
STATS_RECORDS = 32_768  # records of every statistical check here (see the module docstring)


def _element(params: dict, i: int) -> dict:
    return {key: value[i] for key, value in params.items()}


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_apply_with_generated_params_is_the_reference_and_a_record_key_the_same_draw(mode):
    """``apply`` given record ``i`` of ``generate_random_params`` equals the reference
    applied with those params; given the record's key, the same draw."""
    config = training_config(mode)
    op = make_operator(config, seed=2)
    rng = jax.random.key(9)
    params = op.generate_random_params(rng, {"image": IMAGES.shape})
    keys = jax.random.split(rng, IMAGES.shape[0])
    for i in range(IMAGES.shape[0]):
        record = {key: np.asarray(value) for key, value in _element(params, i).items()}
        by_params, _, _ = op.apply({"image": jnp.asarray(IMAGES[i])}, {}, None, record)
        assert_matches_reference(config, IMAGES[i], record, np.asarray(by_params["image"]))
        by_key, _, _ = op.apply({"image": jnp.asarray(IMAGES[i])}, {}, None, keys[i])
        assert_matches_reference(config, IMAGES[i], record, np.asarray(by_key["image"]))


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_apply_batch_eager_and_jitted_equal_op_of_the_batch(mode):
    config = training_config(mode)
    expected = run_batch(make_operator(config, seed=4), IMAGES)
    out = make_operator(config, seed=4).apply_batch(batch_of(IMAGES))
    np.testing.assert_array_equal(np.asarray(out.data.get_value()["image"]), expected)
    jitted = jax.jit(lambda images: make_operator(config, seed=4)({"image": images})["image"])
    np.testing.assert_array_equal(np.asarray(jitted(jnp.asarray(IMAGES))), expected)


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_default_settings_change_nothing(mode):
    """Setting the new fields to their defaults gives the seed config's kernel, params
    keys and output bits."""
    seed = mode_config(mode)
    explicit = dataclasses.replace(seed, per_channel=True, apply_prob=1.0)
    assert make_operator(explicit).kernel == make_operator(seed).kernel
    params = make_operator(seed).generate_random_params(jax.random.key(0), {"image": (2, 4, 4, 3)})
    assert sorted(params) == sorted(make_operator(seed).kernel.param_shapes((4, 4, 3)))
    np.testing.assert_array_equal(
        run_batch(make_operator(explicit), IMAGES), run_batch(make_operator(seed), IMAGES)
    )


# every mode in float32; uint8 (rounding, the 0..255 convention) for gaussian and pixel
@pytest.mark.parametrize(
    ("mode", "dtype"),
    [(m, np.float32) for m in MODE_NAMES] + [("gaussian", np.uint8), ("pixel", np.uint8)],
)
def test_records_not_applied_pass_through_bit_for_bit(mode, dtype):
    """The records whose drawn decision is False come back exactly as given (no clip),
    the others as with ``apply_prob=1``; ``apply_prob=0`` leaves every record untouched."""
    images = (IMAGES * (255 if dtype == np.uint8 else 1)).astype(dtype)
    config = training_config(mode, apply_prob=0.5)
    if isinstance(config, dx.NoiseOperatorConfig) and dtype == np.uint8:
        config = dataclasses.replace(config, clip_range=(0.0, 255.0))
    op = make_operator(config, seed=1)
    out = run_batch(op, images)
    always = run_batch(make_operator(dataclasses.replace(config, apply_prob=1.0), seed=1), images)
    base_key = np.asarray(op.get_state()["_base_key"])
    applied = reference.stream_params(config, base_key, np.arange(12), images.shape[1:])["apply"]
    assert 0 < applied.sum() < len(applied)
    for i, was_applied in enumerate(applied):
        expected = always[i] if was_applied else images[i]
        np.testing.assert_array_equal(out[i].view(np.uint8), expected.view(np.uint8), str(i))
    if dtype == np.float32:
        never = dataclasses.replace(config, apply_prob=0.0)
        np.testing.assert_array_equal(run_batch(make_operator(never), images), images)


@pytest.mark.parametrize("mode", PER_CHANNEL_MODES)
def test_shared_channels_are_exactly_equal_in_params_and_output(mode):
    config = training_config(mode, apply_prob=1.0)
    op = make_operator(config)
    params = op.generate_random_params(jax.random.key(5), {"image": (6, 7, 4, 3)})
    values = np.asarray(params[reference.mode_of(config).params_key])
    np.testing.assert_array_equal(values, np.broadcast_to(values[..., :1], values.shape))
    constant = np.full((6, 7, 4, 3), 0.5, np.float32)
    out = run_batch(op, constant)
    np.testing.assert_array_equal(out, np.broadcast_to(out[..., :1], out.shape))
    assert not np.array_equal(out, constant)
    per_channel = run_batch(make_operator(dataclasses.replace(config, per_channel=True)), constant)
    assert not np.array_equal(per_channel, np.broadcast_to(per_channel[..., :1], out.shape))


@pytest.mark.stats
@pytest.mark.parametrize("mode", MODE_NAMES)
def test_compiled_strengths_follow_their_law(mode):
    """``generate_random_params`` strengths over 4000 records: KS against U[lo, hi]
    (``lam_scale``: log-uniform)."""
    config = training_config(mode)
    params = make_operator(config).generate_random_params(
        jax.random.key(11), {"image": (STATS_RECORDS, 2, 2, 3)}
    )
    for name, scalar in RANGE_FIELDS[mode]:
        low, high = getattr(config, name)
        drawn = np.asarray(params[scalar], np.float64)
        assert drawn.shape == (STATS_RECORDS,) and low <= drawn.min() <= drawn.max() <= high
        law = (
            stats.loguniform(low, high) if scalar == "lam_scale" else stats.uniform(low, high - low)
        )
        assert_ks_1samp(drawn, law.cdf, what=f"{mode} {scalar} ~ its law on [{low}, {high}]")


@pytest.mark.stats
@pytest.mark.parametrize("mode", PER_CHANNEL_MODES)
def test_compiled_shared_channels_never_differ(mode):
    """``per_channel=False``: the pixels whose channels got different draws number
    Binomial(pixels, 0) (``generate_random_params``; one such pixel fails with p = 0)."""
    config = training_config(mode)
    params = make_operator(config).generate_random_params(
        jax.random.key(13), {"image": (STATS_RECORDS, 2, 2, 3)}
    )
    values = np.asarray(params[reference.mode_of(config).params_key])
    differ = np.any(values != values[..., :1], axis=-1)
    assert_binomial(
        int(differ.sum()), differ.size, 0.0, what=f"{mode} pixels with unshared channels"
    )


def _first_value_level(mode: str, config, params: dict) -> np.ndarray:
    """Each record's first per-value draw, as a level comparable across records (gaussian,
    speckle: the noise over the record's std; salt_pepper and poisson: the uniform level)."""
    values = np.asarray(params[reference.mode_of(config).params_key], np.float64)
    first = values.reshape(values.shape[0], -1)[:, 0]
    if mode in ("gaussian", "speckle"):
        return (first - config.noise_mean) / np.asarray(params["noise_std"], np.float64)
    return first


@pytest.mark.stats
@pytest.mark.parametrize("mode", ["gaussian", "salt_pepper", "poisson", "speckle"])
def test_compiled_strengths_are_independent_of_the_values(mode):
    """Each drawn strength is uncorrelated with the record's first value level (ranks;
    ``generate_random_params``): strengths come from the record words, not the values'."""
    config = training_config(mode)
    params = make_operator(config).generate_random_params(
        jax.random.key(14), {"image": (STATS_RECORDS, 2, 2, 3)}
    )
    first = stats.rankdata(_first_value_level(mode, config, params))
    for _, scalar in RANGE_FIELDS[mode]:
        drawn = stats.rankdata(np.asarray(params[scalar], np.float64))
        assert_uncorrelated(drawn, first, what=f"{mode} {scalar} and the first value level")


@pytest.mark.stats
@pytest.mark.parametrize("mode", MODE_NAMES)
def test_compiled_apply_decisions_are_binomial(mode):
    config = training_config(mode)
    params = make_operator(config).generate_random_params(
        jax.random.key(12), {"image": (STATS_RECORDS, 2, 2, 3)}
    )
    applied = np.asarray(params["apply"])
    assert applied.dtype == np.bool_ and applied.shape == (STATS_RECORDS,)
    assert_binomial(
        int(applied.sum()), STATS_RECORDS, TRAINING_APPLY_PROB, what=f"{mode} applied records"
    )


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_grain_transform_is_the_reference_of_its_record_key(grain_transform, mode):
    """The grain transform with every setting on: record key = threefry(base key, grain's
    two words), reproduced by the reference (bit for bit; gaussian and poisson to their
    float32 tolerances)."""
    config = training_config(mode)
    op = make_operator(config, seed=5)
    transform = grain_transform.OperatorRandomMap(op)
    base = np.asarray(op.get_state()["_base_key"], np.uint32)
    for index in range(8):
        image = IMAGES[index]
        out = transform.random_map({"image": image}, np.random.default_rng(index))["image"]
        words = grain_transform.key_words_from_generator(np.random.default_rng(index))
        key = reference.stream.words_key(base, (words[0], words[1]))
        params = reference.draw(config, reference.StreamSource(key), image.shape)
        batched = {name: np.asarray(value)[None] for name, value in params.items()}
        assert_reproduced(config, image[None], batched, out[None])


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_stochastic_false_gives_one_fixed_pattern_with_the_settings_on(mode):
    """Every record gets the same pattern whatever the seed: the reference's fixed
    pattern (``reference.stream_params`` without a base key), which changes the image."""
    config = training_config(mode, stochastic=False, apply_prob=1.0)
    same = np.repeat(IMAGES[:1], 4, axis=0)
    first = run_batch(make_operator(config), same)
    again = run_batch(make_operator(config, seed=99), same)
    np.testing.assert_array_equal(first, again)
    for record in first[1:]:
        np.testing.assert_array_equal(record, first[0])
    fixed = reference.stream_params(config, None, np.arange(4), same.shape[1:])
    assert_reproduced(config, same, fixed, first)
    assert np.any(first[0] != same[0]), f"{mode}: the fixed pattern left the image as it was"


def test_apply_params_lacking_a_per_record_value_are_a_named_error():
    config = training_config("salt_pepper")
    op = make_operator(config)
    params = op.generate_random_params(jax.random.key(0), {"image": (1, 6, 5, 3)})
    record = _element(params, 0)
    image = {"image": jnp.asarray(IMAGES[0])}
    for missing in ("salt_prob", "apply"):
        partial = {k: v for k, v in record.items() if k != missing}
        with pytest.raises(KeyError, match=f"lacks '{missing}'"):
            op.apply(image, {}, None, partial)
    with pytest.raises(ValueError, match=r"'salt_prob'\] is one value per record"):
        op.apply(image, {}, None, {**record, "salt_prob": jnp.ones(3)})


def test_a_range_for_another_mode_or_a_misplaced_setting_is_a_named_error():
    with pytest.raises(ValueError, match="noise_std_range is read only by mode 'gaussian'"):
        dx.NoiseOperatorConfig(field_key="image", mode="poisson", noise_std_range=(0.0, 0.1))
    with pytest.raises(ValueError, match="per_channel=False applies to mode"):
        dx.DropoutOperatorConfig(field_key="image", mode="channel", per_channel=False)
    with pytest.raises(ValueError, match="apply_prob must be in"):
        dx.DropoutOperatorConfig(field_key="image", apply_prob=1.5)
