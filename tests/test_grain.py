"""datarax_ops operators inside grain pipelines (issue 10; optional extra ``grain``).

What is proven: the augmented stream of a ``grain.DataLoader`` is the same for 0
and 2 worker processes and after a restart from the iterator's checkpoint
mid-epoch; every record and every epoch gets its own noise; the noise is the
documented function of the operator's base key and grain's per-record
generator (reproduced by the NumPy reference); ``MapDataset.random_map`` works
the same way (random access = iteration, checkpoint resume).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from flax import nnx

grain = pytest.importorskip("grain")
from absl import flags  # noqa: E402  (grain depends on absl)

import datarax_ops as dx  # noqa: E402
from datarax_ops import reference  # noqa: E402
from datarax_ops.grain_transform import OperatorRandomMap, key_words_from_generator  # noqa: E402

# grain 0.2.18 reads an absl flag in worker processes and fails when the program
# never parsed flags (google/grain#1355, fixed after 0.2.18); plain scripts mark them parsed.
if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()

# Starts processes or runs whole commands: `nox -s slow` (CI runs it after `tests`).
pytestmark = pytest.mark.slow

RECORDS = 12
EPOCHS = 2
SEED = 7
SHAPE = (8, 8, 3)


class ConstantImages:
    """grain data source: ``RECORDS`` records ``{"image": float32 (8, 8, 3) all 0.5, "id": int64}``.

    Every image is the same, so any difference between outputs is the noise's.
    ``__repr__`` is what grain compares when restoring a checkpoint.
    """

    def __len__(self) -> int:
        return RECORDS

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {"image": np.full(SHAPE, 0.5, np.float32), "id": np.int64(index)}

    def __repr__(self) -> str:
        return f"ConstantImages({RECORDS})"


def gaussian_operator() -> dx.NoiseOperator:
    config = dx.NoiseOperatorConfig(
        field_key="image", mode="gaussian", noise_std=0.1, stochastic=True
    )
    return dx.NoiseOperator(config, rngs=nnx.Rngs(0))


def loader(worker_count: int) -> grain.DataLoader:
    sampler = grain.samplers.IndexSampler(
        num_records=RECORDS,
        num_epochs=EPOCHS,
        shuffle=True,
        seed=SEED,
        shard_options=grain.sharding.NoSharding(),
    )
    return grain.DataLoader(
        data_source=ConstantImages(),
        sampler=sampler,
        operations=[OperatorRandomMap(gaussian_operator())],
        worker_count=worker_count,
    )


def consume(iterator, limit: int | None = None) -> list[dict[str, np.ndarray]]:
    """Up to ``limit`` records, copied out of grain's shared memory."""
    records = []
    for record in iterator:
        records.append({key: np.array(value) for key, value in record.items()})
        del record
        if limit is not None and len(records) == limit:
            break
    return records


def assert_same_stream(first: list[dict], second: list[dict]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert int(a["id"]) == int(b["id"])
        np.testing.assert_array_equal(a["image"], b["image"])


@pytest.fixture(scope="module")
def in_process_stream() -> list[dict[str, np.ndarray]]:
    """The whole 2-epoch stream with no worker processes."""
    return consume(iter(loader(0)))


def test_stream_has_every_record_once_per_epoch(in_process_stream):
    assert len(in_process_stream) == RECORDS * EPOCHS
    ids = [int(r["id"]) for r in in_process_stream]
    assert sorted(ids[:RECORDS]) == sorted(ids[RECORDS:]) == list(range(RECORDS))
    for record in in_process_stream:
        assert record["image"].shape == SHAPE and record["image"].dtype == np.float32


def test_two_workers_give_the_same_stream(in_process_stream):
    assert_same_stream(consume(iter(loader(2))), in_process_stream)


@pytest.mark.parametrize("worker_count", [0, 2])
def test_restart_from_a_checkpoint_mid_epoch_continues_identically(worker_count, in_process_stream):
    stop = RECORDS // 2 + 1  # inside the first epoch
    iterator = iter(loader(worker_count))
    head = consume(iterator, stop)
    saved = iterator.get_state()
    del iterator
    resumed = iter(loader(worker_count))  # a fresh pipeline, as after a restart
    resumed.set_state(saved)
    assert_same_stream(head + consume(resumed), in_process_stream)


def test_every_record_gets_its_own_noise(in_process_stream):
    first_epoch = np.stack([r["image"] for r in in_process_stream[:RECORDS]])
    flat = first_epoch.reshape(RECORDS, -1)
    for i in range(RECORDS):
        for j in range(i + 1, RECORDS):
            assert not np.array_equal(flat[i], flat[j]), (i, j)
    assert np.all(np.abs(flat - 0.5).mean(axis=1) > 0.02)  # noise std 0.1 was applied


def test_every_epoch_gets_its_own_noise(in_process_stream):
    by_epoch = [
        {int(r["id"]): r["image"] for r in in_process_stream[e * RECORDS : (e + 1) * RECORDS]}
        for e in range(EPOCHS)
    ]
    for record_id in range(RECORDS):
        assert not np.array_equal(by_epoch[0][record_id], by_epoch[1][record_id]), record_id


@pytest.mark.parametrize("mode", ["pixel", "channel", "salt_pepper"])
def test_noise_is_the_documented_function_of_base_key_and_grain_rng(mode):
    """record key = threefry2x32(base key, two uint32 words of grain's generator); the
    NumPy reference given that key reproduces the transform bit for bit (channel
    dropout: the host path, which compiles nothing)."""
    if mode in ("pixel", "channel"):
        config = dx.DropoutOperatorConfig(
            field_key="image", mode=mode, dropout_rate=0.3, stochastic=True
        )
        operator = dx.DropoutOperator(config, rngs=nnx.Rngs(5))
    else:
        config = dx.NoiseOperatorConfig(
            field_key="image", mode="salt_pepper", salt_prob=0.1, pepper_prob=0.1, stochastic=True
        )
        operator = dx.NoiseOperator(config, rngs=nnx.Rngs(5))
    transform = OperatorRandomMap(operator)
    image = np.random.default_rng(1).random(SHAPE).astype(np.float32)
    base_key = np.asarray(operator.get_state()["_base_key"], np.uint32)
    for index in (0, 1, 2, 3, 4, 5, 6, 7, 2**40):
        output = transform.random_map(
            {"image": image}, np.random.Generator(np.random.Philox(index))
        )
        words = key_words_from_generator(np.random.Generator(np.random.Philox(index)))
        k0, k1 = reference.stream.threefry2x32((base_key[0], base_key[1]), (words[0], words[1]))
        keys = np.stack([k0, k1], axis=-1).reshape(1, 2).astype(np.uint32)
        params = reference.draw(config, reference.StreamSource(keys), SHAPE, 1)
        expected = reference.apply_batch(config, image[None], params)[0]
        np.testing.assert_array_equal(output["image"], expected)


# Poisson's one-element program takes ~5 s to compile on 2 cores; the transform is the
# same code for every kernel (``draw_and_apply``), so the other modes cover it.
@pytest.mark.parametrize("mode", [m.name for m in dx.MODES if m.name != "poisson"])
def test_every_mode_keeps_shape_dtype_and_other_fields(mode):
    spec = next(m for m in dx.MODES if m.name == mode)
    config = spec.config_class(field_key="image", mode=mode, stochastic=True)
    operator = (
        dx.NoiseOperator if spec.config_class is dx.NoiseOperatorConfig else dx.DropoutOperator
    )(config, rngs=nnx.Rngs(0))
    transform = OperatorRandomMap(operator)
    image = np.random.default_rng(0).integers(0, 256, SHAPE, dtype=np.uint8)
    record = {"image": image, "label": np.int32(3)}
    out = transform.random_map(record, np.random.default_rng(0))
    assert out["image"].shape == SHAPE and out["image"].dtype == np.uint8
    assert out["label"] == 3 and record["image"] is image  # input record untouched
    again = transform.random_map(record, np.random.default_rng(0))
    np.testing.assert_array_equal(out["image"], again["image"])


def test_deterministic_operator_uses_the_fixed_pattern_like_apply():
    config = dx.DropoutOperatorConfig(field_key="image", mode="pixel", dropout_rate=0.5)
    operator = dx.DropoutOperator(config)
    image = np.random.default_rng(2).random(SHAPE).astype(np.float32)
    out = OperatorRandomMap(operator).random_map({"image": image}, np.random.default_rng(9))
    expected, _, _ = operator.apply({"image": image}, {}, {})
    np.testing.assert_array_equal(out["image"], np.asarray(expected["image"]))


@pytest.mark.parametrize(
    ("stochastic", "rate"), [(True, 0.5), (False, 0.5), (True, 0.0), (True, 1.0)]
)
def test_host_channel_dropout_equals_the_compiled_programs_law(stochastic, rate):
    """Channel dropout's host path (no compile) gives, for every dtype, channel count and
    record, the bits of the reference from the record's key, which the compiled program
    equals bit for bit (``test_pipeline_reproduced``, ``test_buckets``); 60 records with
    their own words per case, so a wrong decision, key or fill shows.  One record per
    case is also run through the compiled program itself."""
    from datarax_ops.grain_transform import _record_program
    from datarax_ops.modes.channel import HOST_CHANNELS

    config = dx.DropoutOperatorConfig(
        field_key="image", mode="channel", dropout_rate=rate, stochastic=stochastic
    )
    transform = OperatorRandomMap(dx.DropoutOperator(config, rngs=nnx.Rngs(4)))
    program = _record_program(transform.kernel, transform.stochastic)
    data_rng = np.random.default_rng(6)
    dropped = 0
    for dtype in (np.uint8, np.int16, np.float32, "bfloat16"):
        for channels in (1, 3, 4, HOST_CHANNELS):
            for record in range(60 if channels == 3 else 4):
                shape = (int(data_rng.integers(1, 9)), int(data_rng.integers(1, 9)), channels)
                image = (data_rng.standard_normal(shape) * 50).astype(np.dtype(dtype))
                assert transform.kernel.has_host_path(image)
                out = transform.random_map({"image": image}, np.random.default_rng(record))
                words = key_words_from_generator(np.random.default_rng(record))
                if stochastic:
                    key = reference.stream.words_key(transform.base_key, (words[0], words[1]))
                else:
                    key, words = reference.stream.fixed_pattern_key(), np.zeros(2, np.uint32)
                params = reference.draw(config, reference.StreamSource(key), shape)
                expected = reference.apply(config, image, params)
                assert out["image"].dtype == image.dtype
                np.testing.assert_array_equal(out["image"].view(np.uint8), expected.view(np.uint8))
                if record == 0 and channels == 3:
                    compiled = np.asarray(program(transform.base_key, words, image))
                    np.testing.assert_array_equal(
                        out["image"].view(np.uint8), compiled.view(np.uint8)
                    )
                dropped += int(np.sum(np.all(out["image"] == 0, axis=(0, 1))))
    if 0 < rate < 1 and stochastic:
        assert dropped > 0  # the case exercised dropping, not only copies


def test_channel_dropout_with_a_clip_or_another_rank_compiles_and_agrees():
    """The host path is only taken where it is exact; the others run the program."""
    image = np.random.default_rng(0).random((5, 6, 3)).astype(np.float32)
    clipped = dx.DropoutOperatorConfig(
        field_key="image", mode="channel", dropout_rate=0.5, clip_range=(0.1, 0.9)
    )
    transform = OperatorRandomMap(dx.DropoutOperator(clipped))
    assert not transform.kernel.has_host_path(image)
    assert not transform.kernel.has_host_path(image[..., 0])
    out = transform.random_map({"image": image}, np.random.default_rng(0))
    expected, _, _ = dx.DropoutOperator(clipped).apply({"image": image}, {}, {})
    np.testing.assert_array_equal(out["image"], np.asarray(expected["image"]))


def test_transform_pickles_and_gives_the_same_output():
    transform = OperatorRandomMap(gaussian_operator())
    twin = pickle.loads(pickle.dumps(transform))
    image = np.full(SHAPE, 0.5, np.float32)
    a = transform.random_map({"image": image}, np.random.default_rng(3))
    b = twin.random_map({"image": image}, np.random.default_rng(3))
    np.testing.assert_array_equal(a["image"], b["image"])


def test_target_key_and_errors():
    config = dx.NoiseOperatorConfig(
        field_key="image", target_key="noisy", mode="gaussian", stochastic=True
    )
    transform = OperatorRandomMap(dx.NoiseOperator(config, rngs=nnx.Rngs(0)))
    image = np.full(SHAPE, 0.5, np.float32)
    out = transform.random_map({"image": image}, np.random.default_rng(0))
    assert out["image"] is image and out["noisy"].shape == SHAPE
    with pytest.raises(KeyError, match="image"):
        transform.random_map({"other": image}, np.random.default_rng(0))
    bad = image.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="1 NaN/Inf"):
        transform.random_map({"image": bad}, np.random.default_rng(0))
    with pytest.raises(TypeError):
        OperatorRandomMap("not an operator")  # type: ignore[arg-type]


def test_map_dataset_random_access_iteration_and_checkpoint():
    """``MapDataset.random_map``: grain's generator is a function of (seed, index), so
    ``ds[i]`` equals the i-th record iterated, and an iterator resumes from its state."""
    dataset = (
        grain.MapDataset.source(ConstantImages())
        .seed(SEED)
        .shuffle()
        .repeat(EPOCHS)
        .random_map(OperatorRandomMap(gaussian_operator()))
    )
    iterated = consume(iter(dataset))
    assert len(iterated) == RECORDS * EPOCHS
    for i in (0, 5, RECORDS + 5):
        np.testing.assert_array_equal(dataset[i]["image"], iterated[i]["image"])
    iterator = iter(dataset)
    head = consume(iterator, 5)
    saved = iterator.get_state()
    resumed = iter(dataset)
    resumed.set_state(saved)
    assert_same_stream(head + consume(resumed), iterated)
    ids = [int(r["id"]) for r in iterated]
    first = {ids[i]: iterated[i]["image"] for i in range(RECORDS)}
    second = {ids[i]: iterated[i]["image"] for i in range(RECORDS, 2 * RECORDS)}
    assert all(not np.array_equal(first[k], second[k]) for k in first)
