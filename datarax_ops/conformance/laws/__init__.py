"""One law per mode of ``datarax_ops.modes.MODES``: ``laws/<mode name>.py`` defines
``LAW``, an instance of a :class:`Law` subclass (``laws/_*.py`` hold what several
laws share).

:data:`LAWS` is built from ``MODES`` when this package is imported, and a mode
without its law file stops that import with a message naming the file to add: a
new mode touches ``MODES`` (and the reference's list) and one law file here.
"""

from __future__ import annotations

import importlib

from datarax_ops.conformance.laws._base import Law, Outputs
from datarax_ops.modes import MODES


def load_law(mode: str) -> Law:
    """The ``LAW`` of module ``laws/<mode>.py``.

    Raises:
      LookupError: no such module, or it defines no ``LAW`` for ``mode``.
    """
    module_name = f"{__name__}.{mode}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        raise LookupError(
            f"mode {mode!r} has no conformance law: add datarax_ops/conformance/laws/{mode}.py "
            "defining LAW, an instance of a laws.Law subclass"
        ) from None
    law = getattr(module, "LAW", None)
    if not isinstance(law, Law) or law.mode != mode:
        raise LookupError(f"{module_name}.LAW must be a Law whose mode is {mode!r}, got {law!r}")
    return law


LAWS: dict[str, Law] = {mode.name: load_law(mode.name) for mode in MODES}
"""Every mode's law, in the order of ``MODES``."""


def law_for(mode: str) -> Law:
    """The law of mode ``mode`` (a name of ``MODES``); KeyError names the known modes."""
    try:
        return LAWS[mode]
    except KeyError:
        raise KeyError(f"no mode {mode!r}; known: {list(LAWS)}") from None


__all__ = ["LAWS", "Law", "Outputs", "law_for", "load_law"]
