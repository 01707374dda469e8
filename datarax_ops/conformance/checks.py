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
                   give identical output, and so does one batch without metadata
                   (records numbered by the operator's counter); ``apply`` on one
                   record equals it (exact)
determinism        same seed same output, another seed another output;
                   ``stochastic=False``: the same pattern every record and call
dtypes             float32 and uint8 in, the same dtype and shape out
=================  ==========================================================

Exact checks cannot fail by chance (alpha 0).  The statistical ones fail a
correct operator with probability ``alpha`` each, so a run's false-alarm
probability is at most ``statistical checks x alpha`` (union bound, reported).

What is particular to a mode (its configs, its exact law and how its output is
read, the law of its params, its standardized noise, its probe's record size)
lives in its law, ``laws/<mode>.py``; this module holds only what every mode
shares, and never asks which mode it has.

The operator is built by an *operator factory*: any callable
``factory(config, rngs=nnx.Rngs(...)) -> operator`` (the operator classes
themselves are such callables).  A test passes a deliberately wrong factory and
expects the checks to fail.

Whose operators are checked is a *target* (``datarax_ops.targets``; default: this
package's).  Each check declares the capabilities it needs (:class:`Check`); where
the target lacks one, the check is recorded as n/a with the target's reason.
An exact check that fails records a minimal reproduction (shapes, dtypes, the first
index that differs and both values: ``results.first_difference``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import datarax_ops as dx
from datarax_ops import reference
from datarax_ops.conformance import stats as kit
from datarax_ops.conformance.laws import LAWS, Law, Outputs, law_for
from datarax_ops.conformance.laws._base import PATCH
from datarax_ops.conformance.results import ModeRun, Recorder, first_difference, not_applicable
from datarax_ops.targets import OperatorFactory, Target
from datarax_ops.targets._base import (
    BATCH_CALL,
    CLIP,
    FIXED_PATTERN,
    OUR_STREAM,
    PARAMS,
    RECORD_CALL,
    RECORD_IDENTITY,
    UINT8_INPUT,
    Capability,
)
from datarax_ops.targets.datarax_ops import build_operator

ALPHA = kit.ALPHA
DEFAULT_SAMPLES = 2**18
SPLIT_RECORDS = 8  # records checked one by one through apply()

MODE_NAMES: tuple[str, ...] = tuple(LAWS)


# --------------------------------------------------------------------------- #
# Seeds, operators, batches                                                    #
# --------------------------------------------------------------------------- #
def mode_seed(seed: int, mode: str, purpose: str) -> int:
    """The 31-bit seed of ``purpose`` (``"op"``, ``"params/key"``, ...) for ``mode`` in
    run ``seed``: ``stats.seed_for("<mode>/<purpose>", run_seed=seed, bits=31)``."""
    return kit.seed_for(f"{mode}/{purpose}", run_seed=seed, bits=31)


default_factory: OperatorFactory = build_operator
"""The real operator for a config: ``NoiseOperator`` or ``DropoutOperator``."""


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


def reference_output(config: Any, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The reference's own draw applied to ``images``: ``reference.draw`` + ``apply_batch``."""
    params = reference.draw(config, rng, images.shape[1:], images.shape[0])
    return reference.apply_batch(config, images, params)


@dataclass(frozen=True)
class Probe:
    """One mode's probe batch and the outputs every check reads.

    ``images``: float32 ``(records, s, s, 3)``; ``first`` and ``second``: two calls of
    one operator on it (records ``0 .. N-1`` of its counter, then ``N .. 2N-1``).
    """

    law: Law
    config: Any
    factory: OperatorFactory
    samples: int
    seed: int
    images: np.ndarray
    first: np.ndarray
    second: np.ndarray

    def seed_of(self, purpose: str) -> int:
        """:func:`mode_seed` of ``purpose`` for this probe's mode and run."""
        return mode_seed(self.seed, self.law.mode, purpose)


def make_probe(
    law: Law, images: Sequence[np.ndarray], samples: int, seed: int, factory: OperatorFactory
) -> Probe:
    """The probe batch of ``law``'s mode cut from ``images`` (tiles of ``law.patch``),
    and two calls of the operator ``factory`` builds for ``law.config()`` on it."""
    config = law.config()
    batch = probe_batch(images, samples, law.patch)
    op = build(factory, config, mode_seed(seed, law.mode, "op"))
    first = run_op(op, batch)
    second = run_op(op, batch)
    return Probe(law, config, factory, samples, seed, batch, first, second)


# --------------------------------------------------------------------------- #
# The checks: each records its verdicts for one probe                          #
# --------------------------------------------------------------------------- #
def check_output_law(rec: Recorder, probe: Probe) -> None:
    """The law of ``op(batch)``'s output vs scipy and vs the reference's (the mode's law)."""
    rng = np.random.default_rng(probe.seed_of("numpy"))
    ref_rng = np.random.default_rng(probe.seed_of("ref"))
    ref = reference_output(probe.config, probe.images, ref_rng)
    probe.law.check_output(rec, Outputs(probe.config, probe.images, probe.first, ref, rng))


def params_layout(params: dict[str, np.ndarray]) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{key: (shape, dtype name)}`` of a params dict, in its key order."""
    return {k: (v.shape, str(v.dtype)) for k, v in params.items()}


def check_params(rec: Recorder, probe: Probe) -> None:
    """``generate_random_params``: keys, shapes and dtypes those of ``reference.draw``
    (exact), then its values against the mode's law and against the reference's."""
    rec.aspect = "params"
    law, config = probe.law, probe.config
    shape = law.params_shape(probe.samples)
    op = build(probe.factory, config, probe.seed_of("params/op"))
    key = jax.random.key(probe.seed_of("params/key"))
    params = {k: np.asarray(v) for k, v in op.generate_random_params(key, {"image": shape}).items()}
    ref_rng = np.random.default_rng(probe.seed_of("params/ref"))
    ref = reference.draw(config, ref_rng, shape[1:], shape[0])
    layout, ref_layout = params_layout(params), params_layout(ref)
    same = list(layout) == list(ref_layout) and layout == ref_layout
    what = "params keys, shapes, dtypes = reference.draw's"
    if rec.exact(same, what, f"got {layout}, reference {ref_layout}"):
        law.check_all_params(rec, config, params, ref)


def check_clip(rec: Recorder, probe: Probe) -> None:
    """The mode's config with a clip range: every output inside it, and some at its
    bounds (exact)."""
    rec.aspect = "clip range"
    config = probe.law.clip_config()
    low, high = config.clip_range
    out = run_op(build(probe.factory, config, probe.seed_of("clip")), probe.images)
    outside = ~((out >= low) & (out <= high))
    evidence = ""
    if outside.any():
        first = tuple(int(i) for i in np.argwhere(outside)[0])
        evidence = (
            f"{int(outside.sum())} values outside; output {out.shape} {out.dtype}, the first "
            f"at {first}: {out[first]!r} from input {probe.images[first]!r}"
        )
    rec.exact(not outside.any(), f"outputs inside clip_range ({low:g}, {high:g})", evidence)
    at_bounds = int(np.sum((out == low) | (out == high)))
    rec.exact(
        at_bounds > 0,
        "the clip range is reached (values at its bounds)",
        "no value at a bound: the clip check proved nothing",
    )


def check_independence(rec: Recorder, probe: Probe) -> None:
    """Standardized noise of record 2i vs 2i+1, and of call 1 vs call 2 (correlation
    tests); call 2 differs from call 1 (exact)."""
    rec.aspect = "independence"
    first, second = probe.first, probe.second
    rec.exact(
        not np.array_equal(first, second),
        "two calls give different output",
        f"call 2 repeated call 1: all {first.size} values of {first.shape} {first.dtype} equal",
    )
    a = probe.law.noise_scores(probe.config, probe.images, first)
    b = probe.law.noise_scores(probe.config, probe.images, second)
    rec.stat(
        kit.assert_uncorrelated,
        a[0::2].ravel(),
        a[1::2].ravel(),
        what="noise of record 2i vs record 2i+1",
    )
    rec.stat(kit.assert_uncorrelated, a.ravel(), b.ravel(), what="noise of call 1 vs call 2")


def split_output(probe: Probe) -> tuple[np.ndarray, list[dict[str, int]]]:
    """The probe's records through a fresh operator with the probe's seed, in two batches
    whose metadata give indices ``0 .. N-1``; and that metadata."""
    images = probe.images
    meta = [{"index": i} for i in range(images.shape[0])]
    half = images.shape[0] // 2
    split_op = build(probe.factory, probe.config, probe.seed_of("op"))
    parts = [run_op(split_op, images[:half], meta[:half])]
    parts.append(run_op(split_op, images[half:], meta[half:]))
    return np.concatenate(parts), meta


def check_split(rec: Recorder, probe: Probe) -> None:
    """The probe's first call (records numbered by the operator's counter, our stream's
    convention) equals the same records in two batches with metadata indices (exact)."""
    rec.aspect = "batch split"
    first, records = probe.first, probe.images.shape[0]
    half = records // 2
    parts, _ = split_output(probe)
    rec.exact(
        np.array_equal(first, parts),
        f"1x{records} batch (counter) = 2x{half} batches (metadata index)",
        first_difference(first, parts),
    )


def check_split_indexed(rec: Recorder, probe: Probe) -> None:
    """The records in one batch and in two, with the same metadata indices in both:
    identical output (exact); what record identity alone promises."""
    rec.aspect = "batch split"
    records = probe.images.shape[0]
    half = records // 2
    parts, meta = split_output(probe)
    whole = run_op(build(probe.factory, probe.config, probe.seed_of("op")), probe.images, meta)
    rec.exact(
        np.array_equal(whole, parts),
        f"1x{records} batch = 2x{half} batches, metadata indices in both",
        first_difference(whole, parts),
    )


def check_apply(rec: Recorder, probe: Probe) -> None:
    """``apply`` of a fresh operator with the same seed on ``SPLIT_RECORDS`` single
    records (metadata index ``i``) equals their ``op(batch)`` output (exact)."""
    rec.aspect = "batch split"
    images, records = probe.images, probe.images.shape[0]
    element_op = build(probe.factory, probe.config, probe.seed_of("op"))
    picked = list(range(0, records, max(1, records // SPLIT_RECORDS))[:SPLIT_RECORDS])
    one_by_one = np.stack(
        [
            np.asarray(
                element_op.apply({"image": jnp.asarray(images[i])}, {}, {"index": i})[0]["image"]
            )
            for i in picked
        ]
    )
    expected = probe.first[picked]
    rec.exact(
        np.array_equal(expected, one_by_one),
        f"apply() on {len(picked)} single records = their op(batch) output",
        first_difference(expected, one_by_one),
    )


def check_determinism(rec: Recorder, probe: Probe) -> None:
    """Same seed same output, another seed another (exact)."""
    rec.aspect = "determinism"
    images, first, op_seed = probe.images, probe.first, probe.seed_of("op")
    again = run_op(build(probe.factory, probe.config, op_seed), images)
    rec.exact(
        np.array_equal(first, again),
        "same seed, same output",
        first_difference(first, again),
    )
    other = run_op(build(probe.factory, probe.config, (op_seed + 1) % 2**31), images)
    rec.exact(
        not np.array_equal(first, other),
        "another seed, another output",
        "two seeds gave the same output",
    )


def check_fixed_pattern(rec: Recorder, probe: Probe) -> None:
    """``stochastic=False`` gives one pattern for every record and call (exact)."""
    rec.aspect = "determinism"
    images = probe.images
    fixed = dataclasses.replace(probe.config, stochastic=False, stream_name=None)
    op = build(probe.factory, fixed, 0)
    same = np.broadcast_to(images[:1], images.shape).copy()
    one, two = run_op(op, same), run_op(op, same)
    records = np.broadcast_to(one[:1], one.shape)
    rec.exact(
        np.array_equal(one, two) and np.array_equal(one, records),
        "stochastic=False: one pattern for every record and call",
        "call 2 vs call 1: "
        + first_difference(one, two)
        + "; the records vs record 0: "
        + first_difference(records, one),
    )


def check_float32(rec: Recorder, probe: Probe) -> None:
    """float32 input (the probe batch): the same dtype and shape out (exact)."""
    rec.aspect = "dtypes"
    images, first = probe.images, probe.first
    rec.exact(
        first.shape == images.shape and first.dtype == np.float32,
        "float32 in, float32 out",
        f"input {images.shape} {images.dtype}, output {first.shape} {first.dtype}",
    )


def check_uint8(rec: Recorder, probe: Probe) -> None:
    """uint8 input (the probe batch at 0..255): the same dtype and shape out (exact)."""
    rec.aspect = "dtypes"
    images = probe.images
    as_bytes = np.rint(images * 255.0).astype(np.uint8)
    out = run_op(build(probe.factory, probe.config, probe.seed_of("dtypes")), as_bytes)
    rec.exact(
        out.shape == as_bytes.shape and out.dtype == np.uint8,
        "uint8 in, uint8 out",
        f"input {as_bytes.shape} {as_bytes.dtype}, output {out.shape} {out.dtype}; "
        f"record 0's first value {as_bytes.flat[0]!r} came back as {out.flat[0]!r}",
    )


@dataclass(frozen=True)
class Check:
    """One check of every mode: the capabilities of the target it needs, and the row
    (property and check) it shows as n/a when the target lacks one."""

    run: Callable[[Recorder, Probe], None]
    needs: frozenset[Capability]
    aspect: str
    what: str


def _check(
    run: Callable[[Recorder, Probe], None], aspect: str, what: str, *needs: Capability
) -> Check:
    """A :class:`Check` of ``run``; every check needs the batch call (the probe's)."""
    return Check(run, frozenset({BATCH_CALL, *needs}), aspect, what)


CHECKS: tuple[Check, ...] = (
    _check(
        check_output_law, "law vs scipy", "op(batch)'s output vs the mode's law and the reference's"
    ),
    _check(
        check_params,
        "params",
        "generate_random_params vs the mode's law and reference.draw",
        PARAMS,
    ),
    _check(check_clip, "clip range", "outputs inside the config's clip_range", CLIP),
    _check(check_independence, "independence", "records and calls independent"),
    _check(
        check_split,
        "batch split",
        "1 batch (counter) = 2 batches (metadata index)",
        RECORD_IDENTITY,
        OUR_STREAM,
    ),
    _check(
        check_split_indexed,
        "batch split",
        "1 batch = 2 batches, metadata indices in both",
        RECORD_IDENTITY,
    ),
    _check(
        check_apply,
        "batch split",
        "apply() on single records = their op(batch) output",
        RECORD_CALL,
        RECORD_IDENTITY,
    ),
    _check(check_determinism, "determinism", "same seed, same output; another seed, another"),
    _check(
        check_fixed_pattern,
        "determinism",
        "stochastic=False: one pattern for every record and call",
        FIXED_PATTERN,
    ),
    _check(check_float32, "dtypes", "float32 in, float32 out"),
    _check(check_uint8, "dtypes", "uint8 in, uint8 out", UINT8_INPUT),
)
"""Every check ``verify`` runs on each mode, in the order of the verdict table, with the
row it shows when n/a."""


# --------------------------------------------------------------------------- #
# Runs                                                                         #
# --------------------------------------------------------------------------- #
def verify_mode(
    mode: str,
    images: Sequence[np.ndarray],
    *,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    factory: OperatorFactory = default_factory,
    alpha: float = ALPHA,
    target: Target | None = None,
) -> ModeRun:
    """Every check of :data:`CHECKS` on one mode: those ``target`` lacks a capability
    for are recorded as n/a with its reason.

    Args:
      mode: a name from ``datarax_ops.modes.MODES``.
      images: float32 ``(H, W, 3)`` pictures in [0, 1]; the probe batch is cut from them.
      samples: values per statistical sample (the probe batch holds at least this many).
      seed: the run's seed; every operator and generator seed derives from it.
      factory: builds the operator under test, ``factory(config, rngs=...)``.
      alpha: the level of every statistical check.
      target: whose operators ``factory`` builds, for its capabilities (None: every
        capability, as this package's operators have).

    Returns:
      The mode's verdicts, plot samples and rate estimates.
    """
    started = time.perf_counter()
    probe = make_probe(law_for(mode), images, samples, seed, factory)
    run = ModeRun(mode, probe.config)
    run.operator = run.operator if target is None else target.name
    rec = Recorder(run, alpha)
    for check in CHECKS:
        reason = None if target is None else target.missing(check.needs)
        if reason is None:
            check.run(rec, probe)
        else:
            rec.aspect = check.aspect
            rec.not_applicable(check.what, reason)
    run.seconds = time.perf_counter() - started
    return run


def mode_not_applicable(mode: str, target: Target, reason: str) -> ModeRun:
    """The run of a mode ``target`` has no operator for: one n/a row with the reason."""
    run = ModeRun(mode, law_for(mode).config())
    what = f"{target.name} has an operator with this mode's law"
    run.verdicts.append(not_applicable(mode, "operator", what, reason))
    return run


def output_law(
    config: Any,
    images: np.ndarray,
    out: np.ndarray,
    ref: np.ndarray,
    *,
    seed: int = 0,
    alpha: float = ALPHA,
) -> ModeRun:
    """Only the law checks of the config's mode, on outputs computed elsewhere (no
    operator is built): ``out`` is judged against scipy and against ``ref``.

    Args:
      config: the stochastic config ``out`` is supposed to follow.
      images: float32 ``(records, H, W, 3)`` inputs in [0, 1].
      out, ref: outputs for ``images``, same shape and dtype.
    """
    run = ModeRun(config.mode, config)
    rng = np.random.default_rng(mode_seed(seed, config.mode, "numpy"))
    law_for(config.mode).check_output(Recorder(run, alpha), Outputs(config, images, out, ref, rng))
    return run
