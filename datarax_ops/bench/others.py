"""Other libraries' closest transforms on the case table's batches (``python -m
datarax_ops.bench``): what a user would run instead, timed in the same rounds.

albumentations (when installed) works on one image at a time, so its call is a loop
over the batch's records, each with its own draw, as the operator's.  It is timed
only on the data it is written for: float32 in 0..1 and uint8 in 0..255.  Each mode's
conformance law names the counterpart and how its law differs
(``Law.albumentations_counterpart``).

torchvision's ``RandomErasing`` is not here: on this project's package index the only
torch wheel (2.13.0+cpu) and the newest torchvision (0.28.0) do not import together
(``operator torchvision::nms does not exist``), and PyPI's default torch brings
gigabytes of CUDA wheels to a CPU benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from datarax_ops.bench.records import albumentations_transform
from datarax_ops.environment import package_version

# the data the other libraries take: (dtype, value scale)
TAKEN = {("float32", 1), ("uint8", 255)}


def batch_calls(
    mode: str, dtype: str, scale: int, host: np.ndarray
) -> tuple[dict[str, Callable[[], Any]], dict[str, str]]:
    """``({library: call}, {library: how it differs})`` for the installed libraries
    with a counterpart of ``mode`` (a bench label): each call runs the library's
    transform over every record of ``host`` (``(B, H, W, C)``), one at a time.  Empty
    where the data is not what they take."""
    calls: dict[str, Callable[[], Any]] = {}
    notes: dict[str, str] = {}
    if (dtype, scale) not in TAKEN:
        return calls, notes
    records = list(host)
    album = albumentations_transform(mode)
    if album is not None:
        transform, notes["albumentations"] = album

        def run_album() -> None:
            for image in records:
                transform(image=image)["image"]

        calls["albumentations"] = run_album
    return calls, notes


def versions() -> dict[str, str]:
    """The versions of the other libraries (``"not installed"`` where absent)."""
    return {"albumentations": package_version("albumentations")}
