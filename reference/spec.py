"""What a mode declares: the record every layer reads instead of the mode's name.

A mode of an operator is one ``ModeSpec`` in its own file (``reference/modes/``),
as a kornia augmentation is one class or a JAX ``PRNGImpl`` one record of
functions: its fields and their checks, its strengths (which scalar a range may
replace, with which law, from which record slot), its capabilities, and its pure
``draw`` and ``apply`` (the dm-pix split: all randomness in the draw, a
deterministic apply).  Everything generic (the config's checks, the compiled
kernels' shared settings, buckets, the grain transform, verify, the bench) asks
these fields; none names a mode.

NumPy-free: plain data and callables only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .stream import STRENGTH_SLOTS

Params = dict[str, Any]
Draw = Callable[[Any, Any, tuple[int, ...], int | None], Params]
Apply = Callable[[Any, Any, Params], Any]
Check = Callable[[Any], None]

# The operator families: which config class a mode's ``mode=`` belongs to.
Family = Literal["noise", "dropout"]
# How a strength's per-record value is drawn from its record uniform (``record.py``).
Law = Literal["uniform", "log-uniform"]
# The domain both ends of a strength range must lie in (``validate.check_range_domain``).
Domain = Literal["non-negative", "probability", "positive"]


def same_shape(element_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The element's own shape: params with one value per value of the element."""
    return tuple(int(d) for d in element_shape)


@dataclass(frozen=True)
class Strength:
    """A scalar field that a range field may replace by a per-record draw.

    Attributes:
      scalar: the config field the draw replaces, e.g. ``"noise_std"``; also the
        params key of the drawn value (float32, one per record).
      range_field: the config field holding ``(lo, hi)``, e.g. ``"noise_std_range"``.
      law: ``"uniform"`` in ``[lo, hi]``, or ``"log-uniform"`` (``log s`` uniform).
      slot: the record word the draw comes from (one of ``stream.STRENGTH_SLOTS``),
        declared here so that no table's order decides it.
      domain: where ``lo`` and ``hi`` must lie (the scalar's own domain).
      example_range: a wide range that shows the law over a visible interval;
        verify checks the law with it and the bench times it.
      applied: whether ``apply`` reads the drawn value from params (otherwise it is
        consumed by the draw and only reported).
    """

    scalar: str
    range_field: str
    law: Law
    slot: int
    domain: Domain
    example_range: tuple[float, float]
    applied: bool = False

    def __post_init__(self) -> None:
        if self.slot not in STRENGTH_SLOTS:
            raise ValueError(f"strength {self.scalar!r}: slot {self.slot} not in {STRENGTH_SLOTS}")


@dataclass(frozen=True)
class ModeSpec:
    """One operator mode, declared once.

    Attributes:
      name: the config's ``mode`` value.
      family: the operator it belongs to (``"noise"``: ``NoiseOperatorConfig``,
        ``"dropout"``: ``DropoutOperatorConfig``).
      fields: the config fields the mode reads (besides the shared training
        settings); its compiled kernel holds exactly these, copied by name.
      params_key: the key of its per-value params array.
      draw: ``draw(config, rng, element_shape, batch_size) -> params``.
      apply: ``apply(config, image, params) -> image`` (one element).
      check_fields: the checks of the mode's own fields (run when a config of this
        mode is built; fields of other modes are not checked, as in datarax).
      strengths: the scalars a range may replace, each with its law and slot.
      check_ranges: checks that span several ranges (run after each range is checked).
      params_shape: one element's params shape from its shape.
      per_value_draws: one draw per value of the element, so ``per_channel=False``
        can share a pixel's draw over its channels.
      value_by_value: output value ``j`` depends only on input value ``j`` and draw
        ``j`` (plus the element-wide scale test), so an element may be flattened and
        padded to a size bucket without changing a bit.
      examples: ``(label suffix, config settings)`` people use (the bench's cases,
        labelled ``name + suffix``).
      default_example: the suffix of the one example shown when only one is (the
        quick bench, the cache workload).
      datarax_missing_params: datarax 0.1.4's message when its params are missing.
      exclusive_fields: config fields only this mode reads: setting one (to other than
        its default) with another mode is an error naming it, as for the ranges.
      in_datarax: datarax 0.1.4 has this mode (its error for an unknown mode lists those).
    """

    name: str
    family: Family
    fields: tuple[str, ...]
    params_key: str
    draw: Draw
    apply: Apply
    check_fields: Check
    strengths: tuple[Strength, ...] = ()
    check_ranges: Check | None = None
    params_shape: Callable[[tuple[int, ...]], tuple[int, ...]] = same_shape
    per_value_draws: bool = True
    value_by_value: bool = True
    examples: tuple[tuple[str, Mapping[str, Any]], ...] = field(default=(("", {}),))
    default_example: str = ""
    datarax_missing_params: str = ""
    exclusive_fields: tuple[str, ...] = ()
    in_datarax: bool = True

    def __post_init__(self) -> None:
        slots = [s.slot for s in self.strengths]
        if len(set(slots)) != len(slots):
            raise ValueError(f"mode {self.name!r}: two strengths share a record slot: {slots}")
        if self.default_example not in {suffix for suffix, _ in self.examples}:
            raise ValueError(f"mode {self.name!r}: no example {self.default_example!r}")

    def example(self, label: str | None = None) -> dict[str, Any]:
        """The settings of the example ``name + label`` (the default example for None)."""
        label = self.default_example if label is None else label
        for suffix, settings in self.examples:
            if suffix == label:
                return dict(settings)
        raise KeyError(f"mode {self.name!r} has no example {label!r}")

    @property
    def default_label(self) -> str:
        """``name + default_example``, e.g. ``"poisson30"``."""
        return self.name + self.default_example

    @property
    def example_labels(self) -> tuple[str, ...]:
        """``name + suffix`` of every example, e.g. ``("poisson1", "poisson30", ...)``."""
        return tuple(self.name + suffix for suffix, _ in self.examples)

    def strength(self, scalar: str) -> Strength:
        """The declared strength of ``scalar``."""
        for strength in self.strengths:
            if strength.scalar == scalar:
                return strength
        raise KeyError(f"mode {self.name!r} has no strength {scalar!r}")
