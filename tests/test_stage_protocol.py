"""datarax's calling conventions, without datarax: the stage call, plain dicts, record keys.

datarax's ``Pipeline`` calls an operator stage as ``_apply_on_raw(data, states, stats,
record_indices[, epoch])`` and hands ``apply`` a per-record PRNG key (0.1.17).  These tests
pin what each must give in terms of this project's own API, so they run everywhere;
``tests/test_datarax_pipeline.py`` runs the same paths inside real datarax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import datarax_ops as dx
from tests.factory import make_operator, mode_config

MODE_NAMES = [mode.name for mode in dx.MODES]
IMAGES = np.random.default_rng(1).random((6, 5, 4, 3), dtype=np.float32)
SEED = 5


def _op(mode: str):
    return make_operator(mode_config(mode), seed=SEED)


def _by_metadata(mode: str, indices, epochs) -> np.ndarray:
    metadata = [
        dx.Metadata(index=int(i), epoch=int(e)) for i, e in zip(indices, epochs, strict=True)
    ]
    batch = dx.Batch.from_parts(data={"image": jnp.asarray(IMAGES)}, metadata_list=metadata)
    return np.asarray(_op(mode)(batch).data.get_value()["image"])


@pytest.mark.parametrize("mode", MODE_NAMES)
@pytest.mark.parametrize("epoch", [None, 3, "per_record"], ids=["no_epoch", "epoch", "per_record"])
def test_stage_call_keys_each_record_by_epoch_and_index(mode, epoch):
    indices = jnp.asarray([7, 0, 3, 12, 5, 40], jnp.int32)
    epochs = {None: [0] * 6, 3: [3] * 6, "per_record": [0, 0, 1, 1, 1, 2]}[epoch]
    given = jnp.asarray(epochs, jnp.int32) if epoch == "per_record" else epoch
    states = {"seen": jnp.arange(6)}
    data = {"image": jnp.asarray(IMAGES), "label": jnp.arange(6)}
    out, out_states = _op(mode)._apply_on_raw(data, states, None, indices, given)
    np.testing.assert_array_equal(out["image"], _by_metadata(mode, indices, epochs))
    np.testing.assert_array_equal(out["label"], np.arange(6))
    assert out_states is states


def test_stage_call_traces_under_jit():
    op = _op("gaussian")
    data = {"image": jnp.asarray(IMAGES)}
    step = jax.jit(lambda data, idx, epoch: op._apply_on_raw(data, {}, None, idx, epoch)[0])
    out = step(data, jnp.arange(6, dtype=jnp.int32) + 10, jnp.int32(2))
    np.testing.assert_array_equal(out["image"], _by_metadata("gaussian", range(10, 16), [2] * 6))


def test_stage_call_without_indices_numbers_records_with_the_counter():
    op = _op("pixel")
    data = {"image": jnp.asarray(IMAGES)}
    first = op._apply_on_raw(data, {}, None)[0]["image"]
    second = op._apply_on_raw(data, {}, None)[0]["image"]
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, _by_metadata("pixel", range(6), [0] * 6))
    np.testing.assert_array_equal(second, _by_metadata("pixel", range(6, 12), [0] * 6))


def test_a_deterministic_stage_ignores_indices():
    op = make_operator(mode_config("gaussian", stochastic=False))
    data = {"image": jnp.asarray(IMAGES)}
    a = op._apply_on_raw(data, {}, None, jnp.arange(6))[0]["image"]
    b = op._apply_on_raw(data, {}, None, jnp.arange(6) + 100, 4)[0]["image"]
    np.testing.assert_array_equal(a, b)


def test_op_of_a_dict_returns_a_dict_of_the_batch_result():
    data = {"image": jnp.asarray(IMAGES), "label": jnp.arange(6)}
    before = np.asarray(data["image"]).copy()
    out = _op("gaussian")(data)
    assert type(out) is dict and set(out) == {"image", "label"}
    np.testing.assert_array_equal(np.asarray(data["image"]), before)
    batch = dx.Batch.from_parts(data={"image": jnp.asarray(IMAGES)})
    np.testing.assert_array_equal(out["image"], _op("gaussian")(batch).data.get_value()["image"])


def test_a_wrong_batch_type_is_named_in_full():
    """Not ``needs a Batch, got Batch`` where datarax's Batch meets ours: the full name."""
    with pytest.raises(TypeError) as error:
        _op("gaussian").apply_batch([IMAGES])
    assert "builtins.list" in str(error.value)
    assert "needs a Batch, got Batch" not in str(error.value)


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_apply_with_a_record_key_draws_that_records_params(mode):
    op = _op(mode)
    image = jnp.asarray(IMAGES[0])
    typed = jax.random.key(11)
    by_typed, _, _ = op.apply({"image": image}, {}, None, typed)
    by_raw, _, _ = op.apply({"image": image}, {}, None, jax.random.key_data(typed))
    np.testing.assert_array_equal(by_typed["image"], by_raw["image"])
    params = op.generate_random_params(typed[None], {"image": (1, *image.shape)})
    one = jax.tree.map(lambda p: p[0], params)
    by_params, _, _ = op.apply({"image": image}, {}, None, one)
    if mode == "gaussian":  # drawn and added in one program, x + noise may round once less
        np.testing.assert_allclose(by_typed["image"], by_params["image"], rtol=0, atol=1e-6)
    else:
        np.testing.assert_array_equal(by_typed["image"], by_params["image"])
    other, _, _ = op.apply({"image": image}, {}, None, jax.random.key(12))
    assert not np.array_equal(other["image"], by_typed["image"])


def test_apply_with_a_batch_of_keys_is_a_named_error():
    keys = jax.random.split(jax.random.key(0))
    with pytest.raises(ValueError, match="one record's key"):
        _op("gaussian").apply({"image": IMAGES[0]}, {}, None, keys)


def test_apply_without_key_under_a_plain_transform_refuses_when_run():
    op = _op("gaussian")
    images = jnp.asarray(IMAGES)
    shapes = jax.eval_shape(lambda x: op.apply({"image": x}, {}, None)[0]["image"], images[0])
    assert shapes.shape == images.shape[1:]  # shapes alone: nothing runs, nothing raised
    with pytest.raises(Exception, match="cannot advance the record counter"):
        jax.block_until_ready(jax.vmap(lambda x: op.apply({"image": x}, {}, None)[0])(images))
