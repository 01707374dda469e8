"""Target ``datarax_ops_external``: this project's operators as if they were another
library's, through the same adapter path as ``datarax`` (``_datarax_api``: datarax's
public API only, none of our stream or params internals).  It proves the adapter path:
our operators must pass every check it applies, within the same false-alarm budget."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from datarax_ops.batch import Batch, Metadata
from datarax_ops.config import DropoutOperatorConfig, NoiseOperatorConfig
from datarax_ops.operator import DropoutOperator, NoiseOperator
from datarax_ops.targets import _datarax_api
from datarax_ops.targets.datarax_ops import DISTRIBUTION


def classes() -> dict[str, Any]:
    """Our classes under datarax's names."""
    return _datarax_api.named(
        NoiseOperator, NoiseOperatorConfig, DropoutOperator, DropoutOperatorConfig, Batch, Metadata
    )


TARGET = _datarax_api.api_target(
    name="datarax_ops_external",
    about="datarax_ops' operators through datarax's public API (the adapter path)",
    classes=classes,
    version=lambda: importlib.metadata.version(DISTRIBUTION),
)
