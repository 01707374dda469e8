"""datarax_ops: image noise and dropout operators for JAX pipelines.

Drop-in for datarax's ``NoiseOperator`` and ``DropoutOperator``; behaviour is
defined by the NumPy spec in ``datarax_ops.reference`` and checked against it.

The public names below are imported on first use (PEP 562), so that
``import datarax_ops.reference`` (the NumPy-only specification) never imports JAX.
Importing never changes JAX's configuration: compiled programs are kept between runs
only after ``datarax_ops.enable_compile_cache()``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "Batch": "datarax_ops.batch",
    "Element": "datarax_ops.batch",
    "Metadata": "datarax_ops.batch",
    "DataraxModuleConfig": "datarax_ops.config",
    "DropoutOperatorConfig": "datarax_ops.config",
    "ModalityOperatorConfig": "datarax_ops.config",
    "NoiseOperatorConfig": "datarax_ops.config",
    "OperatorConfig": "datarax_ops.config",
    "ChannelKernel": "datarax_ops.modes.channel",
    "CoarseKernel": "datarax_ops.modes.coarse",
    "DropoutOperator": "datarax_ops.operator",
    "PixelKernel": "datarax_ops.modes.pixel",
    "MODES": "datarax_ops.modes",
    "Mode": "datarax_ops.modes",
    "GaussianKernel": "datarax_ops.modes.gaussian",
    "NoiseOperator": "datarax_ops.operator",
    "PoissonKernel": "datarax_ops.modes.poisson",
    "SaltPepperKernel": "datarax_ops.modes.salt_pepper",
    "SpeckleKernel": "datarax_ops.modes.speckle",
    "ImageOperator": "datarax_ops.operator",
    "Kernel": "datarax_ops.kernel",
    "enable_compile_cache": "datarax_ops.compile_cache",
}

__all__ = [
    "MODES",
    "Batch",
    "ChannelKernel",
    "CoarseKernel",
    "DataraxModuleConfig",
    "DropoutOperator",
    "DropoutOperatorConfig",
    "Element",
    "GaussianKernel",
    "ImageOperator",
    "Kernel",
    "Metadata",
    "ModalityOperatorConfig",
    "Mode",
    "NoiseOperator",
    "NoiseOperatorConfig",
    "OperatorConfig",
    "PixelKernel",
    "PoissonKernel",
    "SaltPepperKernel",
    "SpeckleKernel",
    "enable_compile_cache",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'datarax_ops' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from datarax_ops.batch import Batch, Element, Metadata
    from datarax_ops.compile_cache import enable_compile_cache
    from datarax_ops.config import (
        DataraxModuleConfig,
        DropoutOperatorConfig,
        ModalityOperatorConfig,
        NoiseOperatorConfig,
        OperatorConfig,
    )
    from datarax_ops.kernel import Kernel
    from datarax_ops.modes import MODES, Mode
    from datarax_ops.modes.channel import ChannelKernel
    from datarax_ops.modes.coarse import CoarseKernel
    from datarax_ops.modes.gaussian import GaussianKernel
    from datarax_ops.modes.pixel import PixelKernel
    from datarax_ops.modes.poisson import PoissonKernel
    from datarax_ops.modes.salt_pepper import SaltPepperKernel
    from datarax_ops.modes.speckle import SpeckleKernel
    from datarax_ops.operator import DropoutOperator, ImageOperator, NoiseOperator
