"""Every mode of every operator, once: the list the rest of the package derives from.

A ``Mode`` names its operator's config class, the mode's name and its kernel
class; the kernel class carries the mode's ``draw``, ``apply``, params key and
params shape.  Tests import ``MODES`` rather than spelling modes out again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datarax_ops.dropout import ChannelKernel, PixelKernel
from datarax_ops.kernel import Kernel
from datarax_ops.noise import GaussianKernel, PoissonKernel, SaltPepperKernel
from datarax_ops.reference.config import DropoutOperatorConfig, NoiseOperatorConfig


@dataclass(frozen=True)
class Mode:
    """One operator mode: ``(config class, name)`` -> kernel class."""

    config_class: type
    name: str
    kernel_class: type[Kernel]

    @property
    def params_key(self) -> str:
        """The key of this mode's params dict (``noise``, ``noise_mask``, ...)."""
        return self.kernel_class.param_key

    def params_shape(self, element_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one element's params array."""
        return self.kernel_class.param_shape(tuple(element_shape))


MODES: tuple[Mode, ...] = (
    Mode(NoiseOperatorConfig, "gaussian", GaussianKernel),
    Mode(NoiseOperatorConfig, "salt_pepper", SaltPepperKernel),
    Mode(NoiseOperatorConfig, "poisson", PoissonKernel),
    Mode(DropoutOperatorConfig, "pixel", PixelKernel),
    Mode(DropoutOperatorConfig, "channel", ChannelKernel),
)


def mode_of(config: Any) -> Mode:
    """The ``Mode`` of ``config`` (a noise or dropout config)."""
    for mode in MODES:
        if isinstance(config, mode.config_class) and getattr(config, "mode", None) == mode.name:
            return mode
    raise TypeError(f"no mode {getattr(config, 'mode', None)!r} for {type(config).__name__}")


def kernel_for(config: Any) -> Kernel:
    """The kernel of ``config``'s mode, holding only that mode's parameters."""
    return mode_of(config).kernel_class.from_config(config)
