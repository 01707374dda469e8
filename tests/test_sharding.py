"""A batch sharded over 8 host devices gives the same bits as one device, every mode.

Runs ``examples/sharded.py`` in a fresh Python with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` and ``JAX_PLATFORMS=cpu``
(the flag must be set before JAX starts).  For every mode of
``datarax_ops.modes.MODES`` the example applies a stochastic operator under
``jax.jit`` with the batch ``NamedSharding(mesh, P("data"))`` over 8 devices, twice
(the second call uses the advanced record counter), and asserts the output equals
``op(batch)`` on one device bit for bit, keeps the batch's sharding, and advances
the record counter the same way.
"""

from __future__ import annotations

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
