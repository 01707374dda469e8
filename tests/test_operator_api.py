"""The public operator API of both seed pages, method by method (issue 3)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import datarax_ops as dx
from datarax_ops.kernel import TRACE_COUNTS
from tests.factory import batch_of, make_operator, operator_class, run_batch, run_python

NOISE_MODES = tuple(m.name for m in dx.MODES if m.config_class is dx.NoiseOperatorConfig)
DROPOUT_MODES = tuple(m.name for m in dx.MODES if m.config_class is dx.DropoutOperatorConfig)


def noise_config(mode: str = "gaussian", **kw):
    kw.setdefault("field_key", "image")
    return dx.NoiseOperatorConfig(mode=mode, **kw)


def dropout_config(mode: str = "pixel", **kw):
    kw.setdefault("field_key", "image")
    return dx.DropoutOperatorConfig(mode=mode, **kw)


ALL_CONFIGS = [noise_config(m, stochastic=True) for m in NOISE_MODES] + [
    dropout_config(m, stochastic=True, dropout_rate=0.3) for m in DROPOUT_MODES
]
IDS = [c.mode for c in ALL_CONFIGS]


def images(shape=(4, 8, 8, 3), seed=0, dtype=np.float32):
    return np.random.default_rng(seed).random(shape).astype(dtype)


# --------------------------------------------------------------------------- #
# The seed pages' own examples run unchanged                                   #
# --------------------------------------------------------------------------- #
def test_seed_examples_run_as_written():
    data = {"image": jnp.full((8, 8, 3), 0.5)}
    config = dx.NoiseOperatorConfig(
        field_key="image", mode="gaussian", noise_std=0.1, noise_mean=0.0, stochastic=False
    )
    operator = dx.NoiseOperator(config, rngs=nnx.Rngs(0))
    result, state, metadata = operator.apply(data, {}, {})
    assert result["image"].shape == (8, 8, 3) and not np.array_equal(result["image"], data["image"])
    assert state == {} and metadata == {}

    config = dx.NoiseOperatorConfig(
        field_key="image", mode="salt_pepper", salt_prob=0.02, pepper_prob=0.02, stochastic=True
    )
    operator = dx.NoiseOperator(config, rngs=nnx.Rngs(0))
    out = operator.apply_batch(batch_of(images()))
    assert out.data.get_value()["image"].shape == (4, 8, 8, 3)

    config = dx.DropoutOperatorConfig(
        field_key="image", dropout_rate=0.2, mode="channel", stochastic=True
    )
    operator = dx.DropoutOperator(config, rngs=nnx.Rngs(0))
    assert operator(batch_of(images())).batch_size == 4


def test_operator_attributes_match_the_seed():
    config = noise_config(stochastic=True, stream_name="augment")
    op = make_operator(config)
    assert op.config is config
    assert isinstance(op.rngs, nnx.Rngs)
    assert op.name == "NoiseOperator"
    assert op.stochastic is True and op.stream_name == "augment"
    assert isinstance(op, nnx.Module)


# --------------------------------------------------------------------------- #
# generate_random_params                                                       #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
@pytest.mark.parametrize(
    "key",
    [
        jax.random.key(1),
        jax.random.PRNGKey(1),
        jax.random.split(jax.random.key(1), 5),
        jax.random.split(jax.random.PRNGKey(1), 5),
    ],
    ids=["typed", "raw", "typed-per-record", "raw-per-record"],
)
def test_generate_random_params_keys_and_shapes(config, key):
    op = make_operator(config)
    params = op.generate_random_params(key, {"image": (5, 6, 7, 3)})
    holes = ((5, 1, 2), jnp.int32)  # the default config's one hole per record
    expected = {
        "gaussian": {"noise": ((5, 6, 7, 3), jnp.float32)},
        "salt_pepper": {"noise_mask": ((5, 6, 7, 3), jnp.float32)},
        "poisson": {"poisson_samples": ((5, 6, 7, 3), jnp.float32)},
        "pixel": {"keep_mask": ((5, 6, 7, 3), jnp.bool_)},
        "channel": {"keep_mask": ((5, 3), jnp.bool_)},
        "speckle": {"noise": ((5, 6, 7, 3), jnp.float32)},
        "coarse": {"hole_corners": holes, "hole_count": ((5,), jnp.int32), "hole_sizes": holes},
    }[config.mode]
    assert list(params) == list(expected)
    for name, (shape, dtype) in expected.items():
        assert params[name].shape == shape and params[name].dtype == dtype, name


def test_generate_random_params_per_record_keys_are_per_record():
    """Record i's params depend only on key i: the same key gives the same record."""
    op = make_operator(noise_config(stochastic=True))
    keys = jax.random.split(jax.random.key(7), 4)
    full = op.generate_random_params(keys, {"image": (4, 5, 5, 1)})["noise"]
    part = op.generate_random_params(keys[2:], {"image": (2, 5, 5, 1)})["noise"]
    np.testing.assert_array_equal(full[2:], part)
    assert not np.array_equal(full[0], full[1])


def test_generate_random_params_errors():
    op = make_operator(noise_config(stochastic=True))
    with pytest.raises(KeyError, match="image"):
        op.generate_random_params(jax.random.key(0), {"other": (2, 4, 4, 3)})
    with pytest.raises(TypeError, match="PRNG key"):
        op.generate_random_params(jnp.ones((2,), jnp.float32), {"image": (2, 4, 4, 3)})
    with pytest.raises(TypeError, match="raw uint32 key"):
        op.generate_random_params(jnp.ones((3,), jnp.uint32), {"image": (2, 4, 4, 3)})
    with pytest.raises(ValueError, match="3 per-record keys for a batch of 2"):
        op.generate_random_params(jax.random.split(jax.random.key(0), 3), {"image": (2, 4, 4, 3)})


def test_generate_random_params_nested_field():
    op = make_operator(noise_config(field_key="data.image", stochastic=True))
    params = op.generate_random_params(jax.random.key(0), {"data": {"image": (2, 3, 3, 1)}})
    assert params["noise"].shape == (2, 3, 3, 1)


# --------------------------------------------------------------------------- #
# apply, apply_batch, __call__: routing and pass-through                       #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
def test_apply_batch_equals_call_and_keeps_other_fields(config):
    imgs = images()
    labels = np.arange(4)
    batch = dx.Batch.from_parts(
        data={"image": jnp.asarray(imgs), "label": jnp.asarray(labels)},
        states={"count": jnp.arange(4)},
        metadata_list=[{"source": i} for i in range(4)],
    )
    out_a = make_operator(config, seed=3).apply_batch(batch)
    out_b = make_operator(config, seed=3)(batch)
    np.testing.assert_array_equal(out_a.data.get_value()["image"], out_b.data.get_value()["image"])
    np.testing.assert_array_equal(out_a.data.get_value()["label"], labels)
    np.testing.assert_array_equal(out_a.states.get_value()["count"], np.arange(4))
    assert out_a.metadata_list == [{"source": i} for i in range(4)]
    assert out_a.batch_size == 4
    # the input batch is untouched
    np.testing.assert_array_equal(batch.data.get_value()["image"], imgs)


def test_target_key_writes_elsewhere_and_keeps_source():
    config = noise_config(stochastic=True, target_key="noisy")
    imgs = images()
    out = make_operator(config)(batch_of(imgs)).data.get_value()
    np.testing.assert_array_equal(out["image"], imgs)
    assert out["noisy"].shape == imgs.shape and not np.array_equal(out["noisy"], imgs)


def test_dotted_nested_keys():
    config = dropout_config(
        field_key="data.image", target_key="data.dropped", stochastic=True, dropout_rate=0.5
    )
    imgs = images()
    batch = dx.Batch.from_parts(data={"data": {"image": jnp.asarray(imgs)}, "y": jnp.zeros(4)})
    out = make_operator(config)(batch).data.get_value()
    np.testing.assert_array_equal(out["data"]["image"], imgs)
    assert out["data"]["dropped"].shape == imgs.shape
    assert set(out) == {"data", "y"}


def test_missing_field_lists_available_keys():
    op = make_operator(noise_config(stochastic=True))
    batch = dx.Batch.from_parts(data={"img": jnp.zeros((2, 4, 4, 3)), "label": jnp.zeros(2)})
    with pytest.raises(KeyError, match=r"'image'.*\['img', 'label'\]"):
        op(batch)
    with pytest.raises(KeyError, match="image"):
        op.apply({"img": jnp.zeros((4, 4, 3))}, {}, {})


@pytest.mark.parametrize(
    "bad", [np.array(["a", "b"]), np.zeros((2, 3), bool), np.zeros((2, 3), np.complex64)]
)
def test_non_numeric_dtypes_are_rejected(bad):
    op = make_operator(noise_config(stochastic=True))
    with pytest.raises(TypeError, match="dtype"):
        op.apply({"image": bad}, {}, {})


def test_apply_stochastic_external_params_validated():
    op = make_operator(noise_config(stochastic=True))
    image = jnp.full((4, 4, 3), 0.5)
    with pytest.raises(KeyError, match="noise"):
        op.apply({"image": image}, {}, {}, random_params={"keep_mask": jnp.ones((4, 4, 3))})
    with pytest.raises(ValueError, match=r"shape \(1, 4, 4, 3\)"):
        op.apply({"image": image}, {}, {}, random_params={"noise": jnp.zeros((1, 4, 4, 3))})
    out, _, _ = op.apply(
        {"image": image}, {}, {}, random_params={"noise": jnp.full((4, 4, 3), 0.25)}
    )
    np.testing.assert_allclose(out["image"], 0.75)


def test_deterministic_mode_ignores_params_and_repeats():
    """stochastic=False decides: the fixed pattern is used even if params are passed."""
    op = make_operator(noise_config(stochastic=False, noise_std=0.2))
    image = jnp.full((5, 5, 2), 0.5)
    a, _, _ = op.apply({"image": image}, {}, {}, random_params={"noise": jnp.zeros((5, 5, 2))})
    b, _, _ = op.apply({"image": image}, {}, {})
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(a["image"], image)
    batch_out = run_batch(op, np.full((3, 5, 5, 2), 0.5, np.float32))
    for i in range(3):
        np.testing.assert_array_equal(batch_out[i], a["image"])


def test_stochastic_without_rng_stream_is_a_clear_error():
    config = noise_config(stochastic=True, stream_name="augment")
    # nnx.Rngs falls back to its "default" stream; without one the stream is missing
    operator_class(config)(config, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="'augment'"):
        operator_class(config)(config, rngs=nnx.Rngs(params=0))
    with pytest.raises(ValueError, match="needs rngs"):
        operator_class(config)(config, rngs=None)


def test_wrong_config_type_is_rejected():
    with pytest.raises(TypeError, match="NoiseOperatorConfig"):
        dx.NoiseOperator(dropout_config(), rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="DropoutOperatorConfig"):
        dx.DropoutOperator(noise_config(), rngs=nnx.Rngs(0))


def test_auxiliary_fields_checked_passed_through_or_dropped():
    imgs = images()
    batch = dx.Batch.from_parts(data={"image": jnp.asarray(imgs), "mask": jnp.ones((4, 8, 8))})
    keep = make_operator(noise_config(stochastic=True, auxiliary_fields=["mask"]))(batch)
    np.testing.assert_array_equal(keep.data.get_value()["mask"], 1.0)
    drop = make_operator(
        noise_config(stochastic=True, auxiliary_fields=["mask"], preserve_auxiliary=False)
    )(batch)
    assert "mask" not in drop.data.get_value()
    with pytest.raises(KeyError, match="auxiliary field 'boxes'"):
        make_operator(noise_config(stochastic=True, auxiliary_fields=["boxes"]))(batch)


# --------------------------------------------------------------------------- #
# Batches of size 0 and 1, element ranks                                       #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
@pytest.mark.parametrize("batch_size", [0, 1])
def test_small_batches(config, batch_size):
    op = make_operator(config)
    out = op(batch_of(images((batch_size, 4, 4, 3))))
    assert out.batch_size == batch_size
    assert out.data.get_value()["image"].shape == (batch_size, 4, 4, 3)
    assert op.get_operation_stats()["applied_count"] == batch_size


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
@pytest.mark.parametrize("element_shape", [(6, 5), (7,), (2, 3, 4, 2)])
def test_other_element_ranks(config, element_shape):
    op = make_operator(config)
    if config.mode == "coarse" and len(element_shape) < 2:  # no (H, W) plane: a named error
        with pytest.raises(ValueError, match=r"needs \(H, W\) or \(H, W, C\) elements"):
            run_batch(op, images((3, *element_shape)))
        return
    out = run_batch(op, images((3, *element_shape)))
    assert out.shape == (3, *element_shape)
    if config.mode == "channel":
        params = op.generate_random_params(jax.random.key(0), {"image": (3, *element_shape)})
        assert params["keep_mask"].shape == (3, *element_shape)  # per value when not 3-D


# --------------------------------------------------------------------------- #
# dtypes                                                                       #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16, jnp.uint8, jnp.int16])
def test_dtype_preserved(config, dtype):
    scale = 255 if jnp.issubdtype(dtype, jnp.integer) else 1
    imgs = (images((2, 6, 6, 3)) * scale).astype(dtype)
    if jnp.issubdtype(dtype, jnp.integer):
        config = dataclasses.replace(config, clip_range=None)
    out = make_operator(config)(batch_of(imgs)).data.get_value()["image"]
    assert out.dtype == dtype and out.shape == imgs.shape


def test_uint8_is_rounded_and_saturated():
    config = noise_config(stochastic=False, clip_range=None, noise_std=0.0)
    # noise_std 0: identity before the cast; values survive exactly
    imgs = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    np.testing.assert_array_equal(run_batch(make_operator(config), imgs), imgs)
    op = make_operator(noise_config(stochastic=True, clip_range=None, noise_std=50.0))
    out = run_batch(op, np.full((1, 32, 32, 1), 250, np.uint8))
    assert out.dtype == np.uint8 and out.max() == 255 and out.min() >= 0


# --------------------------------------------------------------------------- #
# NaN / Inf: error eagerly by default, IEEE propagation otherwise               #
# --------------------------------------------------------------------------- #
def test_nan_input_is_rejected_eagerly_by_default():
    imgs = images()
    imgs[0, 0, 0, 0] = np.nan
    imgs[1, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="2 NaN/Inf"):
        make_operator(noise_config(stochastic=True))(batch_of(imgs))


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
def test_nan_propagates_when_validation_is_off(config):
    config = dataclasses.replace(config, validate_domain_constraints=False, clip_range=None)
    imgs = np.full((2, 4, 4, 1), 0.5, np.float32)
    imgs[:, 0, 0, 0] = np.nan
    imgs[:, 1, 1, 0] = np.inf
    out = run_batch(make_operator(config), imgs)
    replaced = config.mode in ("salt_pepper", "pixel", "channel")
    # NaN stays NaN unless the value was replaced (salt/pepper) or dropped (-> 0)
    assert np.all(np.isnan(out[:, 0, 0, 0]) | replaced)
    assert np.all(np.isposinf(out[:, 1, 1, 0]) | replaced)
    assert np.isfinite(out[:, 2:, 2:, :]).all()


def test_inf_is_clipped_to_the_bounds():
    config = noise_config(stochastic=True, validate_domain_constraints=False, clip_range=(0.0, 1.0))
    imgs = np.full((1, 2, 2, 1), np.inf, np.float32)
    imgs[0, 0, 0, 0] = -np.inf
    out = run_batch(make_operator(config), imgs)
    assert out[0, 0, 0, 0] == 0.0 and out[0, 1, 1, 0] == 1.0


# --------------------------------------------------------------------------- #
# Compilation: traced once per input structure                                 #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
def test_eager_loop_compiles_once_per_structure(config):
    config = dataclasses.replace(config, noise_std=0.0371) if config.mode == "gaussian" else config
    op = make_operator(config)
    kernel = op.kernel
    before = TRACE_COUNTS[kernel]
    for seed in range(5):
        op(batch_of(images(seed=seed)))
    assert TRACE_COUNTS[kernel] - before <= 1
    op(batch_of(images((2, 8, 8, 3))))  # a new shape compiles once more
    op(batch_of(images((2, 8, 8, 3), seed=9)))
    assert TRACE_COUNTS[kernel] - before <= 2


# --------------------------------------------------------------------------- #
# Transformations: jax.jit (split/merge), nnx.jit, vmap of apply, grad          #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
def test_jax_jit_functional_and_nnx_jit_match_eager(config):
    imgs = images()
    eager = run_batch(make_operator(config, seed=5), imgs)
    nnx_out = nnx.jit(lambda op, b: op(b))(make_operator(config, seed=5), batch_of(imgs))
    np.testing.assert_array_equal(nnx_out.data.get_value()["image"], eager)

    graphdef, state = nnx.split(make_operator(config, seed=5))

    @jax.jit
    def step(state, data):
        op = nnx.merge(graphdef, state)
        out = op(dx.Batch.from_parts(data=data, states={}))
        return out.data.get_value()["image"], nnx.state(op)

    out, new_state = step(state, {"image": jnp.asarray(imgs)})
    np.testing.assert_array_equal(out, eager)
    # the record counter advanced inside jit: the next call differs
    out2, _ = step(new_state, {"image": jnp.asarray(imgs)})
    assert not np.array_equal(out2, out)


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
def test_vmap_of_apply_with_generated_params_matches_apply_batch_semantics(config):
    op = make_operator(config)
    imgs = jnp.asarray(images())
    params = op.generate_random_params(jax.random.key(2), {"image": imgs.shape})
    vmapped = jax.vmap(lambda im, p: op.apply({"image": im}, {}, {}, random_params=p)[0]["image"])(
        imgs, params
    )
    for i in range(imgs.shape[0]):
        single = op.apply({"image": imgs[i]}, {}, {}, {k: v[i] for k, v in params.items()})
        np.testing.assert_array_equal(vmapped[i], single[0]["image"])


def _grad_of_sum(op, image, params):
    return jax.grad(lambda x: op.apply({"image": x}, {}, {}, params)[0]["image"].sum())(image)


def test_gradients_gaussian_and_dropout_pass_through():
    image = jnp.full((4, 4, 2), 0.5)
    op = make_operator(noise_config(stochastic=True, noise_std=0.01))
    g = _grad_of_sum(op, image, {"noise": jnp.zeros((4, 4, 2))})
    np.testing.assert_array_equal(g, 1.0)
    op = make_operator(dropout_config(stochastic=True, dropout_rate=0.5))
    keep = jnp.arange(32).reshape(4, 4, 2) % 3 == 0
    np.testing.assert_array_equal(_grad_of_sum(op, image, {"keep_mask": keep}), keep.astype(float))
    op = make_operator(dropout_config(mode="channel", stochastic=True, dropout_rate=0.5))
    g = _grad_of_sum(op, image, {"keep_mask": jnp.array([True, False])})
    np.testing.assert_array_equal(g[..., 0], 1.0)
    np.testing.assert_array_equal(g[..., 1], 0.0)


def test_gradient_salt_pepper_zero_where_replaced():
    op = make_operator(noise_config("salt_pepper", stochastic=True, salt_prob=0.3, pepper_prob=0.3))
    levels = jnp.linspace(0.0, 0.99, 16).reshape(4, 4, 1)
    g = _grad_of_sum(op, jnp.full((4, 4, 1), 0.5), {"noise_mask": levels})
    np.testing.assert_array_equal(g, (levels >= np.float32(0.6)).astype(float))


def test_gradient_poisson_is_straight_through():
    op = make_operator(noise_config("poisson", stochastic=True, lam_scale=100.0, clip_range=None))
    levels = jnp.full((3, 3, 1), 0.5)
    g = _grad_of_sum(op, jnp.full((3, 3, 1), 0.4), {"poisson_samples": levels})
    np.testing.assert_array_equal(g, 1.0)
    g_neg = _grad_of_sum(op, jnp.full((3, 3, 1), -0.4), {"poisson_samples": levels})
    np.testing.assert_array_equal(g_neg, 0.0)  # negatives are raised to 0: flat


# --------------------------------------------------------------------------- #
# Operation statistics                                                         #
# --------------------------------------------------------------------------- #
def test_operation_stats_count_records_and_reset():
    op = make_operator(noise_config(stochastic=True))
    op(batch_of(images((3, 4, 4, 1))))
    op.apply({"image": jnp.zeros((4, 4, 1))}, {}, {})
    assert op.get_operation_stats() == {"applied_count": 4, "skipped_count": 0}
    op.reset_operation_stats()
    assert op.get_operation_stats() == {"applied_count": 0, "skipped_count": 0}
    noop = make_operator(dropout_config(stochastic=True, dropout_rate=0.0))
    imgs = images((2, 4, 4, 1))
    np.testing.assert_array_equal(run_batch(noop, imgs), imgs)
    assert noop.get_operation_stats() == {"applied_count": 0, "skipped_count": 2}


def test_operation_stats_count_under_nnx_jit():
    op = make_operator(noise_config(stochastic=True))
    step = nnx.jit(lambda o, b: o(b))
    for _ in range(3):
        step(op, batch_of(images((2, 4, 4, 1))))
    assert op.get_operation_stats()["applied_count"] == 6


# --------------------------------------------------------------------------- #
# Data statistics                                                              #
# --------------------------------------------------------------------------- #
def test_statistics_lifecycle():
    fn = lambda data: {"mean": jnp.mean(data["image"])}  # noqa: E731
    op = make_operator(noise_config(stochastic=True, batch_stats_fn=fn))
    assert op.get_statistics() is None
    stats = op.compute_statistics({"image": jnp.full((2, 2), 3.0)})
    assert float(stats["mean"]) == 3.0 and float(op.get_statistics()["mean"]) == 3.0
    op.set_statistics({"mean": 1.0})
    assert op.get_statistics() == {"mean": 1.0}
    op.reset_statistics()
    assert op.get_statistics() is None
    with pytest.raises(TypeError):
        op.set_statistics([1, 2])  # type: ignore[arg-type]


def test_precomputed_statistics_and_reset():
    op = make_operator(noise_config(stochastic=True, precomputed_stats={"std": 2.0}))
    assert op.compute_statistics({"image": jnp.zeros(2)}) is None  # no batch_stats_fn
    assert op.get_statistics() == {"std": 2.0}
    op.reset_statistics()
    assert op.get_statistics() is None  # reset ignores precomputed_stats
    op.set_statistics({"std": 3.0})
    assert op.get_statistics() == {"std": 3.0}


def test_apply_batch_accepts_stats_argument():
    op = make_operator(noise_config(stochastic=True))
    assert op.apply_batch(batch_of(images()), stats={"anything": 1}).batch_size == 4


# --------------------------------------------------------------------------- #
# Cache                                                                        #
# --------------------------------------------------------------------------- #
def test_cache_hits_for_same_content_when_deterministic():
    op = make_operator(noise_config(stochastic=False, cacheable=True))
    imgs = images()
    first = run_batch(op, imgs)
    second = run_batch(op, imgs.copy())
    np.testing.assert_array_equal(first, second)
    assert op.cache_info() == {"hits": 1, "misses": 1, "size": 1}
    run_batch(op, images(seed=1))
    assert op.cache_info()["size"] == 2
    op.reset_cache()
    assert op.cache_info() == {"hits": 0, "misses": 0, "size": 0}


def test_cache_unused_when_stochastic_or_not_cacheable():
    stochastic = make_operator(noise_config(stochastic=True, cacheable=True))
    imgs = images()
    assert not np.array_equal(run_batch(stochastic, imgs), run_batch(stochastic, imgs))
    assert stochastic.cache_info()["size"] == 0
    plain = make_operator(noise_config(stochastic=False))
    run_batch(plain, imgs)
    assert plain.cache_info()["size"] == 0


# --------------------------------------------------------------------------- #
# State, clone, copy                                                           #
# --------------------------------------------------------------------------- #
def test_get_state_set_state_round_trip_resumes_exactly():
    config = noise_config(stochastic=True)
    op = make_operator(config, seed=11)
    run_batch(op, images(seed=1))
    saved = op.get_state()
    expected = run_batch(op, images(seed=2))
    restored = make_operator(config, seed=99)
    restored.set_state(saved)
    np.testing.assert_array_equal(run_batch(restored, images(seed=2)), expected)


def test_set_state_is_strict():
    op = make_operator(noise_config(stochastic=True))
    with pytest.raises(TypeError, match="dict"):
        op.set_state([1, 2])  # type: ignore[arg-type]
    state = op.get_state()
    with pytest.raises(ValueError, match="keys differ"):
        op.set_state({k: v for k, v in state.items() if k != "_record_counter"})
    bad = dict(state, _record_counter=jnp.zeros((), jnp.uint32))
    with pytest.raises(ValueError, match="shape"):
        op.set_state(bad)
    bad = dict(state, _record_counter=jnp.zeros((2,), jnp.float32))
    with pytest.raises(ValueError, match="dtype"):
        op.set_state(bad)
    with pytest.raises(ValueError):
        make_operator(noise_config(stochastic=False)).set_state(state)


def test_clone_is_independent_with_same_state():
    op = make_operator(noise_config(stochastic=True))
    twin = op.clone()
    imgs = images()
    np.testing.assert_array_equal(run_batch(op, imgs), run_batch(twin, imgs))
    run_batch(op, imgs)
    assert op.get_operation_stats()["applied_count"] == 8
    assert twin.get_operation_stats()["applied_count"] == 4


def test_copy_replaces_config_name_rngs():
    op = make_operator(noise_config(stochastic=True, noise_std=0.1))
    imgs = images()
    same = op.copy(name="renamed")
    assert same.name == "renamed" and same.config is op.config
    np.testing.assert_array_equal(run_batch(same, imgs), run_batch(op, imgs))
    louder = op.copy(config=dataclasses.replace(op.config, noise_std=0.3, clip_range=None))
    assert louder.config.noise_std == 0.3
    fresh = op.copy(rngs=nnx.Rngs(12345))
    assert not np.array_equal(run_batch(fresh, imgs), run_batch(op.clone(), imgs))
    with pytest.raises(TypeError):
        op.copy(config=dropout_config())


# --------------------------------------------------------------------------- #
# RNG streams, structure, spec                                                 #
# --------------------------------------------------------------------------- #
def test_rng_stream_requirements():
    assert make_operator(noise_config(stochastic=False)).requires_rng_streams() is None
    op = make_operator(noise_config(stochastic=True, stream_name="augment"))
    assert op.requires_rng_streams() == ["augment"]
    op.ensure_rng_streams(["augment", "params"])
    with pytest.raises(ValueError, match="augment"):
        op.ensure_rng_streams(["params"])
    assert make_operator(noise_config(stochastic=True)).requires_rng_streams() == ["default"]


def test_output_structure_and_spec():
    op = make_operator(noise_config(stochastic=True, target_key="noisy"))
    data = {"image": jnp.zeros((4, 4, 3)), "label": jnp.zeros(())}
    out_data, out_state = op.get_output_structure(data, {"s": jnp.zeros(())})
    assert out_data == {"image": None, "label": None, "noisy": None}
    assert out_state == {"s": None}
    spec = {"image": jax.ShapeDtypeStruct((4, 4, 3), jnp.uint8)}
    assert op.output_spec(spec) == {"image": spec["image"], "noisy": spec["image"]}
    plain = make_operator(dropout_config(stochastic=True))
    assert plain.output_spec(spec) == spec


# Values for the noise config fields a mode may not use (all valid for every mode).
OTHER_MODE_VALUES = {
    "noise_std": 0.21,
    "noise_mean": 0.03,
    "salt_prob": 0.2,
    "pepper_prob": 0.1,
    "salt_value": 0.9,
    "pepper_value": 0.05,
    "lam_scale": 7.0,
}


@pytest.mark.parametrize("mode", NOISE_MODES)
def test_changing_another_modes_field_neither_changes_the_kernel_nor_recompiles(mode):
    """A kernel carries only its own mode's parameters (the seam issue 8 asks to keep)."""
    config = noise_config(mode, stochastic=True)
    op = make_operator(config)
    op(batch_of(images()))
    kernel_fields = {f.name for f in dataclasses.fields(op.kernel)}
    unused = {k: v for k, v in OTHER_MODE_VALUES.items() if k not in kernel_fields}
    assert unused, f"{mode} uses every noise field?"
    other = make_operator(dataclasses.replace(config, **unused))
    assert other.kernel == op.kernel
    before = TRACE_COUNTS[op.kernel]
    other(batch_of(images(seed=1)))
    assert TRACE_COUNTS[op.kernel] == before


# --------------------------------------------------------------------------- #
# Batch and Element                                                            #
# --------------------------------------------------------------------------- #
def test_batch_and_element_api():
    elements = [
        dx.Element(
            data={"image": np.full((2, 2, 1), i, np.float32)},
            state={"n": jnp.array(i)},
            metadata=dx.Metadata(index=10 + i),
        )
        for i in range(3)
    ]
    batch = dx.Batch(elements)
    assert batch.batch_size == 3 and len(batch) == 3 and "image" in batch
    assert batch.data.get_value()["image"].shape == (3, 2, 2, 1)
    assert batch.states.get_value()["n"].tolist() == [0, 1, 2]
    element = batch.get_element(1)
    assert element.metadata.index == 11 and float(element.data["image"][0, 0, 0]) == 1.0
    assert batch.slice(1, 3).batch_size == 2
    assert dx.Batch([]).batch_size == 0
    with pytest.raises(ValueError, match="leading axis"):
        dx.Batch.from_parts(data={"a": jnp.zeros((3, 2)), "b": jnp.zeros((2, 2))})
    updated = element.update_data({"extra": jnp.ones(1)})
    assert set(updated.data) == {"image", "extra"} and set(element.data) == {"image"}


X64_SCRIPT = """
import os, sys
sys.path.insert(0, os.getcwd())
import jax, jax.numpy as jnp, numpy as np
assert jax.config.jax_enable_x64
from datarax_ops import reference
from tests.factory import make_operator
image = np.random.default_rng(0).random((16, 16, 3))  # float64
configs = [reference.NoiseOperatorConfig(field_key="image", mode=m, stochastic=True,
                                         lam_scale=30.0, clip_range=None)
           for m in ("gaussian", "salt_pepper", "poisson", "speckle")]
configs += [reference.DropoutOperatorConfig(field_key="image", mode=m, stochastic=True,
                                            dropout_rate=0.3) for m in ("pixel", "channel")]
for config in configs:
    params = reference.draw(config, np.random.default_rng(1), image.shape)
    out, _, _ = make_operator(config).apply({"image": jnp.asarray(image)}, {}, {}, params)
    assert out["image"].dtype == jnp.float64, out["image"].dtype
    expected = reference.apply(config, image, params)
    assert np.array_equal(np.asarray(out["image"]), expected), config.mode
    batch_out = make_operator(config)(
        __import__("datarax_ops").Batch.from_parts(data={"image": jnp.asarray(image[None])}))
    assert batch_out.data.get_value()["image"].dtype == jnp.float64
    print("ok", config.mode)
"""


def test_float64_with_x64_keeps_dtype_and_matches_reference_exactly():
    """With x64 the working precision is float64: even poisson counts equal the reference."""
    stdout = run_python(X64_SCRIPT, JAX_ENABLE_X64="1")
    assert stdout.count("ok") == 6
