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
                   exact, or within the law's ``reproduction_atol`` but
                   for its ``reproduction_misses`` of the values), and so
                   is every per-record draw of ``generate_random_params``
=================  ==========================================================

Every check here reads the operator's key and draws through our stream, and sets the
training fields of our configs: a target lacking those capabilities
(:data:`TRAINING_NEEDS`) gets one n/a row per setting, with its reason.

Like ``checks``, nothing here asks which mode it has: a mode's settings come from
its declaration (``ModeSpec.strengths``, with each ``Strength``'s ``law`` and
``example_range``; ``ModeSpec.per_value_draws``), its verify config and its output
tolerance from its law.
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
from datarax_ops.modes import by_name, mode_of
from datarax_ops.reference.spec import Strength
from datarax_ops.targets import Target
from datarax_ops.targets._base import BATCH_CALL, OUR_STREAM, PARAMS, TRAINING_SETTINGS

APPLY_PROB = 0.6
# Records of the params sample (one strength or decision each).
PARAM_RECORDS = 4000
TRAINING_NEEDS = frozenset({BATCH_CALL, OUR_STREAM, PARAMS, TRAINING_SETTINGS})
"""What every training setting's checks need of the target."""


def training_configs(mode: str) -> list[tuple[str, Any]]:
    """``[(setting, config), ...]``: the mode's verify config with one setting on each."""
    base = dataclasses.replace(law_for(mode).config(), clip_range=None)  # outputs show the noise
    spec = by_name(mode).spec
    # each strength's example range: wide, so its law spans a visible interval
    ranged = {s.range_field: s.example_range for s in spec.strengths}
    settings = [("range", dataclasses.replace(base, **ranged))]
    if spec.per_value_draws:  # one draw per pixel can be shared over its channels
        settings.append(("shared channels", dataclasses.replace(base, per_channel=False)))
    settings.append(("apply_prob", dataclasses.replace(base, apply_prob=APPLY_PROB)))
    return settings


def _law_of(strength: Strength, low: float, high: float) -> tuple[Any, str]:
    """The exact law of ``strength`` drawn in ``[low, high]`` and its label."""
    if strength.law == "log-uniform":
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
    law = law_for(config.mode)
    tolerance = law.reproduction_atol
    off = error > tolerance
    count, allowed = int(off.sum()), int(law.reproduction_misses * error.size)
    evidence = ""
    if count > allowed:
        first = tuple(int(i) for i in np.argwhere(off)[0])
        evidence = (
            f"{count} values off, at most {allowed} allowed; max error {float(error.max()):.3g}; "
            f"output {out.shape} {out.dtype}, the first off at {first}: {out[first]!r} vs the "
            f"reference's {expected[first]!r}"
        )
    rec.exact(
        count <= allowed,
        f"op(batch) = reference.operator_output from the key ({count} of {error.size} values "
        f"off by more than {tolerance:g})",
        evidence,
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
    strengths = {s.scalar: s for s in mode_of(config).spec.strengths}
    for name in sorted(set(params) & set(expected)):
        if params[name].shape != (shape[0],):
            continue  # per-value params: their laws are the mode's own checks
        if name in strengths and strengths[name].law == "log-uniform":
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
    strengths = mode_of(config).spec.strengths
    ref = reference.record.draw_strengths(config, strengths, rng, PARAM_RECORDS)
    for strength in strengths:
        scalar = strength.scalar
        low, high = getattr(config, strength.range_field)
        law, label = _law_of(strength, low, high)
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
    target: Target | None = None,
) -> list[ModeRun]:
    """One ``ModeRun`` per training setting of ``mode`` (named ``"<mode> · <setting>"``);
    one n/a row each where ``target`` lacks :data:`TRAINING_NEEDS`.

    Args: as ``checks.verify_mode``.
    """
    runs = []
    reason = None if target is None else target.missing(TRAINING_NEEDS)
    for setting, config in training_configs(mode):
        started = time.perf_counter()
        run = ModeRun(f"{mode} · {setting}", config)
        rec = Recorder(run, alpha)
        if reason is not None:
            rec.aspect = "training setting"
            rec.not_applicable(f"the {setting} checks", reason)
            runs.append(run)
            continue
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
