"""Every mode of every operator, compiled: derived from the one registry.

The registry is ``reference.modes.MODES`` (each mode's declaration).  Each mode's
kernel lives in ``datarax_ops/modes/<name>.py`` (its ``KERNEL``), found by the
mode's name as the laws are (``conformance/laws/<name>.py``), so a new mode needs
no line here.  A ``Mode`` pairs a declaration with its config class and kernel
class; tests import ``MODES`` rather than spelling modes out again.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from datarax_ops.kernel import Kernel
from datarax_ops.reference import modes as declared
from datarax_ops.reference.config import CONFIG_CLASSES
from datarax_ops.reference.spec import ModeSpec


def load_kernel(spec: ModeSpec) -> type[Kernel]:
    """The kernel class of ``spec``: ``datarax_ops.modes.<name>.KERNEL``, checked to be a
    ``Kernel`` declared by ``spec``."""
    module = importlib.import_module(f"{__name__}.{spec.name}")
    kernel = getattr(module, "KERNEL", None)
    if not (isinstance(kernel, type) and issubclass(kernel, Kernel)) or kernel.spec is not spec:
        raise TypeError(f"{module.__name__}.KERNEL must be the Kernel of mode {spec.name!r}")
    return kernel


@dataclass(frozen=True)
class Mode:
    """One operator mode: its declaration, config class and kernel class."""

    spec: ModeSpec
    config_class: type
    kernel_class: type[Kernel]

    @property
    def name(self) -> str:
        """The config's ``mode`` value."""
        return self.spec.name

    @property
    def params_key(self) -> str:
        """The key of this mode's params dict (``noise``, ``noise_mask``, ...)."""
        return self.spec.params_key

    def params_shape(self, element_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one element's params array."""
        return tuple(self.spec.params_shape(tuple(element_shape)))


MODES: tuple[Mode, ...] = tuple(
    Mode(spec, CONFIG_CLASSES[spec.family], load_kernel(spec)) for spec in declared.MODES
)


def by_name(name: str) -> Mode:
    """The ``Mode`` named ``name``; ``KeyError`` names the known modes."""
    for mode in MODES:
        if mode.name == name:
            return mode
    raise KeyError(f"no mode {name!r}; the modes are {', '.join(m.name for m in MODES)}")


def mode_of(config: Any) -> Mode:
    """The ``Mode`` of ``config`` (a noise or dropout config)."""
    for mode in MODES:
        if isinstance(config, mode.config_class) and getattr(config, "mode", None) == mode.name:
            return mode
    raise TypeError(f"no mode {getattr(config, 'mode', None)!r} for {type(config).__name__}")


def kernel_for(config: Any) -> Kernel:
    """The kernel of ``config``'s mode, holding only that mode's parameters."""
    return mode_of(config).kernel_class.from_config(config)
