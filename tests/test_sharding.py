"""A batch sharded over 8 host devices gives the same bits as one device, every mode.

Runs ``examples/sharded.py`` in a fresh Python with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` and ``JAX_PLATFORMS=cpu``
(the flag must be set before JAX starts).  For every mode of
``datarax_ops.modes.MODES`` the example applies a stochastic operator under
``jax.jit`` with the batch ``NamedSharding(mesh, P("data"))`` over 8 devices, twice
(the second call uses the advanced record counter), and asserts the output equals
``op(batch)`` on one device bit for bit, keeps the batch's sharding, and advances
the record counter the same way.  The same with issue 17's training settings on
(strength ranges, ``per_channel=False``, ``apply_prob``): the per-record draws and
decisions are made on the device holding the record, and must not depend on it.
"""

from __future__ import annotations

import re

import pytest

import datarax_ops as dx
from tests.factory import run_python

# Starts processes or runs whole commands: `nox -s slow` (CI runs it after `tests`).
pytestmark = pytest.mark.slow

EIGHT_DEVICES = "--xla_force_host_platform_device_count=8"


def test_sharded_over_8_host_devices_matches_one_device_for_every_mode():
    stdout = run_python(
        "import runpy; runpy.run_path('examples/sharded.py', run_name='__main__')",
        XLA_FLAGS=EIGHT_DEVICES,
    )
    for mode in dx.MODES:
        assert f"{mode.name}: bit-identical on 8 devices and on one" in stdout, stdout


# examples/sharded.py's step (run_path without __main__: its definitions only) with
# every mode's training settings; the operator built by tests.factory (variants apply).
TRAINING_SCRIPT = """
import runpy
import jax
import numpy as np
from jax.sharding import Mesh
import datarax_ops as dx
from tests.factory import make_operator, training_config

example = runpy.run_path("examples/sharded.py")
mesh = Mesh(np.array(jax.devices()), ("data",))
images = np.random.default_rng(0).random((16, 8, 8, 3), np.float32)
for mode in dx.MODES:
    config = training_config(mode.name)
    expected = example["assert_sharded_matches_one_device"](
        make_operator(config, seed=3), make_operator(config, seed=3), mesh, images
    )
    passed = sum(np.array_equal(o, i) for out in expected for o, i in zip(out, images))
    print(f"{mode.name}+training: bit-identical on {len(jax.devices())} devices and on one, "
          f"{passed} of 32 records passed through")
"""


def test_training_settings_sharded_over_8_host_devices_match_one_device():
    """Strength ranges, ``per_channel=False`` and ``apply_prob=0.7`` under a batch sharded
    over 8 devices: bit for bit the one-device output, two calls, for every mode; both
    decisions of ``apply_prob`` occur (some of the 32 records pass through, not all)."""
    stdout = run_python(TRAINING_SCRIPT, XLA_FLAGS=EIGHT_DEVICES)
    for mode in dx.MODES:
        found = re.search(
            rf"^{mode.name}\+training: bit-identical on 8 devices and on one, "
            r"(\d+) of 32 records passed through$",
            stdout,
            re.MULTILINE,
        )
        assert found, stdout
        assert 0 < int(found.group(1)) < 32, found.group(0)
