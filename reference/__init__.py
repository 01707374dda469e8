"""The executable specification of datarax_ops, in NumPy only.

Read ``noise.py`` and ``dropout.py`` to learn exactly what each operator mode
does.  Every mode is a *draw* (all randomness, from a ``numpy.random.Generator``)
and an *apply* (deterministic given the drawn params).  This module adds the
dispatch by config and the batch helpers::

    >>> import numpy as np, reference
    >>> config = reference.NoiseOperatorConfig(field_key="image", mode="gaussian", noise_std=0.1)
    >>> image = np.full((4, 4, 3), 0.5, np.float32)
    >>> params = reference.draw(config, np.random.default_rng(0), image.shape)
    >>> reference.apply(config, image, params).shape
    (4, 4, 3)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from reference import dropout, noise
from reference.config import (
    DataraxModuleConfig,
    DropoutOperatorConfig,
    ModalityOperatorConfig,
    NoiseOperatorConfig,
    OperatorConfig,
)

Params = dict[str, np.ndarray]
Draw = Callable[[Any, np.random.Generator, tuple[int, ...], int | None], Params]
Apply = Callable[[Any, np.ndarray, Params], np.ndarray]

# (config class, mode) -> (draw, apply, params key)
MODES: dict[tuple[type, str], tuple[Draw, Apply, str]] = {
    (NoiseOperatorConfig, "gaussian"): (noise.draw_gaussian, noise.apply_gaussian, "noise"),
    (NoiseOperatorConfig, "salt_pepper"): (
        noise.draw_salt_pepper,
        noise.apply_salt_pepper,
        "noise_mask",
    ),
    (NoiseOperatorConfig, "poisson"): (noise.draw_poisson, noise.apply_poisson, "poisson_samples"),
    (DropoutOperatorConfig, "pixel"): (dropout.draw_pixel, dropout.apply_pixel, "keep_mask"),
    (DropoutOperatorConfig, "channel"): (dropout.draw_channel, dropout.apply_channel, "keep_mask"),
}

# The deterministic mode's one fixed pattern is the draw from this seed.
FIXED_PATTERN_SEED = 0


def mode_of(config: NoiseOperatorConfig | DropoutOperatorConfig) -> tuple[Draw, Apply, str]:
    """The (draw, apply, params key) triple of ``config``'s operator and mode."""
    for (config_type, mode), functions in MODES.items():
        if isinstance(config, config_type) and config.mode == mode:
            return functions
    raise TypeError(f"no reference mode for {type(config).__name__} with mode={config.mode!r}")


def draw(
    config: NoiseOperatorConfig | DropoutOperatorConfig,
    rng: np.random.Generator,
    element_shape: tuple[int, ...],
    batch_size: int | None = None,
) -> Params:
    """Draws params for one element, or for ``batch_size`` elements (leading axis)."""
    return mode_of(config)[0](config, rng, tuple(element_shape), batch_size)


def apply(
    config: NoiseOperatorConfig | DropoutOperatorConfig, image: np.ndarray, params: Params
) -> np.ndarray:
    """Applies the mode to one element with the given params (no batch axis)."""
    return mode_of(config)[1](config, np.asarray(image), params)


def apply_batch(
    config: NoiseOperatorConfig | DropoutOperatorConfig, images: np.ndarray, params: Params
) -> np.ndarray:
    """Applies element by element: ``images`` and every params array have a batch axis."""
    images = np.asarray(images)
    outputs = [
        apply(config, images[i], {k: np.asarray(v)[i] for k, v in params.items()})
        for i in range(images.shape[0])
    ]
    return np.stack(outputs) if outputs else images.copy()


def fixed_params(
    config: NoiseOperatorConfig | DropoutOperatorConfig, element_shape: tuple[int, ...]
) -> Params:
    """The deterministic mode (``stochastic=False``): one pattern for every element and call."""
    return draw(config, np.random.default_rng(FIXED_PATTERN_SEED), element_shape)


__all__ = [
    "MODES",
    "DataraxModuleConfig",
    "DropoutOperatorConfig",
    "ModalityOperatorConfig",
    "NoiseOperatorConfig",
    "OperatorConfig",
    "apply",
    "apply_batch",
    "draw",
    "dropout",
    "fixed_params",
    "mode_of",
    "noise",
]
