"""Images and videos judged by their content, never by name: checks, re-encoding to fit, sheets.

Everything here is CPU work: the async functions run it in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import io
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF from phones
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF = True
except ImportError:  # pragma: no cover - it is a dependency, but keep the bot usable without it
    HEIF = False

# Decompression bombs: refuse images with more pixels than this instead of allocating them.
MAX_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

FORMAT_NAMES = {
    "JPEG": "jpeg",
    "PNG": "png",
    "WEBP": "webp",
    "HEIF": "heic",
    "GIF": "gif",
    "BMP": "bmp",
    "TIFF": "tiff",
    "AVIF": "avif",
}
MIME = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "heic": "image/heic",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "avif": "image/avif",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
}
EXTENSION = {
    "jpeg": "jpg",
    "png": "png",
    "webp": "webp",
    "heic": "heic",
    "gif": "gif",
    "mp4": "mp4",
    "webm": "webm",
    "mov": "mov",
    "bmp": "bmp",
    "tiff": "tiff",
    "avif": "avif",
}


class MediaError(ValueError):
    """Not a usable image/video; the message is fit for the member."""


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # image | video
    format: str  # jpeg, png, webp, heic, gif, mp4, webm, ...
    width: int = 0
    height: int = 0

    @property
    def mime(self) -> str:
        return MIME.get(self.format, "application/octet-stream")

    @property
    def extension(self) -> str:
        return EXTENSION.get(self.format, "bin")


def _video_format(data: bytes) -> str | None:
    if len(data) >= 12 and data[4:8] == b"ftyp":
        brand = data[8:12]
        return "mov" if brand == b"qt  " else "mp4"
    if data[:4] == b"\x1aE\xdf\xa3":
        return "webm"
    return None


def identify(data: bytes) -> MediaInfo:
    """What the bytes are. Raises MediaError if they are neither an image we can read nor a video."""
    video = _video_format(data)
    if video is not None and not data[8:12].startswith((b"heic", b"heix", b"mif1", b"msf1", b"avif")):
        return MediaInfo("video", video)
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = FORMAT_NAMES.get(image.format or "", (image.format or "unknown").lower())
            width, height = image.size
            image.verify()
    except Image.DecompressionBombError as exc:
        raise MediaError(f"that image is too large to process (over {MAX_PIXELS // 1_000_000} megapixels)") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MediaError("that file is not an image I can read") from exc
    return MediaInfo("image", fmt, width, height)


async def identify_async(data: bytes) -> MediaInfo:
    return await asyncio.to_thread(identify, data)


def describe_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{max(1, size // 1024)} KB"


def check_image(
    data: bytes,
    *,
    allowed: tuple[str, ...] = ("jpeg", "png", "webp", "heic"),
    max_bytes: int = 20 * 1024 * 1024,
    max_side: int | None = None,
    min_side: int = 1,
    label: str = "The attachment",
) -> MediaInfo:
    """Validate an uploaded image by its content; MediaError with a specific message otherwise."""
    if len(data) > max_bytes:
        raise MediaError(f"{label} is {describe_size(len(data))}; the limit is {describe_size(max_bytes)}.")
    try:
        info = identify(data)
    except MediaError as exc:
        raise MediaError(
            f"{label} is not an image ({exc}). Please attach a {', '.join(a.upper() for a in allowed)} file."
        ) from exc
    if info.kind != "image" or info.format not in allowed:
        raise MediaError(
            f"{label} is a {info.format.upper()} file; please attach {', '.join(a.upper() for a in allowed)}."
        )
    if max_side is not None and max(info.width, info.height) > max_side:
        raise MediaError(f"{label} is {info.width}×{info.height} px; the most allowed is {max_side}×{max_side} px.")
    if min(info.width, info.height) < min_side:
        raise MediaError(
            f"{label} is only {info.width}×{info.height} px; it needs at least {min_side} px on each side."
        )
    return info


async def check_image_async(data: bytes, **kwargs: object) -> MediaInfo:
    return await asyncio.to_thread(check_image, data, **kwargs)  # type: ignore[arg-type]


def _open_rgb(data: bytes) -> Image.Image:
    image: Image.Image = Image.open(io.BytesIO(data))
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.split()[-1])
        return background
    return image.convert("RGB")


def to_jpeg(data: bytes, quality: int = 92) -> bytes:
    """Any readable image (HEIC included) as a JPEG, orientation applied."""
    out = io.BytesIO()
    _open_rgb(data).save(out, "JPEG", quality=quality)
    return out.getvalue()


def fit_within(data: bytes, limit: int) -> tuple[bytes, str] | None:
    """Re-encode, then downscale, until the image is at most `limit` bytes. Returns (bytes, format) or
    None if even a small JPEG does not fit. Tries PNG-preserving steps first for small overshoots."""
    if len(data) <= limit:
        info = identify(data)
        return data, info.format
    image = _open_rgb(data)
    scale = 1.0
    for _ in range(12):
        candidate = (
            image
            if scale == 1.0
            else image.resize(
                (max(1, int(image.width * scale)), max(1, int(image.height * scale))), Image.Resampling.LANCZOS
            )
        )
        for quality in (92, 85, 75):
            out = io.BytesIO()
            candidate.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= limit:
                return out.getvalue(), "jpeg"
        # Shrink in proportion to how far off we are, at least by a quarter.
        scale *= min(0.75, math.sqrt(limit / max(out.tell(), 1)) * 0.95)
        if candidate.width < 64 or candidate.height < 64:
            break
    return None


async def fit_within_async(data: bytes, limit: int) -> tuple[bytes, str] | None:
    return await asyncio.to_thread(fit_within, data, limit)


def contact_sheet(images: list[bytes], *, thumb: int = 160, columns: int = 5, numbered: bool = True) -> bytes:
    """Thumbnails of `images` in a grid, numbered from 1 (for reviewing a training set)."""
    count = max(1, len(images))
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    sheet = Image.new("RGB", (columns * thumb, rows * thumb), (32, 34, 37))
    draw = ImageDraw.Draw(sheet)
    for index, data in enumerate(images):
        try:
            image = _open_rgb(data)
        except (UnidentifiedImageError, OSError):
            continue
        image.thumbnail((thumb - 8, thumb - 8))
        x = (index % columns) * thumb + (thumb - image.width) // 2
        y = (index // columns) * thumb + (thumb - image.height) // 2
        sheet.paste(image, (x, y))
        if numbered:
            cx, cy = (index % columns) * thumb + 4, (index // columns) * thumb + 4
            draw.rectangle((cx, cy, cx + 24, cy + 16), fill=(0, 0, 0))
            draw.text((cx + 4, cy + 2), str(index + 1), fill=(255, 255, 255))
    out = io.BytesIO()
    sheet.save(out, "JPEG", quality=85)
    return out.getvalue()


async def contact_sheet_async(images: list[bytes], **kwargs: int) -> bytes:
    return await asyncio.to_thread(contact_sheet, images, **kwargs)  # type: ignore[arg-type]
