"""Target ``albumentations``: albumentations' per-image transforms, looped over a batch's
records (its public API: ``Compose([transform], seed=...)(image=record)["image"]``).

Each mode's closest transform is the one its conformance law names
(``Law.albumentations_counterpart``, configured from the mode's config in 0..255 units,
as albumentations scales by the data's maximum).  Only a transform whose documented law
is the mode's (:data:`SAME_LAW`) is checked; the other modes are n/a with the law's own
line on how the two differ.  Needs the ``albumentations`` package (2.0.8 tested).

albumentations draws from one generator per ``Compose``, record after record: a
record's draw follows its place in the sequence, not its identity, and there is no
``apply``, params, fixed pattern or clip range to check (those checks are n/a).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from datarax_ops.batch import Batch
from datarax_ops.conformance.laws import law_for
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

VALUE_SCALE = 255.0  # the counterparts are configured for 0..255 records

SAME_LAW = frozenset({"PixelDropout", "CoarseDropout"})
"""albumentations' transforms whose documented law is their mode's (for the configs
verify checks)."""

DIFFERS = {
    "GaussNoise": "GaussNoise clips its output to the data's range ([0, 1] for float32); "
    "the mode's verify config (clip_range None) does not, so the law is another",
}
"""How a counterpart differs where the law's own line does not say it."""


def settings_of(config: Any) -> dict[str, Any]:
    """``config``'s fields for 0..255 records: those in the data's value units (the
    law's ``value_unit_fields``) times 255."""
    units = law_for(config.mode).value_unit_fields
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return {name: v * VALUE_SCALE if name in units else v for name, v in values.items()}


class RecordLoop:
    """albumentations' transform behind our batch API: ``op(batch)`` runs it on each
    record in turn, from one generator seeded when the operator is built."""

    def __init__(self, transform: Any, field_key: str, seed: int) -> None:
        import albumentations as album

        self.compose, self.field_key = album.Compose([transform], seed=seed), field_key

    def __call__(self, batch: Any) -> Any:
        images = np.asarray(batch.data.get_value()[self.field_key])
        out = np.stack([self.compose(image=record)["image"] for record in images])
        return Batch.from_parts(
            data={self.field_key: jnp.asarray(out)}, metadata_list=batch.metadata_list
        )


def seed_of(config: Any, rngs: Any) -> int:
    """A 31-bit seed drawn from the config's stream of ``rngs`` (0 without one)."""
    if rngs is None:
        return 0
    key = rngs[config.stream_name or "default"]()
    return int(jax.random.randint(key, (), 0, 2**31 - 1))


def factory(config: Any, *, rngs: Any = None) -> RecordLoop:
    """albumentations' counterpart of ``config``'s mode, configured from ``config``."""
    import albumentations as album

    found = law_for(config.mode).albumentations_counterpart(settings_of(config), album)
    if found is None:
        raise ValueError(f"albumentations has no counterpart of mode {config.mode!r}")
    return RecordLoop(found[0], config.field_key, seed_of(config, rngs))


def operators(mode: str) -> OperatorFactory | NotApplicable:
    """The counterpart of ``mode`` where its law is the mode's, else n/a with how it differs."""
    import albumentations as album

    law = law_for(mode)
    try:
        found = law.albumentations_counterpart(settings_of(law.config()), album)
    except ValueError as error:  # its transform rejects the verify config's values
        reason = " ".join(str(error).split()).split(" For further information")[0]
        return NotApplicable(f"albumentations cannot express the mode's verify config: {reason}")
    if found is None:
        return NotApplicable("albumentations has no transform for this mode")
    transform, note = found
    name = type(transform).__name__
    if name in SAME_LAW:
        return factory
    return NotApplicable(f"not the same operator: {DIFFERS.get(name, note)}")


TARGET = Target(
    name="albumentations",
    about="albumentations' per-image transforms (the laws' counterparts), record by record",
    capabilities=frozenset({BATCH_CALL, UINT8_INPUT}),
    operators=operators,
    version=lambda: importlib.metadata.version("albumentations"),
    lacks={
        RECORD_CALL: "it has no per-record call drawing from the record's identity",
        PARAMS: "it has no generate_random_params",
        RECORD_IDENTITY: "a record's draw follows its place in the generator's sequence",
        OUR_STREAM: "its generator is its own",
        FIXED_PATTERN: "it has no stochastic=False",
        CLIP: "its transforms have no clip range",
        TRAINING_SETTINGS: "its transforms have no apply_prob or strength ranges of ours",
    },
    requires=("albumentations",),
)
