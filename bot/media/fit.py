"""Fit an image under a byte limit without losing what matters about it.

`bot.media.fit_within` makes every oversized image a JPEG, which turns a transparent background white. Here
pictures with transparent pixels stay PNG (or WebP, which keeps alpha and compresses far better) when shrunk;
only pictures without transparency may become JPEG. CPU work: the async variant runs it in a thread.
"""

from __future__ import annotations

import asyncio
import io
import math

from PIL import Image, ImageOps

from bot.media import fit_within, identify

MIN_SIDE = 64  # below this a result is not worth sending
MAX_STEPS = 12
WEBP_QUALITIES = (90, 80, 65)


def _open(data: bytes) -> Image.Image:
    image: Image.Image = Image.open(io.BytesIO(data))
    return ImageOps.exif_transpose(image) or image


def _alpha_of(image: Image.Image) -> Image.Image | None:
    """The alpha band if the picture has one (palette transparency included), else None."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if "A" not in image.getbands():
        return None
    return image.getchannel("A")


def _lowest(alpha: Image.Image) -> float:
    low = alpha.getextrema()[0]  # one band: (min, max)
    return float(low) if isinstance(low, int | float) else 255.0


def has_transparency(data: bytes) -> bool:
    """Whether the picture has at least one pixel that is not fully opaque."""
    with Image.open(io.BytesIO(data)) as image:
        alpha = _alpha_of(image)
        if alpha is None:
            return False
        return _lowest(alpha) < 255


def _encodings(image: Image.Image) -> list[tuple[bytes, str]]:
    """Candidates from the largest to the smallest usual size, all keeping the alpha channel."""
    out: list[tuple[bytes, str]] = []
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    out.append((buffer.getvalue(), "png"))
    # 256 colours with alpha: often a third of the size, visually close for AI pictures with flat backgrounds.
    buffer = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(buffer, "PNG", optimize=True)
    out.append((buffer.getvalue(), "png"))
    for quality in WEBP_QUALITIES:
        buffer = io.BytesIO()
        image.save(buffer, "WEBP", quality=quality, method=4)
        out.append((buffer.getvalue(), "webp"))
    return out


def _fit_transparent(image: Image.Image, limit: int) -> tuple[bytes, str] | None:
    image = image.convert("RGBA")
    scale = 1.0
    for _ in range(MAX_STEPS):
        candidate = (
            image
            if scale == 1.0
            else image.resize(
                (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS
            )
        )
        smallest = limit + 1
        for data, fmt in _encodings(candidate):
            if len(data) <= limit:
                return data, fmt
            smallest = min(smallest, len(data))
        if min(candidate.width, candidate.height) <= MIN_SIDE:
            break
        # Bytes grow with the area: shrink in proportion to how far off the best encoding is, at least 15%.
        scale *= min(0.85, math.sqrt(limit / smallest) * 0.95)
    return None


def fit_image(data: bytes, limit: int) -> tuple[bytes, str] | None:
    """The picture within `limit` bytes as (bytes, format), or None if even a small version does not fit.
    Transparent pictures stay PNG or WebP with their alpha; others may become JPEG."""
    if len(data) <= limit:
        return data, identify(data).format
    identify(data)  # MediaError for what is not a readable image, before decoding it
    with _open(data) as opened:
        image = opened.copy()
    alpha = _alpha_of(image)
    if alpha is not None and _lowest(alpha) < 255:
        if image.mode == "P":
            image = image.convert("RGBA")
        return _fit_transparent(image, limit)
    return fit_within(data, limit)


async def fit_image_async(data: bytes, limit: int) -> tuple[bytes, str] | None:
    return await asyncio.to_thread(fit_image, data, limit)
