"""Checkpoint the augmentation mid-stream with orbax and resume it exactly.

Operators keep their random stream in NNX state (base key, record counter); a
checkpoint of ``op.get_state()`` is all a restart needs.  The example augments
six batches without interruption, then replays the run: three batches, save
with ``datarax_ops.checkpoint.save_operator_states`` (orbax
``StandardCheckpointer``), build new operators with *other* seeds (as a restarted
job would before restoring), restore, and augment batches 4-6.  It asserts the
resumed batches equal the uninterrupted ones bit for bit.  (``tests/test_orbax.py``
does the restore in a new process.)
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np
from flax import nnx

import datarax_ops as dx
from datarax_ops.checkpoint import restore_operator_states, save_operator_states

STEPS, SAVE_AFTER = 6, 3


def make_operators(seed: int) -> dict[str, dx.ImageOperator]:
    """The augmentation: salt & pepper then pixel dropout, seeded from ``seed``."""
    return {
        "salt_pepper": dx.NoiseOperator(
            dx.NoiseOperatorConfig(
                field_key="image", mode="salt_pepper", salt_prob=0.05, pepper_prob=0.05,
                stochastic=True,
            ),
            rngs=nnx.Rngs(seed),
        ),
        "dropout": dx.DropoutOperator(
            dx.DropoutOperatorConfig(
                field_key="image", mode="pixel", dropout_rate=0.1, stochastic=True
            ),
            rngs=nnx.Rngs(seed + 1),
        ),
    }  # fmt: skip


def augment(operators: dict[str, dx.ImageOperator], step: int) -> np.ndarray:
    """Batch ``step`` (``float32 (8, 16, 16, 3)``, from a fixed seed) through both operators."""
    images = np.random.default_rng(step).random((8, 16, 16, 3), np.float32)
    batch = dx.Batch.from_parts(data={"image": images})
    batch = operators["dropout"](operators["salt_pepper"](batch))
    return np.asarray(batch.data.get_value()["image"])


def main() -> None:
    uninterrupted_ops = make_operators(seed=0)
    uninterrupted = [augment(uninterrupted_ops, step) for step in range(STEPS)]

    with tempfile.TemporaryDirectory() as directory:
        first_run = make_operators(seed=0)
        for step in range(SAVE_AFTER):
            np.testing.assert_array_equal(augment(first_run, step), uninterrupted[step])
        save_operator_states(os.path.join(directory, "augment"), first_run)
        del first_run  # the job stops here

        restarted = make_operators(seed=123)  # other seeds: the checkpoint must decide
        restore_operator_states(os.path.join(directory, "augment"), restarted)
        for step in range(SAVE_AFTER, STEPS):
            np.testing.assert_array_equal(augment(restarted, step), uninterrupted[step])
    stats = restarted["salt_pepper"].get_operation_stats()
    assert stats["applied_count"] == STEPS * 8, stats
    print(f"resumed after batch {SAVE_AFTER}: batches {SAVE_AFTER + 1}-{STEPS} bit-identical")


if __name__ == "__main__":
    main()
