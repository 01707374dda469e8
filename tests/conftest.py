"""Hypothesis profiles and the pytest header for the statistical suite.

Profiles:

* ``ci`` (default): derandomized, 25 examples a test, no deadline.  With the
  fixed seeds of ``tests.stats_kit`` a green run stays green.
* ``thorough``: 200 random examples a test, loaded when
  ``DATARAX_OPS_STATS_SEED=fresh`` (``nox -s stats``).

``HYPOTHESIS_PROFILE=<name>`` picks a profile explicitly.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests import stats_kit

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=25,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    derandomize=False,
    deadline=None,
    max_examples=200,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "thorough" if stats_kit.fresh_seeds() else "ci")
settings.load_profile(PROFILE)


def pytest_report_header(config: object) -> list[str]:
    salt = stats_kit.seed_salt()
    seeds = "fixed" if salt is None else f"salted with {salt} (replay: {stats_kit.SEED_ENV}={salt})"
    return [
        f"datarax_ops stats: scale={stats_kit.stats_scale()}, seeds {seeds}, "
        f"alpha={stats_kit.ALPHA:g} per check, hypothesis profile {PROFILE!r}"
    ]
