"""Shape buckets (``datarax_ops.buckets``): any element shape, the exact program's bits.

What is proven:

* the bucket function: every size fits its bucket, the padding is less than half
  the size, and the number of buckets grows with the logarithm of the largest size;
* bit identity: for random element shapes (ranks 1 to 4; H, W and C varied), every
  mode of ``MODES``, float32 and uint8, 0..1 and 0..255 data, stochastic and
  deterministic, the bucketed path gives exactly what the exact-shape program
  gives, through the grain transform, ``apply`` and eager ``op(batch)``, and
  leaves the same operator state; NaN and Inf behave the same (propagated, or
  the same error);
* the NumPy reference reproduces records of varied sizes (``op(batch)``, grain);
* compiled programs: shapes of one bucket share one program; the count grows
  with the logarithm of the largest size; traced inputs (jit) are never padded.

``buckets.forced(True/False)`` picks the bucketed or the exact path for a block,
so both run through the public API.  Poisson compiles slowly (~5 s a program on
2 cores), so it has a few fixed cases instead of Hypothesis examples.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datarax_ops as dx
from datarax_ops import buckets, reference
from datarax_ops.kernel import TRACE_COUNTS, element_programs
from tests.factory import make_operator, training_settings
from tests.test_pipeline_reproduced import _config, assert_reproduced

# Long (minutes of compiling on 2 cores): `nox -s slow`, which `tests` queues, so CI runs it.
pytestmark = pytest.mark.slow

# The grain transform's tests take the ``grain_transform`` fixture (tests/conftest.py):
# without grain only they skip, naming it; the buckets' own tests run everywhere.

MODE_NAMES = [mode.name for mode in dx.MODES]
# Hypothesis examples: every mode but poisson (its programs take seconds to compile)
FAST_MODES = [name for name in MODE_NAMES if name != "poisson"]
EXAMPLES = 12  # per path; each example compiles one exact-shape program


# --------------------------------------------------------------------------- #
# Helpers                                                                      #
# --------------------------------------------------------------------------- #
def make_image(shape: tuple[int, ...], dtype: type, scale: int, seed: int) -> np.ndarray:
    """Uniform values over 0..scale in ``dtype`` (uint8 rounded: 0/1 or 0..255)."""
    values = np.random.default_rng(seed).random(shape) * scale
    return np.rint(values).astype(np.uint8) if dtype == np.uint8 else values.astype(dtype)


@st.composite
def elements(draw: st.DrawFn, max_side: int = 40) -> tuple[np.ndarray, int]:
    """``(image, scale)``: a random element of rank 3 (mostly), 2, 1 or 4."""
    side = st.integers(1, max_side)
    rank = draw(st.sampled_from([3, 3, 3, 2, 1, 4]))
    if rank == 3:
        shape = (draw(side), draw(side), draw(st.integers(1, 5)))
    elif rank == 2:
        shape = (draw(side), draw(side))
    elif rank == 1:
        shape = (draw(st.integers(1, 3000)),)
    else:
        shape = (draw(st.integers(1, 4)), draw(side), draw(side), draw(st.integers(1, 4)))
    dtype = draw(st.sampled_from([np.float32, np.uint8]))
    scale = draw(st.sampled_from([1, 255]))
    return make_image(shape, dtype, scale, draw(st.integers(0, 2**16))), scale


def operator_for(
    mode: str, stochastic: bool = True, scale: int = 1, seed: int = 3, training: bool = False
):
    """The reproduction tests' config of ``mode`` (gaussian's std scaled to the data);
    ``training``: with the training settings on (shared channels keep their last axis in
    the bucket, ``buckets.layout``)."""
    config = _config(mode, stochastic)
    if mode == "gaussian":
        config = dataclasses.replace(config, noise_std=0.3 * scale)
    if training:
        config = dataclasses.replace(config, **training_settings(mode))
    return make_operator(config, seed=seed)


def assert_same_bits(got: np.ndarray, expected: np.ndarray) -> None:
    """Same shape, same dtype, same bytes (NaN payloads and -0.0 included)."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    differ = got.reshape(-1).view(np.uint8) != expected.reshape(-1).view(np.uint8)
    assert not differ.any(), f"{np.count_nonzero(differ)} bytes differ of {got.nbytes}"


def assert_same_state(op, other) -> None:
    """Base key, record counter and counts alike: both paths advance the state the same."""
    leaves = [jax.tree.leaves(o.get_state()) for o in (op, other)]
    for got, expected in zip(*leaves, strict=True):
        assert_same_bits(got, expected)


def grain_output(transform, image: np.ndarray, seed: int) -> np.ndarray:
    return transform.random_map({"image": image}, np.random.default_rng(seed))["image"]


def apply_output(op, image: np.ndarray, index: int | None) -> np.ndarray:
    """``op.apply`` on a NumPy element (the operator puts it on the device)."""
    metadata = None if index is None else dx.Metadata(index=index)
    data, _, _ = op.apply({"image": image}, {}, metadata)
    return np.asarray(data["image"])


def batch_output(op, images: np.ndarray, indices: list[int] | None = None) -> np.ndarray:
    """Eager ``op(batch)`` on NumPy records; ``indices``: their ``Metadata`` indices."""
    metadata = None if indices is None else [dx.Metadata(index=i) for i in indices]
    batch = dx.Batch.from_parts(data={"image": images}, metadata_list=metadata)
    return np.asarray(op(batch).data.get_value()["image"])


def philox(index: int) -> np.random.Generator:
    """The generator grain's ``MapDataset.random_map`` hands record ``index``."""
    return np.random.Generator(np.random.Philox(index))


def both_paths(run, *args):
    """``(exact, bucketed)``: ``run(*args)`` with buckets off, then forced on."""
    with buckets.forced(False):
        exact = run(*args)
    with buckets.forced(True):
        bucketed = run(*args)
    return exact, bucketed


# --------------------------------------------------------------------------- #
# The buckets                                                                  #
# --------------------------------------------------------------------------- #
@given(st.integers(0, 2**33))
def test_every_size_fits_its_bucket_with_less_than_half_of_it_padding(rows):
    bucket = buckets.bucket_size(rows)
    assert bucket >= max(rows, buckets.MIN_BUCKET)
    power = 1 << (bucket.bit_length() - 1)
    assert bucket in (power, 3 * power // 2)  # 2**k or 3 * 2**(k - 1)
    if rows > buckets.MIN_BUCKET:
        assert bucket < 1.5 * rows
    assert buckets.bucket_size(bucket) == bucket
    assert buckets.bucket_size(rows + 1) >= bucket


@pytest.mark.parametrize("largest", [1, 1024, 1025, 5000, 2**16 + 1, 3 * 2**20])
def test_bucket_count_is_logarithmic(largest):
    if largest <= 70_000:  # counted by brute force
        distinct = {buckets.bucket_size(n) for n in range(1, largest + 1)}
        assert buckets.bucket_count(largest) == len(distinct)
    bound = 1 + 2 * math.ceil(math.log2(max(largest, buckets.MIN_BUCKET) / buckets.MIN_BUCKET))
    assert buckets.bucket_count(largest) <= bound


def test_layouts():
    assert buckets.layout((5, 7, 3)) == (1, 1024, 3)
    assert buckets.layout((30, 50, 3)) == (1, 1536, 3)
    assert buckets.layout((40, 40, 3)) == (1, 2048, 3)
    assert buckets.layout((300, 200, 4)) == (1, 65536, 4)
    assert buckets.layout((7,)) == (1024,)
    assert buckets.layout((50, 30)) == (1536,)
    assert buckets.layout((2, 3, 4, 5)) == (1024,)
    assert buckets.layout(()) is None and buckets.layout((0, 4, 3)) is None
    assert buckets.layout((1, 1, 1)) is None and buckets.layout((1,)) is None  # one value
    assert buckets.layout((1, 2, 1)) == (1, 1024, 1)
    assert buckets.layout((2**16, 2**15, 3)) is None  # 2**32 values or more: exact


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("as_jax", [False, True])
def test_prepare_pads_with_zeros_and_restore_slices_back(batched, as_jax):
    image = make_image((2, 5, 7, 3) if batched else (5, 7, 3), np.uint8, 255, seed=0) + 1
    with buckets.forced(True):
        padded, restore = buckets.prepare(
            "test", jnp.asarray(image) if as_jax else image, batched=batched
        )
    host = np.asarray(padded)
    assert host.shape == ((2,) if batched else ()) + (1, 1024, 3) and host.dtype == np.uint8
    flat = host.reshape(host.shape[0] if batched else 1, -1)
    assert np.array_equal(flat[:, : 5 * 7 * 3], image.reshape(flat.shape[0], -1))
    assert not flat[:, 5 * 7 * 3 :].any()
    back = restore(padded)
    assert isinstance(back, jax.Array) == as_jax
    assert_same_bits(np.asarray(back), image)


def test_first_shape_of_a_program_runs_exactly_later_shapes_in_buckets():
    family = jax.jit(lambda x: x)  # a program of its own
    first = np.zeros((5, 7, 3), np.float32)
    assert buckets.prepare(family, first, batched=False)[0] is first
    assert buckets.prepare(family, first, batched=False)[0] is first  # and again
    other = np.zeros((5, 8, 3), np.float32)
    assert buckets.prepare(family, other, batched=False)[0].shape == (1, 1024, 3)
    assert buckets.prepare(family, first.astype(np.uint8), batched=False)[0].shape == (1, 1024, 3)


def test_traced_and_unbucketable_inputs_are_left_alone():
    seen = []

    @jax.jit
    def traced(x):
        with buckets.forced(True):
            padded, _ = buckets.prepare("traced", x, batched=False)
        seen.append(padded is x)
        return x

    traced(jnp.zeros((5, 7, 3)))
    assert seen == [True]
    with buckets.forced(True):
        for value in (np.zeros(()), np.zeros((0, 3, 3)), [1.0, 2.0]):
            assert buckets.prepare("odd", value, batched=False)[0] is value


# --------------------------------------------------------------------------- #
# Bit identity, every path                                                     #
# --------------------------------------------------------------------------- #
@settings(max_examples=EXAMPLES)
@given(
    mode=st.sampled_from(FAST_MODES),
    stochastic=st.booleans(),
    element=elements(),
    training=st.booleans(),
)
def test_grain_transform_bucketed_equals_exact(
    grain_transform, mode, stochastic, element, training
):
    image, scale = element
    op = operator_for(mode, stochastic, scale, training=training)
    transform = grain_transform.OperatorRandomMap(op)
    exact, bucketed = both_paths(grain_output, transform, image, 11)
    assert_same_bits(bucketed, exact)


@settings(max_examples=EXAMPLES)
@given(
    mode=st.sampled_from(FAST_MODES),
    stochastic=st.booleans(),
    element=elements(),
    index=st.one_of(st.none(), st.integers(0, 2**40)),
    training=st.booleans(),
)
def test_apply_bucketed_equals_exact(mode, stochastic, element, index, training):
    image, scale = element
    exact_op, bucketed_op = (
        operator_for(mode, stochastic, scale, training=training) for _ in range(2)
    )
    with buckets.forced(False):
        exact = apply_output(exact_op, image, index)
    with buckets.forced(True):
        bucketed = apply_output(bucketed_op, image, index)
    assert_same_bits(bucketed, exact)
    assert_same_state(bucketed_op, exact_op)


@settings(max_examples=EXAMPLES)
@given(
    mode=st.sampled_from(FAST_MODES),
    stochastic=st.booleans(),
    element=elements(max_side=24),
    size=st.integers(1, 3),
    training=st.booleans(),
)
def test_eager_batch_bucketed_equals_exact(mode, stochastic, element, size, training):
    image, scale = element
    images = np.stack([np.roll(image, k) for k in range(size)])  # records differ
    exact_op, bucketed_op = (
        operator_for(mode, stochastic, scale, training=training) for _ in range(2)
    )
    with buckets.forced(False):
        exact = batch_output(exact_op, images)
    with buckets.forced(True):
        bucketed = batch_output(bucketed_op, images)
    assert_same_bits(bucketed, exact)
    assert_same_state(bucketed_op, exact_op)


# Fixed poisson cases, against one exact-shape program (poisson compiles slowly): the
# element program on the record's key, which ``apply`` runs exactly and which the grain
# transform and a one-record ``op(batch)`` equal (``test_grain``, ``test_randomness``).
# uint8 0..255; one shape (each costs an exact program).
POISSON_IMAGE = make_image((21, 34, 3), np.uint8, 255, seed=0)
POISSON_INDEX = 2**33 + 5


def test_poisson_bucketed_equals_exact_through_apply_and_batch():
    operator = operator_for("poisson")
    with buckets.forced(False):
        exact = apply_output(operator, POISSON_IMAGE, POISSON_INDEX)
    with buckets.forced(True):
        assert_same_bits(apply_output(operator, POISSON_IMAGE, POISSON_INDEX), exact)
        assert_same_bits(batch_output(operator, POISSON_IMAGE[None], [POISSON_INDEX])[0], exact)


def test_poisson_bucketed_grain_record_equals_the_exact_program(grain_transform):
    operator = operator_for("poisson")
    exact_program = element_programs(operator.kernel)[2]
    base_key = np.asarray(operator.get_state()["_base_key"], np.uint32)
    with buckets.forced(True):
        transform = grain_transform.OperatorRandomMap(operator)
        bucketed = transform.random_map({"image": POISSON_IMAGE}, philox(POISSON_INDEX))["image"]
    words = grain_transform.key_words_from_generator(philox(POISSON_INDEX))
    key = np.stack(reference.stream.threefry2x32((base_key[0], base_key[1]), tuple(words)))
    with buckets.forced(False):
        exact = exact_program(key.astype(np.uint32), POISSON_IMAGE)
    assert_same_bits(bucketed, np.asarray(exact))


@pytest.mark.parametrize("validate", [True, False])
def test_nan_and_inf_behave_as_in_the_exact_program(validate):
    config = dataclasses.replace(_config("gaussian"), validate_domain_constraints=validate)
    image = make_image((1, 13, 17, 3), np.float32, 1, seed=4)
    image[0, 3, 4, 1], image[0, 7, 2, 0] = np.nan, np.inf
    run = lambda: batch_output(make_operator(config), image)  # noqa: E731
    if validate:
        for bucketed in (False, True):
            with buckets.forced(bucketed), pytest.raises(ValueError, match="2 NaN/Inf"):
                run()
        return
    exact, bucketed = both_paths(run)
    assert np.isnan(bucketed[0, 3, 4, 1]) and np.isinf(bucketed[0, 7, 2, 0])
    assert_same_bits(bucketed, exact)


# --------------------------------------------------------------------------- #
# The reference reproduces records of varied sizes                             #
# --------------------------------------------------------------------------- #
# one bucket (C = 3, up to 1024 pixels), so poisson compiles nothing new here
VARIED = [(5, 9, 3), (17, 4, 3), (30, 31, 3), (21, 34, 3)]


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_reference_reproduces_batches_of_varied_sizes(mode):
    config = _config(mode)
    op = make_operator(config, seed=21)
    base_key = np.asarray(op.get_state()["_base_key"])
    dtype = np.uint8 if mode == "poisson" else np.float32  # poisson: the programs above
    for number, shape in enumerate(VARIED):
        images = make_image((1, *shape), dtype, 255 if dtype == np.uint8 else 1, seed=number)
        with buckets.forced(True):
            got = batch_output(op, images, [2**33 + 7 + number])
        params = reference.stream_params(config, base_key, [2**33 + 7 + number], shape)
        assert_reproduced(config, images, params, got)


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_reference_reproduces_grain_records_of_varied_sizes(grain_transform, mode):
    config = _config(mode)
    op = make_operator(config, seed=22)
    transform = grain_transform.OperatorRandomMap(op)
    base_key = np.asarray(op.get_state()["_base_key"], np.uint32)
    for number, shape in enumerate(VARIED):
        image = make_image(shape, np.uint8, 255, seed=number)
        index = 2**40 + number
        with buckets.forced(True):
            got = transform.random_map({"image": image}, philox(index))["image"]
        words = grain_transform.key_words_from_generator(philox(index))
        k0, k1 = reference.stream.threefry2x32((base_key[0], base_key[1]), (words[0], words[1]))
        keys = np.stack([k0, k1], axis=-1).reshape(1, 2).astype(np.uint32)
        params = reference.draw(config, reference.StreamSource(keys), shape, 1)
        assert_reproduced(config, image[None], params, got[None])


# --------------------------------------------------------------------------- #
# Compiled programs                                                            #
# --------------------------------------------------------------------------- #
# H * W in (1536, 2048]: every shape here is in the 2048-pixel bucket
ONE_BUCKET = [(40, 40, 3), (32, 64, 3), (45, 45, 3), (64, 29, 3), (100, 17, 3), (2048, 1, 3)]


ONE_BUCKET_IMAGES = [make_image(shape, np.uint8, 255, seed=0) for shape in ONE_BUCKET]


def one_bucket_operator():
    """Pixel dropout (a rate of its own: programs no other test compiles)."""
    config = dx.DropoutOperatorConfig(
        field_key="image", mode="pixel", dropout_rate=0.3125, stochastic=True
    )
    return make_operator(config)


def assert_later_shapes_compile_nothing(path: str, run, kernel) -> None:
    """``run`` one record of every ``ONE_BUCKET`` shape, bucketed: after the first, no
    compilation and no trace of ``kernel`` (``TRACE_COUNTS``)."""
    assert {buckets.layout(shape) for shape in ONE_BUCKET} == {(1, 2048, 3)}
    with buckets.forced(True):
        run(ONE_BUCKET_IMAGES[0])  # compiles the bucket's program (and any eager helper)
        traces = TRACE_COUNTS[kernel]
        with buckets.count_compiles() as compiles:
            for image in ONE_BUCKET_IMAGES[1:]:
                run(image)
    assert compiles[0] == 0, f"{path}: {compiles[0]} compilations"
    assert TRACE_COUNTS[kernel] == traces


def test_shapes_of_one_bucket_share_one_program():
    """After one record of a bucket, records of other shapes in it compile nothing:
    through ``apply`` and ``op(batch)`` (its trace counter too)."""
    op = one_bucket_operator()
    assert_later_shapes_compile_nothing(
        "apply", lambda image: apply_output(op, image, 5), op.kernel
    )
    assert_later_shapes_compile_nothing(
        "op(batch)", lambda image: batch_output(op, np.stack([image, image])), op.kernel
    )
    with buckets.forced(False), buckets.count_compiles() as compiles:  # the control
        batch_output(op, np.stack([ONE_BUCKET_IMAGES[1], ONE_BUCKET_IMAGES[1]]))
    assert compiles[0] >= 1


def test_shapes_of_one_bucket_share_one_program_through_grain(grain_transform):
    op = one_bucket_operator()
    transform = grain_transform.OperatorRandomMap(op)
    assert_later_shapes_compile_nothing(
        "grain", lambda image: grain_output(transform, image, 0), op.kernel
    )


def test_program_count_grows_with_the_logarithm_of_the_largest_size(grain_transform):
    """Unforced (the first shape runs exactly, later ones in buckets), through the grain
    transform: 8 records per doubling of the side, up to 512 px; the compilations stay
    within one exact program plus ``bucket_count(largest pixels)``."""
    config = dx.DropoutOperatorConfig(
        field_key="image", mode="pixel", dropout_rate=0.28125, stochastic=True
    )
    transform = grain_transform.OperatorRandomMap(make_operator(config))
    rng = np.random.default_rng(0)
    counts, shapes = {}, set()
    with buckets.count_compiles() as compiles:
        for largest in (32, 64, 128, 256, 512):
            for _ in range(8):
                height, width = (int(s) for s in rng.integers(largest // 2 + 1, largest + 1, 2))
                shapes.add((height, width))
                grain_output(transform, np.zeros((height, width, 3), np.uint8), 0)
            counts[largest] = compiles[0]
    for largest, count in counts.items():
        assert count <= 1 + buckets.bucket_count(largest * largest), (largest, counts)
    assert counts[512] < len(shapes) // 2, counts  # 40 shapes, at most 18 programs


@pytest.mark.parametrize("size", [1, 48])
def test_gaussian_with_the_default_mean_is_bucketed_bit_for_bit(size):
    """``noise_mean=0`` (the default): a folded zero once let XLA fuse ``x + std * z`` into a
    multiply-add in some programs only, and about 2% of values differed in the last bit."""
    config = dx.NoiseOperatorConfig(
        field_key="image", mode="gaussian", noise_std=0.1, stochastic=True
    )
    images = np.random.default_rng(0).random((size, 6, 5, 3), dtype=np.float32)
    outputs = []
    for bucketed in (False, True):
        with buckets.forced(bucketed):
            outputs.append(batch_output(make_operator(config, seed=3), images))
    assert_same_bits(outputs[1], outputs[0])
    image = jnp.asarray(images[0])
    with buckets.forced(False):
        exact = make_operator(config, seed=3).apply({"image": image}, {}, None)[0]["image"]
    with buckets.forced(True):
        bucketed = make_operator(config, seed=3).apply({"image": image}, {}, None)[0]["image"]
    assert_same_bits(np.asarray(bucketed), np.asarray(exact))
