"""Hypothesis profiles and the pytest header for the statistical suite.

Profiles:

* ``ci`` (default): derandomized, 25 examples a test, no deadline.  With the
  fixed seeds of ``datarax_ops.conformance.stats`` a green run stays green.
* ``thorough``: 200 random examples a test, loaded when
  ``DATARAX_OPS_STATS_SEED=fresh`` (``nox -s stats``).

``HYPOTHESIS_PROFILE=<name>`` picks a profile explicitly.

Optional packages: a test that needs one takes its fixture (``grain_transform``) or
calls ``pytest.importorskip`` itself, so without the package only that test skips,
naming it, and its module's other tests still run.  A module whose every test needs
the package skips as a whole at its top (``tests/test_grain.py``, ``tests/test_orbax.py``,
``tests/test_datarax_pipeline.py``).  ``tests/test_optional_packages.py`` collects the
suite with the optional packages made unimportable.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest
from hypothesis import HealthCheck, Phase, settings

from datarax_ops import compile_cache
from datarax_ops.conformance import stats as stats_kit

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=25,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", parent=settings.get_profile("ci"), derandomize=False, max_examples=200
)

settings.register_profile(
    # nox -s power: the ci examples, but a failure is reported at once (no shrinking:
    # every shrink step recompiles, and the power table needs only the verdict)
    "power",
    parent=settings.get_profile("ci"),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)

# The commands (verify, demo, bench) keep compiled programs in the user's cache by default;
# the suite runs them in-process and in subprocesses, and must neither write into the real
# home cache nor change JAX's configuration of the test process.  Tests of the cache set
# their own temporary directory (flag or environment).
os.environ[compile_cache.ENV_VAR] = "off"

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "thorough" if stats_kit.fresh_seeds() else "ci")
settings.load_profile(PROFILE)


@pytest.fixture(scope="session")
def grain_transform() -> ModuleType:
    """``datarax_ops.grain_transform``; the test skips, naming grain, where grain is absent."""
    pytest.importorskip("grain", reason="needs grain (pip install 'datarax-ops[grain]')")
    return importlib.import_module("datarax_ops.grain_transform")


def pytest_report_header(config: object) -> list[str]:
    salt = stats_kit.seed_salt()
    seeds = "fixed" if salt is None else f"salted with {salt} (replay: {stats_kit.SEED_ENV}={salt})"
    return [
        f"datarax_ops stats: scale={stats_kit.stats_scale()}, seeds {seeds}, "
        f"alpha={stats_kit.ALPHA:g} per check, hypothesis profile {PROFILE!r}"
    ]


def _repeats() -> int:
    return max(1, int(os.environ.get(stats_kit.REPEAT_ENV, "1")))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``DATARAX_OPS_STATS_REPEAT=N``: every statistical test runs N times, fresh seeds each."""
    if _repeats() > 1 and metafunc.definition.get_closest_marker("stats"):
        metafunc.fixturenames.append("stats_repeat")
        metafunc.parametrize("stats_repeat", range(_repeats()), indirect=True)


@pytest.fixture
def stats_repeat(request: pytest.FixtureRequest):
    stats_kit.current_repeat = request.param
    yield request.param
    stats_kit.current_repeat = 0


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """How many statistical checks ran, how many rejected, and the implied budget (gathered
    from every test's report, so pytest-xdist's workers are counted too)."""
    if _SEEN_REPEATS:
        terminalreporter.write_line(
            f"statistical reruns: {len(_SEEN_REPEATS)} completed, "
            f"{len(_FAILED_REPEATS)} with a failing check {sorted(_FAILED_REPEATS)}"
        )
    if not _CHECKS:
        return
    rejected = [c for c in _CHECKS if c[1] and c[0] in _FAILED_TESTS]
    expected_rejections = [c for c in _CHECKS if c[1] and c[0] not in _FAILED_TESTS]
    expected = sum(alpha for _, _, alpha in _CHECKS)
    terminalreporter.write_line(
        f"statistical checks: {len(_CHECKS)} run, {len(rejected)} rejected in failing tests "
        f"(+{len(expected_rejections)} deliberate rejections the kit's self-tests expect); "
        f"sum of their false-alarm levels {expected:.4f} "
        f"(the expected number of false alarms with fresh seeds)"
    )


# (test id, rejected, alpha) of every statistical check, from the tests' reports
_CHECKS: list[tuple[str, bool, float]] = []
_CHECKS_PROPERTY = "statistical_checks"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collects each test's checks (in the main process, with or without xdist)."""
    if report.failed:
        _FAILED_TESTS.add(report.nodeid)
    for name, value in report.user_properties:
        if name == _CHECKS_PROPERTY:
            _CHECKS.extend((report.nodeid, bool(rejected), alpha) for rejected, alpha in value)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With repeats, run repeat-major (all tests once, then again...): a partial run
    still consists of whole reruns."""
    if _repeats() > 1:

        def repeat_of(item: pytest.Item) -> int:
            callspec = getattr(item, "callspec", None)
            return int(callspec.params.get("stats_repeat", 0)) if callspec else 0

        items.sort(key=repeat_of)


_FAILED_REPEATS: set[int] = set()
_SEEN_REPEATS: set[int] = set()


_FAILED_TESTS: set[str] = set()


@pytest.fixture(autouse=True)
def _record_test_of_checks(request: pytest.FixtureRequest):
    stats_kit.current_test = request.node.nodeid
    yield
    stats_kit.current_test = ""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """Notes failed tests, and which rerun each statistical test belonged to."""
    report = yield
    if report.failed:
        _FAILED_TESTS.add(item.nodeid)
    if call.when == "teardown":  # every check the test made, for the summary
        checks = [(r.rejected, r.alpha) for r in stats_kit.RESULTS if r.test == item.nodeid]
        report.user_properties.append((_CHECKS_PROPERTY, checks))
    callspec = getattr(item, "callspec", None)
    if call.when == "call" and callspec is not None and "stats_repeat" in callspec.params:
        repeat = int(callspec.params["stats_repeat"])
        _SEEN_REPEATS.add(repeat)
        if report.failed:
            _FAILED_REPEATS.add(repeat)
    return report
