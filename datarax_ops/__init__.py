"""datarax_ops: image noise and dropout operators for JAX pipelines.

Drop-in for datarax's ``NoiseOperator`` and ``DropoutOperator``; behaviour is
defined by the NumPy spec in ``reference`` and checked against it.
"""

from datarax_ops.batch import Batch, Element, Metadata
from datarax_ops.config import (
    DataraxModuleConfig,
    DropoutOperatorConfig,
    ModalityOperatorConfig,
    NoiseOperatorConfig,
    OperatorConfig,
)
from datarax_ops.dropout import ChannelKernel, DropoutOperator, PixelKernel
from datarax_ops.modes import MODES, Mode
from datarax_ops.noise import GaussianKernel, NoiseOperator, PoissonKernel, SaltPepperKernel
from datarax_ops.operator import ImageOperator, Kernel

__version__ = "0.1.0"

__all__ = [
    "MODES",
    "Batch",
    "ChannelKernel",
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
]
