"""datarax_ops operators in real datarax: its Batch, Pipeline stages, step, scan, resume, wrappers.

Runs against whichever datarax is installed: 0.1.4 in the default session
(``nox -s slow``, Python 3.11) and 0.1.17 in ``nox -s datarax_latest``
(Python 3.12, which ``nox -s tests`` queues).  Skipped where datarax is absent.

The central property: inside datarax's pipeline a record's augmentation is
``op(batch)`` of that record with the identity ``(epoch, shard 0, index)``
(``docs/determinism.md``), whatever the batch size, the iteration tier
(``for batch in pipeline``, ``Pipeline.step``, ``Pipeline.scan``) or a resume.
Each test compares against our own ``op(Batch)`` with that metadata, bit for bit.
"""

from __future__ import annotations

import inspect
import math

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import datarax_ops as dx
from tests.datarax_version import check_datarax_version
from tests.factory import make_operator, mode_config, training_config

# Runs whole commands or pipelines: `nox -s slow` (CI runs it after `tests`).
pytestmark = pytest.mark.slow

datarax = pytest.importorskip("datarax")

from datarax import Pipeline  # noqa: E402
from datarax.operators.composite_operator import (  # noqa: E402
    CompositeOperatorConfig,
    CompositeOperatorModule,
    CompositionStrategy,
)
from datarax.operators.modality.image.brightness_operator import (  # noqa: E402
    BrightnessOperator,
    BrightnessOperatorConfig,
)
from datarax.operators.probabilistic_operator import (  # noqa: E402
    ProbabilisticOperator,
    ProbabilisticOperatorConfig,
)
from datarax.sources import MemorySource, MemorySourceConfig  # noqa: E402
from datarax.typing import Batch as DataraxBatch  # noqa: E402

MODE_NAMES = [mode.name for mode in dx.MODES]
# Each mode as the seed pages have it, and with issue 17's settings on ("<mode>+training").
# (Poisson's settings, a lam_scale range and apply_prob, are the same record draws as
# the other modes'; its programs compile slowest, so it runs with the seed config only.)
CASES = MODE_NAMES + [f"{mode}+training" for mode in MODE_NAMES if mode != "poisson"]
# datarax 0.1.17 keys records on (epoch, index) and counts epochs; 0.1.4 passes indices only.
KEYS_EPOCHS = "num_epochs" in inspect.signature(Pipeline.__init__).parameters
RECORDS = 48
IMAGES = np.random.default_rng(0).random((RECORDS, 6, 5, 3), dtype=np.float32)
OP_SEED = 3


def _op(case: str, seed: int = OP_SEED):
    mode, _, setting = case.partition("+")
    config = training_config(mode) if setting else mode_config(mode)
    return make_operator(config, seed=seed)


def _pipeline(stages: list, batch_size: int, images: np.ndarray = IMAGES, **options) -> Pipeline:
    records = {"image": images, "label": np.arange(len(images))}
    source = MemorySource(MemorySourceConfig(), records, rngs=nnx.Rngs(0))
    return Pipeline(
        source=source, stages=stages, batch_size=batch_size, rngs=nnx.Rngs(0), **options
    )


def _images(batches) -> np.ndarray:
    return np.concatenate([np.asarray(batch["image"]) for batch in batches])


def _expected(mode: str, images: np.ndarray = IMAGES, epoch: int = 0) -> np.ndarray:
    """Our own ``op(Batch)`` of ``images`` as records ``0..n-1`` of ``epoch``."""
    metadata = [dx.Metadata(index=i, epoch=epoch) for i in range(len(images))]
    batch = dx.Batch.from_parts(data={"image": jnp.asarray(images)}, metadata_list=metadata)
    return np.asarray(_op(mode)(batch).data.get_value()["image"])


@pytest.fixture(scope="module", params=CASES)
def mode(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def expected(mode) -> np.ndarray:
    return _expected(mode)


def test_runs_against_the_datarax_the_session_installed():
    """0.1.4 in ``nox -s slow``, 0.1.17 in ``nox -s datarax_latest``."""
    check_datarax_version(datarax)


# --------------------------------------------------------------------------- #
# Pipeline stages                                                              #
# --------------------------------------------------------------------------- #
def test_a_record_gets_its_identity_augmentation_at_any_batch_size(mode, expected):
    for batch_size in (16, 8):
        out = _images(_pipeline([_op(mode)], batch_size))
        np.testing.assert_array_equal(out, expected, err_msg=f"batch_size={batch_size}")
    assert not np.array_equal(expected, IMAGES)


def test_poisson_with_the_training_settings_in_a_pipeline():
    """Poisson with its lam_scale range and apply_prob (left out of the fixture's cases
    for compile time) in datarax's Pipeline equals our op(Batch) of the same records."""
    case = "poisson+training"
    out = _images(_pipeline([_op(case)], 16))
    np.testing.assert_array_equal(out, _expected(case))


def test_step_and_scan_give_the_iterated_records(mode, expected):
    stepped = _pipeline([_op(mode)], 16)
    np.testing.assert_array_equal(_images(stepped.step() for _ in range(3)), expected)
    scanned = _pipeline([_op(mode)], 16).scan(lambda batch: batch["image"], length=3)
    np.testing.assert_array_equal(np.asarray(scanned).reshape(expected.shape), expected)


def _few_outcomes(op) -> bool:
    """Whether a record's draws hold fewer values than the record (channel dropout: one
    decision per channel, 2**3 masks; coarse dropout: a few holes), so that records of
    equal content may share an augmentation by chance."""
    element = IMAGES.shape[1:]
    drawn = max(math.prod(shape) for shape in op.kernel.param_shapes(element).values())
    return drawn < math.prod(element)


def test_records_of_equal_content_get_different_augmentations(mode):
    same = np.repeat(IMAGES[:1], RECORDS, axis=0)
    op = _op(mode)
    out = _images(_pipeline([op], 16, images=same)).reshape(RECORDS, -1)
    distinct = len({row.tobytes() for row in out})
    # a draw per value makes every record distinct; a few draws per record, at least 4
    # of 48 (content-keyed draws would give 1); with apply_prob 0.7 the untouched records
    # are all the input (P(< half applied) ~ 0.3%)
    least = RECORDS // 12 if _few_outcomes(op) else RECORDS
    assert distinct >= (least if "+" not in mode else min(least, RECORDS // 2)), distinct


def test_stages_mix_with_datarax_operators():
    brightness = BrightnessOperator(
        BrightnessOperatorConfig(
            field_key="image", brightness_range=(-0.1, 0.1), stochastic=True, stream_name="augment"
        ),
        rngs=nnx.Rngs(augment=1),
    )
    stages = [brightness, _op("gaussian"), _op("pixel")]
    batches = list(_pipeline(stages, 16))
    assert all(isinstance(batch, dict) and set(batch) == {"image", "label"} for batch in batches)
    np.testing.assert_array_equal(np.concatenate([b["label"] for b in batches]), np.arange(48))
    out = _images(batches)
    assert out.shape == IMAGES.shape and out.dtype == IMAGES.dtype
    assert np.mean(out == 0) > 0.2  # the pixel stage ran last (rate 0.3, minus clipped zeros)
    # datarax's own stage is keyed by record too: the mix is batch-size invariant
    stages8 = [brightness, _op("gaussian"), _op("pixel")]
    np.testing.assert_array_equal(_images(_pipeline(stages8, 8)), out)


@pytest.mark.skipif(not KEYS_EPOCHS, reason="datarax 0.1.4's Pipeline passes no epoch")
def test_every_epoch_gets_new_augmentation(mode, expected):
    out = _images(_pipeline([_op(mode)], 16, num_epochs=2))
    assert out.shape[0] == 2 * RECORDS
    np.testing.assert_array_equal(out[:RECORDS], expected)
    np.testing.assert_array_equal(out[RECORDS:], _expected(mode, epoch=1))
    assert not np.array_equal(out[:RECORDS], out[RECORDS:])


def test_a_resumed_pipeline_continues_exactly(mode, expected):
    first = _pipeline([_op(mode)], 8)
    session = iter(first)
    head = [next(session) for _ in range(2)]
    if KEYS_EPOCHS:  # 0.1.17: the pipeline's state holds every stage's, our base key included
        state = first.get_state()
        resumed = _pipeline([_op(mode, seed=OP_SEED + 100)], 8)
        resumed.set_state(state)
        tail = list(resumed)
    else:  # 0.1.4: the iterator's state (position, rng counts); stages are rebuilt alike
        state = session.get_state()
        resumed_session = iter(_pipeline([_op(mode)], 8))
        resumed_session.set_state(state)
        tail = list(resumed_session)
    np.testing.assert_array_equal(_images(head + tail), expected)


def test_the_operator_state_is_pipeline_state():
    op = _op("gaussian")
    pipeline = _pipeline([op], 16)
    list(pipeline)
    assert op.get_operation_stats()["applied_count"] == RECORDS


# --------------------------------------------------------------------------- #
# datarax's Batch and its wrappers                                             #
# --------------------------------------------------------------------------- #
def _datarax_batch(metadata: list | None = None) -> DataraxBatch:
    data = {"image": jnp.asarray(IMAGES[:8]), "label": jnp.arange(8)}
    states = {"seen": jnp.zeros((8,), jnp.int32)}
    return DataraxBatch.from_parts(
        data=data, states=states, metadata_list=metadata, batch_state={"step": jnp.int32(7)}
    )


def test_datarax_batch_in_gives_the_same_class_out_with_everything_kept(mode):
    metadata = [dx.Metadata(index=10 + i, epoch=2) for i in range(8)]
    batch = _datarax_batch(metadata)
    before = np.asarray(batch.data.get_value()["image"]).copy()
    out = _op(mode)(batch)
    assert type(out) is type(batch)
    np.testing.assert_array_equal(np.asarray(batch.data.get_value()["image"]), before)
    assert out.batch_size == 8
    assert out._metadata_list.get_value() == metadata
    np.testing.assert_array_equal(out.data.get_value()["label"], np.arange(8))
    np.testing.assert_array_equal(out.states.get_value()["seen"], np.zeros(8))
    assert int(out.batch_state.get_value()["step"]) == 7
    ours = dx.Batch.from_parts(data={"image": jnp.asarray(IMAGES[:8])}, metadata_list=metadata)
    np.testing.assert_array_equal(
        out.data.get_value()["image"], _op(mode)(ours).data.get_value()["image"]
    )


def test_a_datarax_batch_goes_through_nnx_jit():
    op = _op("gaussian")
    step = nnx.jit(lambda op, batch: op(batch))
    out = step(op, _datarax_batch())
    assert type(out) is DataraxBatch
    eager = _op("gaussian")(_datarax_batch())
    np.testing.assert_array_equal(out.data.get_value()["image"], eager.data.get_value()["image"])


@pytest.mark.parametrize("mode_name", ["gaussian", "pixel"])
def test_probabilistic_operator_around_ours_applies_to_some_records(mode_name):
    op = _op(mode_name)
    wrapper = ProbabilisticOperator(
        ProbabilisticOperatorConfig(operator=op, probability=0.5, stochastic=True),
        rngs=nnx.Rngs(augment=4),
    )
    out = _images(_pipeline([wrapper], 16))
    changed = np.any(out.reshape(RECORDS, -1) != IMAGES.reshape(RECORDS, -1), axis=1)
    # Binomial(48, 0.5): outside [8, 40] with probability < 1e-5; the run is seeded
    assert 8 <= changed.sum() <= 40, changed.sum()
    untouched = ~changed
    np.testing.assert_array_equal(out[untouched], IMAGES[untouched])
    wrapper8 = ProbabilisticOperator(
        ProbabilisticOperatorConfig(operator=_op(mode_name), probability=0.5, stochastic=True),
        rngs=nnx.Rngs(augment=4),
    )
    np.testing.assert_array_equal(_images(_pipeline([wrapper8], 8)), out)


def test_probabilistic_operator_with_probability_one():
    wrapper = ProbabilisticOperator(
        ProbabilisticOperatorConfig(operator=_op("gaussian"), probability=1.0),
        rngs=nnx.Rngs(augment=4),
    )
    if KEYS_EPOCHS:  # 0.1.17 hands our apply each record's own key
        out = _images(_pipeline([wrapper], 16)).reshape(RECORDS, -1)
        assert len({row.tobytes() for row in out}) == RECORDS
    else:  # 0.1.4 calls a stochastic child with no key and no index: refused, not faked
        with pytest.raises(Exception, match="cannot advance the record counter"):
            list(_pipeline([wrapper], 16))


def test_composite_sequential_operator_around_ours():
    composite = CompositeOperatorModule(
        CompositeOperatorConfig(
            strategy=CompositionStrategy.SEQUENTIAL,
            operators=[_op("gaussian"), _op("pixel")],
            stochastic=True,
            stream_name="augment",
        ),
        rngs=nnx.Rngs(augment=0),
    )
    out = _images(_pipeline([composite], 16))
    assert np.mean(out == 0) > 0.2
    assert np.all(np.isfinite(out)) and not np.array_equal(out, IMAGES)
