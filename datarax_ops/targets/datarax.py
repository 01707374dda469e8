"""Target ``datarax``: the installed datarax's own ``NoiseOperator`` and ``DropoutOperator``,
through datarax's public API (``_datarax_api``).  The modes its configs reject are n/a
with datarax's message.  Needs the ``datarax`` package (0.1.4 in ``nox -s tests``)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from datarax_ops.targets import _datarax_api
from datarax_ops.targets._base import Target


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

    return {
        "NoiseOperator": NoiseOperator,
        "NoiseOperatorConfig": NoiseOperatorConfig,
        "DropoutOperator": DropoutOperator,
        "DropoutOperatorConfig": DropoutOperatorConfig,
        "Batch": Batch,
        "Metadata": Metadata,
    }


TARGET = Target(
    name="datarax",
    about="datarax's NoiseOperator and DropoutOperator, through datarax's public API",
    capabilities=_datarax_api.CAPABILITIES,
    operators=_datarax_api.operators_of(classes, "datarax"),
    version=lambda: importlib.metadata.version("datarax"),
    lacks=_datarax_api.LACKS,
    requires=("datarax",),
)
