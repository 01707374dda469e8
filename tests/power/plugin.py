"""pytest plugin for ``tests.power.run``: records how each failing test failed.

Loaded with ``-p tests.power.plugin``; ``DATARAX_OPS_POWER_LOG=<path>`` names a file
that gets one JSON line per failing test (setup, call or teardown):

* ``"statistical"``: a named check of ``datarax_ops.conformance.stats`` rejected
  (``StatCheckError``): its check, what it tested, statistic, p-value, n and alpha;
* ``"exact"``: another ``AssertionError`` (an exact check inside the test);
* ``"error"``: any other exception (a crash: the variant broke the test, which
  proves nothing about the statistics).

The first statistical rejection ends the run (the variant is rejected; the rest
of the suite cannot change that).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from datarax_ops.conformance.stats import StatCheckError

LOG_ENV = "DATARAX_OPS_POWER_LOG"


def _leaves(error: BaseException) -> list[BaseException]:
    """``error``, or the exceptions inside it when it is a group (Hypothesis may raise
    one when several examples fail differently)."""
    inner = getattr(error, "exceptions", None)
    if isinstance(error, BaseExceptionGroup) and inner:
        return [leaf for sub in inner for leaf in _leaves(sub)]
    return [error]


def classify(error: BaseException) -> dict[str, Any]:
    """The record of one failure: its kind and, for a statistical rejection, the check."""
    leaves = _leaves(error)
    for leaf in leaves:
        if isinstance(leaf, StatCheckError):
            r = leaf.result
            return {
                "kind": "statistical",
                "check": r.check,
                "what": r.what,
                "statistic": r.statistic,
                "pvalue": r.pvalue,
                "n": r.n,
                "alpha": r.alpha,
            }
    if all(isinstance(leaf, AssertionError) for leaf in leaves):
        return {"kind": "exact", "message": str(leaves[0])[:300]}
    crash = next(leaf for leaf in leaves if not isinstance(leaf, AssertionError))
    return {"kind": "error", "message": f"{type(crash).__name__}: {str(crash)[:300]}"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    path = os.environ.get(LOG_ENV)
    if path and call.excinfo is not None and not call.excinfo.errisinstance(pytest.skip.Exception):
        record = {"test": item.nodeid, "when": call.when, **classify(call.excinfo.value)}
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        if record["kind"] == "statistical":
            item.session.shouldstop = f"statistical rejection in {item.nodeid}"
    return report
