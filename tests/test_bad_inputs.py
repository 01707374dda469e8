"""Every bad input raises a named error (ValueError / TypeError / KeyError) saying what is wrong.

Before issue 10 a rank-0 batch field failed with ``IndexError: tuple index out
of range`` from inside ``Batch``, a non-Batch passed to ``apply_batch`` with an
``AttributeError``, a shape that was not a tuple with ``'int' object is not
iterable``, and so on.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import datarax_ops as dx


def _noise(**kw):
    config = dx.NoiseOperatorConfig(field_key="image", stochastic=True, **kw)
    return dx.NoiseOperator(config, rngs=nnx.Rngs(0))


def _channel():
    config = dx.DropoutOperatorConfig(field_key="image", mode="channel", stochastic=True)
    return dx.DropoutOperator(config, rngs=nnx.Rngs(0))


# --------------------------------------------------------------------------- #
# Batch                                                                        #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"data": {"image": jnp.float32(1.0)}}, "data['image']"),
        ({"data": {"image": 1.0}}, "data['image']"),
        ({"data": {"image": np.float64(1.0)}, "validate": False}, "data['image']"),
        ({"data": {}, "states": {"count": jnp.int32(3)}}, "states['count']"),
        ({"data": {"nested": {"image": jnp.float32(1.0)}}}, "data['nested']['image']"),
        ({"data": {"a": jnp.ones((2, 3)), "image": jnp.float32(1.0)}}, "data['image']"),
    ],
    ids=["jax-scalar", "python-float", "no-validate", "states", "nested", "second-field"],
)
def test_rank_zero_field_names_field_shape_and_needed_rank(kwargs, where):
    with pytest.raises(ValueError) as info:
        dx.Batch.from_parts(**kwargs)
    message = str(info.value)
    assert where in message and "shape ()" in message and "rank >= 1" in message, message


def test_rank_zero_field_through_apply_batch_entry_points():
    op = _noise()
    with pytest.raises(ValueError, match=r"data\['image'\] has shape \(\)"):
        op(dx.Batch.from_parts(data={"image": jnp.float32(0.5)}))
    # A batch that skipped every check (as after a pytree round trip) is still caught.
    batch = dx.Batch.from_parts(data={"image": jnp.ones((2, 3))})
    batch.data.set_value({"image": jnp.float32(0.5)})
    with pytest.raises(ValueError, match="needs a batch axis"):
        op(batch)


def test_rank_zero_elements_stack_to_a_rank_one_batch():
    """Elements whose field is a number form a (batch,) field: valid, and it transforms."""
    batch = dx.Batch([dx.Element(data={"image": jnp.float32(0.5)})] * 3)
    out = _noise()(batch)
    assert out.data.get_value()["image"].shape == (3,)


def test_elements_that_do_not_stack_are_named():
    a = dx.Element(data={"image": jnp.ones((2, 2))})
    with pytest.raises(ValueError, match=r"data\['image'\] has shape \(3, 2\) in element 1"):
        dx.Batch([a, dx.Element(data={"image": jnp.ones((3, 2))})])
    with pytest.raises(ValueError, match="element 1's data has structure"):
        dx.Batch([a, dx.Element(data={"img": jnp.ones((2, 2))})])


def test_valid_mask_of_the_wrong_length_is_rejected():
    with pytest.raises(ValueError, match=r"valid_mask has shape \(3,\); a batch of 2"):
        dx.Batch.from_parts(data={"a": jnp.ones((2, 3))}, valid_mask=jnp.ones((3,), bool))


# --------------------------------------------------------------------------- #
# apply / apply_batch                                                          #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "value",
    [None, "abc", np.array([object()]), [[0.1, 0.2], [0.3]]],
    ids=["none", "str", "object", "ragged-list"],
)
def test_non_array_field_is_a_type_error_naming_the_field(value):
    with pytest.raises(TypeError, match="field 'image' has dtype"):
        _noise().apply({"image": value}, {}, {})


def test_nested_list_field_is_taken_as_an_array():
    out, _, _ = _noise().apply({"image": [[0.5, 0.5]]}, {}, {})
    assert out["image"].shape == (1, 2)


@pytest.mark.parametrize(
    "batch", [jnp.ones((2, 4)), {"image": jnp.ones((2, 4))}], ids=["array", "dict"]
)
def test_apply_batch_needs_a_batch_and_names_the_full_type(batch):
    with pytest.raises(TypeError, match=r"apply_batch needs a batch.*Batch\.from_parts") as error:
        _noise().apply_batch(batch)
    full_name = f"{type(batch).__module__}.{type(batch).__qualname__}"
    assert f"got {full_name}" in str(error.value)


def test_calling_on_a_non_batch_non_dict_is_a_named_error():
    with pytest.raises(TypeError, match=r"apply_batch needs a batch.*got jax"):
        _noise()(jnp.ones((2, 4)))


def test_empty_batch_without_fields_is_returned_unchanged():
    batch = dx.Batch([])
    assert _noise()(batch) is batch
    out = _noise()(dx.Batch.from_parts(data={"image": jnp.ones((0, 4, 4, 3))}))
    assert out.data.get_value()["image"].shape == (0, 4, 4, 3)


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        ("x", TypeError, "random_params['noise'] must be a real or bool array"),
        (None, TypeError, "random_params['noise'] must be a real or bool array"),
        (jnp.ones((4, 4, 3), jnp.complex64), TypeError, "complex64"),
        (jnp.zeros((1, 4, 4, 3)), ValueError, "shape (1, 4, 4, 3)"),
    ],
    ids=["str", "none", "complex", "batch-axis"],
)
def test_bad_external_params_values(value, kind, text):
    image = jnp.full((4, 4, 3), 0.5)
    with pytest.raises(kind, match=re.escape(text)):
        _noise().apply({"image": image}, {}, {}, random_params={"noise": value})


# --------------------------------------------------------------------------- #
# generate_random_params                                                       #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("data_shapes", "kind", "text"),
    [
        ([(2, 3)], TypeError, "data_shapes must be a dict"),
        ({"image": 5}, TypeError, "must be a shape tuple of ints"),
        ({"image": (2.5, 3)}, TypeError, "must be a shape tuple of ints"),
        ({"image": (True, 3)}, TypeError, "must be a shape tuple of ints"),
        ({"image": (-1, 3)}, ValueError, "negative dimension"),
        ({"image": ()}, ValueError, "needs a batch axis"),
    ],
    ids=["list", "int", "float-dim", "bool-dim", "negative", "empty"],
)
def test_bad_data_shapes(data_shapes, kind, text):
    with pytest.raises(kind, match=text):
        _noise().generate_random_params(jax.random.key(0), data_shapes)


def test_data_shapes_accepts_numpy_ints_and_arrays():
    op = _channel()
    key = jax.random.key(0)
    assert op.generate_random_params(key, {"image": (np.int64(2), 4, 4, 3)})["keep_mask"].shape == (
        2,
        3,
    )
    assert op.generate_random_params(key, {"image": np.array([2, 4, 4, 3])})["keep_mask"].shape == (
        2,
        3,
    )


@pytest.mark.parametrize(
    "rng",
    [1.0, 0, jnp.array([0, 1], jnp.int32), jax.random.split(jax.random.key(0), (2, 2))],
    ids=["float", "int", "int32-array", "2d-typed"],
)
def test_bad_keys_are_type_errors(rng):
    with pytest.raises(TypeError, match="rng must be"):
        _noise().generate_random_params(rng, {"image": (2, 4, 4, 3)})
