"""Operator configurations and their validation: the one place both packages use.

The classes mirror datarax's configuration hierarchy field for field
(module config -> operator config -> modality config -> operator config), so
code written for datarax builds them unchanged.  They are plain frozen
dataclasses with no JAX dependency: ``reference`` (the NumPy spec) and
``datarax_ops`` (the compiled operators) both import them from here, so a
value the spec rejects can never reach the compiled code.

Every check raises ``ValueError`` (or ``TypeError`` for a value of the wrong
type) whose message names the field and the offending value.  Where datarax
0.1.4 rejects the same value, the message *starts* with datarax's own wording
(our detail follows it), so ``pytest.raises(ValueError, match=<datarax text>)``
written against datarax passes unchanged; ``tests/test_datarax_messages.py``
pins each of those texts.  Rules datarax does not have (types, NaN, infinity,
bools) keep messages of their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from . import modes
from .spec import Family, ModeSpec
from .validate import (
    check_range_domain,
    either,
    is_real,
    range_pair,
    require_bool,
    require_choice,
    require_key,
    require_probability,
)

# Derived from the registry (``modes``): the lists every other module reads.
NOISE_MODES = modes.names("noise")
DROPOUT_MODES = modes.names("dropout")
BATCH_STRATEGIES = ("vmap", "scan")
# The range fields, by the mode that reads them, with the scalar each replaces.
RANGE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    mode.name: tuple((s.range_field, s.scalar) for s in mode.strengths) for mode in modes.MODES
}
# Modes whose draws are per value, so one draw per pixel can be shared over the channels.
PER_CHANNEL_MODES = tuple(mode.name for mode in modes.MODES if mode.per_value_draws)


class ClipRangeTypeError(TypeError, ValueError):
    """``clip_range`` without a length (e.g. ``1.0``): a ``ValueError`` as every
    clip_range error here, and the ``TypeError`` datarax's ``len()`` raises."""


# --------------------------------------------------------------------------- #
# Validation per level of the hierarchy                                        #
# --------------------------------------------------------------------------- #
def validate_module_config(config: DataraxModuleConfig) -> None:
    """Rules shared by every module: caching flag and statistics sources."""
    require_bool("cacheable", config.cacheable)
    if config.batch_stats_fn is not None and not callable(config.batch_stats_fn):
        raise TypeError(f"batch_stats_fn must be callable or None, got {config.batch_stats_fn!r}")
    if config.precomputed_stats is not None and not isinstance(config.precomputed_stats, Mapping):
        raise TypeError(
            "precomputed_stats must be a dict or None, "
            f"got {type(config.precomputed_stats).__name__}"
        )
    if config.batch_stats_fn is not None and config.precomputed_stats is not None:
        raise ValueError(
            "Cannot specify both batch_stats_fn and precomputed_stats. "
            "Choose dynamic computation or static values, not both."
        )


def validate_operator_config(config: OperatorConfig) -> None:
    """Randomness and batching rules shared by every operator."""
    require_bool("stochastic", config.stochastic)
    require_key("stream_name", config.stream_name, optional=True)
    if not config.stochastic and config.stream_name is not None:
        raise ValueError(
            "Deterministic modules should not specify stream_name. "
            f"Remove stream_name or set stochastic=True (got stream_name={config.stream_name!r} "
            "with stochastic=False)"
        )
    require_choice("batch_strategy", config.batch_strategy, BATCH_STRATEGIES)


def validate_modality_config(config: ModalityOperatorConfig) -> None:
    """Field routing and output-domain rules shared by image operators."""
    require_key("field_key", config.field_key, optional=False)
    require_key("target_key", config.target_key, optional=True)
    if config.auxiliary_fields is not None:
        if isinstance(config.auxiliary_fields, str) or not all(
            isinstance(k, str) and k for k in config.auxiliary_fields
        ):
            raise ValueError(
                "auxiliary_fields must be a list of non-empty strings, "
                f"got {config.auxiliary_fields!r}"
            )
        for routed in (config.field_key, config.target_key):
            if routed is not None and routed in config.auxiliary_fields:
                raise ValueError(
                    f"auxiliary_fields must not contain the transformed field {routed!r}"
                )
    require_bool("preserve_auxiliary", config.preserve_auxiliary)
    require_bool("validate_domain_constraints", config.validate_domain_constraints)
    if config.clip_range is not None:
        if not hasattr(config.clip_range, "__len__"):  # datarax: len() raises TypeError
            raise ClipRangeTypeError(
                f"clip_range must be tuple of (min, max), got {config.clip_range}: "
                "a (min, max) pair of numbers, or None"
            )
        if not isinstance(config.clip_range, (tuple, list)) or len(config.clip_range) != 2:
            raise ValueError(
                f"clip_range must be tuple of (min, max), got {config.clip_range}: "
                "a (min, max) pair of numbers, or None"
            )
        low, high = config.clip_range
        for bound_name, bound in (("clip_range min", low), ("clip_range max", high)):
            if not is_real(bound) or math.isnan(float(bound)):
                raise ValueError(f"{bound_name} must be a number, got {bound!r}")
        if not float(low) < float(high):
            raise ValueError(f"clip_range min ({low}) must be < max ({high})")


# --------------------------------------------------------------------------- #
# Training fields beyond the seed pages: strength ranges, channel sharing,       #
# apply probability (issue 17)                                                 #
# --------------------------------------------------------------------------- #
# Every range field of every mode (a config class has them all).
RANGE_FIELD_NAMES = frozenset(name for pairs in RANGE_FIELDS.values() for name, _ in pairs)


def mode_spec(config: NoiseOperatorConfig | DropoutOperatorConfig) -> ModeSpec:
    """The declared mode of ``config`` (its family's ``mode``)."""
    spec = modes.by_name(config.mode)
    if spec.family != config.family:
        raise TypeError(f"mode {config.mode!r} is not a mode of {type(config).__name__}")
    return spec


def validate_training_fields(config: NoiseOperatorConfig | DropoutOperatorConfig) -> None:
    """The range fields, ``per_channel`` and ``apply_prob``, after the mode's own checks.

    A range set for a mode that does not read it, and ``per_channel=False`` for a
    mode without per-value draws (poisson, channel), are errors that name the field, as
    is a mode's exclusive field set with another mode (``validate_exclusive_fields``):
    unlike the seed fields, these have no datarax code to stay compatible with, and a
    silently ignored setting would train on the wrong data.
    """
    mode = mode_spec(config)
    declared = {s.range_field: s for s in mode.strengths}
    for name in sorted(RANGE_FIELD_NAMES):
        value = getattr(config, name, None)
        if value is None:
            continue
        if name not in declared:
            readers = [m for m, pairs in RANGE_FIELDS.items() if name in dict(pairs)]
            raise ValueError(
                f"{name} is read only by mode {either(tuple(readers))}, not by mode='{config.mode}'"
            )
        low, high = range_pair(name, value)
        check_range_domain(name, low, high, declared[name].domain)
        object.__setattr__(config, name, (low, high))  # stored as a hashable float pair
    if mode.check_ranges is not None:
        mode.check_ranges(config)
    require_bool("per_channel", config.per_channel)
    if not config.per_channel and config.mode not in PER_CHANNEL_MODES:
        raise ValueError(
            f"per_channel=False applies to mode {either(PER_CHANNEL_MODES)} "
            f"(one draw per pixel shared over the channels), not to mode='{config.mode}'"
        )
    if not is_real(config.apply_prob):
        raise TypeError(f"apply_prob must be a real number, got {config.apply_prob!r}")
    require_probability("apply_prob", config.apply_prob)
    validate_exclusive_fields(config)


def validate_exclusive_fields(config: NoiseOperatorConfig | DropoutOperatorConfig) -> None:
    """A field only some mode reads (``ModeSpec.exclusive_fields``), set to other than its
    default with another mode, is an error naming the field and its readers."""
    defaults = {f.name: f.default for f in fields(config)}
    for mode in modes.MODES:
        if mode.name == config.mode:
            continue
        for name in mode.exclusive_fields:
            value = getattr(config, name, None)
            value = tuple(value) if isinstance(value, list) else value
            if name in defaults and value != defaults[name]:
                raise ValueError(
                    f"{name} is read only by mode '{mode.name}', not by mode='{config.mode}' "
                    f"(got {value!r}; leave it at {defaults[name]!r})"
                )


def strength_ranges(
    config: NoiseOperatorConfig | DropoutOperatorConfig,
) -> dict[str, tuple[float, float]]:
    """``{scalar field: (lo, hi)}`` for every range ``config`` sets (empty: none)."""
    return {
        s.scalar: getattr(config, s.range_field)
        for s in mode_spec(config).strengths
        if getattr(config, s.range_field) is not None
    }


def require_mode(value: Any, family: Family) -> None:
    """``value`` is a mode of ``family``; the error starts with datarax 0.1.4's wording,
    which lists its own modes (``ModeSpec.in_datarax``), then names this project's others."""
    if isinstance(value, str) and value in modes.names(family):
        return
    ours = [m for m in modes.MODES if m.family == family]
    message = f"mode must be {either(tuple(m.name for m in ours if m.in_datarax))}, got '{value}'"
    beyond = tuple(m.name for m in ours if not m.in_datarax)
    if beyond:
        message += f" (datarax_ops also has mode {either(beyond)})"
    raise ValueError(message)


def validate_noise_config(config: NoiseOperatorConfig) -> None:
    """Noise parameters: the mode, then the fields that mode uses.

    Like datarax, a field another mode uses is not checked (``mode="poisson",
    noise_std=-1`` is accepted: the poisson kernel never reads ``noise_std``), so
    configs written for datarax construct unchanged.
    """
    require_mode(config.mode, "noise")
    mode_spec(config).check_fields(config)


def validate_dropout_config(config: DropoutOperatorConfig) -> None:
    """Dropout parameters: mode and rate."""
    if not is_real(config.dropout_rate):
        raise TypeError(
            f"dropout_rate must be a number, got {type(config.dropout_rate)} "
            f"({config.dropout_rate!r}; a bool is not accepted)"
        )
    require_probability("dropout_rate", config.dropout_rate)
    require_mode(config.mode, "dropout")
    mode_spec(config).check_fields(config)


# --------------------------------------------------------------------------- #
# The configuration classes                                                     #
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class DataraxModuleConfig:
    """Base of every configuration: caching and statistics sources.

    Attributes:
      cacheable: cache outputs by input content (deterministic operators only).
      batch_stats_fn: ``fn(data) -> dict`` used by ``compute_statistics``.
      precomputed_stats: fixed statistics returned by ``get_statistics``.
    """

    cacheable: bool = False
    batch_stats_fn: Callable[..., Any] | None = None
    precomputed_stats: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        validate_module_config(self)


@dataclass(frozen=True)
class OperatorConfig(DataraxModuleConfig):
    """Adds randomness (``stochastic``, ``stream_name``) and ``batch_strategy``.

    ``stochastic=True`` with ``stream_name=None`` draws from the ``"default"``
    stream of the ``nnx.Rngs`` passed to the operator (``nnx.Rngs(0)`` has it),
    so the seed pages' examples run as written.
    """

    stochastic: bool = False
    stream_name: str | None = None
    batch_strategy: str = "vmap"

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_operator_config(self)


@dataclass(frozen=True)
class ModalityOperatorConfig(OperatorConfig):
    """Adds field routing (``field_key``, ``target_key``, auxiliary fields) and clipping."""

    field_key: str = field(kw_only=True)
    target_key: str | None = field(default=None, kw_only=True)
    auxiliary_fields: list[str] | None = field(default=None, kw_only=True)
    clip_range: tuple[float, float] | None = field(default=None, kw_only=True)
    preserve_auxiliary: bool = field(default=True, kw_only=True)
    validate_domain_constraints: bool = field(default=True, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_modality_config(self)
        if isinstance(self.clip_range, list):  # a list is accepted; store a hashable tuple
            object.__setattr__(self, "clip_range", tuple(self.clip_range))


@dataclass(frozen=True)
class NoiseOperatorConfig(ModalityOperatorConfig):
    """Configuration of ``NoiseOperator`` (gaussian, salt & pepper, poisson).

    ``lam_scale``: the seed page calls it "higher = more noise", but its own
    formula ``Poisson(x * lam_scale) / lam_scale`` has variance ``x / lam_scale``:
    a larger ``lam_scale`` gives *less* noise.  The formula is followed.

    Beyond the seed pages (defaults reproduce the seed behaviour bit for bit):

    * ``noise_std_range`` (gaussian), ``salt_prob_range`` / ``pepper_prob_range``
      (salt & pepper), ``lam_scale_range`` (poisson): ``(lo, hi)`` or None.  Each
      record draws its own value of the scalar the range replaces: uniformly in
      ``[lo, hi]``, ``lam_scale`` log-uniformly (photon counts span decades).
      Validated like the scalar; for salt & pepper the two ``hi`` sum to <= 1.
    * ``per_channel`` (gaussian, salt & pepper): ``False`` draws one value per
      pixel, shared over the last (channel) axis: monochrome gaussian noise,
      whole-pixel salt & pepper.  Setting it with poisson is an error.
    * ``apply_prob`` in [0, 1]: each record is transformed with this probability
      (decided from its own key); the others pass through bit for bit.

    ``reference/noise.py`` specifies the laws; ``reference/stream.py`` where their
    random words come from.
    """

    family: ClassVar[Family] = "noise"

    clip_range: tuple[float, float] | None = field(default=(0.0, 1.0), kw_only=True)
    mode: Literal["gaussian", "salt_pepper", "poisson", "speckle"] = field(
        default="gaussian", kw_only=True
    )
    noise_std: float = field(default=0.05, kw_only=True)
    noise_mean: float = field(default=0.0, kw_only=True)
    salt_prob: float = field(default=0.01, kw_only=True)
    pepper_prob: float = field(default=0.01, kw_only=True)
    salt_value: float | None = field(default=None, kw_only=True)
    pepper_value: float | None = field(default=None, kw_only=True)
    lam_scale: float = field(default=1.0, kw_only=True)
    # Beyond the seed pages (issue 17); the defaults change nothing.
    noise_std_range: tuple[float, float] | None = field(default=None, kw_only=True)
    salt_prob_range: tuple[float, float] | None = field(default=None, kw_only=True)
    pepper_prob_range: tuple[float, float] | None = field(default=None, kw_only=True)
    lam_scale_range: tuple[float, float] | None = field(default=None, kw_only=True)
    per_channel: bool = field(default=True, kw_only=True)
    apply_prob: float = field(default=1.0, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_noise_config(self)
        validate_training_fields(self)


@dataclass(frozen=True)
class DropoutOperatorConfig(ModalityOperatorConfig):
    """Configuration of ``DropoutOperator`` (pixel, channel or coarse dropout).

    ``mode="coarse"`` (Cutout / random erasing, ``reference/modes/coarse.py``): each
    record gets ``n`` rectangular holes, ``n`` uniform on the ints of
    ``hole_count_range`` (``0 <= lo <= hi <= 1024``), each side a fraction of the
    record's own side uniform on ``hole_size_range`` (within ``(0, 1]``), set to
    ``fill_value`` on every channel.  It does not read ``dropout_rate``; its three
    fields set with another mode, ``dropout_rate_range`` and ``per_channel=False``
    with it, are errors naming the field.

    Beyond the seed pages (defaults reproduce the seed behaviour bit for bit):
    ``dropout_rate_range`` ``(lo, hi)`` in [0, 1] or None: each record draws its
    rate uniformly; ``per_channel=False`` (pixel mode only): one keep decision
    per pixel, shared over the channels (whole-pixel dropout); ``apply_prob``:
    each record is transformed with this probability, the others pass through.
    See ``reference/dropout.py``.
    """

    family: ClassVar[Family] = "dropout"

    clip_range: tuple[float, float] | None = field(default=None, kw_only=True)
    dropout_rate: float = field(default=0.1, kw_only=True)
    mode: Literal["pixel", "channel", "coarse"] = field(default="pixel", kw_only=True)
    # Beyond the seed pages (issue 17); the defaults change nothing.
    dropout_rate_range: tuple[float, float] | None = field(default=None, kw_only=True)
    per_channel: bool = field(default=True, kw_only=True)
    apply_prob: float = field(default=1.0, kw_only=True)
    # Coarse dropout's holes (issue 24; read by that mode only).
    hole_count_range: tuple[int, int] = field(default=(1, 1), kw_only=True)
    hole_size_range: tuple[float, float] = field(default=(0.1, 0.3), kw_only=True)
    fill_value: float = field(default=0.0, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_dropout_config(self)
        validate_training_fields(self)


# The config class of each operator family.
CONFIG_CLASSES: dict[str, type[NoiseOperatorConfig] | type[DropoutOperatorConfig]] = {
    cls.family: cls for cls in (NoiseOperatorConfig, DropoutOperatorConfig)
}


def config_class_of(mode: str) -> type[NoiseOperatorConfig] | type[DropoutOperatorConfig]:
    """The config class whose ``mode`` may be ``mode`` (``KeyError`` for an unknown mode)."""
    return CONFIG_CLASSES[modes.by_name(mode).family]
