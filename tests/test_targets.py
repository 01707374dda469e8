"""``datarax-ops verify --target NAME``: the targets, the n/a verdicts, the evidence.

The fast tests drive the checks with a test-only target whose operator is the NumPy
reference itself (no compilation): its correct form passes every applicable check, the
checks it lacks a capability for are n/a (exactly those), and a deliberately wrong form
fails with evidence.  The slow ones run this package's compiled operators through the
external adapter path (``datarax_ops_external``: datarax's public API only) and the
installed datarax's operators.

Every run is seeded, so its verdicts are fixed (a green run stays green); the
statistical checks run at ``checks.ALPHA`` (1e-5) each, so a correct operator fails one
of a run's checks with probability at most (checks x 1e-5): 0.0003 for the ~30 of a
gaussian run.  At 20,000 values a sample, noise std x 1.1 (variance +21%) sits about
15 standard errors from the variance check's mean (standard error sqrt(2 / n) = 1%).
"""

from __future__ import annotations

import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import datarax_ops as dx
from datarax_ops import cli, reference, targets
from datarax_ops.conformance import checks, images, report, training
from datarax_ops.conformance.results import first_difference
from datarax_ops.environment import environment
from datarax_ops.targets import _datarax_api
from datarax_ops.targets._base import (
    ALL_CAPABILITIES,
    BATCH_CALL,
    CLIP,
    FIXED_PATTERN,
    OUR_STREAM,
    PARAMS,
    RECORD_CALL,
    RECORD_IDENTITY,
    UINT8_INPUT,
    NotApplicable,
    Target,
)

SAMPLES = 20_000
SEED = 11
PICTURES = [images.synthetic_image()]


# --------------------------------------------------------------------------- #
# A test-only target: the NumPy reference as the operator under test           #
# --------------------------------------------------------------------------- #
class ReferenceOperator:
    """``op(batch)``: the reference's draw and apply, from a NumPy generator seeded by
    the operator's ``rngs``; made wrong by ``std_factor`` (noise std scaled) or
    ``dtype`` (the output cast)."""

    def __init__(self, config, *, rngs=None, std_factor=1.0, dtype=None):
        self.config, self.dtype = config, dtype
        if std_factor != 1.0:
            self.config = dataclasses.replace(config, noise_std=config.noise_std * std_factor)
        stream = config.stream_name or "default"
        seed = 0 if rngs is None else np.asarray(jax.random.key_data(rngs[stream]()))
        self.rng = np.random.default_rng(seed)

    def __call__(self, batch):
        x = np.asarray(batch.data.get_value()["image"])
        params = reference.draw(self.config, self.rng, x.shape[1:], x.shape[0])
        out = reference.apply_batch(self.config, x, params)
        out = out if self.dtype is None else out.astype(self.dtype)
        return dx.Batch.from_parts(data={"image": jnp.asarray(out)})


def reference_target(**wrong) -> Target:
    """A target of ``ReferenceOperator``s: batch call, clip range and uint8 input only."""
    return Target(
        name="numpy_reference",
        about="the NumPy reference (test only)",
        capabilities=frozenset({BATCH_CALL, CLIP, UINT8_INPUT}),
        operators=lambda mode: (
            lambda config, rngs=None: ReferenceOperator(config, rngs=rngs, **wrong)
        ),
        version=lambda: "test",
        lacks={PARAMS: "its params are the test's business"},
    )


def run_mode(target: Target, mode: str = "gaussian", samples: int = SAMPLES):
    factory = target.operators(mode)
    return checks.verify_mode(
        mode, PICTURES, samples=samples, seed=SEED, factory=factory, target=target
    )


def test_a_correct_target_passes_what_applies_and_shows_na_for_what_it_lacks():
    run = run_mode(reference_target())
    assert run.passed and run.verdict == "pass", [v for v in run.verdicts if v.failed]
    lacking = {
        check.what for check in checks.CHECKS if check.needs - reference_target().capabilities
    }
    na = [v for v in run.verdicts if not v.applicable]
    assert {v.what for v in na} == lacking  # exactly the checks needing what it lacks
    assert {c.run.__name__ for c in checks.CHECKS if c.what in lacking} == {
        "check_params",
        "check_split",
        "check_split_indexed",
        "check_apply",
        "check_fixed_pattern",
    }
    assert all(v.verdict == "n/a" and not v.passed and not v.failed for v in na)
    params = next(v for v in na if v.aspect == "params")
    assert params.detail == "numpy_reference lacks params: its params are the test's business"
    apply_row = next(v for v in na if v.what.startswith("apply()"))
    assert "record call" in apply_row.detail and "record identity" in apply_row.detail
    # the rest ran: statistical ones among them
    assert sum(v.statistical for v in run.verdicts) >= 5


def test_a_wrong_std_fails_its_statistical_checks():
    run = run_mode(reference_target(std_factor=1.1))
    failed = [v for v in run.verdicts if v.failed]
    assert any(v.what.startswith("variance of residual") for v in failed), run.verdicts
    assert all(v.statistical and v.pvalue < checks.ALPHA for v in failed)


def test_a_changed_dtype_fails_with_evidence():
    run = run_mode(reference_target(dtype=np.float16))
    failed = [v for v in run.verdicts if v.failed]
    assert [v.what for v in failed] == ["float32 in, float32 out", "uint8 in, uint8 out"]
    assert "output (" in failed[0].detail and "float16" in failed[0].detail
    assert "uint8" in failed[1].detail and "float16" in failed[1].detail
    row = report.verdict_row(failed[1])
    assert row[-1] == "FAIL" and failed[1].detail in row[2]  # the evidence is in the table


def test_training_settings_are_na_without_our_stream():
    runs = training.verify_training(
        "pixel", PICTURES, samples=SAMPLES, seed=SEED, target=reference_target()
    )
    assert runs and all(run.verdict == "n/a" for run in runs)
    assert all("our stream" in v.detail for run in runs for v in run.verdicts)


def test_the_report_shows_na_apart_from_pass_and_fail():
    run = run_mode(reference_target())
    page = report.render(
        [run],
        seed=SEED,
        samples=SAMPLES,
        source="test",
        environment=environment(),
        target="numpy_reference test",
    )
    applicable = sum(v.applicable for v in run.verdicts)
    na = len(run.verdicts) - applicable
    assert f"All {applicable} applicable checks passed. {na} checks n/a." in page
    assert '<td class="na">n/a</td>' in page and 'id="target"' in page
    assert f"{na} checks n/a (not run" in report.budget_text(run.verdicts)


def test_first_difference_names_shapes_dtypes_and_the_first_values():
    a = np.zeros((2, 3), np.float32)
    b = a.copy()
    b[1, 2], b[1, 0] = 0.5, 0.25
    text = first_difference(a, b)
    assert "(2, 3) float32" in text and "2 of 6 values differ" in text
    assert "the first at (1, 0)" in text and "0.25" in text
    assert "got (3,) uint8" in first_difference(a, np.zeros(3, np.uint8))


# --------------------------------------------------------------------------- #
# The registry and the command line                                            #
# --------------------------------------------------------------------------- #
def test_target_names_come_from_the_adapter_files():
    names = targets.target_names()
    assert names[0] == targets.DEFAULT and len(set(names)) == len(names)
    assert {"datarax", "datarax_ops_external"} <= set(names)
    for name in names:
        assert targets.load_target(name).name == name
    assert targets.load_target(targets.DEFAULT).capabilities == ALL_CAPABILITIES


def test_an_unknown_target_is_an_error_listing_the_targets(capsys):
    assert cli.main(["verify", "--target", "kornia_x"]) == 2
    err = capsys.readouterr().err
    assert "kornia_x" in err and all(repr(name) in err for name in targets.target_names())


def test_a_target_whose_package_is_missing_is_named(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "datarax", None)  # makes `import datarax` fail
    assert cli.main(["verify", "--target", "datarax"]) == 2
    assert "--target datarax needs datarax installed" in capsys.readouterr().err


def test_datarax_api_modes_it_rejects_are_not_applicable():
    """The external path of our own operators has every mode; a library whose config
    rejects a mode makes that mode n/a, in the library's words."""
    ours = targets.load_target("datarax_ops_external")
    assert not any(isinstance(ours.operators(m.name), NotApplicable) for m in dx.MODES)
    assert ours.missing(frozenset({BATCH_CALL, CLIP, FIXED_PATTERN, RECORD_IDENTITY})) is None
    assert "lacks record call" in ours.missing(frozenset({RECORD_CALL}))

    @dataclasses.dataclass(frozen=True)
    class NoiseOperatorConfig:  # a library whose noise operator has none of our modes
        field_key: str
        mode: str = "x"

        def __post_init__(self):
            raise ValueError(f"mode must be 'x', got {self.mode!r}")

    classes = {**_datarax_api_classes(), "NoiseOperatorConfig": NoiseOperatorConfig}
    operators = _datarax_api.operators_of(lambda: classes, "lib")
    noisy = [m.name for m in dx.MODES if m.config_class is dx.NoiseOperatorConfig]
    verdicts = [operators(name) for name in noisy]
    assert verdicts and all(isinstance(v, NotApplicable) for v in verdicts)
    assert all(v.reason.startswith("lib has no such operator: mode must be 'x'") for v in verdicts)


def _datarax_api_classes():
    from datarax_ops.targets import datarax_ops_external

    return datarax_ops_external.classes()


# --------------------------------------------------------------------------- #
# Compiled operators (slow: nox -s slow)                                       #
# --------------------------------------------------------------------------- #
def wrong_classes(**changes):
    """Our classes under datarax's names, the noise operator's std scaled by
    ``std_factor``, or every output cast to ``dtype``."""
    classes = dict(_datarax_api_classes())
    factor, dtype = changes.get("std_factor", 1.0), changes.get("dtype")

    def noise(config, *, rngs=None):
        config = dataclasses.replace(config, noise_std=config.noise_std * factor)
        op = dx.NoiseOperator(config, rngs=rngs)
        if dtype is None:
            return op
        return lambda batch: dx.Batch.from_parts(
            data={"image": op(batch).data.get_value()["image"].astype(dtype)}
        )

    classes["NoiseOperator"] = noise
    return classes


def external_target(classes=None) -> Target:
    base = targets.load_target("datarax_ops_external")
    if classes is None:
        return base
    return dataclasses.replace(base, operators=_datarax_api.operators_of(lambda: classes, "test"))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["gaussian", "pixel"])
def test_our_operators_pass_through_the_adapter_path(mode):
    run = run_mode(external_target(), mode)
    assert run.passed, [v for v in run.verdicts if v.failed]
    na = {v.what for v in run.verdicts if not v.applicable}
    assert na == {c.what for c in checks.CHECKS if c.needs & {PARAMS, RECORD_CALL, OUR_STREAM}}
    assert "1 batch = 2 batches, metadata indices in both" not in na  # it ran, and passed


@pytest.mark.slow
def test_a_wrong_adapter_fails_with_evidence():
    scaled = run_mode(external_target(wrong_classes(std_factor=1.1)))
    failed = [v for v in scaled.verdicts if v.failed]
    assert any(v.what.startswith("variance of residual") for v in failed)
    cast = run_mode(external_target(wrong_classes(dtype=jnp.float32)))
    failed = [v for v in cast.verdicts if v.failed]
    assert [v.what for v in failed] == ["uint8 in, uint8 out"]
    assert "output (" in failed[0].detail and "float32" in failed[0].detail


@pytest.mark.slow
def test_verify_target_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "r.html"
    argv = ["verify", "--target", "datarax_ops_external", "--mode", "pixel"]
    argv += ["--seed", str(SEED), "--samples", str(SAMPLES), "--out", str(out)]
    assert cli.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "target datarax_ops_external" in stdout and "PASSED" in stdout and "n/a" in stdout
    assert "--target datarax_ops_external" in stdout  # the replay command
    page = out.read_text(encoding="utf-8")
    assert 'id="target"' in page and "pixel · range" in page


@pytest.mark.slow
def test_datarax_target_holds_what_it_holds():
    """datarax's gaussian noise through its public API, as measured on 0.1.4 and 0.1.17:
    its law, its record identity and its seeds hold; uint8 comes back float32; and 0.1.4
    repeats its noise on every call of a batch without metadata (0.1.17 draws afresh)."""
    pytest.importorskip("datarax")
    import importlib.metadata

    run = run_mode(targets.load_target("datarax"), "gaussian")
    failed = {v.what: v for v in run.verdicts if v.failed}
    passed = {v.what for v in run.verdicts if v.applicable and v.passed}
    assert "uint8 in, uint8 out" in failed
    assert "uint8, output (28, 16, 16, 3) float32" in failed["uint8 in, uint8 out"].detail
    assert any(what.startswith("residual out - x ~ N") for what in passed)
    assert {"same seed, same output", "float32 in, float32 out"} <= passed
    assert any(what.endswith("metadata indices in both") for what in passed)
    repeats = importlib.metadata.version("datarax") == "0.1.4"
    assert ("two calls give different output" in failed) == repeats, sorted(failed)


@pytest.mark.slow
def test_verify_target_datarax_writes_its_report(tmp_path, capsys):
    pytest.importorskip("datarax")
    out = tmp_path / "r.html"
    argv = ["verify", "--target", "datarax", "--mode", "pixel,speckle", "--no-training"]
    argv += ["--seed", str(SEED), "--samples", str(SAMPLES), "--out", str(out)]
    status = cli.main(argv)
    stdout = capsys.readouterr().out
    assert "datarax has no such operator" in stdout  # speckle: n/a with datarax's words
    page = out.read_text(encoding="utf-8")
    assert 'id="target"' in page and "datarax has no such operator" in page
    assert status == (1 if "FAILED" in stdout else 0)


@pytest.mark.slow
def test_albumentations_pixel_dropout_holds_what_applies():
    """PixelDropout has pixel dropout's law; the modes whose counterpart differs are n/a."""
    pytest.importorskip("albumentations")
    target = targets.load_target("albumentations")
    run = run_mode(target, "pixel")
    assert run.passed and run.verdict == "pass", [v for v in run.verdicts if v.failed]
    assert {v.what for v in run.verdicts if not v.applicable} == {
        c.what for c in checks.CHECKS if c.needs - target.capabilities
    }
    gaussian = target.operators("gaussian")
    assert isinstance(gaussian, NotApplicable) and "clips" in gaussian.reason
