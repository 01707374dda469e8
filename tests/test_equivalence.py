"""datarax_ops == reference, given the same random params (issues 3 and 4, item 1).

The params are drawn by the *reference* (a NumPy Generator) and handed to the
compiled operator's public ``apply`` (external-params mode), one element, a
``jax.vmap`` batch, and under ``nnx.jit``.  Agreement required:

* masks and replacements (salt & pepper, pixel, channel): bit for bit;
* gaussian and speckle: within one unit in the last place of the output dtype (the
  reference adds or multiplies in float64, the operator in float32; speckle's float32
  products are exact);
* poisson: the same count everywhere except where the level lies within the
  float32 CDF error (``1e-5 + 1e-6 * lam``; measured worst case
  ``6e-6 + 6.8e-7 * lam`` for lam <= 1000) of a step of the Poisson CDF, and
  then by one count at most.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from datarax_ops.reference.common import poisson_quantile, value_scale
from datarax_ops.reference.config import NOISE_MODES
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st

import datarax_ops as dx
from datarax_ops import reference
from datarax_ops.conformance.laws import LAWS
from datarax_ops.conformance.stats import assert_binomial
from tests import strategies as S
from tests.factory import make_operator

# The modes whose output is reproduced bit for bit (their law allows no tolerance).
EXACT_MODES = tuple(name for name, law in LAWS.items() if law.reproduction_atol == 0)
# Modes whose output is float arithmetic on the drawn noise (gaussian's ``x + noise``,
# speckle's ``x * (1 + noise)``): within one ulp of the output dtype, integers exact but
# at a true .5 tie.
FLOAT_NOISE_MODES = ("gaussian", "speckle")

configs = st.one_of(S.noise_configs(stochastic=True), S.dropout_configs(stochastic=True))


def ulp(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """One unit in the last place of ``dtype`` at ``values`` (1 for integers)."""
    if np.issubdtype(dtype, np.integer):
        return np.ones_like(values, dtype=np.float64)
    finfo = jnp.finfo(dtype)
    magnitude = np.maximum(np.abs(values.astype(np.float64)), float(finfo.tiny))
    return 2.0 ** (np.floor(np.log2(magnitude)) - finfo.nmant)


def poisson_boundary_ok(config, image, levels, got, expected, lam_scale=None) -> np.ndarray:
    """Per value: agreement, or a one-count miss where the level sits on a CDF step
    (``lam_scale``: the record's drawn one with ``lam_scale_range``)."""
    lam_scale = config.lam_scale if lam_scale is None else float(lam_scale)
    scale = value_scale(image)
    lam = np.maximum(image.astype(np.float64), 0.0) * (lam_scale / scale)
    k_ref = poisson_quantile(levels, lam)
    u = levels.astype(np.float64)
    tolerance = 1e-5 + 1e-6 * lam  # measured float32 CDF error: < 6e-6 + 6.8e-7 * lam
    near_step = (np.abs(scipy.stats.poisson.cdf(k_ref, lam) - u) <= tolerance) | (
        np.abs(scipy.stats.poisson.cdf(k_ref - 1, lam) - u) <= tolerance
    )
    one_count = np.abs(got.astype(np.float64) - expected.astype(np.float64)) <= (
        scale / lam_scale
    ) * (1 + 1e-6) + 4 * ulp(expected, expected.dtype)
    return near_step & one_count


def integer_gaussian_ok(config, image, params, got, expected, noise_error=0.0) -> np.ndarray:
    """Per value of an integer gaussian (or speckle) output: equal to the reference, or one
    count off where the unrounded value is a true .5 tie to float32 precision.

    Args:
      image: the record (integer dtype), ``params`` its params, ``got`` the compiled
        output and ``expected`` the reference's, all of the record's shape.
      noise_error: per value (or scalar), how far the compiled unrounded output may be
        moved by the compiled noise's own error from ``params["noise"]`` (gaussian: that
        error; 0 when the compiled operator was handed these params).

    The spec rounds half-to-even from ``clip(x + noise)`` (speckle: ``clip(x * m)``) in
    float64; the compiled operator computes it in float32, which moves it by up to half
    a float32 ulp.  So a
    value within one float32 ulp (plus ``noise_error``) of ``k + 0.5`` may round either
    way; every other value is exact.  (An operator adding no noise is caught: noise of
    0.3 counts moves about a third of the values across a .5 boundary.)
    """
    raw = reference.apply(config, image.astype(np.float64), params)  # unrounded, clipped
    window = ulp(raw, np.float32) + noise_error
    near_tie = np.abs(raw - np.floor(raw) - 0.5) <= window
    off_by = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    return (off_by == 0) | (near_tie & (off_by <= 1))


def assert_matches_reference(config, image, params, got) -> None:
    expected = reference.apply(config, image, params)
    got = np.asarray(got)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if reference.record.passes_through(config, params):  # apply_prob: untouched, exactly
        np.testing.assert_array_equal(got.view(np.uint8), np.asarray(image).view(np.uint8))
        return
    same = (got == expected) | (
        np.isnan(got.astype(np.float64)) & np.isnan(expected.astype(np.float64))
    )
    if config.mode in EXACT_MODES:
        mismatch = ~same
    elif config.mode in FLOAT_NOISE_MODES and np.issubdtype(expected.dtype, np.integer):
        mismatch = ~integer_gaussian_ok(config, image, params, got, expected)
    elif config.mode in FLOAT_NOISE_MODES:
        close = np.abs(got.astype(np.float64) - expected.astype(np.float64)) <= ulp(
            expected, expected.dtype
        )
        mismatch = ~(same | close)
    else:
        levels = np.asarray(params["poisson_samples"])
        # a drawn lam_scale is a float32 traced scalar: its gain and inverse gain are
        # computed in float32 (the reference: float64), a few ulps on the output
        ulps = 8 if "lam_scale" in params else 1
        close = np.abs(got.astype(np.float64) - expected.astype(np.float64)) <= ulps * ulp(
            expected, expected.dtype
        )
        lam_scale = params.get("lam_scale")  # the record's draw, with a range
        near = poisson_boundary_ok(config, image, levels, got, expected, lam_scale)
        mismatch = ~(same | close | near)
    assert not mismatch.any(), (
        f"{mismatch.sum()} of {mismatch.size} values differ from the reference for {config.mode}; "
        f"first at {np.argwhere(mismatch)[0]}: got {got[mismatch][0]}, "
        f"expected {expected[mismatch][0]}"
    )


def reference_params(config, shape, seed, batch_size=None):
    return reference.draw(config, np.random.default_rng(seed), shape, batch_size)


@given(
    config=configs,
    image=S.images(dtype=st.sampled_from([np.float32, np.float64, np.uint8])),
    seed=st.integers(0, 2**32 - 1),
)
def test_single_element_apply_matches_reference(config, image, seed):
    if config.mode == "poisson":
        config = dataclasses.replace(config, lam_scale=min(config.lam_scale, 1000.0))
    params = reference_params(config, image.shape, seed)
    op = make_operator(config)
    out, _, _ = op.apply({"image": jnp.asarray(image)}, {}, {}, random_params=params)
    # float64 inputs compute in float32 unless x64 is on: compare at float32
    expected_dtype = (
        np.float32 if image.dtype == np.float64 and not jax.config.jax_enable_x64 else image.dtype
    )
    got = np.asarray(out["image"])
    if got.dtype != expected_dtype:
        pytest.fail(f"dtype {got.dtype}, expected {expected_dtype}")
    assert_matches_reference(config, image.astype(expected_dtype), params, got)


@given(
    config=configs,
    shape=S.element_shapes(max_side=16),
    batch=st.integers(1, 4),
    value_range=st.sampled_from(S.VALUE_RANGES),
    seed=st.integers(0, 2**32 - 1),
)
def test_vmapped_and_jitted_apply_matches_reference(config, shape, batch, value_range, seed):
    rng = np.random.default_rng(seed)
    images = (rng.random((batch, *shape)) * S.range_high(value_range)).astype(np.float32)
    params = reference_params(config, shape, seed, batch)
    op = make_operator(config)

    def apply_one(image, p):
        return op.apply({"image": image}, {}, {}, random_params=p)[0]["image"]

    vmapped = jax.vmap(apply_one)(jnp.asarray(images), params)
    jitted = nnx.jit(
        lambda o, x, p: jax.vmap(lambda i, q: o.apply({"image": i}, {}, {}, q)[0]["image"])(x, p)
    )(op, jnp.asarray(images), params)
    for i in range(batch):
        one = {k: v[i] for k, v in params.items()}
        assert_matches_reference(config, images[i], one, vmapped[i])
        assert_matches_reference(config, images[i], one, jitted[i])


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("mode", [mode.name for mode in dx.MODES])
def test_half_precision_matches_reference(dtype, mode):
    config = (
        reference.NoiseOperatorConfig(field_key="image", mode=mode, stochastic=True, lam_scale=40.0)
        if mode in NOISE_MODES
        else reference.DropoutOperatorConfig(
            field_key="image", mode=mode, stochastic=True, dropout_rate=0.4
        )
    )
    image = np.asarray(jnp.asarray(np.random.default_rng(1).random((16, 16, 3)), dtype))
    params = reference_params(config, image.shape, 5)
    out, _, _ = make_operator(config).apply(
        {"image": jnp.asarray(image)}, {}, {}, random_params=params
    )
    assert out["image"].dtype == dtype
    assert_matches_reference(config, image, params, np.asarray(out["image"]))


def _tie_image(dtype: type) -> np.ndarray:
    """Integers of ``dtype`` near both of its ends and around 0 (|x| <= 1000, exact in
    float32), each twice: shape ``(n, 2)``."""
    info = np.iinfo(dtype)
    low, high = max(int(info.min), -1000), min(int(info.max), 1000)
    ends = [np.arange(low, low + 8), np.arange(-8, 9), np.arange(high - 7, high + 1)]
    values = np.unique(np.clip(np.concatenate(ends), low, high))
    return np.repeat(values[:, None], 2, axis=1).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32])
def test_integer_gaussian_rounds_exact_ties_half_to_even(dtype):
    """Every value on an exact .5 tie (an integer plus noise +0.5 or -0.5, both exact in
    float32) rounds to its even neighbour and saturates at the dtype's ends: the spec's
    rule (``reference.common.from_working``), through ``apply`` eagerly and under jit."""
    config = reference.NoiseOperatorConfig(
        field_key="image", mode="gaussian", stochastic=True, noise_std=1.0, clip_range=None
    )
    image = _tie_image(dtype)
    noise = np.broadcast_to(np.array([0.5, -0.5], np.float32), image.shape).copy()
    params = {"noise": noise}
    raw = image.astype(np.float64) + noise
    info = np.iinfo(dtype)
    expected = np.clip(np.rint(raw), info.min, info.max).astype(dtype)  # rint: half to even
    half_up = np.clip(np.floor(raw + 0.5), info.min, info.max)
    assert np.count_nonzero(half_up != expected) >= 8  # ties where the rule matters
    op = make_operator(config)
    eager, _, _ = op.apply({"image": jnp.asarray(image)}, {}, {}, random_params=params)
    jitted = nnx.jit(lambda o, x, p: o.apply({"image": x}, {}, {}, p)[0]["image"])(
        op, jnp.asarray(image), params
    )
    for got in (np.asarray(eager["image"]), np.asarray(jitted)):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(reference.apply(config, image, params), expected)


@pytest.mark.parametrize("lam_scale", [0.1, 1.0, 37.0, 1000.0])
@pytest.mark.parametrize("top", [1.0, 255.0])
def test_poisson_counts_match_reference_over_a_grid(lam_scale, top):
    """Every level of a fine grid, on a ramp of pixel values, both conventions."""
    config = reference.NoiseOperatorConfig(
        field_key="image", mode="poisson", stochastic=True, lam_scale=lam_scale, clip_range=None
    )
    values = np.linspace(0.0, top, 64, dtype=np.float32)
    levels = np.linspace(0.0, 1.0, 257, endpoint=False, dtype=np.float32)[1:]
    image = np.repeat(values[:, None], levels.size, axis=1)[..., None]
    params = {"poisson_samples": np.broadcast_to(levels[None, :, None], image.shape).copy()}
    out, _, _ = make_operator(config).apply(
        {"image": jnp.asarray(image)}, {}, {}, random_params=params
    )
    assert_matches_reference(config, image, params, np.asarray(out["image"]))


@pytest.mark.stats
def test_deterministic_pattern_has_the_reference_distribution_shape():
    """The fixed pattern is a legitimate draw: its kept count is Binomial(n, 1 - rate)
    (exact binomial at 1e-5 on 1048576 values: a keep rate off by 0.0025, 1% of the
    rate 0.25, is caught with power 0.9)."""
    config = reference.DropoutOperatorConfig(field_key="image", dropout_rate=0.25)
    out, _, _ = make_operator(config).apply({"image": jnp.ones((512, 512, 4))}, {}, {})
    kept = np.asarray(out["image"]) == 1.0
    assert_binomial(int(kept.sum()), kept.size, 0.75, what="kept values of the fixed pattern")


def _apply_with_reference_params(config, image, seed=3):
    params = reference_params(config, image.shape, seed)
    out, _, _ = make_operator(config).apply({"image": jnp.asarray(image)}, {}, {}, params)
    assert_matches_reference(config, image, params, np.asarray(out["image"]))


@pytest.mark.parametrize("top", [1.0, 1.5, 1.51, 1.6, 1.99, 2.5, 255.0])
@pytest.mark.parametrize("mode", ["salt_pepper", "poisson"])
def test_0_255_detection_threshold_matches_reference(mode, top):
    """Max 1.5 is 0..1 data, 1.51 is 0..255 data: salt value and poisson scale follow."""
    config = reference.NoiseOperatorConfig(
        field_key="image",
        mode=mode,
        stochastic=True,
        salt_prob=0.3,
        pepper_prob=0.2,
        lam_scale=50.0,
        clip_range=None,
    )
    image = np.linspace(0.0, top, 32 * 32, dtype=np.float32).reshape(32, 32, 1)
    _apply_with_reference_params(config, image)


def test_poisson_negative_inputs_match_reference():
    config = reference.NoiseOperatorConfig(
        field_key="image", mode="poisson", stochastic=True, lam_scale=20.0, clip_range=None
    )
    image = np.linspace(-1.0, 1.0, 16 * 16, dtype=np.float32).reshape(16, 16, 1)
    _apply_with_reference_params(config, image)


def test_gaussian_zero_std_ignores_the_mean():
    config = reference.NoiseOperatorConfig(
        field_key="image", stochastic=True, noise_std=0.0, noise_mean=0.3
    )
    _apply_with_reference_params(config, np.full((8, 8, 3), 0.25, np.float32))


@pytest.mark.parametrize("mode", [mode.name for mode in dx.MODES])
def test_uint8_rounding_and_saturation_match_reference(mode):
    config = (
        reference.NoiseOperatorConfig(
            field_key="image",
            mode=mode,
            stochastic=True,
            noise_std=20.0,
            lam_scale=5.0,
            clip_range=None,
        )
        if mode in NOISE_MODES
        else reference.DropoutOperatorConfig(
            field_key="image",
            mode=mode,
            stochastic=True,
            dropout_rate=0.3,
            clip_range=(10.0, 200.0),
        )
    )
    image = np.random.default_rng(4).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    _apply_with_reference_params(config, image)


@given(
    config=configs,
    shape=S.element_shapes(max_side=12),
    value_range=st.sampled_from(S.VALUE_RANGES),
    seed=st.integers(0, 2**31 - 1),
)
def test_compiled_invariants_through_op_batch(config, shape, value_range, seed):
    """Invariants of ``op(batch)`` itself (exact, no false alarms): output inside
    ``clip_range``, shape and dtype kept, other fields and the input untouched."""
    rng = np.random.default_rng(seed)
    images = (rng.random((3, *shape)) * S.range_high(value_range)).astype(np.float32)
    labels = np.arange(3)
    batch = dx.Batch.from_parts(data={"image": jnp.asarray(images), "label": jnp.asarray(labels)})
    out = make_operator(config, seed=seed)(batch).data.get_value()
    result = np.asarray(out["image"])
    assert result.shape == images.shape and result.dtype == images.dtype
    np.testing.assert_array_equal(out["label"], labels)
    np.testing.assert_array_equal(batch.data.get_value()["image"], images)
    if config.clip_range is not None and not (
        config.mode in ("pixel", "channel") and config.dropout_rate == 0
    ):
        low, high = config.clip_range
        assert np.all((result >= np.float32(low)) & (result <= np.float32(high)))
