"""Pixel dropout: every value kept or zeroed on its own."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from datarax_ops.conformance.laws._base import changed_fraction
from datarax_ops.conformance.laws._dropout import DropoutLaw, keep_decisions


class PixelLaw(DropoutLaw):
    """One keep decision per value."""

    mode = "pixel"
    unit = "values"
    settings: ClassVar[Mapping[str, Any]] = {"dropout_rate": 0.2}
    demo_strengths = tuple({"dropout_rate": r} for r in (0.05, 0.1, 0.25, 0.5))
    demo_shared_channels = ({"dropout_rate": 0.3, "per_channel": False},)

    def decisions(self, images: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        return keep_decisions(images, out)

    def effect_label(self, original: np.ndarray, outputs: np.ndarray) -> str:
        return changed_fraction(original, outputs)

    def albumentations_counterpart(
        self, settings: Mapping[str, Any], album: ModuleType
    ) -> tuple[Any, str] | None:
        """``PixelDropout`` per channel: the same law."""
        rate = settings["dropout_rate"]
        return (
            album.PixelDropout(dropout_prob=rate, per_channel=True, drop_value=0, p=1.0),
            f"PixelDropout(dropout_prob={rate:g}, per_channel=True): the same law",
        )


LAW = PixelLaw()
