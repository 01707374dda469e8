"""The bench's cases come from the mode registry, and stay the cases they were.

``datarax_ops.bench`` names no mode: its table is every example of every mode
(``ModeSpec.examples``), its quick / records / training sets the default examples,
the value conventions and the speed goal follow the kernel's ``value_dependent_cost``,
the training ranges each strength's ``example_range``, and the albumentations
counterparts of the records workload come from the modes' laws.  These tests pin the
resulting cases (labels and configs) so that a change of the registry that changes
them is seen; nothing here compiles or times anything.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from datarax_ops import modes
from datarax_ops.bench import cache, kit, others, records, run, training
from datarax_ops.conformance.laws import LAWS, Law

# The bench's cases before the registry (issue 23): label -> (family, config fields).
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "gaussian": ("noise", {"mode": "gaussian", "noise_std": 0.05}),
    "salt_pepper": ("noise", {"mode": "salt_pepper", "salt_prob": 0.05, "pepper_prob": 0.05}),
    "pixel": ("dropout", {"mode": "pixel", "dropout_rate": 0.2}),
    "channel": ("dropout", {"mode": "channel", "dropout_rate": 0.2}),
    "poisson1": ("noise", {"mode": "poisson", "lam_scale": 1.0}),
    "poisson30": ("noise", {"mode": "poisson", "lam_scale": 30.0}),
    "poisson255": ("noise", {"mode": "poisson", "lam_scale": 255.0}),
    # issue 24
    "speckle": ("noise", {"mode": "speckle", "noise_std": 0.1}),
    "coarse": (
        "dropout",
        {"mode": "coarse", "hole_count_range": (1, 1), "hole_size_range": (0.1, 0.3)},
    ),
}
DEFAULTS = {"gaussian", "salt_pepper", "pixel", "channel", "poisson30", "speckle", "coarse"}


def test_the_cases_are_the_registry_examples_and_the_cases_they_were():
    assert kit.MODES == CASES
    assert list(kit.MODES) == [label for m in modes.MODES for label in m.spec.example_labels]
    assert kit.MODE_ALIASES == {"poisson": ("poisson1", "poisson30", "poisson255")}
    for default_set in (kit.QUICK_MODES, records.RECORD_MODES, training.TRAINING_MODES):
        assert set(default_set) == DEFAULTS
    assert run.FIXED_COST_MODE == "gaussian"  # the registry's first mode
    assert cache.RECORDS_MODE == "poisson30"  # the first mode whose cost depends on values


def test_only_a_value_dependent_mode_runs_both_value_conventions():
    shape = (1, 2, 2, 3)
    cases, skipped = run.build_cases(tuple(kit.MODES), run.DTYPES, [shape])
    poisson = {"poisson1", "poisson30", "poisson255"}
    assert {c.mode for c in cases if c.value_dependent_cost} == poisson
    float_scales = {(c.mode, c.scale) for c in cases if c.dtype == "float32"}
    for label in kit.MODES:
        expected = {1, 255} if label in poisson else {1}
        assert {scale for mode, scale in float_scales if mode == label} == expected, label
    assert all(c.scale == 255 for c in cases if c.dtype == "uint8")
    assert len(cases) == 3 * len(CASES) + 2 * 3  # every label per dtype, poisson's 0..255 floats
    assert [s["case"] for s in skipped] == [
        f"{label}/uint8/0..1/1x2x2x3" for label in ("poisson1", "poisson30", "poisson255")
    ]
    noise_255 = [c for c in cases if c.kind == "noise" and c.scale == 255]
    assert noise_255 and all(c.config_kwargs()["clip_range"] == (0.0, 255.0) for c in noise_255)


def test_training_ranges_are_the_declared_example_ranges():
    got = {label: training.settings(label) for label in training.TRAINING_MODES}
    assert got["gaussian"]["range"] == {"noise_std_range": (0.0, 0.2)}
    assert got["salt_pepper"]["range"] == {
        "salt_prob_range": (0.0, 0.2),
        "pepper_prob_range": (0.0, 0.2),
    }
    assert got["poisson30"]["range"] == {"lam_scale_range": (3.0, 300.0)}
    assert got["pixel"]["range"] == got["channel"]["range"] == {"dropout_rate_range": (0.05, 0.6)}
    assert got["speckle"]["range"] == {"noise_std_range": (0.0, 0.3)}
    shared = {label for label, settings in got.items() if "shared channels" in settings}
    assert shared == {"gaussian", "salt_pepper", "pixel", "speckle"}  # draws per value
    assert all(settings["apply_prob 0.5"] == {"apply_prob": 0.5} for settings in got.values())


def test_records_configs_scale_value_unit_fields_to_0_255():
    assert records.record_config_kwargs("gaussian") == {
        "mode": "gaussian",
        "noise_std": pytest.approx(0.05 * 255.0),
        "clip_range": (0.0, 255.0),
    }
    assert records.record_config_kwargs("poisson30") == {
        "mode": "poisson",
        "lam_scale": 30.0,
        "clip_range": (0.0, 255.0),
    }
    assert records.record_config_kwargs("pixel") == CASES["pixel"][1]


def fake_albumentations() -> SimpleNamespace:
    """A stand-in for the ``albumentations`` module: each transform class returns
    ``(class name, keyword arguments)``."""

    def transform(name: str) -> Any:
        return lambda **kwargs: (name, kwargs)

    names = (
        "GaussNoise",
        "SaltAndPepper",
        "ShotNoise",
        "PixelDropout",
        "ChannelDropout",
        "CoarseDropout",
        "MultiplicativeNoise",
    )
    return SimpleNamespace(**{name: transform(name) for name in names})


def rounded(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with every float (also inside tuples) rounded to 12 decimals."""

    def one(value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(one(v) for v in value)
        return round(value, 12) if isinstance(value, float) else value

    return {key: one(value) for key, value in kwargs.items()}


def test_each_law_names_its_albumentations_counterpart(monkeypatch):
    monkeypatch.setitem(sys.modules, "albumentations", fake_albumentations())
    got = {label: records.albumentations_transform(label) for label in records.RECORD_MODES}
    expected = {
        "gaussian": (
            "GaussNoise",
            {"std_range": (0.05, 0.05), "mean_range": (0.0, 0.0), "per_channel": True},
        ),
        "salt_pepper": ("SaltAndPepper", {"amount": (0.1, 0.1), "salt_vs_pepper": (0.5, 0.5)}),
        "poisson30": ("ShotNoise", {"scale_range": (1 / 30, 1 / 30)}),
        "pixel": ("PixelDropout", {"dropout_prob": 0.2, "per_channel": True, "drop_value": 0}),
        "channel": ("ChannelDropout", {"channel_drop_range": (1, 1), "fill": 0}),
        # a uniform multiplier of speckle's mean 1 and std 0.1: 1 +- sqrt(3) * 0.1
        "speckle": (
            "MultiplicativeNoise",
            {
                "multiplier": (1 - 0.1 * 3**0.5, 1 + 0.1 * 3**0.5),
                "per_channel": True,
                "elementwise": True,
            },
        ),
        "coarse": (
            "CoarseDropout",
            {
                "num_holes_range": (1, 1),
                "hole_height_range": (0.1, 0.3),
                "hole_width_range": (0.1, 0.3),
                "fill": 0.0,
            },
        ),
    }
    for label, (name, kwargs) in expected.items():
        (got_name, got_kwargs), note = got[label]
        assert got_name == name and note.startswith(name + "("), (label, note)
        assert rounded(got_kwargs) == rounded({**kwargs, "p": 1.0}), label


def test_without_albumentations_or_a_counterpart_there_is_none(monkeypatch):
    monkeypatch.setitem(sys.modules, "albumentations", None)  # import raises ImportError
    assert records.albumentations_transform("gaussian") is None
    law = LAWS["gaussian"]  # the base hook, which a law without a counterpart keeps
    assert Law.albumentations_counterpart(law, {"noise_std": 1.0}, fake_albumentations()) is None


def test_other_libraries_run_once_per_record_on_the_data_they_take(monkeypatch):
    """``others.batch_calls``: albumentations' counterpart called once per record of the
    batch (each record as itself), only on float32 0..1 and uint8 0..255 batches; and
    ``run.others_markdown`` renders a row per case and library from the summaries."""
    seen: list[np.ndarray] = []
    album = fake_albumentations()
    monkeypatch.setattr(
        album,
        "CoarseDropout",
        lambda **kwargs: lambda image: seen.append(image) or {"image": image},
    )
    monkeypatch.setitem(sys.modules, "albumentations", album)
    host = np.arange(4 * 5 * 6 * 3, dtype=np.float32).reshape(4, 5, 6, 3) / 360.0
    calls, notes = others.batch_calls("coarse", "float32", 1, host)
    assert set(calls) == set(notes) == {"albumentations"}
    calls["albumentations"]()
    assert len(seen) == 4 and all(np.array_equal(a, b) for a, b in zip(seen, host, strict=True))
    for dtype, scale in (("float32", 255), ("bfloat16", 1)):
        assert others.batch_calls("coarse", dtype, scale, host) == ({}, {})
    result = {
        "case": {"mode": "coarse", "dtype": "float32", "shape": (4, 5, 6, 3)},
        "others": notes,
        "summary": {"albumentations": {"min_ms": 3.0}, "jitted": {"min_ms": 1.5}},
        "ratios": {"albumentations_over_jit_min": 2.0},
    }
    table = "\n".join(run.others_markdown([result]))
    assert "| coarse | float32 | 4x5x6x3 | albumentations | 3.00 | 1.50 | 2.00 |" in table
    assert run.others_markdown([{**result, "others": {}}]) == []
