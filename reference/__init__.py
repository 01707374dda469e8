"""The executable specification of datarax_ops, in NumPy only.

Read ``modes/<name>.py`` (``modes/gaussian.py``, ...) to learn exactly what each
operator mode does: each file declares one mode (``spec.ModeSpec``), and
``modes/__init__.py`` is the one registry.  Every mode is a *draw* (all
randomness, from a ``numpy.random.Generator`` or from the counter-based stream
of ``stream.py`` given record keys) and an *apply* (deterministic given the
drawn params).  ``operator_output`` reproduces what the compiled ``op(batch)``
returns from the operator's key and the records' indices.  This module adds the
dispatch by config and the batch helpers::

    >>> import numpy as np, reference
    >>> config = reference.NoiseOperatorConfig(field_key="image", mode="gaussian", noise_std=0.1)
    >>> image = np.full((4, 4, 3), 0.5, np.float32)
    >>> params = reference.draw(config, np.random.default_rng(0), image.shape)
    >>> reference.apply(config, image, params).shape
    (4, 4, 3)
"""

from __future__ import annotations

import numpy as np

from . import modes, record, stream
from .common import GeneratorSource, RandomSource, StreamSource
from .config import (
    DataraxModuleConfig,
    DropoutOperatorConfig,
    ModalityOperatorConfig,
    NoiseOperatorConfig,
    OperatorConfig,
    mode_spec,
)
from .modes import MODES
from .spec import ModeSpec, Strength

Params = dict[str, np.ndarray]
# The name the reference has always used for a mode's record.
Mode = ModeSpec


def mode_of(config: NoiseOperatorConfig | DropoutOperatorConfig) -> ModeSpec:
    """The declared mode (``ModeSpec``) of ``config``'s operator and mode."""
    try:
        return mode_spec(config)
    except KeyError:
        raise TypeError(
            f"no reference mode for {type(config).__name__} with mode={config.mode!r}"
        ) from None


def draw(
    config: NoiseOperatorConfig | DropoutOperatorConfig,
    rng: np.random.Generator | RandomSource,
    element_shape: tuple[int, ...],
    batch_size: int | None = None,
) -> Params:
    """Draws params for one element, or for ``batch_size`` elements (leading axis).

    ``rng`` is a ``numpy.random.Generator`` or a ``StreamSource`` of record keys
    (``(2,)`` for one element, ``(batch_size, 2)`` for a batch).  With
    ``apply_prob < 1`` the params hold each record's decision too
    (``"apply"``, ``record.draw_apply``).
    """
    params = mode_of(config).draw(config, rng, tuple(element_shape), batch_size)
    return {**params, **record.draw_apply(config, rng, batch_size)}


def apply(
    config: NoiseOperatorConfig | DropoutOperatorConfig, image: np.ndarray, params: Params
) -> np.ndarray:
    """Applies the mode to one element with the given params (no batch axis); a
    record whose ``params["apply"]`` is False is returned as it is (a copy)."""
    if record.passes_through(config, params):
        return np.array(image, copy=True)
    return mode_of(config).apply(config, np.asarray(image), params)


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
    """The deterministic mode (``stochastic=False``): one pattern for every element and
    call, the stream's draw for the key ``stream.FIXED_PATTERN_KEY``."""
    return draw(config, StreamSource(stream.fixed_pattern_key()), element_shape)


def stream_params(
    config: NoiseOperatorConfig | DropoutOperatorConfig,
    base_key: np.ndarray | None,
    indices: np.ndarray,
    element_shape: tuple[int, ...],
    *,
    epochs: int | np.ndarray = 0,
    shards: int | np.ndarray = 0,
) -> Params:
    """The params the compiled operator draws for the records ``(epochs, shards, indices)``
    (batch axis first).

    Args:
      base_key: the operator's base key, ``uint32 (2,)`` (``op.get_state()``'s
        ``_base_key``); None for a deterministic operator.
      indices: ``(batch,)`` record positions, up to ``2**64 - 1`` (metadata
        index, else the operator's record counter).
      epochs, shards: the records' metadata epoch and shard (0 when absent),
        broadcast against ``indices``.
    """
    identity = stream.identity_words(epochs, shards, np.asarray(indices, dtype=object))
    identity = identity.reshape(-1, 4)
    if base_key is None:
        keys = np.broadcast_to(stream.fixed_pattern_key(), (identity.shape[0], 2))
    else:
        keys = stream.identity_key(np.asarray(base_key, np.uint32), identity)
    return draw(config, StreamSource(keys), element_shape, identity.shape[0])


def operator_output(
    config: NoiseOperatorConfig | DropoutOperatorConfig,
    images: np.ndarray,
    base_key: np.ndarray | None,
    indices: np.ndarray,
    *,
    epochs: int | np.ndarray = 0,
    shards: int | np.ndarray = 0,
) -> np.ndarray:
    """What ``op(batch)`` returns for ``images`` (``(batch, ...)``), reproduced from the
    operator's base key and the records' identities: the whole pipeline, in NumPy."""
    images = np.asarray(images)
    params = stream_params(
        config, base_key, indices, images.shape[1:], epochs=epochs, shards=shards
    )
    return apply_batch(config, images, params)


__all__ = [
    "MODES",
    "DataraxModuleConfig",
    "DropoutOperatorConfig",
    "GeneratorSource",
    "ModalityOperatorConfig",
    "Mode",
    "ModeSpec",
    "NoiseOperatorConfig",
    "OperatorConfig",
    "StreamSource",
    "Strength",
    "apply",
    "apply_batch",
    "draw",
    "fixed_params",
    "mode_of",
    "modes",
    "operator_output",
    "record",
    "stream",
    "stream_params",
]
