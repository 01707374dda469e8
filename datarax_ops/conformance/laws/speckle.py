"""Speckle noise: ``out = x * (1 + N(noise_mean, noise_std^2))``, so wherever ``x > 0``
(and nothing is clipped) the relative change ``out / x - 1`` is exactly normal, whatever
the picture."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
from scipy import stats as scipy_stats

from datarax_ops.conformance import stats as kit
from datarax_ops.conformance.laws._base import Law, Outputs
from datarax_ops.conformance.results import ContinuousSample, Recorder, plot_sample


def relative_change(images: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out / x - 1`` (float64) at every value with ``x > 0``, flat: the drawn
    multiplier minus 1 where the output is unclipped.  Values ``x <= 0`` are left out
    (a zero stays zero whatever the multiplier)."""
    x = images.astype(np.float64)
    positive = x > 0
    return out.astype(np.float64)[positive] / x[positive] - 1.0


class SpeckleLaw(Law):
    """``out / x - 1`` vs ``N(mean, std^2)``: KS, mean and variance; KS vs the reference's."""

    mode = "speckle"
    settings: ClassVar[Mapping[str, Any]] = {
        "noise_std": 0.2,
        "noise_mean": 0.0,
        "clip_range": None,
    }
    # multipliers below 0 (z < -2) and products above 1 reach both bounds
    clip_settings: ClassVar[Mapping[str, Any]] = {"noise_std": 0.5, "clip_range": (0.0, 1.0)}
    demo_strengths = tuple({"noise_std": s} for s in (0.05, 0.1, 0.2, 0.4))
    demo_note = "noise grows with\nthe value (black\nstays black)"
    demo_shared_channels = ({"noise_std": 0.3, "per_channel": False},)
    # the float32 normal quantile vs the reference's float64 one: a few ulps of the noise
    reproduction_atol = 1e-5
    reproduction_misses = 1e-4

    def check_output(self, rec: Recorder, outputs: Outputs) -> None:
        config, images, out, ref, rng = outputs
        rec.aspect = "law vs scipy"
        change = relative_change(images, out)
        mean, std = config.noise_mean, config.noise_std
        what = f"out / x - 1 ~ N({mean}, {std}^2) where x > 0"
        rec.stat(kit.assert_ks_1samp, change, scipy_stats.norm(mean, std), what=what)
        rec.stat(kit.assert_normal_mean, change, mean, std, what=f"mean of {what}")
        rec.stat(kit.assert_normal_variance, change, std**2, what=f"variance of {what}")
        rec.aspect = "vs reference"
        ref_change = relative_change(images, ref)
        rec.stat(kit.assert_ks_2samp, change, ref_change, what="out / x - 1 vs the reference's")
        rec.run.samples.append(
            ContinuousSample(
                "speckle relative change",
                "out / x - 1 (x > 0)",
                plot_sample(change, rng),
                plot_sample(ref_change, rng),
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
        positive = x > 0
        change = np.where(positive, y / np.where(positive, x, 1.0) - 1.0, config.noise_mean)
        return (change - config.noise_mean) / config.noise_std

    def albumentations_counterpart(
        self, settings: Mapping[str, Any], album: ModuleType
    ) -> tuple[Any, str] | None:
        """``MultiplicativeNoise``: a *uniform* multiplier, not a gaussian one; the nearest
        transform albumentations has.  Its range ``1 + mean +- sqrt(3) std`` has our mean
        and variance."""
        half = float(np.sqrt(3.0)) * settings["noise_std"]
        centre = 1.0 + settings.get("noise_mean", 0.0)
        low, high = centre - half, centre + half
        return (
            album.MultiplicativeNoise(
                multiplier=(low, high), per_channel=True, elementwise=True, p=1.0
            ),
            f"MultiplicativeNoise(multiplier=({low:.4g}, {high:.4g}), elementwise): a uniform "
            "multiplier of the same mean and variance, not a normal one",
        )


LAW = SpeckleLaw()
