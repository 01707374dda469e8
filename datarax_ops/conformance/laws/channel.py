"""Channel dropout: each (record, channel) kept whole or zeroed whole."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from datarax_ops.conformance.laws._dropout import DropoutLaw, keep_decisions
from datarax_ops.conformance.results import Recorder

CHANNEL_PATCH = 4  # probe records are 4 x 4 x 3: 16 values share each decision


def channel_decisions(
    images: np.ndarray, out: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(kept, known, bad, mixed)`` for ``(records, H, W, C)`` inputs and outputs:
    bool ``(records, C)`` arrays, the values neither kept nor zeroed, and the
    (record, channel) slices whose known values are partly kept and partly dropped
    (channel sharing broken)."""
    kept, known, bad = keep_decisions(images, out)
    any_known = known.any(axis=(1, 2))
    all_kept = (kept | ~known).all(axis=(1, 2))
    any_kept = kept.any(axis=(1, 2))
    mixed = int(np.sum(any_known & (all_kept != any_kept)))
    return np.asarray(all_kept & any_known), np.asarray(any_known), bad, mixed


class ChannelLaw(DropoutLaw):
    """One keep decision per (record, channel), shared by all its values; small probe
    records and many of them, since each gives only ``C`` decisions."""

    mode = "channel"
    unit = "channels"
    settings: ClassVar[Mapping[str, Any]] = {"dropout_rate": 0.3}
    patch = CHANNEL_PATCH
    demo_strengths = tuple({"dropout_rate": r} for r in (0.1, 0.25, 0.5, 0.75))
    demo_note = "one decision per\nchannel; panels:\n4 records"
    demo_records = 4  # one record is only three coin flips

    def params_shape(self, samples: int, channels: int = 3) -> tuple[int, ...]:
        """Channel masks hold one decision per channel: many ``(1, 1, channels)`` records."""
        return (max(2, samples // channels), 1, 1, channels)

    def decisions(self, images: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        kept, known, bad, _ = channel_decisions(images, out)
        return kept, known, bad

    def check_sharing(self, rec: Recorder, images: np.ndarray, out: np.ndarray) -> None:
        rec.aspect = "channel sharing"
        mixed = channel_decisions(images, out)[3]
        what = "each (record, channel) all kept or all dropped"
        rec.exact(mixed == 0, what, f"{mixed} slices are partly kept")

    def effect_label(self, original: np.ndarray, outputs: np.ndarray) -> str:
        """Which of R, G, B each record kept (``-GB``: red dropped)."""
        if outputs.shape[-1] != 3:
            return super().effect_label(original, outputs)
        return "kept " + " ".join(kept_channels(original, output) for output in outputs)

    def albumentations_counterpart(
        self, settings: Mapping[str, Any], album: ModuleType
    ) -> tuple[Any, str] | None:
        """``ChannelDropout`` of exactly one channel (ours: each channel on its own)."""
        rate = settings["dropout_rate"]
        return (
            album.ChannelDropout(channel_drop_range=(1, 1), fill=0, p=1.0),
            "ChannelDropout(channel_drop_range=(1, 1)): exactly one of 3 channels per image; "
            f"ours each channel with probability {rate:g}",
        )


def kept_channels(original: np.ndarray, output: np.ndarray) -> str:
    """``"RGB"`` with ``-`` for each channel of ``output`` ``(H, W, 3)`` zeroed where
    ``original`` was not."""
    return "".join(
        name if np.any(output[..., c] != 0) or not np.any(original[..., c] != 0) else "-"
        for c, name in enumerate("RGB")
    )


LAW = ChannelLaw()
