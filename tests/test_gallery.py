"""The demo's pictures: the synthetic image, image loading, and the gallery grid.

Skipped without the ``verify`` extra (matplotlib, Pillow).
"""

from __future__ import annotations

import numpy as np
import pytest

# Runs whole commands or pipelines: `nox -s slow` (CI runs it after `tests`).
pytestmark = pytest.mark.slow

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from datarax_ops.conformance import gallery, images  # noqa: E402
from datarax_ops.modes import MODES  # noqa: E402

# Each strength is its own compiled program: the tests use the weakest and the strongest
# of the defaults, on the 256x256 synthetic image, so that they share the compiles.
STRONGEST = {name: (levels[-1],) for name, levels in gallery.DEFAULT_STRENGTHS.items()}
TWO_STRENGTHS = {
    name: (levels[0], levels[-1]) for name, levels in gallery.DEFAULT_STRENGTHS.items()
}


def test_synthetic_image_shape_dtype_range() -> None:
    image = images.synthetic_image()
    assert image.shape == (256, 256, 3)
    assert image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    small = images.synthetic_image(40, 64)
    assert small.shape == (40, 64, 3)
    np.testing.assert_array_equal(images.synthetic_image(), image)  # deterministic


def test_synthetic_image_has_what_the_demo_needs() -> None:
    image = images.synthetic_image()
    grey = np.all(image == image[..., :1], axis=-1)
    for level in images.GREY_LEVELS:  # flat patches, near-black and near-white included
        assert np.sum(grey & np.isclose(image[..., 0], level)) > 500, level
    assert image.min() < 0.05 and image.max() > 0.95
    assert np.ptp(image[:100].reshape(-1, 3), axis=0).min() > 0.3  # colour gradient
    assert np.mean(np.abs(np.diff(image, axis=1)) > 0.5) > 0.02  # sharp edges, fine detail
    with pytest.raises(ValueError, match=">= 16"):
        images.synthetic_image(8, 8)


def _save(array_uint8: np.ndarray, path, mode: str | None = None, **kwargs) -> None:
    Image.fromarray(array_uint8, mode=mode).save(path, **kwargs)


def test_load_png_and_jpeg(tmp_path) -> None:
    rgb = (images.synthetic_image(32, 48) * 255).round().astype(np.uint8)
    _save(rgb, tmp_path / "a.png")
    _save(rgb, tmp_path / "b.jpg", quality=95)
    png = images.load_image(tmp_path / "a.png")
    assert png.shape == (32, 48, 3) and png.dtype == np.float32
    np.testing.assert_array_equal(png, rgb / np.float32(255))
    jpeg = images.load_image(str(tmp_path / "b.jpg"))
    assert jpeg.shape == (32, 48, 3) and jpeg.dtype == np.float32
    assert 0.0 <= jpeg.min() and jpeg.max() <= 1.0
    assert np.abs(jpeg - png).mean() < 0.05  # lossy, but the same picture


def test_rgba_and_greyscale_become_rgb(tmp_path) -> None:
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0  # fully transparent: composited over white
    _save(rgba, tmp_path / "rgba.png")
    out = images.load_image(tmp_path / "rgba.png")
    assert out.shape == (4, 5, 3)
    np.testing.assert_allclose(out[1, 1], [200 / 255, 0, 0], atol=1e-6)
    np.testing.assert_allclose(out[0, 0], [1, 1, 1])

    grey = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    _save(grey, tmp_path / "grey.png")
    out = images.load_image(tmp_path / "grey.png")
    assert out.shape == (4, 5, 3)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], grey / 255, atol=1e-6)


def test_bad_files_are_named(tmp_path) -> None:
    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"this is text, not a PNG")
    with pytest.raises(ValueError, match=r"not-an-image\.png"):
        images.load_image(bad)
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        images.load_image(tmp_path / "missing.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures here")
    with pytest.raises(ValueError, match="empty"):
        images.load_images(empty)


def test_load_images_from_directory_and_list(tmp_path) -> None:
    rgb = (images.synthetic_image(16, 16) * 255).astype(np.uint8)
    _save(rgb, tmp_path / "b.png")
    _save(rgb[:8], tmp_path / "a.JPG")
    (tmp_path / "skip.txt").write_text("x")
    loaded = images.load_images(tmp_path)
    assert [im.shape for im in loaded] == [(8, 16, 3), (16, 16, 3)]  # sorted by name
    assert len(images.load_images([tmp_path / "b.png"])) == 1


def test_every_mode_has_demo_strengths() -> None:
    assert {mode.name for mode in MODES} <= set(gallery.DEFAULT_STRENGTHS)
    for levels in gallery.DEFAULT_STRENGTHS.values():
        assert 3 <= len(levels) <= 4


def test_gallery_rows_original_and_strongest_panels() -> None:
    image = images.synthetic_image()
    rows = gallery.gallery_rows(image, seed=3, strengths=STRONGEST)
    assert [label.split("\n")[0] for label, _ in rows] == [mode.name for mode in MODES]
    for label, panels in rows:
        assert len(panels) == 2
        original, strongest = panels
        assert original.title == "original"
        np.testing.assert_array_equal(original.image, image)
        assert strongest.image.shape == image.shape
        assert not np.array_equal(strongest.image, image), label
        assert "=" in strongest.title  # titled with its parameter


def test_gallery_panel_is_the_operator_output() -> None:
    image = images.synthetic_image(16, 16)
    mode = next(m for m in MODES if m.name == "gaussian")
    rows = gallery.gallery_rows(
        image, seed=5, strengths={"gaussian": ({"noise_std": 0.1},)}, modes=[mode]
    )
    expected = gallery.run_mode(mode, {"noise_std": 0.1}, image, seed=5)[0]
    np.testing.assert_array_equal(rows[0][1][1].image, expected)


def test_demo_main_writes_png_sized_by_modes(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(gallery, "DEFAULT_STRENGTHS", TWO_STRENGTHS)
    monkeypatch.setattr(gallery, "training_rows", lambda image, seed: [])  # tested below
    out = tmp_path / "sub" / "demo.png"
    assert gallery.main(["--out", str(out), "--seed", "7"]) == 0
    printed = capsys.readouterr().out
    assert "seed 7" in printed and str(out) in printed
    with Image.open(out) as png:
        full_w, full_h = png.size
    few = gallery.gallery_figure(
        images.synthetic_image(), seed=7, strengths=STRONGEST, modes=MODES[:2]
    )
    few.savefig(tmp_path / "few.png", dpi=100)
    with Image.open(tmp_path / "few.png") as png:
        few_w, few_h = png.size
    assert full_w > few_w * 1.2  # 3 columns vs 2
    assert full_h > few_h * 2  # 5 rows vs 2
    assert full_w >= 200 * 3  # panels big enough to see per-pixel noise


def test_demo_main_with_an_image_file(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(gallery, "DEFAULT_STRENGTHS", TWO_STRENGTHS)
    monkeypatch.setattr(gallery, "training_rows", lambda image, seed: [])  # tested below
    # 256x256, as the synthetic image: the compiled programs of the test above are reused
    rgb = (images.synthetic_image()[::-1] * 255).astype(np.uint8)
    _save(rgb, tmp_path / "photo.png")
    out = tmp_path / "demo.png"
    assert gallery.main(["--image", str(tmp_path / "photo.png"), "--out", str(out)]) == 0
    assert "photo.png" in capsys.readouterr().out
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    assert gallery.main(["--image", str(tmp_path / "broken.png"), "--out", str(out)]) == 2
    assert "broken.png" in capsys.readouterr().err
    with Image.open(out) as png:
        assert png.size[0] > 500 and png.size[1] > 500


def test_fit_size_shrinks_large_images() -> None:
    image = gallery.fit_size(images.synthetic_image(600, 400), 100)
    assert image.shape == (100, 67, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    small = images.synthetic_image(32, 32)
    assert gallery.fit_size(small, 100) is small


def test_training_rows_show_a_range_and_shared_channels() -> None:
    """The range row: four records of one batch, each with its own drawn noise_std (their
    RMS changes differ); the shared row: per_channel=False gaussian noise is the same in
    every channel of a pixel (where no channel is clipped), per-channel noise is not."""
    image = images.synthetic_image()
    (range_label, range_panels), (shared_label, shared_panels) = gallery.training_rows(
        image, seed=0
    )
    assert range_label.startswith("ranges") and shared_label.startswith("shared")
    changes = [float(np.sqrt(np.mean((p.image - image) ** 2))) for p in range_panels[1:]]
    assert len(changes) == 4 and len({round(c, 4) for c in changes}) == 4
    titles = [panel.title for panel in shared_panels]
    assert titles[1] == "gaussian, per channel" and titles[2] == "gaussian, per_channel=False"
    for panel, shared in ((shared_panels[1], False), (shared_panels[2], True)):
        noise = panel.image.astype(np.float64) - image
        inside = np.all((panel.image > 0) & (panel.image < 1), axis=-1)
        spread = np.ptp(noise[inside], axis=-1)
        assert (np.max(spread) < 1e-6) == shared
