"""Encoding helpers shared by the coloring, upscale and filter renderers: PNG/JPEG bytes from arrays, and the
alpha channel kept aside while the colour channels are processed."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from .common import to_rgb_array

# Above this many output pixels a photo is sent as JPEG: a lossless PNG of a large photo is tens of megabytes
# (over chat upload limits) and takes seconds to compress, for no visible gain.
PHOTO_PNG_MAX_PIXELS = 4_000_000
JPEG_QUALITY = 92


def split_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB array and, when the image has real transparency, its alpha (uint8, same size); the RGB of transparent
    images is flattened on white so that hidden colours do not bleed into filters."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    rgb = to_rgb_array(image)
    if not has_alpha:
        return rgb, None
    alpha = np.asarray(image.convert("RGBA"))[..., 3].copy()
    if int(alpha.min()) == 255:
        return rgb, None
    return rgb, alpha


def fit_side(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink (never enlarge) so the longest side is at most `max_side`, with area averaging."""
    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def encode_png(array: np.ndarray, *, compression: int = 6) -> bytes:
    """PNG of a greyscale, RGB or RGBA uint8 array (channels in RGB order)."""
    if array.ndim == 3 and array.shape[2] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA)
    ok, buffer = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:  # pragma: no cover - OpenCV only fails on impossible arrays
        raise ValueError("PNG encoding failed")
    return buffer.tobytes()


def encode_jpeg(rgb: np.ndarray, *, quality: int = JPEG_QUALITY) -> bytes:
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()


def with_alpha(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """RGBA when there is an alpha (resized to the RGB's size if needed), else the RGB unchanged."""
    if alpha is None:
        return rgb
    height, width = rgb.shape[:2]
    if alpha.shape[:2] != (height, width):
        alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.dstack([rgb, alpha])


def is_photo(rgb: np.ndarray) -> bool:
    """True for camera-like pictures (many distinct colours), false for drawings, logos and screenshots, which
    compress well as PNG and suffer from JPEG artefacts."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 65_536)))
    sample = rgb[::step, ::step].reshape(-1, 3).astype(np.uint32)
    packed = (sample[:, 0] << 16) | (sample[:, 1] << 8) | sample[:, 2]
    return len(np.unique(packed)) > 4096
