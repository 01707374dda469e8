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
from datarax_ops.dropout import DropoutKernel, DropoutOperator
from datarax_ops.noise import NoiseKernel, NoiseOperator
from datarax_ops.operator import ImageOperator

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "DataraxModuleConfig",
    "DropoutKernel",
    "DropoutOperator",
    "DropoutOperatorConfig",
    "Element",
    "ImageOperator",
    "Metadata",
    "ModalityOperatorConfig",
    "NoiseKernel",
    "NoiseOperator",
    "NoiseOperatorConfig",
    "OperatorConfig",
]
