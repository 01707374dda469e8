"""Configuration validation, defaults, field order and immutability.

Every invalid value must be rejected at construction with a ``ValueError``
(``TypeError`` for a value of the wrong type) whose message names the field.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np
import pytest
from datarax_ops.reference import modes
from datarax_ops.reference.config import (
    NOISE_MODES,
    DropoutOperatorConfig,
    ModalityOperatorConfig,
    NoiseOperatorConfig,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import dropout_configs, noise_configs

NAN, INF = math.nan, math.inf
CONFIGS = (NoiseOperatorConfig, DropoutOperatorConfig)


def _build(cls: type, **kwargs: Any) -> Any:
    return cls(**({"field_key": "image"} | kwargs))


def _id(case: tuple) -> str:
    """A stable id: functions by name (their repr holds an address, which differs between
    processes, and pytest-xdist's workers must collect the same ids)."""
    cls, kwargs = case[0], case[1]
    shown = {k: getattr(v, "__name__", v) if callable(v) else v for k, v in kwargs.items()}
    return f"{cls.__name__[:5]}-" + "-".join(f"{k}={v!r}" for k, v in shown.items())


# (config class, kwargs, exception, field named in the message)
SHARED_INVALID: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"cacheable": "yes"}, TypeError, "cacheable"),
    ({"cacheable": 1}, TypeError, "cacheable"),
    ({"batch_stats_fn": 3}, TypeError, "batch_stats_fn"),
    ({"precomputed_stats": [("mean", 0.5)]}, TypeError, "precomputed_stats"),
    (
        {"batch_stats_fn": lambda d: {}, "precomputed_stats": {"mean": 0.5}},
        ValueError,
        "batch_stats_fn",
    ),
    ({"stochastic": 1}, TypeError, "stochastic"),
    ({"stochastic": "True"}, TypeError, "stochastic"),
    ({"stream_name": "augment"}, ValueError, "stream_name"),
    ({"stream_name": "augment", "stochastic": False}, ValueError, "stream_name"),
    ({"stream_name": "", "stochastic": True}, ValueError, "stream_name"),
    ({"stream_name": 7, "stochastic": True}, ValueError, "stream_name"),
    ({"batch_strategy": "pmap"}, ValueError, "batch_strategy"),
    ({"batch_strategy": "VMAP"}, ValueError, "batch_strategy"),
    ({"batch_strategy": None}, ValueError, "batch_strategy"),
    ({"field_key": ""}, ValueError, "field_key"),
    ({"field_key": None}, ValueError, "field_key"),
    ({"field_key": 3}, ValueError, "field_key"),
    ({"target_key": ""}, ValueError, "target_key"),
    ({"auxiliary_fields": "label"}, ValueError, "auxiliary_fields"),
    ({"auxiliary_fields": ["label", ""]}, ValueError, "auxiliary_fields"),
    ({"auxiliary_fields": ["image"]}, ValueError, "auxiliary_fields"),
    ({"auxiliary_fields": ["out"], "target_key": "out"}, ValueError, "auxiliary_fields"),
    ({"clip_range": (1.0, 0.0)}, ValueError, "clip_range"),
    ({"clip_range": (0.5, 0.5)}, ValueError, "clip_range"),
    ({"clip_range": (0.0,)}, ValueError, "clip_range"),
    ({"clip_range": (0.0, 0.5, 1.0)}, ValueError, "clip_range"),
    ({"clip_range": (NAN, 1.0)}, ValueError, "clip_range"),
    ({"clip_range": (0.0, NAN)}, ValueError, "clip_range"),
    ({"clip_range": ("0", 1.0)}, ValueError, "clip_range"),
    ({"clip_range": (False, True)}, ValueError, "clip_range"),
    ({"clip_range": "01"}, ValueError, "clip_range"),
    ({"clip_range": 1.0}, ValueError, "clip_range"),
    ({"preserve_auxiliary": "no"}, TypeError, "preserve_auxiliary"),
    ({"validate_domain_constraints": 0}, TypeError, "validate_domain_constraints"),
]

NOISE_INVALID: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"mode": "uniform"}, ValueError, "mode"),
    ({"mode": "pixel"}, ValueError, "mode"),
    ({"mode": "Gaussian"}, ValueError, "mode"),
    ({"mode": None}, ValueError, "mode"),
    ({"noise_std": -0.1}, ValueError, "noise_std"),
    ({"noise_std": -1e-300}, ValueError, "noise_std"),
    ({"noise_std": NAN}, ValueError, "noise_std"),
    ({"noise_std": INF}, ValueError, "noise_std"),
    ({"noise_std": True}, TypeError, "noise_std"),
    ({"noise_std": "0.1"}, TypeError, "noise_std"),
    ({"noise_std": None}, TypeError, "noise_std"),
    ({"noise_mean": NAN}, ValueError, "noise_mean"),
    ({"noise_mean": -INF}, ValueError, "noise_mean"),
    ({"noise_mean": False}, TypeError, "noise_mean"),
    ({"salt_prob": -0.01}, ValueError, "salt_prob"),
    ({"salt_prob": 1.01}, ValueError, "salt_prob"),
    ({"salt_prob": NAN}, ValueError, "salt_prob"),
    ({"salt_prob": INF}, ValueError, "salt_prob"),
    ({"salt_prob": True}, TypeError, "salt_prob"),
    ({"pepper_prob": -0.01}, ValueError, "pepper_prob"),
    ({"pepper_prob": 1.5}, ValueError, "pepper_prob"),
    ({"pepper_prob": NAN}, ValueError, "pepper_prob"),
    ({"pepper_prob": "0.1"}, TypeError, "pepper_prob"),
    ({"salt_prob": 0.6, "pepper_prob": 0.5}, ValueError, "salt_prob + pepper_prob"),
    ({"salt_prob": 1.0, "pepper_prob": 1e-9}, ValueError, "salt_prob + pepper_prob"),
    ({"salt_value": "white"}, TypeError, "salt_value"),
    ({"salt_value": [1.0]}, TypeError, "salt_value"),
    ({"salt_value": True}, TypeError, "salt_value"),
    ({"salt_value": NAN}, ValueError, "salt_value"),
    ({"salt_value": INF}, ValueError, "salt_value"),
    ({"pepper_value": "black"}, TypeError, "pepper_value"),
    ({"pepper_value": False}, TypeError, "pepper_value"),
    ({"pepper_value": -INF}, ValueError, "pepper_value"),
    ({"lam_scale": 0.0}, ValueError, "lam_scale"),
    ({"lam_scale": -1.0}, ValueError, "lam_scale"),
    ({"lam_scale": NAN}, ValueError, "lam_scale"),
    ({"lam_scale": INF}, ValueError, "lam_scale"),
    ({"lam_scale": True}, TypeError, "lam_scale"),
]

DROPOUT_INVALID: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"mode": "spatial"}, ValueError, "mode"),
    ({"mode": "gaussian"}, ValueError, "mode"),
    ({"mode": "Pixel"}, ValueError, "mode"),
    ({"dropout_rate": -0.1}, ValueError, "dropout_rate"),
    ({"dropout_rate": 1.1}, ValueError, "dropout_rate"),
    ({"dropout_rate": NAN}, ValueError, "dropout_rate"),
    ({"dropout_rate": INF}, ValueError, "dropout_rate"),
    ({"dropout_rate": True}, TypeError, "dropout_rate"),
    ({"dropout_rate": np.bool_(False)}, TypeError, "dropout_rate"),
    ({"dropout_rate": "0.5"}, TypeError, "dropout_rate"),
]

NOISE_MODE_OF_FIELD = {
    "noise_std": "gaussian",
    "noise_mean": "gaussian",
    "salt_prob": "salt_pepper",
    "pepper_prob": "salt_pepper",
    "salt_value": "salt_pepper",
    "pepper_value": "salt_pepper",
    "lam_scale": "poisson",
}


def _in_its_mode(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` plus the noise mode that reads its field (only that mode checks it)."""
    if "mode" in kwargs:
        return kwargs
    return {"mode": NOISE_MODE_OF_FIELD[next(iter(kwargs))], **kwargs}


INVALID = (
    [(cls, kw, exc, name) for cls in CONFIGS for kw, exc, name in SHARED_INVALID]
    + [(NoiseOperatorConfig, _in_its_mode(kw), exc, name) for kw, exc, name in NOISE_INVALID]
    + [(DropoutOperatorConfig, kw, exc, name) for kw, exc, name in DROPOUT_INVALID]
)


@pytest.mark.parametrize("case", INVALID, ids=_id)
def test_invalid_value_rejected_naming_the_field(case):
    cls, kwargs, exception, field_name = case
    with pytest.raises(exception, match=re.escape(field_name)):
        _build(cls, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "exception", "field_name"),
    [case for case in NOISE_INVALID if "mode" not in case[0]],
    ids=str,
)
def test_a_field_only_another_noise_mode_reads_is_not_checked(kwargs, exception, field_name):
    """As in datarax: ``mode="poisson", noise_std=-1`` constructs (the poisson kernel never
    reads ``noise_std``); every mode that reads the field (its declared ``fields``)
    rejects it."""
    read = next(iter(kwargs))
    assert NOISE_MODE_OF_FIELD[read] in NOISE_MODES
    for mode in NOISE_MODES:
        if read in modes.by_name(mode).fields:
            with pytest.raises(exception, match=re.escape(field_name)):
                _build(NoiseOperatorConfig, mode=mode, **kwargs)
        else:
            assert _build(NoiseOperatorConfig, mode=mode, **kwargs).mode == mode


@pytest.mark.parametrize(
    ("cls", "field_name", "value"),
    [
        (NoiseOperatorConfig, "noise_std", -0.25),
        (NoiseOperatorConfig, "salt_prob", 1.25),
        (NoiseOperatorConfig, "lam_scale", -3.5),
        (NoiseOperatorConfig, "mode", "impulse"),
        (DropoutOperatorConfig, "dropout_rate", 2.5),
        (DropoutOperatorConfig, "batch_strategy", "pmap"),
    ],
)
def test_message_names_the_offending_value(cls, field_name, value):
    kwargs = {field_name: value}
    if cls is NoiseOperatorConfig:
        kwargs = _in_its_mode(kwargs)
    with pytest.raises(ValueError, match=re.escape(repr(value))):
        _build(cls, **kwargs)


@pytest.mark.parametrize("cls", CONFIGS)
def test_field_key_is_required(cls):
    with pytest.raises(TypeError, match="field_key"):
        cls()


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (NoiseOperatorConfig, {"noise_std": 0.0}),
        (NoiseOperatorConfig, {"noise_std": 1}),  # an int is a real number
        (NoiseOperatorConfig, {"noise_std": np.float32(0.1), "noise_mean": np.float64(-1.0)}),
        (NoiseOperatorConfig, {"salt_prob": 1.0, "pepper_prob": 0.0}),
        (NoiseOperatorConfig, {"salt_prob": 0.0, "pepper_prob": 1.0}),
        (NoiseOperatorConfig, {"salt_prob": 0.25, "pepper_prob": 0.75}),
        (NoiseOperatorConfig, {"salt_prob": 0.7, "pepper_prob": 0.3}),
        (NoiseOperatorConfig, {"salt_value": 0.8, "pepper_value": 0.2}),
        (NoiseOperatorConfig, {"salt_value": 1, "pepper_value": -5.0}),
        (NoiseOperatorConfig, {"lam_scale": 1e-9}),
        (NoiseOperatorConfig, {"clip_range": None}),
        (NoiseOperatorConfig, {"clip_range": (-1.0, 1.0)}),
        (NoiseOperatorConfig, {"mode": "salt_pepper"}),
        (NoiseOperatorConfig, {"mode": "poisson", "lam_scale": 1000.0}),
        (DropoutOperatorConfig, {"dropout_rate": 0.0}),
        (DropoutOperatorConfig, {"dropout_rate": 1.0}),
        (DropoutOperatorConfig, {"mode": "channel", "clip_range": (0.0, 255.0)}),
        (DropoutOperatorConfig, {"stochastic": True}),
        (DropoutOperatorConfig, {"stochastic": True, "stream_name": "augment"}),
        (DropoutOperatorConfig, {"batch_strategy": "scan"}),
        (DropoutOperatorConfig, {"batch_stats_fn": lambda data: {"n": 1}}),
        (DropoutOperatorConfig, {"precomputed_stats": {"mean": 0.5}}),
        (DropoutOperatorConfig, {"target_key": "out", "auxiliary_fields": ["label", "mask"]}),
    ],
)
def test_valid_edge_values_accepted(cls, kwargs):
    config = _build(cls, **kwargs)
    for name, value in kwargs.items():
        assert getattr(config, name) is value


@given(noise_configs())
def test_strategy_noise_configs_are_valid(config):
    assert isinstance(config, NoiseOperatorConfig)
    assert config.noise_std >= 0 and 0 <= config.salt_prob + config.pepper_prob <= 1
    assert 0.1 <= config.lam_scale <= 1000
    assert dataclasses.replace(config) == config  # validation passes again


@given(dropout_configs())
def test_strategy_dropout_configs_are_valid(config):
    assert isinstance(config, DropoutOperatorConfig)
    assert 0 <= config.dropout_rate <= 1
    assert dataclasses.replace(config) == config


@given(st.data())
def test_strategies_hold_fixed_fields(data):
    config = data.draw(noise_configs("poisson", clip_range=None, lam_scale=3.0))
    assert (config.mode, config.clip_range, config.lam_scale) == ("poisson", None, 3.0)
    config = data.draw(noise_configs("salt_pepper", salt_prob=0.9))
    assert config.salt_prob == 0.9 and config.pepper_prob <= 0.1 + 1e-12
    config = data.draw(dropout_configs("channel", dropout_rate=1.0))
    assert (config.mode, config.dropout_rate) == ("channel", 1.0)


# --------------------------------------------------------------------------- #
# Defaults, field order, keyword-only fields, immutability                     #
# --------------------------------------------------------------------------- #
BASE_DEFAULTS = {
    "cacheable": False,
    "batch_stats_fn": None,
    "precomputed_stats": None,
    "stochastic": False,
    "stream_name": None,
    "batch_strategy": "vmap",
    "target_key": None,
    "auxiliary_fields": None,
    "preserve_auxiliary": True,
    "validate_domain_constraints": True,
}


def test_noise_defaults_match_the_seed():
    config = NoiseOperatorConfig(field_key="image")
    expected = BASE_DEFAULTS | {
        "field_key": "image",
        "clip_range": (0.0, 1.0),
        "mode": "gaussian",
        "noise_std": 0.05,
        "noise_mean": 0.0,
        "salt_prob": 0.01,
        "pepper_prob": 0.01,
        "salt_value": None,
        "pepper_value": None,
        "lam_scale": 1.0,
    }
    beyond_seed = {
        "noise_std_range": None,
        "salt_prob_range": None,
        "pepper_prob_range": None,
        "lam_scale_range": None,
        "per_channel": True,
        "apply_prob": 1.0,
    }
    assert dataclasses.asdict(config) == expected | beyond_seed


def test_dropout_defaults_match_the_seed():
    config = DropoutOperatorConfig(field_key="image")
    expected = BASE_DEFAULTS | {
        "field_key": "image",
        "clip_range": None,
        "dropout_rate": 0.1,
        "mode": "pixel",
    }
    beyond_seed = {"dropout_rate_range": None, "per_channel": True, "apply_prob": 1.0}
    coarse = {"hole_count_range": (1, 1), "hole_size_range": (0.1, 0.3), "fill_value": 0.0}
    assert dataclasses.asdict(config) == expected | beyond_seed | coarse


COMMON_ORDER = [
    "cacheable",
    "batch_stats_fn",
    "precomputed_stats",
    "stochastic",
    "stream_name",
    "batch_strategy",
    "field_key",
    "target_key",
    "auxiliary_fields",
    "clip_range",
    "preserve_auxiliary",
    "validate_domain_constraints",
]
NOISE_ORDER = [
    "mode",
    "noise_std",
    "noise_mean",
    "salt_prob",
    "pepper_prob",
    "salt_value",
    "pepper_value",
    "lam_scale",
    # beyond the seed pages (issue 17), after every seed field
    "noise_std_range",
    "salt_prob_range",
    "pepper_prob_range",
    "lam_scale_range",
    "per_channel",
    "apply_prob",
]
DROPOUT_ORDER = [
    "dropout_rate",
    "mode",
    "dropout_rate_range",
    "per_channel",
    "apply_prob",
    "hole_count_range",  # issue 24
    "hole_size_range",
    "fill_value",
]


@pytest.mark.parametrize(
    ("cls", "own"), [(NoiseOperatorConfig, NOISE_ORDER), (DropoutOperatorConfig, DROPOUT_ORDER)]
)
def test_field_order_matches_the_seed_signature(cls, own):
    assert [f.name for f in dataclasses.fields(cls)] == COMMON_ORDER + own


@pytest.mark.parametrize("cls", CONFIGS)
def test_fields_after_batch_strategy_are_keyword_only(cls):
    fields = dataclasses.fields(cls)
    cut = [f.name for f in fields].index("batch_strategy") + 1
    assert not any(f.kw_only for f in fields[:cut])
    assert all(f.kw_only for f in fields[cut:])
    # The six leading fields can be given by position, the rest cannot.
    config = cls(True, None, None, True, "augment", "scan", field_key="image")
    assert (config.cacheable, config.stochastic, config.stream_name, config.batch_strategy) == (
        True,
        True,
        "augment",
        "scan",
    )
    with pytest.raises(TypeError):
        cls(False, None, None, False, None, "vmap", "image")


@pytest.mark.parametrize("cls", CONFIGS)
def test_configs_are_frozen(cls):
    config = cls(field_key="image")
    assert issubclass(cls, ModalityOperatorConfig)
    for name in ("field_key", "clip_range", "mode", "stochastic"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(config, name, getattr(config, name))
    with pytest.raises(ValueError, match="mode"):
        dataclasses.replace(config, mode="not-a-mode")  # replace re-validates
