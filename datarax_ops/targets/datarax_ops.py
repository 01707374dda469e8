"""The default target: this project's ``NoiseOperator`` and ``DropoutOperator``, every
mode, every capability the checks drive (today's ``datarax-ops verify``)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from flax import nnx

from datarax_ops.config import NoiseOperatorConfig
from datarax_ops.operator import DropoutOperator, NoiseOperator
from datarax_ops.targets._base import ALL_CAPABILITIES, OperatorFactory, Target

DISTRIBUTION = "datarax-ops"  # this package's name on the package index


def build_operator(config: Any, *, rngs: nnx.Rngs | None = None) -> Any:
    """The real operator for ``config``: ``NoiseOperator`` or ``DropoutOperator``."""
    cls = NoiseOperator if isinstance(config, NoiseOperatorConfig) else DropoutOperator
    return cls(config, rngs=rngs)


def operators(mode: str) -> OperatorFactory:
    """Every mode is ours: the operator classes themselves."""
    del mode
    return build_operator


TARGET = Target(
    name="datarax_ops",
    about="datarax_ops' NoiseOperator and DropoutOperator (this package)",
    capabilities=ALL_CAPABILITIES,
    operators=operators,
    version=lambda: importlib.metadata.version(DISTRIBUTION),
)
