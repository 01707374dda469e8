"""Gaussian noise: ``out = x + N(noise_mean, noise_std^2)``, so the residual ``out - x``
is exactly normal whatever the picture."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
from scipy import stats as scipy_stats

from datarax_ops.conformance import stats as kit
from datarax_ops.conformance.laws._base import Law, Outputs
from datarax_ops.conformance.results import ContinuousSample, Recorder, plot_sample


class GaussianLaw(Law):
    """Residuals vs ``N(mean, std^2)``: KS, mean and variance; KS vs the reference's."""

    mode = "gaussian"
    settings: ClassVar[Mapping[str, Any]] = {
        "noise_std": 0.1,
        "noise_mean": 0.0,
        "clip_range": None,
    }
    clip_settings: ClassVar[Mapping[str, Any]] = {"noise_std": 0.3, "clip_range": (0.0, 1.0)}
    demo_strengths = tuple({"noise_std": s} for s in (0.02, 0.05, 0.1, 0.2))
    demo_range: ClassVar[Mapping[str, Any]] = {"noise_std_range": (0.0, 0.25)}
    demo_shared_channels = ({"noise_std": 0.15}, {"noise_std": 0.15, "per_channel": False})
    # float32 vs the reference's float64: rounding differs in the last bits
    reproduction_atol = 1e-5
    reproduction_misses = 1e-4

    def check_output(self, rec: Recorder, outputs: Outputs) -> None:
        config, images, out, ref, rng = outputs
        rec.aspect = "law vs scipy"
        residual = out.astype(np.float64) - images
        mean, std = config.noise_mean, config.noise_std
        what = f"residual out - x ~ N({mean}, {std}^2)"
        rec.stat(kit.assert_ks_1samp, residual, scipy_stats.norm(mean, std), what=what)
        rec.stat(kit.assert_normal_mean, residual, mean, std, what=f"mean of {what}")
        rec.stat(kit.assert_normal_variance, residual, std**2, what=f"variance of {what}")
        rec.aspect = "vs reference"
        ref_residual = ref.astype(np.float64) - images
        rec.stat(kit.assert_ks_2samp, residual, ref_residual, what="residuals vs the reference's")
        rec.run.samples.append(
            ContinuousSample(
                "gaussian residuals",
                "out - x",
                plot_sample(residual, rng),
                plot_sample(ref_residual, rng),
                scipy_stats.norm(mean, std),
                f"exact N({mean:g}, {std:g}²)",
            )
        )

    def check_params(
        self, rec: Recorder, config: Any, name: str, got: np.ndarray, ref: np.ndarray
    ) -> None:
        dist = scipy_stats.norm(config.noise_mean, config.noise_std)
        rec.stat(kit.assert_ks_1samp, got, dist, what=f"params {name!r} ~ N(mean, std^2)")
        rec.stat(kit.assert_ks_2samp, got, ref, what=f"params {name!r} vs reference.draw")

    def noise_scores(self, config: Any, images: np.ndarray, out: np.ndarray) -> np.ndarray:
        x, y = images.astype(np.float64), out.astype(np.float64)
        return (y - x - config.noise_mean) / config.noise_std

    value_unit_fields = ("noise_std", "noise_mean")

    def albumentations_counterpart(
        self, settings: Mapping[str, Any], album: ModuleType
    ) -> tuple[Any, str] | None:
        """``GaussNoise``: its ``std_range`` is a fraction of 255, ``noise_std`` is not."""
        std = settings["noise_std"] / 255.0
        return (
            album.GaussNoise(std_range=(std, std), mean_range=(0.0, 0.0), per_channel=True, p=1.0),
            f"GaussNoise(std_range=({std:g}, {std:g})): the same law per value",
        )


LAW = GaussianLaw()
