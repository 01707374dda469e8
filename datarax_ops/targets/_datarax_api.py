"""The adapter path of a library whose operators have datarax's API: config dataclasses
``NoiseOperatorConfig`` / ``DropoutOperatorConfig``, operators built as
``Operator(config, rngs=...)`` and called as ``op(batch)`` on the library's own
``Batch`` (``Batch.from_parts(data=..., states=..., metadata_list=...)``, read back with
``batch.data.get_value()``), records identified by the library's ``Metadata(index=...)``.

Only that public API is used: the checks' configs are copied field by field into the
library's config class, their batches into its ``Batch`` and ``Metadata``, and the
output back.  The library's ``generate_random_params`` and ``apply`` are not ours
(per-record keys in, its own params keys out; ``apply`` takes its randomness from the
caller), so those checks are n/a, as are the ones that read our stream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from datarax_ops.batch import Batch, record_identity
from datarax_ops.modes import by_name
from datarax_ops.targets._base import (
    BATCH_CALL,
    CLIP,
    FIXED_PATTERN,
    OUR_STREAM,
    PARAMS,
    RECORD_CALL,
    RECORD_IDENTITY,
    TRAINING_SETTINGS,
    UINT8_INPUT,
    NotApplicable,
    OperatorFactory,
    Target,
)

CAPABILITIES = frozenset({BATCH_CALL, RECORD_IDENTITY, FIXED_PATTERN, CLIP, UINT8_INPUT})
"""What datarax's operator API offers the checks."""

LACKS = {
    RECORD_CALL: "apply() takes its random_params from the caller",
    PARAMS: "generate_random_params takes per-record keys and returns its own keys",
    OUR_STREAM: "its keys and its numbering of unindexed records are its own",
    TRAINING_SETTINGS: "no strength ranges, per_channel or apply_prob",
}
"""Why datarax's API lacks the other capabilities (the n/a rows' reasons)."""

Classes = Mapping[str, Any]
"""``{"NoiseOperatorConfig": cls, "NoiseOperator": cls, "DropoutOperatorConfig": ...,
"DropoutOperator": ..., "Batch": cls, "Metadata": cls}`` of the library."""


def named(*classes: type) -> dict[str, Any]:
    """``{class name: class}``: a library's classes under the names the path asks for."""
    return {cls.__name__: cls for cls in classes}


def foreign_config(classes: Classes, config: Any) -> Any:
    """``config`` (one of our configs) as the library's config of the same class name:
    every field it has, copied; a stochastic config without a stream name gets
    ``"default"`` (the stream ``checks.build`` seeds).

    Raises:
      ValueError: ``config`` sets a field the library's config lacks to a value other
        than its default (the library cannot express it), or the library rejects it.
    """
    cls = classes[type(config).__name__]
    theirs = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if item.name in theirs:
            values[item.name] = value
        elif value != item.default:
            raise ValueError(f"{cls.__name__} has no field {item.name!r} (set to {value!r})")
    if values.get("stochastic") and values.get("stream_name") is None:
        values["stream_name"] = "default"
    return cls(**values)


class ForeignOperator:
    """The library's operator behind our batch API: ``op(batch)`` takes and returns a
    ``datarax_ops.Batch``; inside, the library's ``Batch`` and ``Metadata``."""

    def __init__(self, operator: Any, classes: Classes) -> None:
        self.operator, self.classes = operator, classes

    def foreign_metadata(self, metadata: list[Any]) -> list[Any] | None:
        """Our records' identities as the library's ``Metadata``; None when some record
        has none (the library then numbers records by their batch position)."""
        found = [record_identity(m) for m in metadata]
        identities = [i for i in found if i is not None]
        if not found or len(identities) < len(found):
            return None
        make = self.classes["Metadata"]
        return [
            make(index=int(index), epoch=int(epoch or 0), shard_id=shard)
            for epoch, shard, index in identities
        ]

    def __call__(self, batch: Any) -> Any:
        data, metadata = batch.data.get_value(), batch.metadata_list
        theirs = self.classes["Batch"].from_parts(
            data=data, states={}, metadata_list=self.foreign_metadata(metadata)
        )
        out = self.operator(theirs).data.get_value()
        return Batch.from_parts(data=dict(out), metadata_list=metadata)


def operators_of(
    classes: Callable[[], Classes], library: str
) -> Callable[[str], OperatorFactory | NotApplicable]:
    """A target's ``operators``: the library's operator for a mode, or ``NotApplicable``
    with the library's own words when its config rejects the mode."""

    def operators(mode: str) -> OperatorFactory | NotApplicable:
        found = classes()
        probe = by_name(mode).config_class(field_key="image", mode=mode)
        try:
            foreign_config(found, probe)
        except (ValueError, TypeError) as error:
            return NotApplicable(f"{library} has no such operator: {error}")

        def factory(config: Any, *, rngs: Any = None) -> ForeignOperator:
            theirs = foreign_config(found, config)
            operator_class = found[type(theirs).__name__.removesuffix("Config")]
            return ForeignOperator(operator_class(theirs, rngs=rngs), found)

        return factory

    return operators


def api_target(
    name: str,
    about: str,
    classes: Callable[[], Classes],
    version: Callable[[], str],
    requires: tuple[str, ...] = (),
) -> Target:
    """The ``Target`` of a library with datarax's operator API, ``classes`` its classes
    under datarax's names: :data:`CAPABILITIES`, and n/a for the rest (:data:`LACKS`)."""
    return Target(
        name=name,
        about=about,
        capabilities=CAPABILITIES,
        operators=operators_of(classes, name),
        version=version,
        lacks=LACKS,
        requires=requires,
    )
