"""The targets ``datarax-ops verify --target NAME`` can check: one adapter file per
target, ``targets/<name>.py``, defining ``TARGET`` (a :class:`Target`); ``targets/_*.py``
hold what several adapters share.

The names are the module files found here (nothing lists them), and an adapter is
imported only when its target is asked for, so a target whose library is not
installed costs nothing until it is chosen.  ``DEFAULT`` is this project's operators.
"""

from __future__ import annotations

import importlib
import pkgutil

from datarax_ops.targets._base import (
    ALL_CAPABILITIES,
    Capability,
    NotApplicable,
    OperatorFactory,
    Target,
)

DEFAULT = "datarax_ops"


def target_names() -> tuple[str, ...]:
    """Every target name: ``DEFAULT`` first, then the other adapter files, sorted."""
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return (DEFAULT, *(name for name in found if name != DEFAULT))


def load_target(name: str) -> Target:
    """The ``TARGET`` of ``targets/<name>.py``.

    Raises:
      LookupError: no such target (the message lists the targets), or its module
        defines no ``TARGET`` of that name.
    """
    names = target_names()
    if name not in names:
        raise LookupError(f"unknown target {name!r}; choose from {list(names)}")
    module = importlib.import_module(f"{__name__}.{name}")
    target = getattr(module, "TARGET", None)
    if not isinstance(target, Target) or target.name != name:
        raise LookupError(f"{module.__name__}.TARGET must be a Target named {name!r}")
    return target


def missing_packages(target: Target) -> list[str]:
    """The packages of ``target.requires`` that do not import here."""
    missing = []
    for package in target.requires:
        try:
            importlib.import_module(package)
        except ImportError:
            missing.append(package)
    return missing


__all__ = [
    "ALL_CAPABILITIES",
    "DEFAULT",
    "Capability",
    "NotApplicable",
    "OperatorFactory",
    "Target",
    "load_target",
    "missing_packages",
    "target_names",
]
