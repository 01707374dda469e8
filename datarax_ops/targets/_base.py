"""What a verify target is: whose operators ``datarax-ops verify --target NAME`` checks,
which of the API the checks drive it has (its capabilities), and how to build its
operator for each mode's config, or why that mode is not its operator.

A check declares the capabilities it needs (``conformance.checks``); where the target
lacks one, the check is recorded as *n/a* with the target's reason, never as a pass
and never as a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Capability:
    """Part of the operator API a check drives; ``meaning`` says what the target must do."""

    name: str
    meaning: str


BATCH_CALL = Capability("batch call", "op(batch) transforms a batch of records")
RECORD_CALL = Capability(
    "record call",
    "apply(record, state, metadata) transforms one record, drawing its randomness from "
    "the record's identity as op(batch) does",
)
PARAMS = Capability(
    "params",
    "generate_random_params(key, shapes) draws reference.draw's params (keys, shapes, dtypes)",
)
RECORD_IDENTITY = Capability(
    "record identity",
    "a record's randomness follows its metadata index (epoch, shard), not its batch position",
)
OUR_STREAM = Capability(
    "our stream",
    "the operator's key (get_state()['_base_key']) reproduces its output through "
    "reference.operator_output",
)
FIXED_PATTERN = Capability("fixed pattern", "stochastic=False applies one fixed pattern")
CLIP = Capability("clip range", "config.clip_range clips the output")
UINT8_INPUT = Capability("uint8 input", "accepts uint8 batches (0..255)")
TRAINING_SETTINGS = Capability(
    "training settings",
    "strength ranges (<strength>_range), per_channel=False and apply_prob in the config",
)

ALL_CAPABILITIES: frozenset[Capability] = frozenset(
    {
        BATCH_CALL,
        RECORD_CALL,
        PARAMS,
        RECORD_IDENTITY,
        OUR_STREAM,
        FIXED_PATTERN,
        CLIP,
        UINT8_INPUT,
        TRAINING_SETTINGS,
    }
)
"""Everything the checks drive: what ``datarax_ops``' own operators have."""


@dataclass(frozen=True)
class NotApplicable:
    """A mode the target has no operator for: its documented law is not the mode's."""

    reason: str


OperatorFactory = Callable[..., Any]
"""``factory(config, rngs=nnx.Rngs(...) or None) -> operator``: the operator under test
for one of our configs, driven through the capabilities its target declares."""


@dataclass(frozen=True)
class Target:
    """One library's operators, as verify sees them.

    Attributes:
      name: the ``--target`` value (its module's name in ``datarax_ops.targets``).
      about: one line: whose operators, through which API.
      capabilities: what of the checked API its operators have.
      operators: per mode name, the factory of its operator for that mode's configs, or
        ``NotApplicable`` with the reason (the library has no such operator, or its law
        is another).
      version: the tested library's version (called when a run starts).
      lacks: why it lacks a capability (shown in the n/a rows), per capability lacked.
      requires: import names of the packages it needs (checked before any work).
    """

    name: str
    about: str
    capabilities: frozenset[Capability]
    operators: Callable[[str], OperatorFactory | NotApplicable]
    version: Callable[[], str]
    lacks: Mapping[Capability, str] = field(default_factory=dict)
    requires: tuple[str, ...] = ()

    def missing(self, needs: frozenset[Capability]) -> str | None:
        """Why a check needing ``needs`` does not apply to this target, or None when it does."""
        absent = sorted((c for c in needs if c not in self.capabilities), key=lambda c: c.name)
        if not absent:
            return None
        return "; ".join(
            f"{self.name} lacks {c.name}: {self.lacks.get(c, c.meaning)}" for c in absent
        )
