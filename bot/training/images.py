"""Each studio's way of making a member's picture into a stored training image (CPU work: run in a thread).

Both drop metadata (a phone photo's GPS position must not travel to a studio) and turn the picture upright.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import Image, ImageOps

from bot.errors import BadInput
from bot.media import MediaError, fit_within

MAX_SIDE = 2048  # stored (and uploaded) images are scaled down to this
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Prepared:
    data: bytes
    format: str  # jpeg | png | webp
    width: int
    height: int


def _upright(opened: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(opened) or opened
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.split()[-1])
        return flat
    return image.convert("RGB")


def as_jpeg(data: bytes) -> Prepared:
    """mimpi's rule: upright RGB JPEG, at most MAX_SIDE px (what its signed-URL uploads take)."""
    with Image.open(io.BytesIO(data)) as opened:
        image = _flatten(_upright(opened))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=JPEG_QUALITY)
        return Prepared(out.getvalue(), "jpeg", image.width, image.height)


def keep_format(data: bytes, limit: int) -> Prepared:
    """Flair's rule: PNG and WebP stay themselves (an art style lives in its exact colours and transparency),
    anything else (HEIC, GIF, ...) becomes JPEG; then the file must fit in `limit` bytes, shrinking if need be."""
    with Image.open(io.BytesIO(data)) as opened:
        source = (opened.format or "").lower()
        image = _upright(opened)
        out = io.BytesIO()
        if source in ("png", "webp"):
            keep = image if image.mode in ("RGB", "RGBA") else image.convert("RGBA")
            keep.save(out, source.upper(), **({"lossless": True} if source == "webp" else {}))
            fmt = source
        else:
            _flatten(image).save(out, "JPEG", quality=JPEG_QUALITY)
            fmt = "jpeg"
        width, height = image.width, image.height
    encoded = out.getvalue()
    if len(encoded) > limit:
        try:
            fitted = fit_within(encoded, limit)
        except MediaError:
            fitted = None
        if fitted is None:
            raise BadInput("That image cannot be made small enough for the studio.")
        encoded, fmt = fitted
        with Image.open(io.BytesIO(encoded)) as shrunk:
            width, height = shrunk.size
    return Prepared(encoded, fmt, width, height)


def parse_numbers(text: str, count: int, *, noun: str = "photo", review: str = "/portrait review") -> set[int]:
    """'2, 5-7' -> {2, 5, 6, 7}, every number within 1..count; BadInput otherwise."""
    numbers: set[int] = set()
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        match = re.fullmatch(r"(\d{1,3})(?:-(\d{1,3}))?", part)
        if match is None:
            raise BadInput(f"`{part[:20]}` is not a {noun} number; use numbers like `2, 5-7`.")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if low > high:
            low, high = high, low
        if low < 1 or high > count:
            raise BadInput(f"Your set has {noun}s 1 to {count}; `{part}` is outside that.")
        numbers.update(range(low, high + 1))
    if not numbers:
        raise BadInput(f"Give the numbers of the {noun}s to remove, e.g. `2, 5-7` (see `{review}`).")
    return numbers
