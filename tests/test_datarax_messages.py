"""datarax 0.1.4's own error messages and params forms (issue 10: datarax code runs unchanged).

Every row pins, verbatim, the text datarax 0.1.4 raises for an input (found by
triggering each check in a datarax 0.1.4 virtualenv).  Our error for the same
input must be of the same type (or a subclass) and its message must *start*
with that text (our detail follows), so ``pytest.raises(ValueError,
match=re.escape(text))`` written against datarax passes with ``datarax_ops``.

When datarax 0.1.4 is importable (never in CI: it pins other versions), the same
rows run against datarax itself, so the pins stay honest:

    python3.11 -m venv /tmp/dx && /tmp/dx/bin/pip install datarax==0.1.4 pytest hypothesis
    /tmp/dx/bin/pip install --no-deps <a copy of this repository>
    /tmp/dx/bin/python -m pytest tests/test_datarax_messages.py

Rules datarax does not have (types, NaN and infinity, bools, empty target_key...)
keep this project's own messages; ``tests/test_config.py`` covers them.
"""

from __future__ import annotations

import math
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import datarax_ops as dx
from datarax_ops.errors import ParamsKeyError, RngStreamError
from tests.datarax_version import check_datarax_version

NAN, INF = math.nan, math.inf

# (config: "noise" / "dropout", kwargs besides field_key="image", exception, datarax's text).
# datarax checks a mode's parameters only in that mode, so those rows name the mode.
CONFIG_MESSAGES: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    (
        "noise",
        {"batch_stats_fn": lambda data: {}, "precomputed_stats": {"mean": 0.5}},
        ValueError,
        "Cannot specify both batch_stats_fn and precomputed_stats. "
        "Choose dynamic computation or static values, not both.",
    ),
    (
        "noise",
        {"stream_name": "augment"},
        ValueError,
        "Deterministic modules should not specify stream_name. "
        "Remove stream_name or set stochastic=True",
    ),
    (
        "dropout",
        {"stream_name": "augment", "stochastic": False},
        ValueError,
        "Deterministic modules should not specify stream_name. "
        "Remove stream_name or set stochastic=True",
    ),
    (
        "noise",
        {"batch_strategy": "pmap"},
        ValueError,
        "batch_strategy must be 'vmap' or 'scan', got 'pmap'",
    ),
    (
        "dropout",
        {"batch_strategy": None},
        ValueError,
        "batch_strategy must be 'vmap' or 'scan', got 'None'",
    ),
    ("noise", {"field_key": ""}, ValueError, "field_key must be a non-empty string"),
    ("dropout", {"field_key": None}, ValueError, "field_key must be a non-empty string"),
    (
        "noise",
        {"clip_range": (0.0,)},
        ValueError,
        "clip_range must be tuple of (min, max), got (0.0,)",
    ),
    (
        "dropout",
        {"clip_range": (0.0, 0.5, 1.0)},
        ValueError,
        "clip_range must be tuple of (min, max), got (0.0, 0.5, 1.0)",
    ),
    ("noise", {"clip_range": (1.0, 0.0)}, ValueError, "clip_range min (1.0) must be < max (0.0)"),
    ("dropout", {"clip_range": (0.5, 0.5)}, ValueError, "clip_range min (0.5) must be < max (0.5)"),
    (
        "noise",
        {"mode": "uniform"},
        ValueError,
        "mode must be 'gaussian', 'salt_pepper', or 'poisson', got 'uniform'",
    ),
    (
        "noise",
        {"mode": None},
        ValueError,
        "mode must be 'gaussian', 'salt_pepper', or 'poisson', got 'None'",
    ),
    ("noise", {"noise_std": -0.1}, ValueError, "noise_std must be non-negative, got -0.1"),
    ("noise", {"noise_std": -INF}, ValueError, "noise_std must be non-negative, got -inf"),
    (
        "noise",
        {"mode": "salt_pepper", "salt_prob": -0.01},
        ValueError,
        "salt_prob must be in [0.0, 1.0], got -0.01",
    ),
    (
        "noise",
        {"mode": "salt_pepper", "salt_prob": 1.01},
        ValueError,
        "salt_prob must be in [0.0, 1.0], got 1.01",
    ),
    (
        "noise",
        {"mode": "salt_pepper", "salt_prob": NAN},
        ValueError,
        "salt_prob must be in [0.0, 1.0], got nan",
    ),
    (
        "noise",
        {"mode": "salt_pepper", "pepper_prob": 1.5},
        ValueError,
        "pepper_prob must be in [0.0, 1.0], got 1.5",
    ),
    (
        "noise",
        {"mode": "salt_pepper", "pepper_prob": NAN},
        ValueError,
        "pepper_prob must be in [0.0, 1.0], got nan",
    ),
    (
        "noise",
        {"mode": "salt_pepper", "salt_prob": 0.6, "pepper_prob": 0.5},
        ValueError,
        "Sum of salt_prob and pepper_prob cannot exceed 1.0",
    ),
    (
        "noise",
        {"mode": "salt_pepper", "salt_value": "white"},
        TypeError,
        "salt_value must be a number or None, got <class 'str'>",
    ),
    (
        "noise",
        {"mode": "salt_pepper", "pepper_value": "black"},
        TypeError,
        "pepper_value must be a number or None, got <class 'str'>",
    ),
    (
        "noise",
        {"mode": "poisson", "lam_scale": 0.0},
        ValueError,
        "lam_scale must be positive, got 0.0",
    ),
    (
        "noise",
        {"mode": "poisson", "lam_scale": -1.0},
        ValueError,
        "lam_scale must be positive, got -1.0",
    ),
    (
        "noise",
        {"mode": "poisson", "lam_scale": -INF},
        ValueError,
        "lam_scale must be positive, got -inf",
    ),
    (
        "dropout",
        {"dropout_rate": "0.5"},
        TypeError,
        "dropout_rate must be a number, got <class 'str'>",
    ),
    (
        "dropout",
        {"dropout_rate": None},
        TypeError,
        "dropout_rate must be a number, got <class 'NoneType'>",
    ),
    ("dropout", {"dropout_rate": -0.1}, ValueError, "dropout_rate must be in [0.0, 1.0], got -0.1"),
    ("dropout", {"dropout_rate": 1.1}, ValueError, "dropout_rate must be in [0.0, 1.0], got 1.1"),
    ("dropout", {"dropout_rate": NAN}, ValueError, "dropout_rate must be in [0.0, 1.0], got nan"),
    (
        "dropout",
        {"mode": "spatial"},
        ValueError,
        "mode must be 'pixel' or 'channel', got 'spatial'",
    ),
    ("dropout", {"mode": None}, ValueError, "mode must be 'pixel' or 'channel', got 'None'"),
]

# apply(random_params=...) without the mode's key: datarax raises ValueError.
MISSING_PARAMS_MESSAGES = {
    "gaussian": "Stochastic mode requires 'noise' in random_params for Gaussian mode",
    "salt_pepper": "Stochastic mode requires 'noise_mask' in random_params for salt_pepper mode",
    "poisson": "Stochastic mode requires 'poisson_rngs' in random_params for poisson mode",
    "pixel": "Stochastic mode requires 'keep_mask' in random_params. "
    "This should be generated by generate_random_params().",
    "channel": "Stochastic mode requires 'keep_mask' in random_params. "
    "This should be generated by generate_random_params().",
}
MODES = tuple(MISSING_PARAMS_MESSAGES)
MISSING_SHAPE_TEXT = "Field key 'image' not found in data_shapes. Available keys: ['other']"
MISSING_FIELD_TEXT = "Field 'image' not found in data"
NO_RNGS_TEXT = "Stochastic operators require rngs parameter. Pass rngs=nnx.Rngs(..., augment=...)"
NO_STREAM_TEXT = "No RngStream named 'augment' found in Rngs."


def _row_id(row: tuple) -> str:
    return f"{row[0]}-" + "-".join(f"{k}={v!r}" for k, v in row[1].items() if k != "batch_stats_fn")


def _raised(kind: type[Exception], text: str, call: Any) -> BaseException:
    """Runs ``call``; asserts it raises ``kind`` with a message starting with ``text``."""
    with pytest.raises(kind, match=re.escape(text)) as info:
        call()
    message = str(info.value.args[0]) if info.value.args else ""
    assert message.startswith(text), message
    return info.value


def _mode_config(package: Any, mode: str, **kwargs: Any) -> Any:
    """``package``'s config (datarax_ops or datarax's module objects) for ``mode``."""
    noise, dropout = package
    cls = noise if mode in ("gaussian", "salt_pepper", "poisson") else dropout
    return cls(field_key="image", mode=mode, **kwargs)


OURS_CONFIGS = (dx.NoiseOperatorConfig, dx.DropoutOperatorConfig)
OURS_OPERATORS = (dx.NoiseOperator, dx.DropoutOperator)


def _operator(classes: tuple, configs: tuple, mode: str) -> Any:
    config = _mode_config(configs, mode, stochastic=True, stream_name="augment")
    cls = classes[0] if mode in ("gaussian", "salt_pepper", "poisson") else classes[1]
    return cls(config, rngs=nnx.Rngs(augment=0))


# --------------------------------------------------------------------------- #
# datarax_ops raises datarax's text                                            #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("row", CONFIG_MESSAGES, ids=_row_id)
def test_config_error_starts_with_datarax_text(row):
    which, kwargs, kind, text = row
    cls = dx.NoiseOperatorConfig if which == "noise" else dx.DropoutOperatorConfig
    _raised(kind, text, lambda: cls(**({"field_key": "image"} | kwargs)))


@pytest.mark.parametrize("mode", MODES)
def test_generate_random_params_missing_field(mode):
    op = _operator(OURS_OPERATORS, OURS_CONFIGS, mode)
    call = lambda: op.generate_random_params(jax.random.key(0), {"other": (2, 4, 4, 3)})  # noqa: E731
    _raised(KeyError, MISSING_SHAPE_TEXT, call)


@pytest.mark.parametrize("mode", MODES)
def test_apply_missing_field(mode):
    op = _operator(OURS_OPERATORS, OURS_CONFIGS, mode)
    _raised(KeyError, MISSING_FIELD_TEXT, lambda: op.apply({"img": jnp.ones((4, 4, 3))}, {}, {}))


@pytest.mark.parametrize("mode", MODES)
def test_apply_missing_params_key_is_value_error_and_key_error(mode):
    op = _operator(OURS_OPERATORS, OURS_CONFIGS, mode)
    call = lambda: op.apply({"image": jnp.ones((4, 4, 3))}, {}, {}, {"wrong": jnp.ones(3)})  # noqa: E731
    error = _raised(ValueError, MISSING_PARAMS_MESSAGES[mode], call)
    assert isinstance(error, KeyError) and isinstance(error, ParamsKeyError)
    assert str(error).startswith(MISSING_PARAMS_MESSAGES[mode])  # no KeyError quoting


def test_rngs_errors():
    config = dx.NoiseOperatorConfig(field_key="image", stochastic=True, stream_name="augment")
    _raised(ValueError, NO_RNGS_TEXT, lambda: dx.NoiseOperator(config, rngs=None))
    error = _raised(
        KeyError, NO_STREAM_TEXT, lambda: dx.NoiseOperator(config, rngs=nnx.Rngs(params=0))
    )
    assert isinstance(error, ValueError) and isinstance(error, RngStreamError)


# --------------------------------------------------------------------------- #
# datarax's params forms are accepted by apply                                 #
# --------------------------------------------------------------------------- #
def test_channel_mask_in_datarax_shape_is_accepted():
    op = _operator(OURS_OPERATORS, OURS_CONFIGS, "channel")
    image = jnp.asarray(np.random.default_rng(0).random((4, 5, 3), np.float32))
    mask = jnp.array([True, False, True])
    ours, _, _ = op.apply({"image": image}, {}, {}, {"keep_mask": mask})
    theirs, _, _ = op.apply({"image": image}, {}, {}, {"keep_mask": mask[None, None, :]})
    np.testing.assert_array_equal(ours["image"], theirs["image"])
    np.testing.assert_array_equal(theirs["image"][..., 1], 0)
    with pytest.raises(ValueError, match="shape"):  # a per-pixel mask is not a channel mask
        op.apply({"image": image}, {}, {}, {"keep_mask": jnp.ones((4, 5, 3), bool)})


@pytest.mark.parametrize("raw", [False, True], ids=["typed", "raw"])
def test_poisson_rngs_key_is_accepted_as_the_record_key(raw):
    op = _operator(OURS_OPERATORS, OURS_CONFIGS, "poisson")
    image = jnp.asarray(np.random.default_rng(1).random((4, 5, 3), np.float32))
    key = jax.random.PRNGKey(3) if raw else jax.random.key(3)
    levels = op.kernel.draw(jax.random.key_data(key), (4, 5, 3))
    expected, _, _ = op.apply({"image": image}, {}, {}, levels)
    got, _, _ = op.apply({"image": image}, {}, {}, {"poisson_rngs": key})
    np.testing.assert_array_equal(got["image"], expected["image"])
    other, _, _ = op.apply({"image": image}, {}, {}, {"poisson_rngs": jax.random.key(4)})
    assert not np.array_equal(other["image"], got["image"])


def test_poisson_rngs_under_vmap_and_bad_keys():
    op = _operator(OURS_OPERATORS, OURS_CONFIGS, "poisson")
    images = jnp.asarray(np.random.default_rng(2).random((3, 4, 4, 1), np.float32))
    keys = jax.random.split(jax.random.key(5), 3)

    def one(image, key):
        return op.apply({"image": image}, {}, {}, {"poisson_rngs": key})[0]["image"]

    batched = jax.vmap(one)(images, keys)
    for i in range(3):
        np.testing.assert_array_equal(batched[i], one(images[i], keys[i]))
    with pytest.raises(ValueError, match="one record's key"):
        op.apply({"image": images[0]}, {}, {}, {"poisson_rngs": keys})
    with pytest.raises(TypeError, match="poisson_rngs"):
        op.apply({"image": images[0]}, {}, {}, {"poisson_rngs": jnp.ones(2, jnp.float32)})


# --------------------------------------------------------------------------- #
# The pins against datarax 0.1.4 itself (skipped where it is not installed)     #
# --------------------------------------------------------------------------- #
def _datarax() -> tuple[tuple, tuple]:
    pytest.importorskip("datarax")
    from datarax.operators.modality.image.dropout_operator import (
        DropoutOperator,
        DropoutOperatorConfig,
    )
    from datarax.operators.modality.image.noise_operator import (
        NoiseOperator,
        NoiseOperatorConfig,
    )

    return (NoiseOperator, DropoutOperator), (NoiseOperatorConfig, DropoutOperatorConfig)


def test_the_pins_run_against_the_datarax_the_session_installed():
    """The pins are datarax 0.1.4's texts: the session names the datarax it installed."""
    check_datarax_version(pytest.importorskip("datarax"))


@pytest.mark.parametrize("row", CONFIG_MESSAGES, ids=_row_id)
def test_datarax_itself_raises_the_pinned_config_text(row):
    _, (noise, dropout) = _datarax()
    which, kwargs, kind, text = row
    cls = noise if which == "noise" else dropout
    with pytest.raises(kind) as info:
        cls(**({"field_key": "image"} | kwargs))
    assert str(info.value) == text


@pytest.mark.parametrize("mode", MODES)
def test_datarax_itself_raises_the_pinned_operator_texts(mode):
    classes, configs = _datarax()
    op = _operator(classes, configs, mode)
    with pytest.raises(KeyError) as info:
        op.generate_random_params(jax.random.split(jax.random.key(0), 2), {"other": (2, 4, 4, 3)})
    assert info.value.args[0] == MISSING_SHAPE_TEXT
    with pytest.raises(KeyError) as info:
        op.apply({"img": jnp.ones((4, 4, 3))}, {}, {})
    assert info.value.args[0] == MISSING_FIELD_TEXT
    with pytest.raises(ValueError) as info:
        op.apply({"image": jnp.ones((4, 4, 3))}, {}, {}, {"wrong": jnp.ones(3)})
    assert str(info.value) == MISSING_PARAMS_MESSAGES[mode]


def test_datarax_itself_raises_the_pinned_rngs_texts():
    (noise_op, _), (noise, _) = _datarax()
    config = noise(field_key="image", stochastic=True, stream_name="augment")
    with pytest.raises(ValueError) as info:
        noise_op(config, rngs=None)
    assert str(info.value) == NO_RNGS_TEXT
    with pytest.raises(KeyError) as info:
        noise_op(config, rngs=nnx.Rngs(params=0))
    assert info.value.args[0] == NO_STREAM_TEXT


@pytest.mark.parametrize("mode", ["poisson", "channel"])
def test_datarax_params_forms_feed_our_apply(mode):
    """datarax's own generate_random_params output, one record at a time, into our apply."""
    classes, configs = _datarax()
    theirs = _operator(classes, configs, mode)
    ours = _operator(OURS_OPERATORS, OURS_CONFIGS, mode)
    keys = jax.random.split(jax.random.key(0), 2)
    params = theirs.generate_random_params(keys, {"image": (2, 4, 4, 3)})
    assert set(params) == {"poisson_rngs" if mode == "poisson" else "keep_mask"}
    images = jnp.full((2, 4, 4, 3), 0.5, jnp.float32)

    def one(image, record_params):
        return ours.apply({"image": image}, {}, {}, record_params)[0]["image"]

    out = jax.vmap(one)(images, params)
    assert out.shape == images.shape
    if mode == "channel":  # the same channels are dropped as datarax drops
        theirs_out = jax.vmap(
            lambda image, p: theirs.apply({"image": image}, {}, {}, p)[0]["image"]
        )(images, params)
        np.testing.assert_array_equal(out, theirs_out)


def test_clip_range_without_length_is_type_error_as_in_datarax():
    """datarax's ``len(clip_range)`` raises Python's TypeError; ours is that and ValueError."""
    for cls in OURS_CONFIGS:
        with pytest.raises(TypeError, match=re.escape("clip_range must be tuple of (min, max)")):
            cls(field_key="image", clip_range=1.0)
        with pytest.raises(ValueError, match="clip_range"):
            cls(field_key="image", clip_range=1.0)
    _, (noise, _) = _datarax()
    with pytest.raises(TypeError):
        noise(field_key="image", clip_range=1.0)
