"""The interface of a mode's law, and the pieces several laws share.

A law is everything ``datarax-ops verify`` and ``datarax-ops demo`` know about one
mode and nothing about any other: the config verify checks and the one with a
clip range, the exact law of the output given the input (checked against
``scipy.stats`` and against the reference's own draws, with the samples the
report plots), the law of ``generate_random_params``, the standardized noise
the independence checks correlate, the probe's record size, and the gallery
row.  ``checks`` calls these without ever asking which mode it holds.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, ClassVar, NamedTuple

import numpy as np
from scipy import stats as scipy_stats

from datarax_ops.conformance import stats as kit
from datarax_ops.conformance.results import Recorder
from datarax_ops.modes import Mode, by_name

PATCH = 16  # probe records are PATCH x PATCH x 3 patches of the picture
PARAMS_RECORDS = 64  # records of the generate_random_params sample


class Outputs(NamedTuple):
    """What a law judges: ``out``, the operator's output for ``images`` under
    ``config``, and ``ref``, the reference's output for the same images.

    ``images``: float32 ``(records, H, W, 3)``; ``out``, ``ref``: same shape;
    ``rng`` draws whatever the checks randomize (plot subsets, randomized PITs).
    """

    config: Any
    images: np.ndarray
    out: np.ndarray
    ref: np.ndarray
    rng: np.random.Generator


class Law(ABC):
    """One mode's law; each ``laws/<mode>.py`` defines a subclass and ``LAW``, its instance.

    Class attributes a law sets:
      mode: the mode's name in ``datarax_ops.modes.MODES``.
      settings: config fields of the stochastic config verify checks (strengths the
        samples resolve well).
      clip_settings: overrides giving a clip range the output reaches on [0, 1] pictures.
      patch: side of the probe records (the batch is ``(records, patch, patch, 3)``).
      demo_strengths: the gallery's config overrides, weakest to strongest.
      demo_note: a line under the gallery row's label ("" for none).
      demo_records: records shown per gallery panel (1, or 4 tiled 2x2).
      demo_range: config overrides setting a strength range, for the gallery's
        ranges row (the first law that sets one is shown; ``None``: not this mode).
      demo_shared_channels: configs of the gallery's shared-channels row, in order
        (``per_channel=False`` ones, and per-channel ones to compare with).
      reproduction_atol: how far ``op(batch)`` may be from ``reference.operator_output``
        (0: bit for bit; float arithmetic that rounds differently needs more).
      reproduction_misses: the fraction of values allowed past ``reproduction_atol``.
    """

    mode: ClassVar[str]
    settings: ClassVar[Mapping[str, Any]]
    clip_settings: ClassVar[Mapping[str, Any]]
    patch: ClassVar[int] = PATCH
    demo_strengths: ClassVar[tuple[Mapping[str, float], ...]]
    demo_note: ClassVar[str] = ""
    demo_records: ClassVar[int] = 1
    demo_range: ClassVar[Mapping[str, Any] | None] = None
    demo_shared_channels: ClassVar[tuple[Mapping[str, Any], ...]] = ()
    reproduction_atol: ClassVar[float] = 0.0
    reproduction_misses: ClassVar[float] = 0.0

    @property
    def spec(self) -> Mode:
        """This mode's entry of ``datarax_ops.modes.MODES`` (KeyError for an unknown one)."""
        return by_name(self.mode)

    def config(self, **overrides: Any) -> Any:
        """The stochastic config verify checks this mode with, ``overrides`` applied."""
        fields = {"field_key": "image", "mode": self.mode, "stochastic": True, **self.settings}
        return self.spec.config_class(**{**fields, **overrides})

    def clip_config(self) -> Any:
        """The config with a clip range its output reaches on [0, 1] pictures."""
        return self.config(**self.clip_settings)

    def params_shape(self, samples: int, channels: int = 3) -> tuple[int, ...]:
        """``(records, H, W, channels)`` of the ``generate_random_params`` sample: about
        ``samples`` values in ``PARAMS_RECORDS`` square records."""
        side = max(1, int(math.sqrt(samples / channels / PARAMS_RECORDS)))
        return (PARAMS_RECORDS, side, side, channels)

    @abstractmethod
    def check_output(self, rec: Recorder, outputs: Outputs) -> None:
        """Records the law checks of ``outputs.out`` (vs scipy) and of ``out`` vs ``ref``
        (the reference's output for the same images), and the samples and rates the
        report plots."""

    @abstractmethod
    def check_params(
        self, rec: Recorder, config: Any, name: str, got: np.ndarray, ref: np.ndarray
    ) -> None:
        """Records the checks of params array ``name`` of ``generate_random_params``
        (``got``) against its law and against ``reference.draw``'s (``ref``); shapes,
        dtypes and keys are already checked equal."""

    def check_all_params(
        self,
        rec: Recorder,
        config: Any,
        got: Mapping[str, np.ndarray],
        ref: Mapping[str, np.ndarray],
    ) -> None:
        """Records the checks of ``generate_random_params``'s arrays (``got``) against the
        law and ``reference.draw``'s (``ref``; same keys, shapes, dtypes): by default of its
        first array (the per-value params), with ``check_params``; a mode whose draw is
        several arrays that only make sense together checks them all."""
        name = next(iter(ref))
        self.check_params(rec, config, name, got[name], ref[name])

    @abstractmethod
    def noise_scores(self, config: Any, images: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Each output value's noise standardized by its law given the input: mean 0,
        variance 1, independent across values for a correct operator; 0 where the law
        has no variance or the value is unreadable.

        Args:
          images, out: ``(records, H, W, C)`` input and output.

        Returns:
          float64, one score per independent decision (``images.shape``, or fewer axes).
        """

    def effect_label(self, original: np.ndarray, outputs: np.ndarray) -> str:
        """The gallery panel's measured line: the RMS change of ``outputs``
        ``(records, H, W, 3)`` from ``original`` ``(H, W, 3)``."""
        rms = float(np.sqrt(np.mean((outputs.astype(np.float64) - original) ** 2)))
        return f"rms change {rms:.3f}"

    # Config fields in the data's value units (a fraction of 1 on 0..1 data): on 0..255
    # data they are 255 times as large (the bench's uint8 records scale them).
    value_unit_fields: ClassVar[tuple[str, ...]] = ()

    def albumentations_counterpart(
        self, settings: Mapping[str, Any], album: ModuleType
    ) -> tuple[Any, str] | None:
        """albumentations' closest transform (``p=1``) to this mode configured by
        ``settings`` (config fields for uint8 0..255 records, the bench's records
        workload), and a line on how the two differ; None when it has none.

        ``album`` is the imported ``albumentations`` module (an optional package: the
        bench passes it only when installed)."""
        del settings, album
        return None


# --------------------------------------------------------------------------- #
# Pieces several laws share                                                    #
# --------------------------------------------------------------------------- #
def per_record(rule: Callable[[np.ndarray], float], images: np.ndarray) -> np.ndarray:
    """``rule(record)`` for every record of ``images`` (leading batch axis), as float64
    of shape ``(records, 1, ..., 1)``: it broadcasts against ``images``."""
    values = np.array([rule(record) for record in images], np.float64)
    return values.reshape(-1, *[1] * (images.ndim - 1))


def changed_fraction(original: np.ndarray, outputs: np.ndarray) -> str:
    """A gallery line for modes that replace values: the fraction of values changed."""
    return f"{np.mean(outputs != original):.1%} changed"


def check_uniform_levels(rec: Recorder, name: str, got: np.ndarray, ref: np.ndarray) -> None:
    """Params that are uniform levels: all in [0, 1) (exact), ~ U(0, 1) (KS), and
    distributed as ``reference.draw``'s (two-sample KS)."""
    inside = bool(np.all((got >= 0.0) & (got < 1.0)))
    if rec.exact(inside, f"params {name!r} in [0, 1)", "levels outside [0, 1)"):
        rec.stat(kit.assert_ks_1samp, got, scipy_stats.uniform(), what=f"params {name!r} ~ U(0,1)")
    rec.stat(kit.assert_ks_2samp, got, ref, what=f"params {name!r} vs reference.draw")
