"""Which datarax the datarax tests ran against.

The nox sessions that install datarax name the version in ``DATARAX_OPS_EXPECT_DATARAX``
(0.1.4 in ``tests`` and ``slow``, 0.1.17 in ``datarax_latest``); a test fails when the
imported datarax is another, so a session cannot pass against the wrong release.
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest

EXPECT_DATARAX_ENV = "DATARAX_OPS_EXPECT_DATARAX"


def check_datarax_version(datarax: ModuleType) -> None:
    """Asserts ``datarax.__version__`` is the expected one; where none is named, skips
    with the version found in the reason (``pytest -rs`` prints it)."""
    found = getattr(datarax, "__version__", "unknown")
    expected = os.environ.get(EXPECT_DATARAX_ENV)
    if not expected:
        pytest.skip(f"ran against datarax {found} ({EXPECT_DATARAX_ENV} not set)")
    assert found == expected, (
        f"the session installed datarax {expected}, but the tests imported datarax {found} "
        f"from {datarax.__file__}"
    )
