"""Real images for the fakes and tests: small, deterministic, rendered with Pillow."""

from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageDraw


def _colour(seed: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(seed.encode()).digest()
    return digest[0], digest[1], digest[2]


def render(width: int = 256, height: int = 256, *, label: str = "easel", fmt: str = "PNG", mode: str = "RGB") -> bytes:
    """An image with a coloured background (derived from `label`), a frame and the label written on it."""
    background = (*_colour(label), 255) if mode == "RGBA" else _colour(label)
    image = Image.new(mode, (width, height), background)  # type: ignore[arg-type]
    draw = ImageDraw.Draw(image)
    draw.rectangle((2, 2, width - 3, height - 3), outline=(0, 0, 0))
    draw.text((8, 8), label[:40], fill=(255, 255, 255))
    out = io.BytesIO()
    if fmt.upper() in ("JPEG", "JPG"):
        image.convert("RGB").save(out, "JPEG", quality=85)
    else:
        image.save(out, fmt.upper())
    return out.getvalue()


def png(width: int = 256, height: int = 256, label: str = "easel") -> bytes:
    return render(width, height, label=label, fmt="PNG")


def jpeg(width: int = 256, height: int = 256, label: str = "easel") -> bytes:
    return render(width, height, label=label, fmt="JPEG")


def webp(width: int = 256, height: int = 256, label: str = "easel") -> bytes:
    return render(width, height, label=label, fmt="WEBP")


def noisy_png(width: int, height: int, seed: int = 1) -> bytes:
    """A PNG that does not compress (random pixels): for testing size limits."""
    import random

    rnd = random.Random(seed)
    data = bytes(rnd.getrandbits(8) for _ in range(width * height * 3))
    image = Image.frombytes("RGB", (width, height), data)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def heic(width: int = 128, height: int = 128, label: str = "easel") -> bytes:
    """A real HEIC file (pillow-heif)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    image = Image.new("RGB", (width, height), _colour(label))
    out = io.BytesIO()
    image.save(out, "HEIF")
    return out.getvalue()
