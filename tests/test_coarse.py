"""Coarse dropout (issue 24): its checks, its reference law vs scipy, the exact
expectations, the compiled operator and the grain host path bit for bit.

The law of the compiled operator (``op(batch)``, ``generate_random_params``) vs scipy
is in ``tests/test_distributions.py`` (the statistical suite the power variants run
against); the pipeline guarantees in the mode-parametrized files.

False alarms: 12 statistical checks at ``ALPHA = 1e-5`` plus the coverage maps' per-pixel
binomial checks, each at ``ALPHA / pixels`` (a union bound over the map: ``ALPHA`` per
map); all seeded (``rng_for``), so a green run stays green.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from datarax_ops.reference.modes import coarse as spec
from flax import nnx
from scipy import stats

import datarax_ops as dx
from datarax_ops import reference
from datarax_ops.conformance.laws.coarse import corner_levels, ideal_sides
from datarax_ops.conformance.stats import (
    ALPHA,
    assert_binomial,
    assert_chisquare_gof,
    assert_ks_1samp,
    assert_uncorrelated,
    rng_for,
    scaled,
)
from tests.factory import make_operator, run_batch

CONFIG = {"field_key": "image", "mode": "coarse", "stochastic": True}
RECORDS = 3_000  # records per reference law check
SHAPE = (9, 14, 2)  # H != W, neither a power of two


def coarse(**fields):
    return dx.DropoutOperatorConfig(**{**CONFIG, **fields})


# --------------------------------------------------------------------------- #
# Validation                                                                   #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"hole_count_range": (1.0, 2)}, TypeError, "hole_count_range lo must be an int"),
        ({"hole_count_range": (1, True)}, TypeError, "hole_count_range hi must be an int"),
        ({"hole_count_range": (-1, 2)}, ValueError, "hole_count_range must be ints with 0 <="),
        ({"hole_count_range": (3, 2)}, ValueError, "hole_count_range must be ints"),
        ({"hole_count_range": (1, 1025)}, ValueError, "hi <= 1024"),
        ({"hole_count_range": 3}, ValueError, "hole_count_range must be a \\(lo, hi\\) pair"),
        ({"hole_size_range": (0.0, 0.5)}, ValueError, "hole_size_range must be fractions"),
        ({"hole_size_range": (0.2, 1.5)}, ValueError, "hole_size_range must be fractions"),
        ({"hole_size_range": (0.5, 0.2)}, ValueError, "hole_size_range must be fractions"),
        ({"hole_size_range": (float("nan"), 0.2)}, ValueError, "hole_size_range lo must be"),
        ({"fill_value": float("inf")}, ValueError, "fill_value must be finite"),
        ({"fill_value": "0"}, TypeError, "fill_value must be a real number"),
        ({"dropout_rate_range": (0.1, 0.2)}, ValueError, "dropout_rate_range is read only by"),
        ({"per_channel": False}, ValueError, "per_channel=False applies to mode"),
    ],
)
def test_coarse_fields_are_checked_with_named_errors(fields, error, match):
    with pytest.raises(error, match=match):
        coarse(**fields)


@pytest.mark.parametrize(
    "fields", [{"hole_count_range": (1, 2)}, {"hole_size_range": (0.1, 0.4)}, {"fill_value": 1.0}]
)
@pytest.mark.parametrize("mode", ["pixel", "channel"])
def test_coarse_fields_set_with_another_mode_are_named_errors(mode, fields):
    (name,) = fields
    with pytest.raises(ValueError, match=f"{name} is read only by mode 'coarse', not by mode"):
        dx.DropoutOperatorConfig(field_key="image", mode=mode, **fields)
    dx.DropoutOperatorConfig(field_key="image", mode=mode, **{name: getattr(coarse(), name)})


def test_coarse_edge_values_are_accepted_and_stored_as_tuples():
    config = coarse(hole_count_range=[0, 1024], hole_size_range=[1, 1], fill_value=-3)
    assert config.hole_count_range == (0, 1024) and config.hole_size_range == (1.0, 1.0)
    assert hash(config) == hash(dataclasses.replace(config))


# --------------------------------------------------------------------------- #
# The reference law vs scipy, and the exact expectations                       #
# --------------------------------------------------------------------------- #
def _reference_params(name: str, config, records: int, source: str) -> dict:
    if source == "stream":
        base = rng_for(f"{name}/key").integers(0, 2**32, 2, dtype=np.uint32)
        keys = reference.stream.record_key(base, np.arange(records))
        return reference.draw(config, reference.StreamSource(keys), SHAPE, records)
    return reference.draw(config, rng_for(name), SHAPE, records)


@pytest.mark.stats
@pytest.mark.parametrize("source", ["generator", "stream"])
def test_reference_coarse_geometry_follows_scipy(source):
    """Count ~ randint(lo, hi + 1); each side ~ max(1, floor(U * side + 0.5)) with U from
    scipy.stats.uniform; corners uniform over the fitting positions (randomized KS);
    height and width independent (correlation test: square holes have rho = 0.9)."""
    config = coarse(hole_count_range=(0, 4), hole_size_range=(0.15, 0.7))
    records = scaled(RECORDS)
    params = _reference_params(f"test_reference_coarse_geometry/{source}", config, records, source)
    values = np.arange(5)
    counts = [np.sum(params["hole_count"] == v) for v in values]
    assert_chisquare_gof(counts, stats.randint(0, 5).pmf(values), what="hole count")
    sizes = params["hole_sizes"].reshape(-1, 2)
    corners = params["hole_corners"].reshape(-1, 2)
    rng = rng_for(f"test_reference_coarse_geometry/{source}/corners")
    for axis, length in enumerate(SHAPE[:2]):
        observed = np.bincount(sizes[:, axis], minlength=length + 1)
        assert_chisquare_gof(observed, ideal_sides(length, 0.15, 0.7), what=f"sides {axis}")
        levels = corner_levels(corners[:, axis], sizes[:, axis], length, rng)
        assert_ks_1samp(levels, stats.uniform(), what=f"corners {axis}")
    assert_uncorrelated(sizes[:, 0], sizes[:, 1], what="hole height vs width")


def test_exact_size_law_is_the_ideal_law_on_the_grid():
    """``size_pmf`` (every level of the 2**-24 grid) is a probability vector within 8
    levels (``2**-21``) of the law of a continuous uniform at each rounding edge (the
    float32 roundings of ``u`` and ``u * side`` move an edge by a few levels)."""
    for side, low, high in ((9, 0.15, 0.7), (224, 0.1, 0.3), (5, 1.0, 1.0), (1, 0.01, 1.0)):
        exact = spec.size_pmf(side, low, high)
        assert abs(exact.sum() - 1.0) < 1e-12
        np.testing.assert_allclose(exact, ideal_sides(side, low, high), rtol=0, atol=2.0**-21)


def test_corner_law_counts_every_level():
    """``corner_pmf`` is the share of the 2**24 levels ``index_from_bits`` maps to each
    position (counted directly for a few sizes)."""
    levels = np.arange(0, 2**24, 7, dtype=np.uint32)
    for positions in (1, 3, 10, 97):
        index = reference.stream.index_from_bits(levels << np.uint32(8), positions)
        shares = np.bincount(index, minlength=positions) / levels.size
        np.testing.assert_allclose(shares, spec.corner_pmf(positions), atol=2e-6)


def _covered_counts(config, outputs: np.ndarray, images: np.ndarray) -> np.ndarray:
    fill = spec.fill_of(config.fill_value, outputs.dtype)
    filled = np.all(outputs == fill, axis=-1) & ~np.all(images == fill, axis=-1)
    return filled.sum(axis=0)


def _assert_coverage_map(config, covered: np.ndarray, records: int, what: str) -> None:
    """Each pixel's covered count ~ Binomial(records, p) (records are independent), at
    ``ALPHA / pixels`` each: ``ALPHA`` for the whole map."""
    probability = spec.coverage_probability(config, *covered.shape)
    alpha = ALPHA / covered.size
    for (y, x), p in np.ndenumerate(probability):
        assert_binomial(
            int(covered[y, x]), records, float(p), what=f"{what} ({y}, {x})", alpha=alpha
        )


@pytest.mark.stats
def test_reference_coverage_map_is_the_exact_expectation():
    """Reference outputs of ``RECORDS`` records: every pixel's coverage count vs the exact
    coverage probability (binomial per pixel); the rest untouched bit for bit."""
    config = coarse(hole_count_range=(1, 3), hole_size_range=(0.2, 0.6), fill_value=-1.0)
    records = scaled(RECORDS)
    images = np.random.default_rng(1).random((records, *SHAPE)).astype(np.float32)
    params = _reference_params("test_reference_coverage_map", config, records, "stream")
    out = reference.apply_batch(config, images, params)
    _assert_coverage_map(config, _covered_counts(config, out, images), records, "reference")
    untouched = np.all(out == images, axis=-1) | np.all(out == -1.0, axis=-1)
    assert untouched.all()


def test_coverage_probability_by_enumeration_on_a_tiny_image():
    """On a 3x2 image with one hole, P(covered) summed over every (h, w, y0, x0) by their
    exact probabilities equals ``coverage_probability``."""
    config = coarse(hole_count_range=(1, 1), hole_size_range=(0.2, 0.9))
    height, width = 3, 2
    expected = np.zeros((height, width))
    ph, pw = spec.size_pmf(height, 0.2, 0.9), spec.size_pmf(width, 0.2, 0.9)
    for h in range(1, height + 1):
        for w in range(1, width + 1):
            py, px = spec.corner_pmf(height - h + 1), spec.corner_pmf(width - w + 1)
            for y0, x0 in np.ndindex(py.size, px.size):
                expected[y0 : y0 + h, x0 : x0 + w] += ph[h] * pw[w] * py[y0] * px[x0]
    np.testing.assert_allclose(spec.coverage_probability(config, height, width), expected)


# --------------------------------------------------------------------------- #
# Compiled = reference, bit for bit                                            #
# --------------------------------------------------------------------------- #
EDGE_CASES = [
    ({"hole_count_range": (0, 0)}, (5, 6, 3), np.float32),
    ({"hole_count_range": (0, 7), "fill_value": 0.25}, (5, 6, 3), np.float32),
    ({"hole_size_range": (1.0, 1.0), "fill_value": 2.0}, (4, 3, 1), np.float32),
    ({"hole_count_range": (2, 5), "fill_value": 300.0}, (11, 7, 3), np.uint8),
    ({"hole_count_range": (2, 5), "fill_value": -3.7}, (11, 7, 4), np.int16),
    ({"hole_count_range": (1, 3), "fill_value": 0.5}, (13, 17), np.float32),
    ({"hole_count_range": (1, 3), "fill_value": 0.5}, (2, 6, 5, 3), np.float32),
    ({"hole_count_range": (1, 4), "clip_range": (0.2, 0.7)}, (8, 9, 3), np.float32),
    ({"hole_count_range": (1, 4), "apply_prob": 0.5}, (8, 9, 3), np.uint8),
]


@pytest.mark.parametrize(("fields", "shape", "dtype"), EDGE_CASES)
def test_compiled_coarse_is_the_reference_bit_for_bit(fields, shape, dtype):
    """``op(batch)``, ``generate_random_params`` + ``apply`` and the reference from
    the base key agree exactly, for edge counts, sizes, fills, dtypes and ranks."""
    config = coarse(**fields)
    images = (np.random.default_rng(2).random((6, *shape)) * 255).astype(dtype)
    if dtype == np.float32:
        images = images / np.float32(255)
    op = make_operator(config, seed=5)
    base = np.asarray(op.get_state()["_base_key"], np.uint32).reshape(2)
    out = run_batch(op, images)
    expected = reference.operator_output(config, images, base, np.arange(6))
    np.testing.assert_array_equal(out.view(np.uint8), expected.view(np.uint8))
    key = jax.random.key(3)
    params = op.generate_random_params(key, {"image": images.shape})
    keys = np.asarray(jax.random.key_data(jax.random.split(key, 6)), np.uint32)
    ref_params = reference.draw(config, reference.StreamSource(keys), shape, 6)
    assert sorted(params) == sorted(ref_params)
    for name, value in ref_params.items():
        np.testing.assert_array_equal(np.asarray(params[name]), value)
    for i in range(images.shape[0]):  # apply with each record's params: the reference's
        one = {name: value[i] for name, value in params.items()}
        applied = np.asarray(op.apply({"image": images[i]}, {}, {}, random_params=one)[0]["image"])
        expected = reference.apply(config, images[i], {k: v[i] for k, v in ref_params.items()})
        np.testing.assert_array_equal(applied.view(np.uint8), expected.view(np.uint8))


def test_coarse_params_are_checked_by_name_and_shape():
    op = make_operator(coarse(hole_count_range=(1, 2)))
    image = np.zeros((4, 5, 3), np.float32)
    good = {
        k: v[0]
        for k, v in op.generate_random_params(jax.random.key(0), {"image": (1, 4, 5, 3)}).items()
    }
    op.apply({"image": image}, {}, {}, random_params=good)  # accepted as drawn
    with pytest.raises(KeyError, match="random_params lacks 'hole_sizes'"):
        op.apply(
            {"image": image}, {}, {}, random_params={k: good[k] for k in good if k != "hole_sizes"}
        )
    bad = {**good, "hole_corners": np.zeros((3, 2), np.int32)}
    with pytest.raises(ValueError, match=r"random_params\['hole_corners'\] has shape \(3, 2\)"):
        op.apply({"image": image}, {}, {}, random_params=bad)


# --------------------------------------------------------------------------- #
# The grain transform's host path                                              #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("stochastic", [True, False])
def test_host_coarse_dropout_equals_the_reference_and_the_program(stochastic):
    """The host path (no compile per record size) gives, for records of many sizes, dtypes
    and ranks, the reference's bits from each record's key; one record per dtype also
    through the compiled program itself (which equals the reference everywhere else)."""
    pytest.importorskip("grain")
    from datarax_ops.grain_transform import (
        OperatorRandomMap,
        _record_program,
        key_words_from_generator,
    )

    config = coarse(
        hole_count_range=(0, 4),
        hole_size_range=(0.1, 0.8),
        fill_value=0.5,
        stochastic=stochastic,
        apply_prob=0.8,
    )
    transform = OperatorRandomMap(dx.DropoutOperator(config, rngs=nnx.Rngs(4)))
    program = _record_program(transform.kernel, transform.stochastic)
    data_rng = np.random.default_rng(6)
    for dtype in (np.uint8, np.int16, np.float32, "bfloat16"):
        for record in range(25):
            shape = (int(data_rng.integers(1, 30)), int(data_rng.integers(1, 30)), 3)
            shape = shape[:2] if record % 5 == 4 else shape
            image = (data_rng.random(shape) * 200).astype(np.dtype(dtype))
            assert transform.kernel.has_host_path(image)
            out = transform.random_map({"image": image}, np.random.default_rng(record))["image"]
            words = key_words_from_generator(np.random.default_rng(record))
            if stochastic:
                key = reference.stream.words_key(transform.base_key, (words[0], words[1]))
            else:
                key, words = reference.stream.fixed_pattern_key(), np.zeros(2, np.uint32)
            expected = reference.apply(
                config, image, reference.draw(config, reference.StreamSource(key), shape)
            )
            assert out.dtype == image.dtype
            np.testing.assert_array_equal(out.view(np.uint8), expected.view(np.uint8))
            if record == 0:
                compiled = np.asarray(program(transform.base_key, words, image))
                np.testing.assert_array_equal(out.view(np.uint8), compiled.view(np.uint8))


def test_coarse_with_a_clip_compiles_in_the_grain_transform_and_agrees():
    pytest.importorskip("grain")
    from datarax_ops.grain_transform import OperatorRandomMap

    config = coarse(clip_range=(0.1, 0.9), hole_count_range=(1, 2), stochastic=False)
    image = np.random.default_rng(0).random((5, 6, 3)).astype(np.float32)
    transform = OperatorRandomMap(dx.DropoutOperator(config))
    assert not transform.kernel.has_host_path(image)
    out = transform.random_map({"image": image}, np.random.default_rng(0))
    expected, _, _ = dx.DropoutOperator(config).apply({"image": image}, {}, {})
    np.testing.assert_array_equal(out["image"], np.asarray(expected["image"]))


def test_host_scalar_arithmetic_is_the_reference_arithmetic():
    """The host path's one-word side and index (NumPy float32 scalars, Python ints) equal
    the reference's array functions on 20000 random words, sides and size ranges."""
    from datarax_ops.modes.coarse import host_index, host_side

    rng = np.random.default_rng(9)
    words = rng.integers(0, 2**32, 20_000, dtype=np.uint64).astype(np.uint32)
    lengths = rng.integers(1, 2000, words.size)
    lows = rng.uniform(1e-3, 1.0, words.size)
    highs = np.minimum(1.0, lows + rng.uniform(0.0, 1.0, words.size))
    levels = reference.stream.uniform_from_bits(words)
    for i in range(words.size):
        expected = spec.side_from_levels(levels[i : i + 1], int(lengths[i]), lows[i], highs[i])
        assert host_side(int(words[i]), int(lengths[i]), lows[i], highs[i]) == expected[0]
    counts = rng.integers(0, 2**20, words.size)
    np.testing.assert_array_equal(
        [host_index(int(w), int(k)) for w, k in zip(words, counts, strict=True)],
        reference.stream.index_from_bits(words, counts.astype(np.uint32)),
    )
