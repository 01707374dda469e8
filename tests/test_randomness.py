"""Randomness users can rely on (issue 3) and determinism (issue 4, item 4).

A stochastic operator's record ``i`` gets ``fold_in(base_key, i)``, with ``i`` the
record's metadata index or the operator's record counter.  These tests pin
the consequences through the public API: batch splits, metadata order,
eager / jit / vmap / scan, repeated runs, checkpoints, deterministic mode.
All checks are exact (bit-identical or must-differ); no false alarms.
"""

from __future__ import annotations

import dataclasses
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import datarax_ops as dx
from tests.factory import batch_of, make_operator, run_batch, run_python

CONFIGS = [
    dx.NoiseOperatorConfig(field_key="image", mode="gaussian", stochastic=True, noise_std=0.1),
    dx.NoiseOperatorConfig(
        field_key="image", mode="salt_pepper", stochastic=True, salt_prob=0.1, pepper_prob=0.1
    ),
    dx.NoiseOperatorConfig(field_key="image", mode="poisson", stochastic=True, lam_scale=30.0),
    dx.DropoutOperatorConfig(field_key="image", mode="pixel", stochastic=True, dropout_rate=0.3),
    dx.DropoutOperatorConfig(field_key="image", mode="channel", stochastic=True, dropout_rate=0.5),
]
IDS = [c.mode for c in CONFIGS]
RECORDS = np.random.default_rng(2024).random((64, 6, 6, 4)).astype(np.float32)


def in_batches(config, sizes, seed=0):
    """Feeds RECORDS through one operator in consecutive batches of ``sizes``."""
    op = make_operator(config, seed=seed)
    outputs, start = [], 0
    for size in sizes:
        outputs.append(run_batch(op, RECORDS[start : start + size]))
        start += size
    return np.concatenate(outputs)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_batch_splits_give_identical_records(config):
    """1x64, 2x32, 64x1 and an uneven split give bit-identical outputs."""
    whole = in_batches(config, [64])
    for sizes in ([32, 32], [1] * 64, [5, 20, 39]):
        np.testing.assert_array_equal(in_batches(config, sizes), whole, err_msg=str(sizes[:3]))


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_metadata_index_decides_a_records_noise(config):
    """With metadata indices, a record's output follows its index, not its position."""
    whole = in_batches(config, [64])
    order = np.random.default_rng(1).permutation(64)[:16]
    batch = dx.Batch.from_parts(
        data={"image": jnp.asarray(RECORDS[order])},
        metadata_list=[dx.Metadata(index=int(i)) for i in order],
    )
    shuffled = np.asarray(make_operator(config)(batch).data.get_value()["image"])
    np.testing.assert_array_equal(shuffled, whole[order])
    # dict metadata works the same way
    batch = dx.Batch.from_parts(
        data={"image": jnp.asarray(RECORDS[order])},
        metadata_list=[{"index": int(i)} for i in order],
    )
    np.testing.assert_array_equal(
        np.asarray(make_operator(config)(batch).data.get_value()["image"]), whole[order]
    )


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_every_record_and_every_call_differ(config):
    # 64 channels: channel mode has 2**64 patterns, so no two records collide by chance
    same_image = np.full((16, 3, 3, 64), 0.5, np.float32)
    op = make_operator(config)
    first = run_batch(op, same_image)
    second = run_batch(op, same_image)
    flat = first.reshape(16, -1)
    for i in range(16):
        for j in range(i + 1, 16):
            assert not np.array_equal(flat[i], flat[j]), f"records {i} and {j} got the same noise"
    assert not any(np.array_equal(a, b) for a, b in zip(first, second, strict=True)), (
        "a record got the same noise on two calls"
    )


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_same_seed_same_output_repeated_runs(config):
    a = in_batches(config, [64], seed=42)
    b = in_batches(config, [64], seed=42)
    c = in_batches(config, [64], seed=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_eager_jit_vmap_scan_bit_identical(config):
    expected = run_batch(make_operator(config, seed=7), RECORDS[:8])
    scan = dataclasses.replace(config, batch_strategy="scan")
    np.testing.assert_array_equal(run_batch(make_operator(scan, seed=7), RECORDS[:8]), expected)
    for cfg in (config, scan):
        out = nnx.jit(lambda op, b: op(b))(make_operator(cfg, seed=7), batch_of(RECORDS[:8]))
        np.testing.assert_array_equal(out.data.get_value()["image"], expected)
    # one element at a time through apply (records 0..7 of the stream)
    op = make_operator(config, seed=7)
    singles = [op.apply({"image": jnp.asarray(RECORDS[i])}, {}, {})[0]["image"] for i in range(8)]
    np.testing.assert_array_equal(np.stack(singles), expected)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_checkpoint_round_trip_resumes_the_exact_continuation(config):
    straight = in_batches(config, [16, 16, 16], seed=5)
    op = make_operator(config, seed=5)
    first = run_batch(op, RECORDS[:16])
    checkpoint = jax.tree.map(np.asarray, op.get_state())  # as a checkpointer would store it
    resumed = make_operator(config, seed=999)
    resumed.set_state(checkpoint)
    rest = np.concatenate([run_batch(resumed, RECORDS[16:32]), run_batch(resumed, RECORDS[32:48])])
    np.testing.assert_array_equal(np.concatenate([first, rest]), straight)


@pytest.mark.parametrize(
    "config",
    [dataclasses.replace(c, stochastic=False) for c in CONFIGS],
    ids=IDS,
)
def test_deterministic_mode_one_pattern_for_all_elements_and_calls(config):
    op = make_operator(config)
    same_image = np.repeat(RECORDS[:1], 8, axis=0)
    first = run_batch(op, same_image)
    second = run_batch(make_operator(config, seed=123), same_image)
    for i in range(8):
        np.testing.assert_array_equal(first[i], first[0])
    np.testing.assert_array_equal(second, first)
    single, _, _ = op.apply({"image": jnp.asarray(RECORDS[0])}, {}, {})
    np.testing.assert_array_equal(single["image"], first[0])
    assert not np.array_equal(first[0], RECORDS[0])


SHARDING_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, jax.numpy as jnp, numpy as np
    from flax import nnx
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    sys.path.insert(0, os.getcwd())
    import datarax_ops as dx
    from tests.factory import make_operator
    assert jax.device_count() == 8, jax.devices()
    images = np.random.default_rng(0).random((16, 8, 8, 3)).astype(np.float32)
    configs = [
        dx.NoiseOperatorConfig(field_key="image", mode=m, stochastic=True, lam_scale=20.0)
        for m in ("gaussian", "salt_pepper", "poisson")
    ] + [
        dx.DropoutOperatorConfig(field_key="image", mode=m, stochastic=True, dropout_rate=0.4)
        for m in ("pixel", "channel")
    ]
    mesh = Mesh(np.array(jax.devices()), ("data",))
    sharded = jax.device_put(jnp.asarray(images), NamedSharding(mesh, P("data")))
    for config in configs:
        one = make_operator(config, seed=3)(
            dx.Batch.from_parts(data={"image": jnp.asarray(images)}))
        many = nnx.jit(lambda op, b: op(b))(
            make_operator(config, seed=3), dx.Batch.from_parts(data={"image": sharded}))
        out = many.data.get_value()["image"]
        assert len(out.sharding.device_set) == 8, out.sharding
        np.testing.assert_array_equal(np.asarray(out), np.asarray(one.data.get_value()["image"]))
        print("ok", config.mode)
    """
)


def test_sharded_batch_over_8_host_devices_matches_one_device():
    """XLA_FLAGS forces 8 CPU devices (in a subprocess: the flag must precede JAX's start)."""
    stdout = run_python(SHARDING_SCRIPT)
    assert stdout.count("ok") == 5
