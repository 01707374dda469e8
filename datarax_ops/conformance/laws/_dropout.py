"""What pixel and channel dropout share: each keep decision keeps its values unchanged
or zeroes them, with probability ``1 - dropout_rate``; the kept count is binomial."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from datarax_ops.conformance import stats as kit
from datarax_ops.conformance.laws._base import Law, Outputs
from datarax_ops.conformance.results import CategoricalSample, RateEstimate, Recorder


def keep_decisions(images: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per value of ``images`` / ``out`` (same shape): ``(kept, known, bad)``, two bool
    arrays and a count; ``known`` where ``x != 0`` (a dropped 0 looks kept); ``bad``
    counts known values neither kept unchanged nor zeroed."""
    known = images != 0
    kept, dropped = out == images, out == 0
    bad = int(np.sum(known & (kept == dropped)))
    return kept & known, known, bad


def keep_probability(config: Any) -> float:
    """``1 - dropout_rate``."""
    return 1.0 - config.dropout_rate


class DropoutLaw(Law):
    """Kept decisions vs the binomial and vs the reference's (chi-square); the keep
    mask of ``generate_random_params`` vs the Bernoulli law."""

    unit: ClassVar[str]  # what one keep decision covers, plural: "values", "channels"
    clip_settings: ClassVar[Mapping[str, Any]] = {"clip_range": (0.05, 0.6)}

    @abstractmethod
    def decisions(self, images: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """``(kept, known, bad)`` per decision: bool arrays, and how many known values
        are neither kept unchanged nor zeroed."""

    def check_sharing(self, rec: Recorder, images: np.ndarray, out: np.ndarray) -> None:
        """Records the checks that values sharing a decision agree (none by default)."""

    def check_output(self, rec: Recorder, outputs: Outputs) -> None:
        config, images, out, ref, _ = outputs
        keep = keep_probability(config)
        self.check_sharing(rec, images, out)
        rec.aspect = "keep rate"
        kept, known, bad = self.decisions(images, out)
        ref_kept, ref_known, _ = self.decisions(images, ref)
        rec.exact(bad == 0, "every value kept unchanged or zeroed", f"{bad} values are neither")
        hits, trials = int(kept.sum()), int(known.sum())
        what = f"kept {self.unit} ~ Binomial(n, {keep:g})"
        rec.stat(kit.assert_binomial, hits, trials, keep, what=what)
        rec.aspect = "vs reference"
        ref_hits, ref_trials = int(ref_kept.sum()), int(ref_known.sum())
        counts = np.array([hits, trials - hits], np.float64)
        ref_counts = np.array([ref_hits, ref_trials - ref_hits], np.float64)
        what = f"kept/dropped {self.unit} vs the reference's"
        rec.stat(kit.assert_chisquare_homogeneity, counts, ref_counts, what=what)
        title = f"{self.mode} dropout decisions ({self.unit})"
        probs = np.array([keep, 1.0 - keep])
        rec.run.samples.append(
            CategoricalSample(title, ("kept", "dropped"), counts, ref_counts, probs)
        )
        label = f"keep rate of {self.unit}, op(batch)"
        rec.run.rates.append(RateEstimate(label, hits, trials, keep))

    def check_params(
        self, rec: Recorder, config: Any, name: str, got: np.ndarray, ref: np.ndarray
    ) -> None:
        keep = keep_probability(config)
        hits, size = int(got.sum()), got.size
        what = f"params {name!r} ~ Bernoulli({keep:g})"
        rec.stat(kit.assert_binomial, hits, size, keep, what=what)
        rec.stat(
            kit.assert_chisquare_homogeneity,
            [got.sum(), got.size - got.sum()],
            [ref.sum(), ref.size - ref.sum()],
            what=f"params {name!r} vs reference.draw",
        )
        rec.run.rates.append(RateEstimate("keep rate, generate_random_params", hits, size, keep))

    def noise_scores(self, config: Any, images: np.ndarray, out: np.ndarray) -> np.ndarray:
        keep = keep_probability(config)
        sd = math.sqrt(keep * (1.0 - keep)) or 1.0
        kept, known, _ = self.decisions(images, out)
        return np.where(known, (kept - keep) / sd, 0.0)
