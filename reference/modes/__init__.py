"""The one registry of modes: each line imports a mode's own file.

Every mode is a ``spec.ModeSpec`` declared in ``modes/<name>.py``; the config
checks, the compiled kernels (``datarax_ops/modes/<name>.py``), the laws
(``datarax_ops/conformance/laws/<name>.py``), the CLI, verify and the bench all
derive their lists from :data:`MODES`.  Adding a mode is its files plus one line
here.
"""

from __future__ import annotations

from ..spec import Family, ModeSpec
from . import channel, coarse, gaussian, pixel, poisson, salt_pepper, speckle

MODES: tuple[ModeSpec, ...] = (
    gaussian.MODE,
    salt_pepper.MODE,
    poisson.MODE,
    pixel.MODE,
    channel.MODE,
    speckle.MODE,
    coarse.MODE,
)


def names(family: Family | None = None) -> tuple[str, ...]:
    """Every mode name (of ``family`` when given), in registry order."""
    return tuple(mode.name for mode in MODES if family is None or mode.family == family)


def by_name(name: str) -> ModeSpec:
    """The ``ModeSpec`` of mode ``name``; ``KeyError`` names the known ones."""
    for mode in MODES:
        if mode.name == name:
            return mode
    raise KeyError(f"no mode {name!r}; the modes are {', '.join(names())}")
