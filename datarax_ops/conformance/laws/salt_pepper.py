"""Salt & pepper: each value becomes salt with ``salt_prob``, pepper with ``pepper_prob``,
else stays; the three categories of a readable value are multinomial."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from datarax_ops.conformance import stats as kit
from datarax_ops.conformance.laws._base import (
    Law,
    Outputs,
    changed_fraction,
    check_uniform_levels,
    per_record,
)
from datarax_ops.conformance.results import CategoricalSample, RateEstimate, Recorder
from datarax_ops.reference.common import salt_pepper_values

CATEGORIES = ("salt", "pepper", "unchanged")


def fills(config: Any, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The salt and pepper values of each record (``reference.common.salt_pepper_values``),
    each float64 ``(records, 1, ..., 1)``."""

    def fill(which: int) -> np.ndarray:
        return per_record(
            lambda r: salt_pepper_values(config.salt_value, config.pepper_value, r)[which], images
        )

    return fill(0), fill(1)


def category_probs(config: Any) -> np.ndarray:
    """float64 ``[salt_prob, pepper_prob, 1 - both]``: the law of ``CATEGORIES``."""
    probs = np.array([config.salt_prob, config.pepper_prob, 0.0])
    probs[2] = 1.0 - probs[:2].sum()
    return probs


def categories(config: Any, images: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, int]:
    """``CATEGORIES`` counts (float64 ``(3,)``) over values ``x`` that differ from both
    fill values (so the category is readable), and how many such values are none of them."""
    salt_value, pepper_value = fills(config, images)
    readable = (images != salt_value) & (images != pepper_value)
    salt, pepper, same = out == salt_value, out == pepper_value, out == images
    one_of = salt.astype(int) + pepper.astype(int) + same.astype(int) == 1
    bad = int(np.sum(readable & ~one_of))
    counts = np.array([np.sum(c & readable) for c in (salt, pepper, same)], np.float64)
    return counts, bad


class SaltPepperLaw(Law):
    """Category counts vs the multinomial (chi-square) and vs the reference's."""

    mode = "salt_pepper"
    settings: ClassVar[Mapping[str, Any]] = {"salt_prob": 0.05, "pepper_prob": 0.05}
    clip_settings: ClassVar[Mapping[str, Any]] = {"clip_range": (0.0, 0.9)}
    demo_strengths = tuple({"salt_prob": p, "pepper_prob": p} for p in (0.005, 0.02, 0.05, 0.15))
    demo_shared_channels = ({"salt_prob": 0.05, "pepper_prob": 0.05, "per_channel": False},)

    def check_output(self, rec: Recorder, outputs: Outputs) -> None:
        config, images, out, ref, _ = outputs
        rec.aspect = "law vs scipy"
        counts, bad = categories(config, images, out)
        rec.exact(bad == 0, "every value is salt, pepper or unchanged", f"{bad} values are not")
        probs = category_probs(config)
        what = "salt/pepper/unchanged ~ multinomial"
        rec.stat(kit.assert_chisquare_gof, counts, probs, what=what)
        rec.aspect = "vs reference"
        ref_counts, _ = categories(config, images, ref)
        what = "categories vs the reference's"
        rec.stat(kit.assert_chisquare_homogeneity, counts, ref_counts, what=what)
        sample = CategoricalSample(
            "salt & pepper categories", CATEGORIES, counts, ref_counts, probs
        )
        rec.run.samples.append(sample)
        total = int(counts.sum())
        rec.run.rates += [
            RateEstimate(f"{label} rate", int(counts[i]), total, float(probs[i]))
            for i, label in enumerate(CATEGORIES[:2])
        ]

    def check_params(
        self, rec: Recorder, config: Any, name: str, got: np.ndarray, ref: np.ndarray
    ) -> None:
        check_uniform_levels(rec, name, got, ref)

    def noise_scores(self, config: Any, images: np.ndarray, out: np.ndarray) -> np.ndarray:
        x, y = images.astype(np.float64), out.astype(np.float64)
        counts_probs = (config.salt_prob, config.pepper_prob)
        salt, pepper = fills(config, images)
        keep = 1.0 - sum(counts_probs)
        mean = counts_probs[0] * salt + counts_probs[1] * pepper + keep * x
        second = counts_probs[0] * salt**2 + counts_probs[1] * pepper**2 + keep * x**2
        sd = np.sqrt(np.maximum(second - mean**2, 0.0))
        return np.where(sd > 0, (y - mean) / np.where(sd > 0, sd, 1.0), 0.0)

    def effect_label(self, original: np.ndarray, outputs: np.ndarray) -> str:
        return changed_fraction(original, outputs)

    def albumentations_counterpart(
        self, settings: Mapping[str, Any], album: ModuleType
    ) -> tuple[Any, str] | None:
        """``SaltAndPepper`` with the same total amount and salt share."""
        amount = settings["salt_prob"] + settings["pepper_prob"]
        salt_share = settings["salt_prob"] / amount
        return (
            album.SaltAndPepper(
                amount=(amount, amount), salt_vs_pepper=(salt_share, salt_share), p=1.0
            ),
            f"SaltAndPepper(amount=({amount:g}, {amount:g})): whole pixels (all channels), "
            "an exact count; ours each value by its own draw",
        )


LAW = SaltPepperLaw()
