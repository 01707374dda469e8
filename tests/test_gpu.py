"""Accelerator backends (issue 4, item 5): run by ``nox -s gpu``; skipped without one.

For the same key, masks (salt & pepper and dropout outputs, which only select
values) are bit-identical between CPU and GPU; gaussian outputs agree within
``GAUSSIAN_ULPS`` units in the last place (the two backends' ``erfinv`` and
fused multiply-adds may round differently); poisson counts agree except
where a level sits within the float32 CDF error of a step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import datarax_ops as dx
from tests.factory import batch_of, make_operator

GAUSSIAN_ULPS = 4


def accelerators() -> list[jax.Device]:
    try:
        return [d for d in jax.devices() if d.platform != "cpu"]
    except RuntimeError:
        return []


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not accelerators(), reason="no accelerator backend present"),
]

IMAGES = np.random.default_rng(0).random((8, 32, 32, 3)).astype(np.float32)
MASK_CONFIGS = [
    dx.NoiseOperatorConfig(
        field_key="image", mode="salt_pepper", stochastic=True, salt_prob=0.1, pepper_prob=0.1
    ),
    dx.DropoutOperatorConfig(field_key="image", mode="pixel", stochastic=True, dropout_rate=0.3),
    dx.DropoutOperatorConfig(field_key="image", mode="channel", stochastic=True, dropout_rate=0.5),
]


def on(device: jax.Device, config) -> np.ndarray:
    with jax.default_device(device):
        op = make_operator(config, seed=17)
        batch = batch_of(jax.device_put(IMAGES, device))
        return np.asarray(op(batch).data.get_value()["image"])


@pytest.mark.parametrize("config", MASK_CONFIGS, ids=[c.mode for c in MASK_CONFIGS])
def test_masks_bit_identical_cpu_and_accelerator(config):
    cpu = jax.devices("cpu")[0]
    np.testing.assert_array_equal(on(accelerators()[0], config), on(cpu, config))


def test_gaussian_within_ulp_bound_cpu_and_accelerator():
    config = dx.NoiseOperatorConfig(field_key="image", stochastic=True, noise_std=0.1)
    gpu = on(accelerators()[0], config)
    cpu = on(jax.devices("cpu")[0], config)
    spacing = np.spacing(np.abs(cpu)).astype(np.float64)
    assert np.all(np.abs(gpu.astype(np.float64) - cpu) <= GAUSSIAN_ULPS * spacing)


def test_poisson_counts_agree_cpu_and_accelerator():
    config = dx.NoiseOperatorConfig(
        field_key="image", mode="poisson", stochastic=True, lam_scale=100.0, clip_range=None
    )
    gpu = on(accelerators()[0], config)
    cpu = on(jax.devices("cpu")[0], config)
    differ = np.abs(gpu - cpu) > 1e-6
    assert differ.mean() < 1e-3 and np.all(np.abs(gpu - cpu)[differ] <= 1.0 / 100.0 + 1e-6)


def test_default_backend_is_the_accelerator():
    out = make_operator(MASK_CONFIGS[1])(batch_of(IMAGES)).data.get_value()["image"]
    assert next(iter(out.devices())).platform != "cpu"
    assert jnp.asarray(out).dtype == jnp.float32
