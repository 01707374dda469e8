"""Operator state through orbax, across processes (issue 10; optional extra ``orbax``).

One process (a subprocess) augments six batches and saves the operators' state
with ``datarax_ops.checkpoint`` after the third; a second, new process builds the
operators from the same configs but other seeds, restores the checkpoint and
augments batches 4-6: its outputs equal the first process's bit for bit.
"""

from __future__ import annotations

import textwrap

import jax
import numpy as np
import pytest
from flax import nnx

pytest.importorskip("orbax.checkpoint")

import datarax_ops as dx
from datarax_ops.checkpoint import (
    operator_states,
    restore_operator_states,
    save_operator_states,
)
from tests.factory import run_python

SCRIPT = textwrap.dedent(
    """
    import os
    import numpy as np
    from flax import nnx
    import datarax_ops as dx
    from datarax_ops.checkpoint import restore_operator_states, save_operator_states

    role, directory = os.environ["ORBAX_ROLE"], os.environ["ORBAX_DIR"]
    seeds = (0, 1) if role == "uninterrupted" else (10, 11)  # the restore must override them
    operators = {
        "noise": dx.NoiseOperator(
            dx.NoiseOperatorConfig(field_key="image", mode="gaussian", noise_std=0.1,
                                   stochastic=True, stream_name="augment"),
            rngs=nnx.Rngs(augment=seeds[0])),
        "dropout": dx.DropoutOperator(
            dx.DropoutOperatorConfig(field_key="image", mode="channel", dropout_rate=0.3,
                                     stochastic=True, stream_name="augment"),
            rngs=nnx.Rngs(augment=seeds[1])),
    }

    def step(index):
        images = np.random.default_rng(index).random((4, 8, 8, 3)).astype(np.float32)
        batch = dx.Batch.from_parts(data={"image": images})
        out = operators["dropout"](operators["noise"](batch))
        return np.asarray(out.data.get_value()["image"])

    if role == "uninterrupted":
        for index in range(3):
            step(index)
        save_operator_states(directory + "/state", operators)
        np.savez(directory + "/expected.npz", *[step(index) for index in range(3, 6)])
    else:
        restore_operator_states(directory + "/state", operators)
        expected = np.load(directory + "/expected.npz")
        for position, index in enumerate(range(3, 6)):
            np.testing.assert_array_equal(step(index), expected[f"arr_{position}"])
        counts = operators["noise"].get_operation_stats()["applied_count"]
        assert counts == 24, counts  # 3 saved batches + 3 resumed, 4 records each
    print("done", role)
    """
)


def test_restore_in_a_new_process_continues_the_uninterrupted_run(tmp_path):
    first = run_python(SCRIPT, ORBAX_ROLE="uninterrupted", ORBAX_DIR=str(tmp_path))
    assert "done uninterrupted" in first
    second = run_python(SCRIPT, ORBAX_ROLE="resumed", ORBAX_DIR=str(tmp_path))
    assert "done resumed" in second


def _gaussian(seed: int) -> dx.NoiseOperator:
    config = dx.NoiseOperatorConfig(field_key="image", mode="gaussian", stochastic=True)
    return dx.NoiseOperator(config, rngs=nnx.Rngs(seed))


def test_single_operator_round_trip_and_mismatch(tmp_path):
    saved = _gaussian(0)
    images = np.random.default_rng(0).random((2, 4, 4, 3)).astype(np.float32)
    saved(dx.Batch.from_parts(data={"image": images}))
    save_operator_states(tmp_path / "one", saved)
    other = _gaussian(5)
    restore_operator_states(tmp_path / "one", other)
    restored_leaves = jax.tree.leaves(operator_states(other))
    for restored, original in zip(
        restored_leaves, jax.tree.leaves(operator_states(saved)), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(restored), np.asarray(original))
    pixel = dx.DropoutOperator(
        dx.DropoutOperatorConfig(field_key="image", mode="pixel", stochastic=False)
    )
    with pytest.raises((ValueError, KeyError)):
        restore_operator_states(tmp_path / "one", pixel)
    with pytest.raises(ValueError):  # orbax: the saved tree has no entry "a"
        restore_operator_states(tmp_path / "one", {"a": saved})
