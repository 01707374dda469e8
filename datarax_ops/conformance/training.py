"""The conformance checks of the training settings (issue 17), run by ``datarax-ops verify``
after each mode's own checks: strength ranges, shared channels, apply probability.

For every mode, one run per setting that applies to it, each on the mode's verify
config (``laws/<mode>.py``) with that one setting on and no clip (so outputs show
the noise):

=================  ==========================================================
setting            what is checked (statistical checks at ``alpha`` each)
=================  ==========================================================
range              the strengths ``generate_random_params`` draws, one per
                   record, vs their law (KS: uniform, ``lam_scale``
                   log-uniform) and vs the reference's draws (two-sample KS),
                   plotted against the law; the output vs the reference's
                   own draw of the same config (the mixture: two-sample KS
                   of each record's mean ``|out - x|``)
shared channels    every channel of a pixel gets the same draw: params and
                   the output of a constant picture (exact)
apply_prob         the records ``generate_random_params`` transforms ~
                   Binomial(records, p); in ``op(batch)`` the others are
                   bit for bit the input and the transformed ones equal the
                   ``apply_prob=1`` output (exact)
every setting      ``op(batch)`` is the reference's output from the operator's
                   key and the records' indices (``reference.operator_output``:
                   exact; gaussian and poisson within 1e-5 except poisson's
                   rare one-count misses), and so is every per-record draw of
                   ``generate_random_params``
=================  ==========================================================

Like ``checks``, nothing here asks which mode it has: a mode's settings come from
``reference.config`` (``RANGE_FIELDS``, ``PER_CHANNEL_MODES``) and its verify config
from its law.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from scipy import stats as scipy_stats

from datarax_ops import reference
from datarax_ops.conformance import stats as kit
from datarax_ops.conformance.checks import (
    ALPHA,
    DEFAULT_SAMPLES,
    OperatorFactory,
    build,
    default_factory,
    mode_seed,
    probe_batch,
    reference_output,
    run_op,
)
from datarax_ops.conformance.laws import law_for
from datarax_ops.conformance.results import (
    ContinuousSample,
    ModeRun,
    RateEstimate,
    Recorder,
    plot_sample,
)
from datarax_ops.reference.config import PER_CHANNEL_MODES, RANGE_FIELDS

# The range verify gives each scalar (wide: the law spans a visible interval).
RANGES: dict[str, tuple[float, float]] = {
    "noise_std": (0.0, 0.2),
    "salt_prob": (0.0, 0.2),
    "pepper_prob": (0.0, 0.2),
    "lam_scale": (3.0, 300.0),
    "dropout_rate": (0.05, 0.6),
}
APPLY_PROB = 0.6
# Records of the params sample (one strength or decision each).
PARAM_RECORDS = 4000
# Output tolerance of the reproduction for the modes compared in float arithmetic.
REPRODUCTION_ATOL = 1e-5
MISS_FRACTION = 1e-4


def training_configs(mode: str) -> list[tuple[str, Any]]:
    """``[(setting, config), ...]``: the mode's verify config with one setting on each."""
    base = law_for(mode).config()
    if hasattr(base, "noise_std"):  # noise modes: no clip, so the output shows the noise
        base = dataclasses.replace(base, clip_range=None)
    ranged = {name: RANGES[scalar] for name, scalar in RANGE_FIELDS[mode]}
    settings = [("range", dataclasses.replace(base, **ranged))]
    if mode in PER_CHANNEL_MODES:
        settings.append(("shared channels", dataclasses.replace(base, per_channel=False)))
    settings.append(("apply_prob", dataclasses.replace(base, apply_prob=APPLY_PROB)))
    return settings


def _is_log_uniform(scalar: str) -> bool:
    """Whether a strength named ``scalar`` is declared log-uniform."""
    declared = [s for mode in reference.MODES for s in mode.strengths if s.scalar == scalar]
    return any(s.law == "log-uniform" for s in declared)


def _law_of(scalar: str, low: float, high: float) -> tuple[Any, str]:
    """The exact law of a drawn ``scalar`` and its label."""
    if _is_log_uniform(scalar):
        return scipy_stats.loguniform(low, high), f"log-uniform [{low:g}, {high:g}]"
    return scipy_stats.uniform(low, high - low), f"uniform [{low:g}, {high:g}]"


def check_reproduction(rec: Recorder, op: Any, config: Any, images: np.ndarray) -> np.ndarray:
    """``op(batch)`` on ``images`` (records ``0 ..``) equals the reference from the
    operator's base key; returns the output."""
    rec.aspect = "vs reference"
    out = run_op(op, images)
    base_key = np.asarray(op.get_state()["_base_key"])
    expected = reference.operator_output(config, images, base_key, np.arange(images.shape[0]))
    error = np.abs(out.astype(np.float64) - expected.astype(np.float64))
    exact_modes = ("salt_pepper", "pixel", "channel")
    tolerance = 0.0 if config.mode in exact_modes else REPRODUCTION_ATOL
    off = int(np.sum(error > tolerance))
    # poisson's float32 quantile may miss by one count where a level sits on a CDF step
    # (~1e-6 of values, datarax_ops.poisson): allowed up to MISS_FRACTION of the values
    allowed = 0 if config.mode in exact_modes else int(MISS_FRACTION * error.size)
    rec.exact(
        off <= allowed,
        f"op(batch) = reference.operator_output from the key ({off} of {error.size} values "
        f"off by more than {tolerance:g})",
        f"{off} values off, at most {allowed} allowed; max error {float(error.max()):.3g}",
    )
    return out


def check_record_draws(rec: Recorder, op: Any, config: Any, seed: int) -> dict[str, np.ndarray]:
    """``generate_random_params`` over ``PARAM_RECORDS`` records: every per-record draw
    equals the reference's from the same keys; returns the params."""
    rec.aspect = "params"
    rng = jax.random.key(seed)
    shape = (PARAM_RECORDS, 2, 2, 3)
    params = {k: np.asarray(v) for k, v in op.generate_random_params(rng, {"image": shape}).items()}
    keys = reference.stream.record_key(np.asarray(jax.random.key_data(rng)), np.arange(shape[0]))
    expected = reference.draw(config, reference.StreamSource(keys), shape[1:], shape[0])
    rec.exact(
        sorted(params) == sorted(expected),
        "params keys are the reference's",
        f"{sorted(params)} != {sorted(expected)}",
    )
    for name in sorted(set(params) & set(expected)):
        if params[name].shape != (shape[0],):
            continue  # per-value params: their laws are the mode's own checks
        if _is_log_uniform(name):
            same = np.allclose(params[name], expected[name], rtol=1e-6)
        else:
            same = np.array_equal(params[name], expected[name])
        rec.exact(bool(same), f"every record's {name} = the reference's from its key")
    return params


def check_strengths(
    rec: Recorder, config: Any, params: dict[str, np.ndarray], run: ModeRun, seed: int
) -> None:
    """Each drawn strength vs its law and vs the reference's draws; plotted."""
    rec.aspect = "strength law"
    rng = np.random.default_rng(seed)
    ref = reference.record.draw_strengths(config, rng, PARAM_RECORDS)
    for name, scalar in RANGE_FIELDS[config.mode]:
        low, high = getattr(config, name)
        law, label = _law_of(scalar, low, high)
        drawn = params[scalar].astype(np.float64)
        rec.stat(kit.assert_ks_1samp, drawn, law.cdf, what=f"drawn {scalar} ~ {label}")
        rec.stat(kit.assert_ks_2samp, drawn, ref[scalar], what=f"drawn {scalar} vs the reference's")
        run.samples.append(
            ContinuousSample(
                title=f"drawn {scalar}, one per record",
                xlabel=scalar,
                op_values=plot_sample(drawn, rng),
                ref_values=plot_sample(ref[scalar], rng),
                exact=law,
                exact_label=label,
            )
        )


def check_mixture(
    rec: Recorder, config: Any, images: np.ndarray, out: np.ndarray, seed: int
) -> None:
    """The records' mean absolute change ``mean |out - x|`` vs the reference's own draw of
    the same config: one value per record (the values of a record share its strength,
    so only records are independent), two-sample KS."""
    rec.aspect = "output law"
    ref = reference_output(config, images, np.random.default_rng(seed))
    records = images.shape[0]
    got = np.abs(out.astype(np.float64) - images).reshape(records, -1).mean(axis=1)
    want = np.abs(ref.astype(np.float64) - images).reshape(records, -1).mean(axis=1)
    rec.stat(
        kit.assert_ks_2samp,
        got,
        want,
        what="per-record mean |out - x| vs the reference's (the mixture)",
    )


def check_shared_channels(rec: Recorder, op: Any, params: dict[str, np.ndarray]) -> None:
    """Every channel of each pixel equal: the per-value params and a constant picture's output."""
    rec.aspect = "shared channels"
    for name, values in params.items():
        if values.ndim == 4:
            rec.exact(
                bool(np.all(values == values[..., :1])),
                f"params {name}: every channel of a pixel equal",
            )
    constant = np.full((8, 6, 6, 3), 0.5, np.float32)
    out = run_op(op, constant)
    rec.exact(bool(np.all(out == out[..., :1])), "a constant picture's output: channels equal")


def check_apply(
    rec: Recorder,
    factory: OperatorFactory,
    config: Any,
    params: dict[str, np.ndarray],
    images: np.ndarray,
    out: np.ndarray,
    run: ModeRun,
    seed: int,
) -> None:
    """Applied records ~ Binomial; the others pass through bit for bit."""
    rec.aspect = "apply_prob"
    applied = params["apply"]
    hits = int(applied.sum())
    rec.stat(
        kit.assert_binomial,
        hits,
        applied.size,
        config.apply_prob,
        what=f"records applied ~ Binomial({applied.size}, {config.apply_prob:g})",
    )
    run.rates.append(RateEstimate("records applied", hits, applied.size, config.apply_prob))
    always = run_op(build(factory, dataclasses.replace(config, apply_prob=1.0), seed), images)
    # op(batch)'s decisions: the reference's from the operator's key (records 0 ..)
    op_key = np.asarray(build(factory, config, seed).get_state()["_base_key"])
    drawn = reference.stream_params(config, op_key, np.arange(images.shape[0]), images.shape[1:])
    chosen = drawn["apply"]
    untouched = np.all(out[~chosen] == images[~chosen])
    transformed = np.array_equal(out[chosen], always[chosen])
    rec.exact(bool(untouched), f"{int((~chosen).sum())} records not applied: the input, exactly")
    rec.exact(bool(transformed), f"{int(chosen.sum())} applied records: the apply_prob=1 output")


def verify_training(
    mode: str,
    images: Sequence[np.ndarray],
    *,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    factory: OperatorFactory = default_factory,
    alpha: float = ALPHA,
) -> list[ModeRun]:
    """One ``ModeRun`` per training setting of ``mode`` (named ``"<mode> · <setting>"``).

    Args: as ``checks.verify_mode``.
    """
    runs = []
    for setting, config in training_configs(mode):
        started = time.perf_counter()
        run = ModeRun(f"{mode} · {setting}", config)
        rec = Recorder(run, alpha)
        purpose = f"training/{setting}"
        op_seed = mode_seed(seed, mode, f"{purpose}/op")
        batch = probe_batch(images, samples, law_for(mode).patch)
        op = build(factory, config, op_seed)
        out = check_reproduction(rec, op, config, batch)
        params = check_record_draws(
            rec, build(factory, config, op_seed), config, mode_seed(seed, mode, f"{purpose}/key")
        )
        if setting == "range":
            check_strengths(rec, config, params, run, mode_seed(seed, mode, f"{purpose}/ref"))
            check_mixture(rec, config, batch, out, mode_seed(seed, mode, f"{purpose}/numpy"))
        elif setting == "shared channels":
            check_shared_channels(rec, build(factory, config, op_seed), params)
        else:
            check_apply(rec, factory, config, params, batch, out, run, op_seed)
        run.seconds = time.perf_counter() - started
        runs.append(run)
    return runs
