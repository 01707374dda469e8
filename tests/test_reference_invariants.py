"""Invariants every reference mode keeps, for any valid config and image.

Clip range respected, shape and dtype preserved, inputs never mutated, draws
reproducible from the seed, integer outputs rounded half-to-even and
saturated, ``apply_batch`` equal to applying element by element, and the
deterministic mode's ``fixed_params`` stable.  None of these is statistical.
"""

from __future__ import annotations

import numpy as np
import pytest
from datarax_ops.reference.config import DropoutOperatorConfig, NoiseOperatorConfig
from hypothesis import given
from hypothesis import strategies as st

from datarax_ops import reference
from datarax_ops.conformance.stats import rng_for
from tests.strategies import clip_ranges, dropout_configs, element_shapes, images, noise_configs

DTYPES = st.sampled_from([np.float32, np.float64, np.uint8])
SEEDS = st.integers(0, 2**32 - 1)
PARAM_DTYPES = {
    "noise": np.float32,
    "noise_mask": np.float32,
    "poisson_samples": np.float32,
    "keep_mask": np.bool_,
    "hole_count": np.int32,
    "hole_sizes": np.int32,
    "hole_corners": np.int32,
}


def any_configs(**fixed) -> st.SearchStrategy[NoiseOperatorConfig | DropoutOperatorConfig]:
    return st.one_of(noise_configs(**fixed), dropout_configs(**fixed))


def _cast_bound(bound: float, dtype: np.dtype) -> np.generic:
    """A clip bound in the output dtype, cast the way outputs are (monotone, so order is kept)."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return dtype.type(np.clip(np.rint(bound), info.min, info.max))
    return dtype.type(bound)


def _draw_apply(config, image, seed, name):
    params = reference.draw(config, rng_for(f"{name}/{seed}"), image.shape)
    return params, reference.apply(config, image, params)


@given(
    data=st.data(),
    clip=clip_ranges().filter(lambda c: c is not None),
    image=images(dtype=DTYPES),
    seed=SEEDS,
)
def test_output_inside_clip_range(data, clip, image, seed):
    """Every mode's output lies in ``clip_range`` (bounds cast to the output dtype).

    Dropout with ``dropout_rate == 0`` returns the input untouched (its
    documented rule), so there the output is the input, in range or not.
    """
    config = data.draw(any_configs(clip_range=clip))
    _, out = _draw_apply(config, image, seed, "test_output_inside_clip_range")
    if isinstance(config, DropoutOperatorConfig) and config.dropout_rate == 0:
        np.testing.assert_array_equal(out, image)
        return
    low, high = (_cast_bound(b, out.dtype) for b in clip)
    assert np.all(out >= low) and np.all(out <= high), (out.min(), out.max(), clip)


@given(config=any_configs(), image=images(dtype=DTYPES), seed=SEEDS)
def test_shape_and_dtype_preserved(config, image, seed):
    _, out = _draw_apply(config, image, seed, "test_shape_and_dtype_preserved")
    assert out.shape == image.shape
    assert out.dtype == image.dtype
    assert not np.any(np.isnan(out.astype(np.float64)))


@given(config=any_configs(), image=images(dtype=DTYPES), seed=SEEDS)
def test_params_shapes_and_dtypes(config, image, seed):
    """Params: float32 levels/noise or bool masks, element-shaped (channel: (C,)), batch first."""
    rng = rng_for(f"test_params_shapes_and_dtypes/{seed}")
    single = reference.draw(config, rng, image.shape)
    batched = reference.draw(config, rng, image.shape, batch_size=3)
    if config.mode == "coarse":  # the holes: a count, sizes and corners per record
        holes = config.hole_count_range[1]
        shapes = {"hole_corners": (holes, 2), "hole_count": (), "hole_sizes": (holes, 2)}
        assert {k: v.shape for k, v in single.items()} == shapes
        assert {k: v.shape for k, v in batched.items()} == {k: (3, *v) for k, v in shapes.items()}
        assert all(v.dtype == PARAM_DTYPES[k] for k, v in (*single.items(), *batched.items()))
        return
    (key,) = single
    assert key == reference.mode_of(config).params_key and set(batched) == {key}
    is_channel = isinstance(config, DropoutOperatorConfig) and config.mode == "channel"
    shape = image.shape[-1:] if is_channel else image.shape
    assert single[key].shape == shape and batched[key].shape == (3, *shape)
    assert single[key].dtype == PARAM_DTYPES[key] and batched[key].dtype == PARAM_DTYPES[key]
    if key in ("noise_mask", "poisson_samples"):
        assert np.all((batched[key] >= 0) & (batched[key] < 1))


@given(config=any_configs(), image=images(dtype=DTYPES), seed=SEEDS)
def test_input_and_params_never_mutated(config, image, seed):
    params = reference.draw(config, rng_for(f"test_input_never_mutated/{seed}"), image.shape)
    image_copy = image.copy()
    params_copy = {k: v.copy() for k, v in params.items()}
    out = reference.apply(config, image, params)
    np.testing.assert_array_equal(image, image_copy)
    for key, value in params.items():
        np.testing.assert_array_equal(value, params_copy[key])
    assert not np.shares_memory(out, image)
    batch = np.stack([image, image])
    batch_copy = batch.copy()
    batch_params = reference.draw(config, rng_for(f"x/{seed}"), image.shape, batch_size=2)
    reference.apply_batch(config, batch, batch_params)
    np.testing.assert_array_equal(batch, batch_copy)


@given(config=any_configs(), image=images(dtype=DTYPES), seed=SEEDS)
def test_same_seed_same_params_and_output(config, image, seed):
    name = "test_same_seed_same_params_and_output"
    params_a, out_a = _draw_apply(config, image, seed, name)
    params_b, out_b = _draw_apply(config, image, seed, name)
    assert params_a.keys() == params_b.keys()
    for key in params_a:
        assert params_a[key].dtype == params_b[key].dtype
        np.testing.assert_array_equal(params_a[key], params_b[key])
    np.testing.assert_array_equal(out_a, out_b)
    # apply alone is deterministic too
    np.testing.assert_array_equal(reference.apply(config, image, params_a), out_a)


def test_different_seeds_give_different_params():
    shape = (16, 16, 3)
    configs = [
        NoiseOperatorConfig(field_key="image", mode=mode) for mode in ("gaussian", "salt_pepper")
    ] + [
        NoiseOperatorConfig(field_key="image", mode="poisson"),
        DropoutOperatorConfig(field_key="image", mode="pixel", dropout_rate=0.5),
        DropoutOperatorConfig(field_key="image", mode="channel", dropout_rate=0.5),
    ]
    for config in configs:
        a = reference.draw(config, np.random.default_rng(1), shape, batch_size=8)
        b = reference.draw(config, np.random.default_rng(2), shape, batch_size=8)
        (key,) = a
        assert not np.array_equal(a[key], b[key]), config.mode


# --------------------------------------------------------------------------- #
# Integer outputs                                                              #
# --------------------------------------------------------------------------- #
def test_uint8_gaussian_saturates():
    """uint8 with noise pushing past the dtype range and no clip range: saturates at 255 / 0."""
    up = NoiseOperatorConfig(
        field_key="image", mode="gaussian", noise_mean=1.0, noise_std=1e-6, clip_range=None
    )
    image = np.full((4, 4, 3), 255, np.uint8)
    params = {"noise": np.full(image.shape, 40.0, np.float32)}
    np.testing.assert_array_equal(reference.apply(up, image, params), image)
    image = np.full((4, 4, 3), 250, np.uint8)
    out = reference.apply(up, image, params)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.full(image.shape, 255, np.uint8))
    params = {"noise": np.full(image.shape, -300.0, np.float32)}
    np.testing.assert_array_equal(reference.apply(up, image, params), np.zeros_like(image))
    # Drawn noise (mean 1, std 100) on a uint8 image: everything lands inside 0..255.
    wide = NoiseOperatorConfig(
        field_key="image", mode="gaussian", noise_mean=1.0, noise_std=100.0, clip_range=None
    )
    params = reference.draw(wide, rng_for("test_uint8_gaussian_saturates"), image.shape)
    out = reference.apply(wide, image, params)
    expected = np.clip(np.rint(250.0 + params["noise"].astype(np.float64)), 0, 255)
    np.testing.assert_array_equal(out, expected.astype(np.uint8))
    assert (out == 255).any()


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.uint16])
def test_integer_outputs_round_half_to_even_and_saturate(dtype):
    info = np.iinfo(dtype)
    config = NoiseOperatorConfig(field_key="image", mode="gaussian", noise_std=1.0, clip_range=None)
    image = np.array([2, 3, 2, 1, 4, 0, info.max - 1, info.min + 1], dtype=dtype)
    noise = np.array([0.5, 0.5, 1.5, -0.5, 0.49, -0.4, 1e9, -1e9], dtype=np.float32)
    out = reference.apply(config, image, {"noise": noise})
    assert out.dtype == dtype
    expected = [2, 4, 4, 0, 4, 0, info.max, info.min]
    np.testing.assert_array_equal(out, np.array(expected, dtype=dtype))


@given(config=noise_configs(clip_range=None), image=images(dtype=np.uint8), seed=SEEDS)
def test_uint8_noise_outputs_are_the_rounded_float_outputs(config, image, seed):
    """uint8 output == float64 output of the same (float64) image, rounded half-to-even, saturated.

    Both conventions apply alike (the range rule reads the same values).
    """
    params = reference.draw(config, rng_for(f"test_uint8_rounded/{seed}"), image.shape)
    out_int = reference.apply(config, image, params)
    out_float = reference.apply(config, image.astype(np.float64), params)
    np.testing.assert_array_equal(out_int, np.clip(np.rint(out_float), 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- #
# Batches and the deterministic mode                                           #
# --------------------------------------------------------------------------- #
@given(
    data=st.data(),
    config=any_configs(),
    shape=element_shapes(max_side=16),
    dtype=DTYPES,
    batch=st.integers(1, 4),
    seed=SEEDS,
)
def test_apply_batch_equals_per_element_apply(data, config, shape, dtype, batch, seed):
    """Elements may differ in value range (each element reads its own range)."""
    elements = [data.draw(images(shape=shape, dtype=dtype)) for _ in range(batch)]
    stacked = np.stack(elements)
    params = reference.draw(config, rng_for(f"test_apply_batch/{seed}"), shape, batch_size=batch)
    out = reference.apply_batch(config, stacked, params)
    assert out.shape == stacked.shape and out.dtype == stacked.dtype
    for i, element in enumerate(elements):
        one = reference.apply(config, element, {k: v[i] for k, v in params.items()})
        np.testing.assert_array_equal(out[i], one)


@given(config=any_configs(), shape=element_shapes(max_side=16))
def test_apply_batch_of_zero_elements(config, shape):
    empty = np.zeros((0, *shape), np.float32)
    params = reference.draw(config, rng_for("test_apply_batch_empty"), shape, batch_size=0)
    out = reference.apply_batch(config, empty, params)
    assert out.shape == empty.shape and out.dtype == empty.dtype


@given(config=any_configs(), shape=element_shapes())
def test_fixed_params_identical_on_repeated_calls(config, shape):
    first = reference.fixed_params(config, shape)
    second = reference.fixed_params(config, shape)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    # A draw in between (from any generator) does not disturb the fixed pattern.
    reference.draw(config, np.random.default_rng(123), shape)
    third = reference.fixed_params(config, shape)
    for key in first:
        np.testing.assert_array_equal(first[key], third[key])
    drawn = reference.draw(config, np.random.default_rng(0), shape)
    assert {k: v.shape for k, v in first.items()} == {k: v.shape for k, v in drawn.items()}
