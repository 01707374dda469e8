"""How every test builds an operator: the one place a wrong variant can be swapped in.

``nox -s power`` sets ``DATARAX_OPS_VARIANT=<name>`` and re-runs the suite;
``make_operator`` then builds that deliberately wrong operator (from
``tests/power/variants.py``) instead of the real one, and the suite must fail.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

import datarax_ops as dx

VARIANT_ENV = "DATARAX_OPS_VARIANT"


def active_variant() -> str | None:
    return os.environ.get(VARIANT_ENV) or None


def operator_class(config: Any) -> type:
    """The class tests use for ``config``: the real one, or the active wrong variant."""
    variant = active_variant()
    if variant:
        from tests.power.variants import variant_class

        return variant_class(variant, config)
    return dx.NoiseOperator if isinstance(config, dx.NoiseOperatorConfig) else dx.DropoutOperator


def make_operator(config: Any, seed: int = 0, rngs: nnx.Rngs | None = None) -> Any:
    """An operator for ``config`` with ``nnx.Rngs(seed)`` on its stream."""
    if rngs is None:
        stream = config.stream_name or "default"
        rngs = nnx.Rngs(**{stream: seed})
    return operator_class(config)(config, rngs=rngs)


def batch_of(images: np.ndarray, field: str = "image", **extra: Any) -> dx.Batch:
    """A ``Batch`` with ``images`` (leading batch axis) under ``field`` plus ``extra`` fields."""
    data = {field: jnp.asarray(images), **{k: jnp.asarray(v) for k, v in extra.items()}}
    return dx.Batch.from_parts(data=data, states={})


def run_batch(op: Any, images: np.ndarray, field: str = "image") -> np.ndarray:
    """``op(batch)`` on ``images``; the transformed field as NumPy."""
    return np.asarray(op(batch_of(images, field)).data.get_value()[field])


def run_python(script: str, **env: str) -> str:
    """Runs ``script`` in a fresh Python (for JAX flags that must precede JAX's start)
    from the repository root, with ``env`` added and the active variant kept.
    Returns its stdout; fails the test with its output if it exits non-zero."""
    root = pathlib.Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env=dict(os.environ, JAX_PLATFORMS="cpu", **env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# A clearly visible strength for every mode (tests that need "some augmentation").
_STRENGTH: dict[str, dict[str, Any]] = {
    "gaussian": {"noise_std": 0.1},
    "salt_pepper": {"salt_prob": 0.1, "pepper_prob": 0.1},
    "poisson": {"lam_scale": 30.0},
    "pixel": {"dropout_rate": 0.3},
    "channel": {"dropout_rate": 0.5},
    "speckle": {"noise_std": 0.2},
    "coarse": {"hole_count_range": (1, 3), "hole_size_range": (0.2, 0.5), "fill_value": 0.125},
}


def mode_config(mode: str, **overrides: Any) -> Any:
    """A stochastic config of ``mode`` (a name from ``dx.MODES``) on field ``"image"``,
    at a visible strength; ``overrides`` replace any field."""
    (entry,) = [m for m in dx.MODES if m.name == mode]
    fields: dict[str, Any] = {"field_key": "image", "mode": mode, "stochastic": True}
    # a mode not listed here: its declared default example (the bench's case)
    fields.update(_STRENGTH.get(mode) or entry.spec.example())
    fields.update(overrides)
    return entry.config_class(**fields)


# Issue 17's training settings at visible strengths: every range of the mode, channel
# sharing where the mode allows it, and an apply probability.
_RANGES: dict[str, dict[str, Any]] = {
    "gaussian": {"noise_std_range": (0.02, 0.3)},
    "salt_pepper": {"salt_prob_range": (0.02, 0.2), "pepper_prob_range": (0.0, 0.15)},
    "poisson": {"lam_scale_range": (3.0, 300.0)},
    "pixel": {"dropout_rate_range": (0.1, 0.6)},
    "channel": {"dropout_rate_range": (0.2, 0.8)},
    # from above 0: tests divide the noise by each record's std
    "speckle": {"noise_std_range": (0.02, 0.4)},
    "coarse": {},  # no strength ranges: its training setting is apply_prob
}
TRAINING_APPLY_PROB = 0.7


def training_settings(mode: str) -> dict[str, Any]:
    """Every training setting of ``mode`` on: its ranges, ``per_channel=False`` where the
    mode has per-value draws, ``apply_prob=0.7`` (config overrides)."""
    from datarax_ops.reference.config import PER_CHANNEL_MODES

    (entry,) = [m for m in dx.MODES if m.name == mode]
    # a mode not listed here: each declared strength's example range
    ranges = _RANGES.get(mode) or {s.range_field: s.example_range for s in entry.spec.strengths}
    fields: dict[str, Any] = {**ranges, "apply_prob": TRAINING_APPLY_PROB}
    if mode in PER_CHANNEL_MODES:
        fields["per_channel"] = False
    return fields


def training_config(mode: str, **overrides: Any) -> Any:
    """``mode_config(mode)`` with ``training_settings(mode)`` (then ``overrides``)."""
    return mode_config(mode, **{**training_settings(mode), **overrides})
