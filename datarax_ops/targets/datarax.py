"""Target ``datarax``: the installed datarax's own ``NoiseOperator`` and ``DropoutOperator``,
through datarax's public API (``_datarax_api``).  The modes its configs reject are n/a
with datarax's message.  Needs the ``datarax`` package (0.1.4 in ``nox -s tests``)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from datarax_ops.targets import _datarax_api


def classes() -> dict[str, Any]:
    """datarax's operator, config, ``Batch`` and ``Metadata`` classes (imported here:
    datarax is optional)."""
    from datarax.core.element_batch import Batch
    from datarax.core.metadata import Metadata
    from datarax.operators.modality.image import (
        DropoutOperator,
        DropoutOperatorConfig,
        NoiseOperator,
        NoiseOperatorConfig,
    )

    return _datarax_api.named(
        NoiseOperator, NoiseOperatorConfig, DropoutOperator, DropoutOperatorConfig, Batch, Metadata
    )


TARGET = _datarax_api.api_target(
    name="datarax",
    about="datarax's NoiseOperator and DropoutOperator, through datarax's public API",
    classes=classes,
    version=lambda: importlib.metadata.version("datarax"),
    requires=("datarax",),
)
