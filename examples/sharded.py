"""A batch sharded over devices, augmented under ``jax.jit``: the same bits as one device.

The batch axis is split over a 1-D ``Mesh`` with ``NamedSharding(mesh, P("data"))``;
the operator's state (base key, record counter) is replicated.  Every record's
noise depends only on the base key and the record's position, never on which
device holds it, so the sharded result equals the one-device result bit for bit,
for every mode of ``datarax_ops.modes.MODES``; the record counter advances the
same way too.

Runs anywhere: without 8 devices it forces 8 CPU devices (the flag must be set
before JAX starts).  ``python examples/sharded.py`` prints one line per mode.
"""

from __future__ import annotations

import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import datarax_ops as dx

BATCH, HEIGHT, WIDTH, CHANNELS = 16, 8, 8, 3


def build(mode: dx.Mode) -> dx.ImageOperator:
    """A stochastic operator of ``mode`` with a fixed seed (same base key every call)."""
    if mode.config_class is dx.NoiseOperatorConfig:
        config = dx.NoiseOperatorConfig(field_key="image", mode=mode.name, stochastic=True)
        return dx.NoiseOperator(config, rngs=nnx.Rngs(3))
    config = dx.DropoutOperatorConfig(
        field_key="image", mode=mode.name, dropout_rate=0.4, stochastic=True
    )
    return dx.DropoutOperator(config, rngs=nnx.Rngs(3))


def sharded_step(operator: dx.ImageOperator, mesh: Mesh):
    """``step(state, images) -> (images, state)``: ``operator`` applied under ``jax.jit``
    with the batch (``float32 (BATCH, H, W, C)``) sharded over ``mesh``'s "data" axis
    and the operator's NNX state replicated."""
    graphdef, _ = nnx.split(operator)
    batch_sharding = NamedSharding(mesh, P("data"))
    replicated = NamedSharding(mesh, P())

    def step(state, images):
        op = nnx.merge(graphdef, state)
        out = op(dx.Batch.from_parts(data={"image": images}))
        return out.data.get_value()["image"], nnx.state(op)

    return jax.jit(
        step, in_shardings=(replicated, batch_sharding), out_shardings=(batch_sharding, replicated)
    )


def assert_sharded_matches_one_device(
    one_device: dx.ImageOperator, operator: dx.ImageOperator, mesh: Mesh, images: np.ndarray
) -> list[np.ndarray]:
    """Two calls of ``operator`` with ``images`` sharded over ``mesh`` equal two calls of
    ``one_device`` (built alike: same config, same seed) on one device, bit for bit; the
    output keeps the batch's sharding and the record counters advance alike.

    Args:
      images: ``float32 (BATCH, H, W, C)``, BATCH divisible by the mesh's size.

    Returns:
      The two one-device outputs, each shaped and typed as ``images``.
    """
    sharded_images = jax.device_put(images, NamedSharding(mesh, P("data")))
    expected = [  # two calls: the second uses the advanced record counter
        np.asarray(
            one_device(dx.Batch.from_parts(data={"image": images})).data.get_value()["image"]
        )
        for _ in range(2)
    ]
    step = sharded_step(operator, mesh)
    state = nnx.state(operator)
    for call in range(2):
        output, state = step(state, sharded_images)
        assert output.sharding.is_equivalent_to(sharded_images.sharding, output.ndim)
        np.testing.assert_array_equal(np.asarray(output), expected[call])
    nnx.update(operator, state)
    np.testing.assert_array_equal(
        operator.get_state()["_record_counter"], one_device.get_state()["_record_counter"]
    )
    return expected


def main() -> None:
    devices = jax.devices()
    assert len(devices) >= 2, f"needs several devices, got {devices}"
    mesh = Mesh(np.array(devices), ("data",))
    images = np.random.default_rng(0).random((BATCH, HEIGHT, WIDTH, CHANNELS), np.float32)
    for mode in dx.MODES:
        assert_sharded_matches_one_device(build(mode), build(mode), mesh, images)
        print(f"{mode.name}: bit-identical on {len(devices)} devices and on one")


if __name__ == "__main__":
    main()
