"""Poisson noise: ``out = k * s / lam_scale`` with ``k ~ Poisson(lam)``,
``lam = max(x, 0) * lam_scale / s`` (``s = reference.common.value_scale``), so the
counts read back from the output follow a known Poisson law per value."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
from scipy import stats as scipy_stats

from datarax_ops.conformance import stats as kit
from datarax_ops.conformance.laws._base import Law, Outputs, check_uniform_levels, per_record
from datarax_ops.conformance.results import ContinuousSample, Recorder, plot_sample
from datarax_ops.reference.common import value_scale


def gain(config: Any, images: np.ndarray) -> np.ndarray:
    """``lam_scale / s`` per record (``s``: 255 for 0..255 data, else 1), float64
    ``(records, 1, ..., 1)``."""
    return config.lam_scale / per_record(value_scale, images)


def poisson_lambda(config: Any, images: np.ndarray) -> np.ndarray:
    """``lam = max(x, 0) * lam_scale / s`` per value, float64, ``images.shape``."""
    return np.maximum(images.astype(np.float64), 0.0) * gain(config, images)


def poisson_counts(config: Any, images: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, int]:
    """``k = out * lam_scale / s`` rounded (float64, ``out.shape``), and how many
    outputs are off that lattice."""
    raw = out.astype(np.float64) * gain(config, images)
    k = np.rint(raw)
    off = int(np.sum(np.abs(raw - k) > 1e-5 * np.maximum(k, 1.0)))
    return k, off


def randomized_pit(k: np.ndarray, lam: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``F(k - 1) + V (F(k) - F(k - 1))`` with ``V ~ U(0, 1)``: exactly U(0, 1) when each
    ``k ~ Poisson(lam)`` independently, whatever the ``lam`` (a discrete PIT)."""
    upper = scipy_stats.poisson.cdf(k, lam)
    lower = scipy_stats.poisson.cdf(k - 1, lam)
    return lower + rng.random(k.shape) * (upper - lower)


def check_counts(rec: Recorder, k: np.ndarray, lam: np.ndarray, pit: np.ndarray) -> None:
    """Counts ``k`` vs Poisson(``lam``): their randomized PIT ``pit`` vs U(0, 1) (KS),
    and the standardized mean and variance where ``lam > 0``."""
    rec.stat(
        kit.assert_ks_1samp, pit, scipy_stats.uniform(), what="randomized PIT of counts ~ U(0,1)"
    )
    positive = lam > 0
    z = (k - lam)[positive] / np.sqrt(lam[positive])
    rec.stat(kit.assert_normal_mean, z, 0.0, 1.0, what="mean: (k - lam) / sqrt(lam)")
    w = ((k - lam) ** 2 - lam)[positive] / np.sqrt(lam + 2 * lam**2)[positive]
    rec.stat(kit.assert_normal_mean, w, 0.0, 1.0, what="variance: ((k-lam)^2 - lam) / sd")


def check_counts_homogeneity(rec: Recorder, k: np.ndarray, ref_k: np.ndarray) -> None:
    """The histogram of counts ``k`` vs the reference's ``ref_k`` (chi-square)."""
    top = int(max(k.max(), ref_k.max())) + 1
    rec.stat(
        kit.assert_chisquare_homogeneity,
        np.bincount(k.astype(np.int64).ravel(), minlength=top),
        np.bincount(ref_k.astype(np.int64).ravel(), minlength=top),
        what="counts vs the reference's",
    )


class PoissonLaw(Law):
    """Counts on the lattice, their randomized PIT, mean and variance; counts vs the
    reference's."""

    mode = "poisson"
    settings: ClassVar[Mapping[str, Any]] = {"lam_scale": 30.0, "clip_range": None}
    clip_settings: ClassVar[Mapping[str, Any]] = {"lam_scale": 5.0, "clip_range": (0.0, 1.0)}
    # noise *falls* as lam_scale grows (variance x / lam_scale): large to small
    demo_strengths = tuple({"lam_scale": s} for s in (300.0, 100.0, 30.0, 10.0))
    demo_note = "larger lam_scale\n= less noise"
    reproduction_atol = 1e-5
    # the float32 quantile may miss by one count where a level sits on a CDF step
    # (~1e-6 of values, datarax_ops.poisson)
    reproduction_misses = 1e-4

    def check_output(self, rec: Recorder, outputs: Outputs) -> None:
        config, images, out, ref, rng = outputs
        rec.aspect = "law vs scipy"
        lam = poisson_lambda(config, images)
        k, off = poisson_counts(config, images, out)
        rec.exact(off == 0, "outputs on the lattice k / lam_scale", f"{off} outputs are not")
        pit = randomized_pit(k, lam, rng)
        check_counts(rec, k, lam, pit)
        rec.aspect = "vs reference"
        ref_k, _ = poisson_counts(config, images, ref)
        check_counts_homogeneity(rec, k, ref_k)
        ref_pit = randomized_pit(ref_k, lam, rng)
        rec.run.samples.append(
            ContinuousSample(
                "poisson counts, randomized PIT",
                "F(k-1) + V·P(k) under Poisson(x·lam_scale)",
                plot_sample(pit, rng),
                plot_sample(ref_pit, rng),
                scipy_stats.uniform(),
                "exact U(0, 1)",
            )
        )

    def check_params(
        self, rec: Recorder, config: Any, name: str, got: np.ndarray, ref: np.ndarray
    ) -> None:
        check_uniform_levels(rec, name, got, ref)

    def noise_scores(self, config: Any, images: np.ndarray, out: np.ndarray) -> np.ndarray:
        lam = poisson_lambda(config, images)
        k = np.rint(out.astype(np.float64) * gain(config, images))
        return np.where(lam > 0, (k - lam) / np.sqrt(np.where(lam > 0, lam, 1.0)), 0.0)

    def albumentations_counterpart(
        self, settings: Mapping[str, Any], album: ModuleType
    ) -> tuple[Any, str] | None:
        """``ShotNoise``: counts of photons per unit intensity, ``1 / scale``."""
        scale = 1.0 / settings["lam_scale"]
        return (
            album.ShotNoise(scale_range=(scale, scale), p=1.0),
            f"ShotNoise(scale_range=({scale:.4g}, {scale:.4g})): {settings['lam_scale']:g} counts "
            "per unit intensity in linear light (gamma 2.2); ours on the values",
        )


LAW = PoissonLaw()
