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
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

NOISE_MODES = ("gaussian", "salt_pepper", "poisson")
DROPOUT_MODES = ("pixel", "channel")
BATCH_STRATEGIES = ("vmap", "scan")


class ClipRangeTypeError(TypeError, ValueError):
    """``clip_range`` without a length (e.g. ``1.0``): a ``ValueError`` as every
    clip_range error here, and the ``TypeError`` datarax's ``len()`` raises."""


# --------------------------------------------------------------------------- #
# Small checks, one rule each                                                  #
# --------------------------------------------------------------------------- #
def _is_real(value: Any) -> bool:
    """A real number that is not a bool (``True`` is an int in Python)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _require_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")


def _require_real(name: str, value: Any) -> float:
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _require_finite(name: str, value: Any) -> float:
    number = _require_real(name, value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _require_probability(name: str, value: Any) -> float:
    """A real number in [0, 1]; NaN and +-inf fail the range check (as in datarax)."""
    p = _require_real(name, value)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be in [0.0, 1.0], got {value}")
    return p


def _require_key(name: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def _either(choices: tuple[str, ...]) -> str:
    """``'a' or 'b'``; ``'a', 'b', or 'c'`` (datarax's wording of a choice)."""
    quoted = [f"'{c}'" for c in choices]
    if len(quoted) <= 2:
        return " or ".join(quoted)
    return ", ".join(quoted[:-1]) + ", or " + quoted[-1]


def _require_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be {_either(choices)}, got '{value}'")


# --------------------------------------------------------------------------- #
# Validation per level of the hierarchy                                        #
# --------------------------------------------------------------------------- #
def validate_module_config(config: DataraxModuleConfig) -> None:
    """Rules shared by every module: caching flag and statistics sources."""
    _require_bool("cacheable", config.cacheable)
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
    _require_bool("stochastic", config.stochastic)
    _require_key("stream_name", config.stream_name, optional=True)
    if not config.stochastic and config.stream_name is not None:
        raise ValueError(
            "Deterministic modules should not specify stream_name. "
            f"Remove stream_name or set stochastic=True (got stream_name={config.stream_name!r} "
            "with stochastic=False)"
        )
    _require_choice("batch_strategy", config.batch_strategy, BATCH_STRATEGIES)


def validate_modality_config(config: ModalityOperatorConfig) -> None:
    """Field routing and output-domain rules shared by image operators."""
    _require_key("field_key", config.field_key, optional=False)
    _require_key("target_key", config.target_key, optional=True)
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
    _require_bool("preserve_auxiliary", config.preserve_auxiliary)
    _require_bool("validate_domain_constraints", config.validate_domain_constraints)
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
            if not _is_real(bound) or math.isnan(float(bound)):
                raise ValueError(f"{bound_name} must be a number, got {bound!r}")
        if not float(low) < float(high):
            raise ValueError(f"clip_range min ({low}) must be < max ({high})")


def _validate_gaussian(config: NoiseOperatorConfig) -> None:
    # Each sign check comes before the finiteness check, so -inf gets datarax's message.
    if _require_real("noise_std", config.noise_std) < 0:
        raise ValueError(f"noise_std must be non-negative, got {config.noise_std}")
    _require_finite("noise_std", config.noise_std)
    _require_finite("noise_mean", config.noise_mean)


def _validate_salt_pepper(config: NoiseOperatorConfig) -> None:
    salt = _require_probability("salt_prob", config.salt_prob)
    pepper = _require_probability("pepper_prob", config.pepper_prob)
    if salt + pepper > 1.0:
        raise ValueError(
            "Sum of salt_prob and pepper_prob cannot exceed 1.0 "
            f"(salt_prob + pepper_prob = {config.salt_prob!r} + {config.pepper_prob!r})"
        )
    for name in ("salt_value", "pepper_value"):
        value = getattr(config, name)
        if value is None:
            continue
        if not _is_real(value):
            raise TypeError(
                f"{name} must be a number or None, got {type(value)} "
                f"({value!r}; a bool is not accepted)"
            )
        _require_finite(name, value)


def _validate_poisson(config: NoiseOperatorConfig) -> None:
    if _require_real("lam_scale", config.lam_scale) <= 0:
        raise ValueError(f"lam_scale must be positive, got {config.lam_scale}")
    _require_finite("lam_scale", config.lam_scale)


_NOISE_FIELD_CHECKS = {
    "gaussian": _validate_gaussian,
    "salt_pepper": _validate_salt_pepper,
    "poisson": _validate_poisson,
}


# --------------------------------------------------------------------------- #
# Training fields beyond the seed pages: strength ranges, channel sharing,       #
# apply probability (issue 17)                                                 #
# --------------------------------------------------------------------------- #
# The range fields, by the mode that reads them, with the scalar each replaces.
RANGE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "gaussian": (("noise_std_range", "noise_std"),),
    "salt_pepper": (("salt_prob_range", "salt_prob"), ("pepper_prob_range", "pepper_prob")),
    "poisson": (("lam_scale_range", "lam_scale"),),
    "pixel": (("dropout_rate_range", "dropout_rate"),),
    "channel": (("dropout_rate_range", "dropout_rate"),),
}
# Modes whose draws are per value, so one draw per pixel can be shared over the channels.
PER_CHANNEL_MODES = ("gaussian", "salt_pepper", "pixel")


def _range_pair(name: str, value: Any) -> tuple[float, float]:
    """``(lo, hi)`` of a range field: two finite real numbers with ``lo <= hi``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a (lo, hi) pair of numbers or None, got {value!r}")
    low = _require_finite(f"{name} lo", value[0])
    high = _require_finite(f"{name} hi", value[1])
    if not low <= high:
        raise ValueError(f"{name} needs lo <= hi, got {tuple(value)!r}")
    return low, high


def _check_range_domain(name: str, low: float, high: float, mode: str) -> None:
    """Both ends inside the domain of the scalar the range replaces."""
    if mode == "gaussian" and low < 0:
        raise ValueError(f"{name} must be non-negative, got ({low!r}, {high!r})")
    if mode in ("salt_pepper", "pixel", "channel") and not (0.0 <= low and high <= 1.0):
        raise ValueError(f"{name} must lie in [0.0, 1.0], got ({low!r}, {high!r})")
    if mode == "poisson" and not low > 0:
        raise ValueError(f"{name} must be positive (a log-uniform law), got ({low!r}, {high!r})")


def validate_training_fields(config: NoiseOperatorConfig | DropoutOperatorConfig) -> None:
    """The range fields, ``per_channel`` and ``apply_prob``, after the mode's own checks.

    A range set for a mode that does not read it, and ``per_channel=False`` for a
    mode without per-value draws (poisson, channel), are errors that name the field:
    unlike the seed fields, these have no datarax code to stay compatible with, and a
    silently ignored setting would train on the wrong data.
    """
    used = dict(RANGE_FIELDS[config.mode])
    for name, _scalar in sorted({pair for pairs in RANGE_FIELDS.values() for pair in pairs}):
        value = getattr(config, name, None)
        if value is None:
            continue
        if name not in used:
            readers = [m for m, pairs in RANGE_FIELDS.items() if name in dict(pairs)]
            raise ValueError(
                f"{name} is read only by mode {_either(tuple(readers))}, "
                f"not by mode='{config.mode}'"
            )
        low, high = _range_pair(name, value)
        _check_range_domain(name, low, high, config.mode)
        object.__setattr__(config, name, (low, high))  # stored as a hashable float pair
    if config.mode == "salt_pepper":
        salt_high = _range_high(config.salt_prob_range, config.salt_prob)
        pepper_high = _range_high(config.pepper_prob_range, config.pepper_prob)
        if salt_high + pepper_high > 1.0:
            raise ValueError(
                "salt_prob_range / pepper_prob_range: the largest salt and pepper "
                f"probabilities sum to {salt_high + pepper_high!r} > 1.0 (hi + hi <= 1)"
            )
    _require_bool("per_channel", config.per_channel)
    if not config.per_channel and config.mode not in PER_CHANNEL_MODES:
        raise ValueError(
            f"per_channel=False applies to mode {_either(PER_CHANNEL_MODES)} "
            f"(one draw per pixel shared over the channels), not to mode='{config.mode}'"
        )
    if not _is_real(config.apply_prob):
        raise TypeError(f"apply_prob must be a real number, got {config.apply_prob!r}")
    _require_probability("apply_prob", config.apply_prob)


def _range_high(value: tuple[float, float] | None, scalar: float) -> float:
    return float(scalar) if value is None else float(value[1])


def strength_ranges(
    config: NoiseOperatorConfig | DropoutOperatorConfig,
) -> dict[str, tuple[float, float]]:
    """``{scalar field: (lo, hi)}`` for every range ``config`` sets (empty: none)."""
    return {
        scalar: getattr(config, name)
        for name, scalar in RANGE_FIELDS[config.mode]
        if getattr(config, name) is not None
    }


def validate_noise_config(config: NoiseOperatorConfig) -> None:
    """Noise parameters: the mode, then the fields that mode uses.

    Like datarax, a field another mode uses is not checked (``mode="poisson",
    noise_std=-1`` is accepted: the poisson kernel never reads ``noise_std``), so
    configs written for datarax construct unchanged.
    """
    _require_choice("mode", config.mode, NOISE_MODES)
    _NOISE_FIELD_CHECKS[config.mode](config)


def validate_dropout_config(config: DropoutOperatorConfig) -> None:
    """Dropout parameters: mode and rate."""
    if not _is_real(config.dropout_rate):
        raise TypeError(
            f"dropout_rate must be a number, got {type(config.dropout_rate)} "
            f"({config.dropout_rate!r}; a bool is not accepted)"
        )
    _require_probability("dropout_rate", config.dropout_rate)
    _require_choice("mode", config.mode, DROPOUT_MODES)


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

    clip_range: tuple[float, float] | None = field(default=(0.0, 1.0), kw_only=True)
    mode: Literal["gaussian", "salt_pepper", "poisson"] = field(default="gaussian", kw_only=True)
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
    """Configuration of ``DropoutOperator`` (pixel or channel dropout).

    Beyond the seed pages (defaults reproduce the seed behaviour bit for bit):
    ``dropout_rate_range`` ``(lo, hi)`` in [0, 1] or None: each record draws its
    rate uniformly; ``per_channel=False`` (pixel mode only): one keep decision
    per pixel, shared over the channels (whole-pixel dropout); ``apply_prob``:
    each record is transformed with this probability, the others pass through.
    See ``reference/dropout.py``.
    """

    clip_range: tuple[float, float] | None = field(default=None, kw_only=True)
    dropout_rate: float = field(default=0.1, kw_only=True)
    mode: Literal["pixel", "channel"] = field(default="pixel", kw_only=True)
    # Beyond the seed pages (issue 17); the defaults change nothing.
    dropout_rate_range: tuple[float, float] | None = field(default=None, kw_only=True)
    per_channel: bool = field(default=True, kw_only=True)
    apply_prob: float = field(default=1.0, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_dropout_config(self)
        validate_training_fields(self)
