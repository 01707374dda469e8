"""Configurations: the very classes of ``reference.config`` (one validation for both)."""

from datarax_ops.reference.config import (
    BATCH_STRATEGIES,
    DROPOUT_MODES,
    NOISE_MODES,
    DataraxModuleConfig,
    DropoutOperatorConfig,
    ModalityOperatorConfig,
    NoiseOperatorConfig,
    OperatorConfig,
)

__all__ = [
    "BATCH_STRATEGIES",
    "DROPOUT_MODES",
    "NOISE_MODES",
    "DataraxModuleConfig",
    "DropoutOperatorConfig",
    "ModalityOperatorConfig",
    "NoiseOperatorConfig",
    "OperatorConfig",
]
