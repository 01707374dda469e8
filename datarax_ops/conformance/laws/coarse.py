"""Coarse dropout: rectangles of each record filled on every channel, the rest untouched.

The output law: every pixel is either its input on every channel or the fill on every
channel (exact), and a pixel is covered with the probability the reference computes
exactly (``reference.modes.coarse.coverage_probability``).  The covered pixels of one
record are strongly dependent, so the coverage check takes one pixel per record (at
a random position): records are independent, and ``(position, covered)`` is then one
multinomial draw per record; and each record's covered pixels in bands of the
map, against their exact expectation, make one vector per record for Hotelling's
mean-vector test (every pixel used, their dependence estimated).  The params law:
the count uniform on ``hole_count_range``, each side ``max(1, floor(u * side + 0.5))``
with ``u`` uniform (scipy's ``uniform`` CDF at the rounding edges), each corner uniform
over the positions where the hole fits (randomized to a continuous uniform for a KS
test).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
from scipy import stats as scipy_stats

from datarax_ops.conformance import stats as kit
from datarax_ops.conformance.laws._base import Law, Outputs, changed_fraction
from datarax_ops.conformance.results import CategoricalSample, Recorder
from datarax_ops.reference.modes import coarse as spec_module

COARSE_PATCH = 8  # probe records are 8 x 8 x 3: more records, one coverage sample each
# Seed of the uniforms that pick a pixel per record and randomize the corners.
PICK_SEED = 24
# Bands of the coverage map (equal numbers of positions, ranked by coverage probability)
# for the mean-vector test of the covered pixels.
COVERAGE_BANDS = 8


# --------------------------------------------------------------------------- #
# What the output and the params say                                           #
# --------------------------------------------------------------------------- #
def pixel_states(
    config: Any, images: np.ndarray, out: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(covered, known, bad)`` for ``(records, H, W, C)`` inputs and outputs: bool
    ``(records, H, W)`` (filled on every channel where the input was not the fill; known:
    the input pixel is not the fill on every channel) and the number of pixels neither
    unchanged nor filled on every channel."""
    fill = spec_module.fill_of(config.fill_value, out.dtype)
    unchanged = np.all(out == images, axis=-1)
    filled = np.all(out == fill, axis=-1)
    known = ~np.all(images == fill, axis=-1)
    bad = int(np.sum(~(unchanged | filled)))
    return filled & known, known, bad


def one_pixel_per_record(
    covered: np.ndarray, known: np.ndarray, order: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Counts ``(2 * H * W,)``: each record's pixel at a uniform random position, as
    ``[covered at rank k..., uncovered at rank k...]`` with positions ranked by
    ``order`` (so that pooled neighbours are alike); records whose pixel is unknown
    are left out."""
    records, height, width = covered.shape
    picks = rng.integers(0, height * width, records)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    flat_covered = covered.reshape(records, -1)[np.arange(records), picks]
    flat_known = known.reshape(records, -1)[np.arange(records), picks]
    counts = np.zeros((2, height * width))
    np.add.at(counts, (1 - flat_covered[flat_known].astype(int), rank[picks[flat_known]]), 1)
    return counts.reshape(-1)


def covered_by_band(
    covered: np.ndarray, known: np.ndarray, probability: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, expected)``, each float ``(records, COVERAGE_BANDS)``: a record's covered
    pixels in each band of positions (ranked by ``probability``, the exact flat coverage
    map, and cut into equal bands: from the border to the centre) and their expectation
    (``probability`` summed over the record's known pixels of the band).  Records are
    independent, their pixels are not: a mean-vector test over records uses them all."""
    records = covered.shape[0]
    band_of = np.empty(order.size, np.intp)
    band_of[order] = np.arange(order.size) * COVERAGE_BANDS // order.size
    flat_covered = covered.reshape(records, -1).astype(np.float64)
    flat_known = known.reshape(records, -1).astype(np.float64)
    one_hot = np.eye(COVERAGE_BANDS)[band_of]  # (pixels, bands)
    return flat_covered @ one_hot, (flat_known * probability) @ one_hot


def ideal_sides(side: int, low: float, high: float) -> np.ndarray:
    """``P(h = t)``, ``t = 0 .. side``, for ``u ~ scipy.stats.uniform(lo, hi - lo)``:
    ``h = t`` for ``u * side + 0.5`` in ``[t, t + 1)``, ``t = 0`` counted as 1."""
    if low == high:
        return spec_module.ideal_size_pmf(side, low, high)
    law = scipy_stats.uniform(low, high - low)
    t = np.arange(side + 1, dtype=np.float64)
    pmf = law.cdf((t + 0.5) / side) - law.cdf((t - 0.5) / side)
    pmf[1] += pmf[0]
    pmf[0] = 0.0
    return pmf


def corner_levels(
    corners: np.ndarray, sizes: np.ndarray, length: int, rng: np.random.Generator
) -> np.ndarray:
    """``(corner + U(0, 1)) / (length - size + 1)``: ``U(0, 1)`` exactly when the corner is
    uniform on ``0 .. length - size`` (a continuous sample for a KS test)."""
    positions = length - sizes + 1
    return (corners + rng.random(corners.shape)) / positions


def used_holes(params: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(sizes, corners)`` int ``(holes, 2)`` of every drawn hole, used or not (each
    follows the law; the count only selects)."""
    return (
        np.asarray(params["hole_sizes"]).reshape(-1, 2),
        np.asarray(params["hole_corners"]).reshape(-1, 2),
    )


class CoarseLaw(Law):
    """Holes of 20%..50% of the side, 0 to 3 per record, filled with 0.5 (a value the
    probe's 8-bit pictures never hold, so a covered pixel is always visible)."""

    mode = "coarse"
    settings: ClassVar[Mapping[str, Any]] = {
        "hole_count_range": (0, 3),
        "hole_size_range": (0.2, 0.5),
        "fill_value": 0.5,
    }
    clip_settings: ClassVar[Mapping[str, Any]] = {"clip_range": (0.05, 0.6)}
    patch = COARSE_PATCH
    demo_strengths: ClassVar[tuple[Mapping[str, Any], ...]] = (
        {"hole_count_range": (1, 1), "hole_size_range": (0.1, 0.2)},
        {"hole_count_range": (1, 2), "hole_size_range": (0.2, 0.3)},
        {"hole_count_range": (2, 4), "hole_size_range": (0.2, 0.35)},
        {"hole_count_range": (4, 8), "hole_size_range": (0.25, 0.4)},
    )
    demo_note = "holes of the\nrecord's own size"
    value_unit_fields = ("fill_value",)

    def params_shape(self, samples: int, channels: int = 3) -> tuple[int, ...]:
        """Many small records: the holes are per record, whatever the record's size."""
        return (max(256, samples // 256), 12, 16, 1)

    def check_output(self, rec: Recorder, outputs: Outputs) -> None:
        config, images, out, ref, rng = outputs
        rec.aspect = "untouched values"
        covered, known, bad = pixel_states(config, images, out)
        rec.exact(
            bad == 0,
            "every pixel unchanged or the fill on every channel",
            f"{bad} pixels are neither",
        )
        rec.aspect = "law vs scipy"
        height, width = images.shape[1:3]
        probability = spec_module.coverage_probability(config, height, width).reshape(-1)
        order = np.argsort(probability, kind="stable")
        counts = one_pixel_per_record(covered, known, order, rng)
        ref_covered, ref_known, _ = pixel_states(config, images, ref)
        ref_counts = one_pixel_per_record(ref_covered, ref_known, order, rng)
        ranked = probability[order] / order.size
        expected = np.concatenate([ranked, 1.0 / order.size - ranked])
        what = "one pixel per record: (position, covered) vs the exact coverage map"
        rec.stat(kit.assert_chisquare_gof, counts, expected, what=what)
        rows, expected_rows = covered_by_band(covered, known, probability, order)
        what = f"covered pixels per record in {COVERAGE_BANDS} bands of the map vs exact"
        rec.stat(kit.assert_mean_vector, rows, expected_rows, what=what)
        rec.aspect = "vs reference"
        what = "one pixel per record: (position, covered) vs the reference's"
        rec.stat(kit.assert_chisquare_homogeneity, counts, ref_counts, what=what)
        fraction = (covered.sum(axis=(1, 2)) / known.sum(axis=(1, 2)).clip(1)).astype(float)
        ref_fraction = ref_covered.sum(axis=(1, 2)) / ref_known.sum(axis=(1, 2)).clip(1)
        what = "covered fraction of each record vs the reference's"
        rec.stat(kit.assert_ks_2samp, fraction, ref_fraction.astype(float), what=what)
        split = order.size
        covered_share = np.array([counts[:split].sum(), counts[split:].sum()])
        ref_share = np.array([ref_counts[:split].sum(), ref_counts[split:].sum()])
        mean_p = float(probability.mean())
        rec.run.samples.append(
            CategoricalSample(
                "coarse dropout: a random pixel per record",
                ("covered", "untouched"),
                covered_share,
                ref_share,
                np.array([mean_p, 1.0 - mean_p]),
            )
        )

    def check_params(
        self, rec: Recorder, config: Any, name: str, got: np.ndarray, ref: np.ndarray
    ) -> None:
        """One array alone says little here: ``check_all_params`` checks them together."""
        del rec, config, name, got, ref

    def check_all_params(
        self,
        rec: Recorder,
        config: Any,
        got: Mapping[str, np.ndarray],
        ref: Mapping[str, np.ndarray],
    ) -> None:
        self.check_count(rec, config, got["hole_count"], ref["hole_count"])
        height, width = self.params_shape(0)[1:3]
        sizes, corners = used_holes(got)
        ref_sizes, ref_corners = used_holes(ref)
        rng = np.random.default_rng(PICK_SEED)
        for axis, length, label in ((0, height, "height"), (1, width, "width")):
            probs = ideal_sides(length, *config.hole_size_range)
            observed = np.bincount(sizes[:, axis], minlength=length + 1)
            ref_observed = np.bincount(ref_sizes[:, axis], minlength=length + 1)
            what = f"hole {label}s ~ max(1, floor(U(size range) * {length} + 0.5))"
            rec.stat(kit.assert_chisquare_gof, observed, probs, what=what)
            what = f"hole {label}s vs reference.draw"
            rec.stat(kit.assert_chisquare_homogeneity, observed, ref_observed, what=what)
            levels = corner_levels(corners[:, axis], sizes[:, axis], length, rng)
            ref_levels = corner_levels(ref_corners[:, axis], ref_sizes[:, axis], length, rng)
            what = f"hole corners along the {label}: uniform over the fitting positions"
            rec.stat(kit.assert_ks_1samp, levels, scipy_stats.uniform(), what=what)
            what = f"hole corners along the {label} vs reference.draw"
            rec.stat(kit.assert_ks_2samp, levels, ref_levels, what=what)

    def check_count(self, rec: Recorder, config: Any, got: np.ndarray, ref: np.ndarray) -> None:
        """The count vs ``scipy.stats.randint(lo, hi + 1)`` and vs the reference's."""
        low, high = config.hole_count_range
        values = np.arange(low, high + 1)
        probs = scipy_stats.randint(low, high + 1).pmf(values)
        observed = np.array([np.sum(got == v) for v in values], np.float64)
        ref_observed = np.array([np.sum(ref == v) for v in values], np.float64)
        rec.stat(kit.assert_chisquare_gof, observed, probs, what="hole count ~ uniform on range")
        what = "hole count vs reference.draw"
        rec.stat(kit.assert_chisquare_homogeneity, observed, ref_observed, what=what)
        labels = tuple(str(v) for v in values)
        rec.run.samples.append(
            CategoricalSample(
                "coarse dropout: holes per record", labels, observed, ref_observed, probs
            )
        )

    def noise_scores(self, config: Any, images: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Each known pixel's ``(covered - p) / sd``, ``p`` its exact coverage probability:
        ``(records, H, W)``."""
        covered, known, _ = pixel_states(config, images, out)
        p = spec_module.coverage_probability(config, *images.shape[1:3])
        sd = np.sqrt(p * (1.0 - p))
        scores = np.divide(covered - p, sd, out=np.zeros(covered.shape), where=sd > 0)
        return np.where(known, scores, 0.0)

    def effect_label(self, original: np.ndarray, outputs: np.ndarray) -> str:
        return changed_fraction(original, outputs)

    def albumentations_counterpart(
        self, settings: Mapping[str, Any], album: ModuleType
    ) -> tuple[Any, str] | None:
        """``CoarseDropout`` with the same count and size ranges and fill."""
        count = tuple(int(v) for v in settings.get("hole_count_range", (1, 1)))
        sizes = tuple(float(v) for v in settings.get("hole_size_range", (0.1, 0.3)))
        transform = album.CoarseDropout(
            num_holes_range=count,
            hole_height_range=sizes,
            hole_width_range=sizes,
            fill=float(settings.get("fill_value", 0.0)),
            p=1.0,
        )
        return transform, (
            f"CoarseDropout(num_holes_range={count}, hole_height_range={sizes}, "
            "hole_width_range=same): the same law up to the rounding of the sides"
        )


LAW = CoarseLaw()
