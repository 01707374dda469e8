"""Pictures to show the operators on: a built-in synthetic image, or the user's own files.

Every function returns images as ``float32 (H, W, 3)`` arrays with values in
``[0, 1]``, the convention of the noise operators' default ``clip_range``.

The synthetic picture is made so that every mode is visible on it:

* a smooth colour gradient (top): gaussian and poisson noise show as grain on
  flat-ish colour, channel dropout as a colour shift;
* a strip of flat grey patches from near-black to near-white (middle):
  poisson noise grows with brightness, salt shows on the dark patches and
  pepper on the light ones, clipping shows at both ends;
* sharp-edged shapes on mid grey (bottom left) and fine stripes and a
  checkerboard (bottom right): pixel dropout and salt & pepper break up edges
  and fine detail.

Loading needs Pillow (the ``verify`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

# The grey levels of the patch strip, dark to light (near-black and near-white included).
GREY_LEVELS = (0.03, 0.2, 0.4, 0.6, 0.8, 0.97)

# Band boundaries of the synthetic picture, as fractions of its height.
_GRADIENT_END = 0.42
_PATCHES_END = 0.6


def hsv_to_rgb(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """HSV to RGB, elementwise.

    Args:
      hue, saturation, value: float arrays of one broadcastable shape ``S``,
        each in ``[0, 1]`` (hue wraps: 0 and 1 are both red).

    Returns:
      float64 ``(*S, 3)`` in ``[0, 1]``.
    """
    hue, saturation, value = np.broadcast_arrays(
        np.asarray(hue, np.float64),
        np.asarray(saturation, np.float64),
        np.asarray(value, np.float64),
    )
    # The standard piecewise-linear form: channel n (R 5, G 3, B 1) is lowered by
    # saturation * clip(min(k, 4 - k), 0, 1), with k = (n + 6 * hue) mod 6.
    k = (np.array([5.0, 3.0, 1.0]) + hue[..., None] * 6.0) % 6.0
    ramp = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return value[..., None] * (1.0 - saturation[..., None] * ramp)


def _gradient_band(height: int, width: int) -> np.ndarray:
    """Hue across the width, from pale and bright (top) to saturated and dim (bottom).

    Returns float64 ``(height, width, 3)`` in ``[0.12, 0.92]``.
    """
    x = (np.arange(width) + 0.5) / width
    y = (np.arange(height) + 0.5) / max(height, 1)
    hue = np.broadcast_to(x[None, :], (height, width))
    saturation = 0.25 + 0.7 * y[:, None]
    value = 0.92 - 0.25 * y[:, None]
    return 0.12 + 0.8 * hsv_to_rgb(hue, saturation, value) / 0.92


def _patch_band(height: int, width: int) -> np.ndarray:
    """Flat grey patches at ``GREY_LEVELS``, left to right, equal widths.

    Returns float64 ``(height, width, 3)``.
    """
    column = np.minimum(
        (np.arange(width) * len(GREY_LEVELS)) // max(width, 1), len(GREY_LEVELS) - 1
    )
    levels = np.asarray(GREY_LEVELS)[column]
    return np.broadcast_to(levels[None, :, None], (height, width, 3)).copy()


def _shapes_panel(height: int, width: int) -> np.ndarray:
    """A red disc, a blue square and a green triangle with sharp edges on mid grey,
    crossed by a thin white line.

    Returns float64 ``(height, width, 3)`` in ``[0, 1]``.
    """
    out = np.full((height, width, 3), 0.5)
    v, u = np.meshgrid(
        (np.arange(height) + 0.5) / max(height, 1),
        (np.arange(width) + 0.5) / max(width, 1),
        indexing="ij",
    )
    disc = (u - 0.3) ** 2 + ((v - 0.38) * height / max(width, 1)) ** 2 < 0.22**2
    out[disc] = (0.85, 0.15, 0.12)
    square = (np.abs(u - 0.72) < 0.2) & (np.abs(v - 0.33) < 0.25)
    out[square] = (0.12, 0.25, 0.85)
    triangle = (v > 0.55) & (v < 0.93) & (np.abs(u - 0.5) < (v - 0.55) * 0.9)
    out[triangle] = (0.15, 0.7, 0.2)
    line = np.abs(v - (0.1 + 0.15 * u)) < 1.0 / max(height, 1)
    out[line] = 1.0
    return out


def _detail_panel(height: int, width: int) -> np.ndarray:
    """Fine detail: vertical black/white stripes 1, 2 and 4 pixels wide (top half) and a
    checkerboard of 4-pixel squares (bottom half), in greys between 0.1 and 0.9.

    Returns float64 ``(height, width, 3)`` in ``[0.1, 0.9]``.
    """
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    third = max(width // 3, 1)
    period = np.where(cols < third, 1, np.where(cols < 2 * third, 2, 4))
    stripes = (cols // period) % 2
    checker = ((rows // 4) + (cols // 4)) % 2
    pattern = np.where(rows < height // 2, stripes, checker)
    grey = 0.1 + 0.8 * pattern
    return np.repeat(grey[..., None], 3, axis=-1).astype(np.float64)


def synthetic_image(height: int = 256, width: int = 256) -> np.ndarray:
    """The built-in test picture, procedurally generated (the same every call).

    Args:
      height, width: size in pixels, each >= 16.

    Returns:
      float32 ``(height, width, 3)`` with values in ``[0, 1]``: a colour gradient
      band (top 42%), a strip of flat grey patches at ``GREY_LEVELS`` (next 18%),
      and below them sharp-edged shapes (left half) and fine stripes and a
      checkerboard (right half).
    """
    if height < 16 or width < 16:
        raise ValueError(f"synthetic_image needs height and width >= 16, got {height}x{width}")
    gradient_end = round(height * _GRADIENT_END)
    patches_end = round(height * _PATCHES_END)
    bottom = height - patches_end
    left = width // 2
    image = np.concatenate(
        [
            _gradient_band(gradient_end, width),
            _patch_band(patches_end - gradient_end, width),
            np.concatenate(
                [_shapes_panel(bottom, left), _detail_panel(bottom, width - left)], axis=1
            ),
        ],
        axis=0,
    )
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _pillow():
    """The ``PIL.Image`` module, or an ImportError saying which extra provides it."""
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "loading images needs Pillow: pip install 'datarax-ops[verify]'"
        ) from error
    return Image


def _to_rgb_float(image) -> np.ndarray:
    """A decoded ``PIL.Image`` as float32 ``(H, W, 3)`` in ``[0, 1]``.

    Greyscale is repeated over the three channels; an alpha channel is composited
    over white; 16-bit greyscale is scaled by 1/65535; palette and CMYK images go
    through Pillow's RGB conversion.
    """
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        grey = np.asarray(image, dtype=np.float64) / 65535.0
        return np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)
    if mode == "F":
        grey = np.asarray(image, dtype=np.float64)
        return np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
        alpha = rgba[..., 3:4]
        rgb = rgba[..., :3] * alpha + (1.0 - alpha)
    else:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    return rgb.astype(np.float32)


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads one PNG or JPEG (any format Pillow decodes) as float32 ``(H, W, 3)`` in ``[0, 1]``.

    RGBA is composited over white, greyscale repeated to RGB.

    Raises:
      FileNotFoundError: ``path`` does not exist (the message names it).
      ValueError: the file is not a decodable image (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    Image = _pillow()
    try:
        with Image.open(path) as image:
            image.load()
            return _to_rgb_float(image)
    except (OSError, SyntaxError, ValueError) as error:  # UnidentifiedImageError is an OSError
        raise ValueError(f"cannot read {path} as an image: {error}") from error


def image_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The PNG and JPEG files directly inside ``directory``, sorted by name.

    Raises:
      ValueError: there are none, or the directory cannot be listed (the message names it).
    """
    directory = Path(directory)
    try:
        entries = list(directory.iterdir())
    except OSError as error:  # unreadable (permissions), or gone
        raise ValueError(f"cannot list directory {directory}: {error.strerror or error}") from error
    found = sorted(p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in directory {directory}")
    return found


def load_images(
    dir_or_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> list[np.ndarray]:
    """Reads several images: every PNG/JPEG in a directory (sorted by name), one file,
    or an iterable of files.

    Returns:
      A list of float32 ``(H_i, W_i, 3)`` arrays in ``[0, 1]`` (sizes may differ).

    Raises:
      FileNotFoundError: a path does not exist.
      ValueError: a file is not an image, or a directory holds no PNG/JPEG.
    """
    if isinstance(dir_or_paths, (str, os.PathLike)):
        target = Path(dir_or_paths)
        if not target.exists():
            raise FileNotFoundError(f"no such file or directory: {target}")
        if target.is_dir():
            paths: list[Path] = image_files(target)
        else:
            paths = [target]
    else:
        paths = [Path(p) for p in dir_or_paths]
        if not paths:
            raise ValueError("load_images got an empty list of paths")
    return [load_image(p) for p in paths]
