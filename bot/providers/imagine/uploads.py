"""The pictures a create uploads: read, checked by content, and in a format the API takes.

Checks that would only cost a round trip and a refund are done here: a mask must be the image's size, and
an AI background needs a picture with transparent pixels. CPU work: run it in a thread.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from bot.media import MIME, MediaError, identify
from bot.media.fit import has_transparency
from bot.providers.base import InputFile, InvalidInput

SENDABLE = frozenset({"jpeg", "png", "webp"})  # anything else (HEIC, ...) is sent as PNG


@dataclass(frozen=True)
class Upload:
    field: str  # the API's field name: image, mask, file
    filename: str
    data: bytes
    content_type: str
    width: int
    height: int

    def part(self) -> tuple[str, bytes, str]:
        return self.filename, self.data, self.content_type


def _as_png(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened) or opened
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def prepare(field: str, item: InputFile) -> Upload:
    data = item.read()
    try:
        info = identify(data)
    except MediaError as exc:
        raise InvalidInput(f"the {item.name} is not a picture Imagine can use ({exc})") from exc
    if info.kind != "image":
        raise InvalidInput(f"the {item.name} must be a picture, not a {info.format.upper()} video")
    stem = item.filename.rsplit(".", 1)[0] or item.name
    if info.format not in SENDABLE:
        data = _as_png(data)
        return Upload(field, f"{stem}.png", data, MIME["png"], info.width, info.height)
    return Upload(field, f"{stem}.{info.extension}", data, info.mime, info.width, info.height)


def prepare_all(files: dict[str, str], inputs: list[InputFile], operation: str) -> list[Upload]:
    """The uploads of one create; `files` maps the API's field to the job's input name."""
    by_name = {item.name: item for item in inputs}
    uploads: list[Upload] = []
    for field, name in files.items():
        item = by_name.get(name)
        if item is None:
            raise InvalidInput(f"this needs {'a mask' if name == 'mask' else 'a picture'} ({name})")
        uploads.append(prepare(field, item))
    by_field = {upload.field: upload for upload in uploads}
    image, mask = by_field.get("image"), by_field.get("mask")
    if image is not None and mask is not None and (image.width, image.height) != (mask.width, mask.height):
        raise InvalidInput(
            f"the mask is {mask.width}×{mask.height} px but the picture is {image.width}×{image.height} px; "
            "they must be the same size"
        )
    if operation == "background" and image is not None and not has_transparency(image.data):
        raise InvalidInput("an AI background needs a picture with a transparent background (remove it first)")
    return uploads
