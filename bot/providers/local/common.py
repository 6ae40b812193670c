"""What every local renderer shares: decoding with a pixel cap, and the files a renderer returns."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageOps

# Inputs are refused above this many pixels before any pixel is decoded (a decompression bomb costs nothing).
MAX_INPUT_PIXELS = 40_000_000


class RenderError(ValueError):
    """The input cannot be rendered; the message is fit for the member."""


@dataclass(frozen=True)
class Output:
    """One file a renderer made."""

    filename: str
    data: bytes
    kind: str = "image"  # image | file
    label: str | None = None  # e.g. "svg", "pdf", "legend": found again by buttons
    send: bool = True  # False: kept for buttons, not attached to the result message


@dataclass
class Rendered:
    """What a renderer returns: its files, an optional text posted with them (e.g. a palette legend), and
    facts shown in the result's details (e.g. the number of colours used)."""

    files: list[Output]
    text: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def open_capped(data: bytes, *, max_pixels: int = MAX_INPUT_PIXELS, work_side: int | None = None) -> Image.Image:
    """Open an image, refusing it from its header alone when it has more than `max_pixels`; with `work_side`,
    JPEGs are decoded at a reduced scale (draft mode) close to that longest side, then orientation applied."""
    try:
        image = Image.open(io.BytesIO(data))
    except Exception as exc:
        raise RenderError("that file is not an image I can read") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise RenderError(
            f"that image is {width}×{height} px, over the {max_pixels // 1_000_000} megapixel limit of this studio"
        )
    if work_side is not None and image.format == "JPEG" and max(width, height) > 2 * work_side:
        scale = max(width, height) / work_side
        image.draft("RGB", (int(width / scale), int(height / scale)))
    try:
        image.load()
    except Exception as exc:
        raise RenderError("that image is damaged and could not be decoded") from exc
    return ImageOps.exif_transpose(image) or image


def eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and float greyscale (scans, medical and astronomy PNG/TIFF) rescaled to 8 bits: Pillow's own
    conversion clips them, which turns most pictures white."""
    if image.mode not in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return image
    values = np.asarray(image, dtype=np.float64)
    peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
    return Image.fromarray(np.clip(values * (255.0 / peak), 0, 255).astype(np.uint8), "L")


def to_rgb_array(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """RGB uint8 array; transparency is flattened onto `background`, deep greyscale rescaled to 8 bits."""
    image = eight_bit(image)
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.split()[-1])
        return np.asarray(flat)
    return np.asarray(image.convert("RGB"))
