"""Small checks, one rule each: what config classes and mode files validate with.

Every check raises ``ValueError`` (or ``TypeError`` for a value of the wrong type)
whose message names the field and the offending value (``config.py`` says where
the wording follows datarax's).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .spec import Domain


def is_real(value: Any) -> bool:
    """A real number that is not a bool (``True`` is an int in Python)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def require_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")


def require_real(name: str, value: Any) -> float:
    if not is_real(value):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def require_finite(name: str, value: Any) -> float:
    number = require_real(name, value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def require_probability(name: str, value: Any) -> float:
    """A real number in [0, 1]; NaN and +-inf fail the range check (as in datarax)."""
    p = require_real(name, value)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be in [0.0, 1.0], got {value}")
    return p


def require_key(name: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def either(choices: tuple[str, ...]) -> str:
    """``'a' or 'b'``; ``'a', 'b', or 'c'`` (datarax's wording of a choice)."""
    quoted = [f"'{c}'" for c in choices]
    if len(quoted) <= 2:
        return " or ".join(quoted)
    return ", ".join(quoted[:-1]) + ", or " + quoted[-1]


def require_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be {either(choices)}, got '{value}'")


def range_pair(name: str, value: Any) -> tuple[float, float]:
    """``(lo, hi)`` of a range field: two finite real numbers with ``lo <= hi``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a (lo, hi) pair of numbers or None, got {value!r}")
    low = require_finite(f"{name} lo", value[0])
    high = require_finite(f"{name} hi", value[1])
    if not low <= high:
        raise ValueError(f"{name} needs lo <= hi, got {tuple(value)!r}")
    return low, high


def check_range_domain(name: str, low: float, high: float, domain: Domain) -> None:
    """Both ends of range ``name`` inside ``domain``, the scalar's own."""
    if domain == "non-negative" and low < 0:
        raise ValueError(f"{name} must be non-negative, got ({low!r}, {high!r})")
    if domain == "probability" and not (0.0 <= low and high <= 1.0):
        raise ValueError(f"{name} must lie in [0.0, 1.0], got ({low!r}, {high!r})")
    if domain == "positive" and not low > 0:
        raise ValueError(f"{name} must be positive (a log-uniform law), got ({low!r}, {high!r})")


def range_high(value: tuple[float, float] | None, scalar: float) -> float:
    """The largest value a ranged scalar takes: ``hi``, or the scalar when no range."""
    return float(scalar) if value is None else float(value[1])
