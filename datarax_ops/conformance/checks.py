"""The conformance checks ``datarax-ops verify`` runs: the compiled operators, on the
backend JAX finds, against ``scipy.stats`` and against the NumPy reference.

Every mode of ``datarax_ops.modes.MODES`` is checked through the public API only
(``op(batch)``, ``apply_batch``, ``generate_random_params``, ``apply``), on a
*probe batch*: ``P x P x 3`` patches cut from the input picture(s) (the built-in
synthetic image, or the user's), cycled until the batch holds ``samples`` values.
Whatever the picture, the law of every output value given its input value is
known, so each check is exact in distribution:

=================  ==========================================================
property           what is checked (statistical checks at ``alpha`` each)
=================  ==========================================================
exact law          gaussian residuals ``out - x`` vs ``N(mean, std^2)`` (KS,
                   mean, variance); salt / pepper / unchanged counts vs the
                   multinomial; poisson counts by the randomized PIT (KS vs
                   U(0, 1)) and standardized mean and variance; dropout keep
                   counts vs the binomial
vs reference       the same statistic of the reference's own draws on the same
                   batch: two-sample KS or chi-square homogeneity
params             ``generate_random_params`` vs scipy and vs ``reference.draw``;
                   shapes and dtypes (exact)
clip range         a config with a clip range: every output inside (exact)
channel sharing    channel mode: each (record, channel) all kept or all dropped
independence       standardized noise of record ``2i`` vs ``2i+1``, and of call 1
                   vs call 2 (correlation tests); call 2 differs (exact)
batch split        the same records (metadata indices) in one batch or in two
                   give identical output; ``apply`` on one record equals it (exact)
determinism        same seed same output, another seed another output;
                   ``stochastic=False``: the same pattern every record and call
dtypes             float32, bfloat16, uint8 in, the same dtype and shape out
=================  ==========================================================

Exact checks cannot fail by chance (alpha 0).  The statistical ones fail a
correct operator with probability ``alpha`` each, so a run's false-alarm
probability is at most ``statistical checks x alpha`` (union bound, reported).

The operator is built by an *operator factory*: any callable
``factory(config, rngs=nnx.Rngs(...)) -> operator`` (the operator classes
themselves are such callables).  A test passes a deliberately wrong factory and
expects the checks to fail.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from scipy import stats as scipy_stats

import datarax_ops as dx
from datarax_ops import reference
from datarax_ops.conformance import stats as kit
from datarax_ops.modes import MODES
from datarax_ops.reference.common import full_scale, salt_pepper_fill

OperatorFactory = Callable[..., Any]
"""``factory(config, rngs=nnx.Rngs(...)) -> operator``."""

ALPHA = kit.ALPHA
DEFAULT_SAMPLES = 2**18
PATCH = 16  # probe records are PATCH x PATCH x 3 patches of the picture
CHANNEL_PATCH = 4  # channel mode's probe records (16 values share each decision)
SPLIT_RECORDS = 8  # records checked one by one through apply()
PLOT_VALUES = 20_000  # values kept per sample for the report's plots

MODE_NAMES: tuple[str, ...] = tuple(mode.name for mode in MODES)


# --------------------------------------------------------------------------- #
# Results                                                                      #
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Verdict:
    """One row of the verdict table.

    ``test`` is the kit's check name (``ks_1samp``, ``binomial``, ...) or
    ``exact``; ``pvalue`` is None and ``alpha`` 0 for exact checks.
    """

    mode: str
    aspect: str  # the table's "property" column: what is checked (law, independence, ...)
    what: str
    test: str
    statistic: float | None
    pvalue: float | None
    alpha: float
    passed: bool
    detail: str = ""

    @property
    def statistical(self) -> bool:
        return self.pvalue is not None

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "FAIL"


@dataclass
class ContinuousSample:
    """A continuous statistic of the operator's output, the reference's, and its exact law."""

    title: str
    xlabel: str
    op_values: np.ndarray
    ref_values: np.ndarray
    exact: Any  # a frozen scipy.stats distribution
    exact_label: str


@dataclass
class CategoricalSample:
    """Category counts of the operator's output and the reference's, and the exact probabilities."""

    title: str
    labels: tuple[str, ...]
    op_counts: np.ndarray
    ref_counts: np.ndarray
    exact_probs: np.ndarray


@dataclass(frozen=True)
class RateEstimate:
    """A probability estimated from ``hits`` of ``trials``, with its target."""

    label: str
    hits: int
    trials: int
    target: float

    def interval(self, confidence: float = 0.99) -> tuple[float, float]:
        """Clopper-Pearson interval of the rate at ``confidence``."""
        if self.trials == 0:
            return (0.0, 1.0)
        ci = scipy_stats.binomtest(self.hits, self.trials).proportion_ci(confidence, "exact")
        return (float(ci.low), float(ci.high))

    @property
    def estimate(self) -> float:
        return self.hits / self.trials if self.trials else math.nan


@dataclass
class ModeRun:
    """Everything one mode's checks produced: verdicts and the samples the report plots."""

    mode: str
    config: Any
    verdicts: list[Verdict] = field(default_factory=list)
    samples: list[ContinuousSample | CategoricalSample] = field(default_factory=list)
    rates: list[RateEstimate] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)


def false_alarm_budget(verdicts: Sequence[Verdict]) -> tuple[int, float]:
    """``(statistical checks, sum of their alphas)``: the union bound on the chance
    that a correct operator fails at least one of them."""
    statistical = [v for v in verdicts if v.statistical]
    return len(statistical), float(sum(v.alpha for v in statistical))


class Recorder:
    """Collects one mode's verdicts, statistical (via the kit) and exact."""

    def __init__(self, run: ModeRun, alpha: float) -> None:
        self.run, self.alpha, self.aspect = run, alpha, ""

    def stat(self, check: Callable[..., kit.CheckResult], *args: Any, what: str, **kw: Any) -> None:
        result = kit.collect(check, *args, what=what, alpha=self.alpha, **kw)
        self.run.verdicts.append(
            Verdict(
                mode=self.run.mode,
                aspect=self.aspect,
                what=what,
                test=result.check,
                statistic=result.statistic,
                pvalue=result.pvalue,
                alpha=result.alpha,
                passed=not result.rejected,
            )
        )

    def exact(self, ok: bool, what: str, detail: str = "") -> bool:
        self.run.verdicts.append(
            Verdict(
                mode=self.run.mode,
                aspect=self.aspect,
                what=what,
                test="exact",
                statistic=None,
                pvalue=None,
                alpha=0.0,
                passed=bool(ok),
                detail="" if ok else detail,
            )
        )
        return bool(ok)


# --------------------------------------------------------------------------- #
# Seeds, operators, batches                                                    #
# --------------------------------------------------------------------------- #
def default_factory(config: Any, *, rngs: nnx.Rngs | None = None) -> Any:
    """The real operator for ``config``: ``NoiseOperator`` or ``DropoutOperator``."""
    cls = dx.NoiseOperator if isinstance(config, dx.NoiseOperatorConfig) else dx.DropoutOperator
    return cls(config, rngs=rngs)


def build(factory: OperatorFactory, config: Any, seed: int) -> Any:
    """``factory(config, rngs=...)`` with ``seed`` on the config's stream (when stochastic)."""
    rngs = nnx.Rngs(**{config.stream_name or "default": seed}) if config.stochastic else None
    return factory(config, rngs=rngs)


def run_op(op: Any, images: np.ndarray, metadata: list[Any] | None = None) -> np.ndarray:
    """``op(batch)`` on ``images`` (leading batch axis); the output as NumPy."""
    batch = dx.Batch.from_parts(data={"image": jnp.asarray(images)}, metadata_list=metadata)
    return np.asarray(op(batch).data.get_value()["image"])


def probe_patches(images: Sequence[np.ndarray], patch: int = PATCH) -> np.ndarray:
    """Non-overlapping ``patch x patch`` tiles of every picture, in reading order.

    Args:
      images: float32 ``(H, W, 3)`` pictures in [0, 1] (sizes may differ).
      patch: tile side; every tile has side ``s = min(patch, smallest picture side)``.

    Returns:
      float32 ``(tiles, s, s, 3)``.
    """
    side = min([patch, *(min(im.shape[0], im.shape[1]) for im in images)])
    tiles = []
    for image in images:
        image = np.asarray(image, np.float32)
        rows, cols = image.shape[0] // side, image.shape[1] // side
        cropped = image[: rows * side, : cols * side, :3]
        grid = cropped.reshape(rows, side, cols, side, -1).swapaxes(1, 2)
        tiles.append(grid.reshape(rows * cols, side, side, -1))
    return np.concatenate(tiles)


def probe_batch(images: Sequence[np.ndarray], samples: int, patch: int = PATCH) -> np.ndarray:
    """Tiles of ``images`` cycled to ``records = ceil(samples / tile values)`` records
    (an even number, at least ``SPLIT_RECORDS``): float32 ``(records, s, s, 3)``."""
    tiles = probe_patches(images, patch)
    per_record = int(np.prod(tiles.shape[1:]))
    records = max(SPLIT_RECORDS, -(-int(samples) // per_record))
    records += records % 2
    return tiles[np.arange(records) % tiles.shape[0]]


def _subsample(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    values = np.asarray(values, np.float64).ravel()
    if values.size <= PLOT_VALUES:
        return values
    return rng.choice(values, PLOT_VALUES, replace=False)


def _counts_to_rate(label: str, counts: np.ndarray, index: int, target: float) -> RateEstimate:
    return RateEstimate(label, int(counts[index]), int(counts.sum()), float(target))


# --------------------------------------------------------------------------- #
# Configs                                                                      #
# --------------------------------------------------------------------------- #
def mode_config(mode: str, **overrides: Any) -> Any:
    """The stochastic config each mode is verified with (strengths that the
    samples resolve well), with ``overrides`` applied."""
    noise = dict(field_key="image", stochastic=True)
    settings: dict[str, tuple[type, dict[str, Any]]] = {
        "gaussian": (
            dx.NoiseOperatorConfig,
            dict(noise, mode="gaussian", noise_std=0.1, noise_mean=0.0, clip_range=None),
        ),
        "salt_pepper": (
            dx.NoiseOperatorConfig,
            dict(noise, mode="salt_pepper", salt_prob=0.05, pepper_prob=0.05),
        ),
        "poisson": (
            dx.NoiseOperatorConfig,
            dict(noise, mode="poisson", lam_scale=30.0, clip_range=None),
        ),
        "pixel": (dx.DropoutOperatorConfig, dict(noise, mode="pixel", dropout_rate=0.2)),
        "channel": (dx.DropoutOperatorConfig, dict(noise, mode="channel", dropout_rate=0.3)),
    }
    if mode not in settings:
        raise ValueError(
            f"no verify setup for mode {mode!r}; known: {sorted(settings)} (add one in "
            "datarax_ops/conformance/checks.py when a mode is added to datarax_ops.modes)"
        )
    cls, kwargs = settings[mode]
    return cls(**{**kwargs, **overrides})


def clip_config(mode: str) -> Any:
    """The mode's config with a clip range its output reaches on [0, 1] pictures."""
    if mode == "gaussian":
        return mode_config(mode, noise_std=0.3, clip_range=(0.0, 1.0))
    if mode == "poisson":
        return mode_config(mode, lam_scale=5.0, clip_range=(0.0, 1.0))
    if mode in ("pixel", "channel"):
        return mode_config(mode, clip_range=(0.05, 0.6))
    return mode_config(mode, clip_range=(0.0, 0.9))


# --------------------------------------------------------------------------- #
# The law of each mode's output, given the input                               #
# --------------------------------------------------------------------------- #
def keep_decisions(images: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Dropout: ``(kept, known, bad)`` per value; ``known`` where ``x != 0`` (a dropped 0
    looks kept); ``bad`` counts known values neither kept unchanged nor zeroed."""
    known = images != 0
    kept, dropped = out == images, out == 0
    bad = int(np.sum(known & (kept == dropped)))
    return kept & known, known, bad


def channel_decisions(
    images: np.ndarray, out: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Channel dropout: ``(kept, known, bad, mixed)`` per ``(record, channel)``.

    ``mixed`` counts (record, channel) slices whose known values are partly kept
    and partly dropped (channel sharing broken).
    """
    kept, known, bad = keep_decisions(images, out)
    any_known = known.any(axis=(1, 2))
    all_kept = (kept | ~known).all(axis=(1, 2))
    any_kept = kept.any(axis=(1, 2))
    mixed = int(np.sum(any_known & (all_kept != any_kept)))
    return np.asarray(all_kept & any_known), np.asarray(any_known), bad, mixed


def salt_pepper_categories(
    config: Any, images: np.ndarray, out: np.ndarray
) -> tuple[np.ndarray, int]:
    """``[salt, pepper, unchanged]`` counts over values ``x`` that differ from both fill
    values (so the category is readable), and how many such values are none of them."""
    salt_value, pepper_value = salt_pepper_fills(config, images)
    readable = (images != salt_value) & (images != pepper_value)
    salt, pepper, same = out == salt_value, out == pepper_value, out == images
    one_of = salt.astype(int) + pepper.astype(int) + same.astype(int) == 1
    bad = int(np.sum(readable & ~one_of))
    counts = np.array([np.sum(c & readable) for c in (salt, pepper, same)], np.float64)
    return counts, bad


def per_record(rule: Callable[[np.ndarray], float], images: np.ndarray) -> np.ndarray:
    """``rule(record)`` for every record of ``images`` (leading batch axis), as float64
    of shape ``(records, 1, ..., 1)``: it broadcasts against ``images``."""
    values = np.array([rule(record) for record in images], np.float64)
    return values.reshape(-1, *[1] * (images.ndim - 1))


def salt_pepper_fills(config: Any, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The salt and pepper values of each record (``reference.common.salt_pepper_fill``),
    each float64 ``(records, 1, ..., 1)``."""

    def fill(which: int) -> np.ndarray:
        return per_record(
            lambda r: salt_pepper_fill(r, config.salt_value, config.pepper_value)[which], images
        )

    return fill(0), fill(1)


def poisson_gain(config: Any, images: np.ndarray) -> np.ndarray:
    """``lam_scale / s`` per record (``s = reference.common.full_scale``: 255 for
    0..255 data, else 1), float64 ``(records, 1, ..., 1)``."""
    return config.lam_scale / per_record(full_scale, images)


def poisson_lambda(config: Any, images: np.ndarray) -> np.ndarray:
    """``lam = max(x, 0) * lam_scale / s`` per value."""
    return np.maximum(images.astype(np.float64), 0.0) * poisson_gain(config, images)


def poisson_counts(config: Any, images: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, int]:
    """``k = out * lam_scale / s`` rounded, and how many outputs are off that lattice."""
    raw = out.astype(np.float64) * poisson_gain(config, images)
    k = np.rint(raw)
    off = int(np.sum(np.abs(raw - k) > 1e-5 * np.maximum(k, 1.0)))
    return k, off


def randomized_pit(k: np.ndarray, lam: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``F(k - 1) + V (F(k) - F(k - 1))`` with ``V ~ U(0, 1)``: exactly U(0, 1) when each
    ``k ~ Poisson(lam)`` independently, whatever the ``lam`` (a discrete PIT)."""
    upper = scipy_stats.poisson.cdf(k, lam)
    lower = scipy_stats.poisson.cdf(k - 1, lam)
    return lower + rng.random(k.shape) * (upper - lower)


def noise_scores(config: Any, images: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Each output value's noise standardized by its law given ``x``: mean 0, variance 1,
    independent across values for a correct operator; 0 where the law has no variance
    (or the value is unreadable).  Channel mode: one score per (record, channel).

    Shape: ``images.shape`` (``(records, channels)`` for channel mode), float64.
    """
    x, y = images.astype(np.float64), out.astype(np.float64)
    mode = config.mode
    if mode == "gaussian":
        return (y - x - config.noise_mean) / config.noise_std
    if mode == "salt_pepper":
        counts_probs = (config.salt_prob, config.pepper_prob)
        salt, pepper = salt_pepper_fills(config, images)
        keep = 1.0 - sum(counts_probs)
        mean = counts_probs[0] * salt + counts_probs[1] * pepper + keep * x
        second = counts_probs[0] * salt**2 + counts_probs[1] * pepper**2 + keep * x**2
        sd = np.sqrt(np.maximum(second - mean**2, 0.0))
        return np.where(sd > 0, (y - mean) / np.where(sd > 0, sd, 1.0), 0.0)
    if mode == "poisson":
        lam = poisson_lambda(config, images)
        k = np.rint(y * poisson_gain(config, images))
        return np.where(lam > 0, (k - lam) / np.sqrt(np.where(lam > 0, lam, 1.0)), 0.0)
    keep = 1.0 - config.dropout_rate
    sd = math.sqrt(keep * (1.0 - keep)) or 1.0
    if mode == "channel":
        kept, known, _, _ = channel_decisions(images, out)
    else:
        kept, known, _ = keep_decisions(images, out)
    return np.where(known, (kept - keep) / sd, 0.0)


# --------------------------------------------------------------------------- #
# The checks                                                                   #
# --------------------------------------------------------------------------- #
def reference_output(config: Any, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The reference's own draw applied to ``images``: ``reference.draw`` + ``apply_batch``."""
    params = reference.draw(config, rng, images.shape[1:], images.shape[0])
    return reference.apply_batch(config, images, params)


def check_law(
    rec: Recorder,
    config: Any,
    images: np.ndarray,
    out: np.ndarray,
    ref: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """The exact law of ``op(batch)``'s output vs scipy, and vs the reference's output."""
    run, mode = rec.run, config.mode
    if mode == "gaussian":
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
        run.samples.append(
            ContinuousSample(
                "gaussian residuals",
                "out - x",
                _subsample(residual, rng),
                _subsample(ref_residual, rng),
                scipy_stats.norm(mean, std),
                f"exact N({mean:g}, {std:g}²)",
            )
        )
    elif mode == "salt_pepper":
        rec.aspect = "law vs scipy"
        counts, bad = salt_pepper_categories(config, images, out)
        rec.exact(bad == 0, "every value is salt, pepper or unchanged", f"{bad} values are not")
        probs = np.array([config.salt_prob, config.pepper_prob, 0.0])
        probs[2] = 1.0 - probs[:2].sum()
        rec.stat(
            kit.assert_chisquare_gof, counts, probs, what="salt/pepper/unchanged ~ multinomial"
        )
        rec.aspect = "vs reference"
        ref_counts, _ = salt_pepper_categories(config, images, ref)
        rec.stat(
            kit.assert_chisquare_homogeneity,
            counts,
            ref_counts,
            what="categories vs the reference's",
        )
        run.samples.append(
            CategoricalSample(
                "salt & pepper categories",
                ("salt", "pepper", "unchanged"),
                counts,
                ref_counts,
                probs,
            )
        )
        run.rates += [
            _counts_to_rate("salt rate", counts, 0, probs[0]),
            _counts_to_rate("pepper rate", counts, 1, probs[1]),
        ]
    elif mode == "poisson":
        rec.aspect = "law vs scipy"
        lam = poisson_lambda(config, images)
        k, off = poisson_counts(config, images, out)
        rec.exact(off == 0, "outputs on the lattice k / lam_scale", f"{off} outputs are not")
        pit = randomized_pit(k, lam, rng)
        rec.stat(
            kit.assert_ks_1samp,
            pit,
            scipy_stats.uniform(),
            what="randomized PIT of counts ~ U(0,1)",
        )
        positive = lam > 0
        z = (k - lam)[positive] / np.sqrt(lam[positive])
        rec.stat(kit.assert_normal_mean, z, 0.0, 1.0, what="mean: (k - lam) / sqrt(lam)")
        w = ((k - lam) ** 2 - lam)[positive] / np.sqrt(lam + 2 * lam**2)[positive]
        rec.stat(kit.assert_normal_mean, w, 0.0, 1.0, what="variance: ((k-lam)^2 - lam) / sd")
        rec.aspect = "vs reference"
        ref_k, _ = poisson_counts(config, images, ref)
        top = int(max(k.max(), ref_k.max())) + 1
        rec.stat(
            kit.assert_chisquare_homogeneity,
            np.bincount(k.astype(np.int64).ravel(), minlength=top),
            np.bincount(ref_k.astype(np.int64).ravel(), minlength=top),
            what="counts vs the reference's",
        )
        ref_pit = randomized_pit(ref_k, lam, rng)
        run.samples.append(
            ContinuousSample(
                "poisson counts, randomized PIT",
                "F(k-1) + V·P(k) under Poisson(x·lam_scale)",
                _subsample(pit, rng),
                _subsample(ref_pit, rng),
                scipy_stats.uniform(),
                "exact U(0, 1)",
            )
        )
    else:
        keep = 1.0 - config.dropout_rate
        rec.aspect = "keep rate"
        if mode == "channel":
            kept, known, bad, mixed = channel_decisions(images, out)
            rec.aspect = "channel sharing"
            rec.exact(
                mixed == 0,
                "each (record, channel) all kept or all dropped",
                f"{mixed} slices are partly kept",
            )
            ref_kept, ref_known, _, _ = channel_decisions(images, ref)
            rec.aspect = "keep rate"
        else:
            kept, known, bad = keep_decisions(images, out)
            ref_kept, ref_known, _ = keep_decisions(images, ref)
        rec.exact(bad == 0, "every value kept unchanged or zeroed", f"{bad} values are neither")
        hits, trials = int(kept.sum()), int(known.sum())
        unit = "channels" if mode == "channel" else "values"
        rec.stat(
            kit.assert_binomial, hits, trials, keep, what=f"kept {unit} ~ Binomial(n, {keep:g})"
        )
        rec.aspect = "vs reference"
        ref_hits, ref_trials = int(ref_kept.sum()), int(ref_known.sum())
        counts = np.array([hits, trials - hits], np.float64)
        ref_counts = np.array([ref_hits, ref_trials - ref_hits], np.float64)
        rec.stat(
            kit.assert_chisquare_homogeneity,
            counts,
            ref_counts,
            what=f"kept/dropped {unit} vs the reference's",
        )
        run.samples.append(
            CategoricalSample(
                f"{mode} dropout decisions ({unit})",
                ("kept", "dropped"),
                counts,
                ref_counts,
                np.array([keep, 1.0 - keep]),
            )
        )
        run.rates.append(RateEstimate(f"keep rate of {unit}, op(batch)", hits, trials, keep))


def output_law(
    config: Any,
    images: np.ndarray,
    out: np.ndarray,
    ref: np.ndarray,
    *,
    seed: int = 0,
    alpha: float = ALPHA,
) -> ModeRun:
    """Only the law checks of :func:`check_law`, on outputs computed elsewhere (no
    operator is built): ``out`` is judged against scipy and against ``ref``.

    Args:
      config: the stochastic config ``out`` is supposed to follow.
      images: float32 ``(records, H, W, 3)`` inputs in [0, 1].
      out, ref: outputs for ``images``, same shape and dtype.
    """
    run = ModeRun(config.mode, config)
    rng = np.random.default_rng(kit.seed_for(f"{config.mode}/numpy", run_seed=seed, bits=31))
    check_law(Recorder(run, alpha), config, images, out, ref, rng)
    return run


def check_params(
    rec: Recorder, factory: OperatorFactory, config: Any, samples: int, seed: int
) -> None:
    """``generate_random_params`` vs scipy and vs ``reference.draw``; shapes and dtypes."""
    rec.aspect = "params"
    mode = config.mode
    channels = 3
    side = max(1, int(math.sqrt(samples / channels / 64)))
    # channel masks hold one decision per channel: many small records give the sample
    shape = (
        (max(2, samples // channels), 1, 1, channels)
        if mode == "channel"
        else (64, side, side, channels)
    )
    op = build(factory, config, kit.seed_for(f"{mode}/params/op", run_seed=seed, bits=31))
    key = jax.random.key(kit.seed_for(f"{mode}/params/key", run_seed=seed, bits=31))
    params = {k: np.asarray(v) for k, v in op.generate_random_params(key, {"image": shape}).items()}
    ref = reference.draw(
        config,
        np.random.default_rng(kit.seed_for(f"{mode}/params/ref", run_seed=seed, bits=31)),
        shape[1:],
        shape[0],
    )
    same_layout = list(params) == list(ref) and all(
        params[k].shape == ref[k].shape and params[k].dtype == ref[k].dtype for k in ref
    )
    layout = {k: (v.shape, str(v.dtype)) for k, v in params.items()}
    ref_layout = {k: (v.shape, str(v.dtype)) for k, v in ref.items()}
    if not rec.exact(
        same_layout,
        "params keys, shapes, dtypes = reference.draw's",
        f"got {layout}, reference {ref_layout}",
    ):
        return
    name = next(iter(ref))
    got = params[name]
    if mode == "gaussian":
        dist = scipy_stats.norm(config.noise_mean, config.noise_std)
        rec.stat(kit.assert_ks_1samp, got, dist, what=f"params {name!r} ~ N(mean, std^2)")
        rec.stat(kit.assert_ks_2samp, got, ref[name], what=f"params {name!r} vs reference.draw")
    elif got.dtype == np.bool_:
        keep = 1.0 - config.dropout_rate
        rec.stat(
            kit.assert_binomial,
            int(got.sum()),
            got.size,
            keep,
            what=f"params {name!r} ~ Bernoulli({keep:g})",
        )
        rec.stat(
            kit.assert_chisquare_homogeneity,
            [got.sum(), got.size - got.sum()],
            [ref[name].sum(), ref[name].size - ref[name].sum()],
            what=f"params {name!r} vs reference.draw",
        )
        rec.run.rates.append(
            RateEstimate("keep rate, generate_random_params", int(got.sum()), int(got.size), keep)
        )
    else:
        inside = bool(np.all((got >= 0.0) & (got < 1.0)))
        if rec.exact(inside, f"params {name!r} in [0, 1)", "levels outside [0, 1)"):
            rec.stat(
                kit.assert_ks_1samp, got, scipy_stats.uniform(), what=f"params {name!r} ~ U(0,1)"
            )
        rec.stat(kit.assert_ks_2samp, got, ref[name], what=f"params {name!r} vs reference.draw")


def check_clip(
    rec: Recorder, factory: OperatorFactory, mode: str, images: np.ndarray, seed: int
) -> None:
    """A config with a clip range: every output inside it (exact)."""
    rec.aspect = "clip range"
    config = clip_config(mode)
    low, high = config.clip_range
    out = run_op(
        build(factory, config, kit.seed_for(f"{mode}/clip", run_seed=seed, bits=31)), images
    )
    outside = int(np.sum(~((out >= low) & (out <= high))))
    rec.exact(
        outside == 0, f"outputs inside clip_range ({low:g}, {high:g})", f"{outside} values outside"
    )
    at_bounds = int(np.sum((out == low) | (out == high)))
    rec.exact(
        at_bounds > 0,
        "the clip range is reached (values at its bounds)",
        "no value at a bound: the clip check proved nothing",
    )


def check_independence(
    rec: Recorder, config: Any, images: np.ndarray, first: np.ndarray, second: np.ndarray
) -> None:
    """Noise of record 2i vs 2i+1 and of call 1 vs call 2 of the same operator."""
    rec.aspect = "independence"
    rec.exact(
        not np.array_equal(first, second),
        "two calls give different output",
        "call 2 repeated call 1",
    )
    a, b = noise_scores(config, images, first), noise_scores(config, images, second)
    rec.stat(
        kit.assert_uncorrelated,
        a[0::2].ravel(),
        a[1::2].ravel(),
        what="noise of record 2i vs record 2i+1",
    )
    rec.stat(kit.assert_uncorrelated, a.ravel(), b.ravel(), what="noise of call 1 vs call 2")


def check_split_and_apply(
    rec: Recorder,
    factory: OperatorFactory,
    config: Any,
    images: np.ndarray,
    first: np.ndarray,
    op_seed: int,
) -> None:
    """The records of ``first`` (record ``i`` numbered ``i`` by the operator's counter)
    again through a fresh operator with the same seed: in two batches whose metadata
    give the same indices, and one by one through ``apply``.  Identical output (exact)."""
    rec.aspect = "batch split"
    records = images.shape[0]
    meta = [{"index": i} for i in range(records)]
    half = records // 2
    split_op = build(factory, config, op_seed)
    parts = np.concatenate(
        [run_op(split_op, images[:half], meta[:half]), run_op(split_op, images[half:], meta[half:])]
    )
    rec.exact(
        np.array_equal(first, parts),
        f"1x{records} batch (counter) = 2x{half} batches (metadata index)",
        f"{int(np.sum(first != parts))} values differ",
    )
    element_op = build(factory, config, op_seed)
    picked = range(0, records, max(1, records // SPLIT_RECORDS))[:SPLIT_RECORDS]
    one_by_one = np.stack(
        [
            np.asarray(element_op.apply({"image": jnp.asarray(images[i])}, {}, meta[i])[0]["image"])
            for i in picked
        ]
    )
    expected = first[list(picked)]
    rec.exact(
        np.array_equal(expected, one_by_one),
        f"apply() on {len(picked)} single records = their op(batch) output",
        f"{int(np.sum(expected != one_by_one))} values differ",
    )


def check_determinism(
    rec: Recorder,
    factory: OperatorFactory,
    config: Any,
    images: np.ndarray,
    first: np.ndarray,
    op_seed: int,
) -> None:
    """Same seed same output, another seed another; the deterministic mode's fixed pattern."""
    rec.aspect = "determinism"
    again = run_op(build(factory, config, op_seed), images)
    rec.exact(
        np.array_equal(first, again),
        "same seed, same output",
        f"{int(np.sum(first != again))} values differ",
    )
    other = run_op(build(factory, config, (op_seed + 1) % 2**31), images)
    rec.exact(
        not np.array_equal(first, other),
        "another seed, another output",
        "two seeds gave the same output",
    )
    fixed = dataclasses.replace(config, stochastic=False, stream_name=None)
    op = build(factory, fixed, 0)
    same = np.broadcast_to(images[:1], images.shape).copy()
    one, two = run_op(op, same), run_op(op, same)
    rec.exact(
        np.array_equal(one, two) and bool(np.all(one == one[:1])),
        "stochastic=False: one pattern for every record and call",
        "deterministic output differs between records or calls",
    )


def check_dtypes(
    rec: Recorder,
    factory: OperatorFactory,
    config: Any,
    images: np.ndarray,
    first: np.ndarray,
    seed: int,
) -> None:
    """float32 (the probe batch) and uint8 input: the same dtype and shape out."""
    rec.aspect = "dtypes"
    rec.exact(
        first.shape == images.shape and first.dtype == np.float32,
        "float32 in, float32 out",
        f"got {first.dtype} {first.shape}",
    )
    as_bytes = np.rint(images * 255.0).astype(np.uint8)
    out = run_op(
        build(factory, config, kit.seed_for(f"{config.mode}/dtypes", run_seed=seed, bits=31)),
        as_bytes,
    )
    rec.exact(
        out.shape == as_bytes.shape and out.dtype == np.uint8,
        "uint8 in, uint8 out",
        f"got {out.dtype} {out.shape}",
    )


def verify_mode(
    mode: str,
    images: Sequence[np.ndarray],
    *,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    factory: OperatorFactory = default_factory,
    alpha: float = ALPHA,
) -> ModeRun:
    """Every check of one mode.

    Args:
      mode: a name from ``datarax_ops.modes.MODES``.
      images: float32 ``(H, W, 3)`` pictures in [0, 1]; the probe batch is cut from them.
      samples: values per statistical sample (the probe batch holds at least this many).
      seed: the run's seed; every operator and generator seed derives from it.
      factory: builds the operator under test, ``factory(config, rngs=...)``.
      alpha: the level of every statistical check.

    Returns:
      The mode's verdicts, plot samples and rate estimates.
    """
    started = time.perf_counter()
    config = mode_config(mode)
    run = ModeRun(mode, config)
    rec = Recorder(run, alpha)
    rng = np.random.default_rng(kit.seed_for(f"{mode}/numpy", run_seed=seed, bits=31))
    # channel mode decides once per (record, channel): small tiles give many decisions
    batch = probe_batch(images, samples, CHANNEL_PATCH if mode == "channel" else PATCH)
    op_seed = kit.seed_for(f"{mode}/op", run_seed=seed, bits=31)
    op = build(factory, config, op_seed)
    first = run_op(op, batch)  # records 0 .. N-1 of the operator's counter
    second = run_op(op, batch)  # records N .. 2N-1
    ref = reference_output(
        config, batch, np.random.default_rng(kit.seed_for(f"{mode}/ref", run_seed=seed, bits=31))
    )
    check_law(rec, config, batch, first, ref, rng)
    check_params(rec, factory, config, samples, seed)
    check_clip(rec, factory, mode, batch, seed)
    check_independence(rec, config, batch, first, second)
    check_split_and_apply(rec, factory, config, batch, first, op_seed)
    check_determinism(rec, factory, config, batch, first, op_seed)
    check_dtypes(rec, factory, config, batch, first, seed)
    run.seconds = time.perf_counter() - started
    return run
