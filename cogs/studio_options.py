"""The member's options for each kind of thing, turned into each studio's job parameters.

One set of options (pydantic, checked once) and, per studio, either the parameters that studio's job keeps,
or a BadInput that says exactly what does not fit and what to do instead. Alternatives for fall-over are
built the same way; a studio the options do not fit is left out of them (never sent something else).
"""

from __future__ import annotations

import io
import random
from typing import Any

from PIL import Image, ImageDraw, ImageOps
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import BadInput
from bot.providers.imagine.choices import IMAGE_ASPECTS, IMAGE_STYLES
from bot.providers.imagine.models import EditParams, ImageParams, UpscaleParams, VideoParams
from bot.providers.mimipanda_models import (
    MAX_UPLOAD_BYTES,
    UPSCALE_MAX_SIDE,
    AiImageRequest,
    UpscaleRequest,
    effective_upscale,
)
from bot.providers.routing import studio_name
from cogs.mimipanda import bad_request, upscale_note

SEED_MAX = 2_147_483_647
MIMI_ASPECTS = {
    "1:1": "1:1 square",
    "2:3": "2:3 portrait",
    "3:2": "3:2 landscape",
    "4:5": "4:5 portrait",
    "5:4": "5:4 landscape",
}
# Per studio, for text-to-image: aspect ratios (as members type them) and styles; empty = no such option.
IMAGE_ASPECT_CHOICES: dict[str, dict[str, str]] = {"imagine": IMAGE_ASPECTS, "mimipanda": MIMI_ASPECTS}
IMAGE_STYLE_CHOICES: dict[str, dict[str, str]] = {"imagine": IMAGE_STYLES, "mimipanda": {}}
UPLOAD_LIMITS: dict[str, tuple[int, int | None]] = {  # studio -> (bytes, longest side) for its inputs
    "imagine": (20 * 1024 * 1024, None),
    "mimipanda": (MAX_UPLOAD_BYTES, None),
}
UPSCALE_LIMITS: dict[str, tuple[int, int | None]] = {
    "imagine": (20 * 1024 * 1024, None),
    "mimipanda": (MAX_UPLOAD_BYTES, UPSCALE_MAX_SIDE),
    "local": (20 * 1024 * 1024, None),
}


def new_seed() -> int:
    return random.randint(1, SEED_MAX)


def _validated(model: type[BaseModel], **values: Any) -> dict[str, Any]:
    try:
        built = model(**values)
    except ValidationError as exc:
        raise bad_request(exc) from exc
    dumped: dict[str, Any] = built.params() if hasattr(built, "params") else built.model_dump(exclude_none=True)
    return dumped


def _choice_list(choices: dict[str, str]) -> str:
    return ", ".join(choices)


class ImageOptions(BaseModel):
    """/imagine's options, as the member gave them (aspect ratios written 16:9)."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    style: str | None = None
    aspect_ratio: str | None = None
    seed: int | None = Field(default=None, ge=1, le=SEED_MAX)
    transparent: bool = False


def image_params(studio: str, options: ImageOptions) -> dict[str, Any]:
    """The job parameters of text-to-image at `studio`; BadInput naming the option that does not fit."""
    name = studio_name(studio)
    aspects = IMAGE_ASPECT_CHOICES.get(studio, {})
    if options.aspect_ratio is not None and options.aspect_ratio not in aspects:
        raise BadInput(
            f"{name} has no aspect ratio `{options.aspect_ratio}`; its shapes are {_choice_list(aspects)}. "
            "Pick one of those (the list follows the studio you choose), or leave aspect_ratio empty."
        )
    styles = IMAGE_STYLE_CHOICES.get(studio, {})
    if options.style is not None and options.style not in styles:
        if not styles:
            raise BadInput(f"{name} has no style option; pick Imagine or leave style empty.")
        raise BadInput(f"{name} has no style `{options.style}`; its styles are {_choice_list(styles)}.")
    if studio == "imagine":
        if options.transparent and options.style is not None:
            raise BadInput("A transparent picture has no style at Imagine: leave style empty, or transparent off.")
        return _validated(
            ImageParams,
            operation="transparent" if options.transparent else "generate",
            prompt=options.prompt,
            style=options.style,
            aspect_ratio=options.aspect_ratio,
            seed=options.seed,
        )
    if studio == "mimipanda":
        if options.transparent:
            raise BadInput("Mimi Panda cannot make transparent pictures; pick Imagine or leave transparent off.")
        if options.seed is not None:
            raise BadInput("Mimi Panda has no seed option; pick Imagine or leave seed empty.")
        ratio = (options.aspect_ratio or "1:1").replace(":", "x")
        return _validated(AiImageRequest, prompt=options.prompt, aspect_ratio=ratio)
    raise BadInput(f"{name} cannot make pictures from a prompt.")


def image_options_of(feature: str, params: dict[str, Any]) -> ImageOptions:
    """The options a text-to-image job was made with (for Again and Edit prompt)."""
    if feature == "ai_image":
        ratio = str(params.get("aspect_ratio") or "1x1").replace("x", ":")
        return ImageOptions(prompt=str(params["prompt"]), aspect_ratio=ratio)
    return ImageOptions(
        prompt=str(params["prompt"]),
        style=params.get("style"),
        aspect_ratio=params.get("aspect_ratio"),
        seed=params.get("seed"),
        transparent=params.get("operation") == "transparent",
    )


def upscale_params(studio: str, factor: int | None, width: int, height: int) -> tuple[dict[str, Any], str | None]:
    """(job parameters, a note for the member) of an upscale at `studio`."""
    if studio == "mimipanda":
        requested = factor or 2
        _validated(UpscaleRequest, upscale=requested)
        effective = effective_upscale(requested, width, height)
        return _validated(UpscaleRequest, upscale=effective), upscale_note(requested, effective, width, height)
    if studio == "imagine":
        if factor is not None:
            raise BadInput(
                "Imagine enhances at its own size and has no factor option; leave factor empty, "
                "or pick Mimi Panda for 2x/4x."
            )
        return _validated(UpscaleParams), None
    if studio == "local":
        return {"factor": factor or 2}, None
    raise BadInput(f"{studio_name(studio)} cannot upscale.")


def fits_upscale(studio: str, size: int, width: int, height: int) -> bool:
    max_bytes, max_side = UPSCALE_LIMITS.get(studio, (0, None))
    return size <= max_bytes and (max_side is None or max(width, height) <= max_side)


# --- edits: masks ----------------------------------------------------------------------------------------


class Rectangle(BaseModel):
    """A mask as a rectangle in percent of the picture (0 at the left / top)."""

    left: int = Field(ge=0, le=99)
    top: int = Field(ge=0, le=99)
    width: int = Field(ge=1, le=100)
    height: int = Field(ge=1, le=100)


def rectangle(left: int | None, top: int | None, width: int | None, height: int | None) -> Rectangle | None:
    given = {"left": left, "top": top, "width": width, "height": height}
    if all(value is None for value in given.values()):
        return None
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise BadInput(
            "A rectangle mask needs all four of left, top, width and height (percent of the picture); "
            f"missing: {', '.join(missing)}."
        )
    box = Rectangle.model_validate(given)
    if box.left + box.width > 100 or box.top + box.height > 100:
        raise BadInput(
            f"That rectangle goes past the picture's edge: left + width is {box.left + box.width}% and "
            f"top + height is {box.top + box.height}%; each must be at most 100%."
        )
    return box


def rectangle_mask(box: Rectangle, width: int, height: int) -> bytes:
    """A black mask of the picture's size with the rectangle white (white = change)."""
    mask = Image.new("L", (width, height), 0)
    x0, y0 = round(width * box.left / 100), round(height * box.top / 100)
    x1 = max(x0 + 1, round(width * (box.left + box.width) / 100))
    y1 = max(y0 + 1, round(height * (box.top + box.height) / 100))
    ImageDraw.Draw(mask).rectangle((x0, y0, x1 - 1, y1 - 1), fill=255)
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue()


def fitted_mask(data: bytes, width: int, height: int) -> tuple[bytes, bool, bool]:
    """The member's mask as a black-and-white PNG of the picture's size: (png, resized, anything white).
    Light pixels (and, for a mask with transparency, opaque ones on a transparent sheet) mean change."""
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened) or opened
        lowest = image.getchannel("A").getextrema()[0] if "A" in image.getbands() else 255
        # Painted on a transparent layer: what is painted is the mask, whatever its colour.
        layered = isinstance(lowest, int | float) and lowest < 255
        grey = image.getchannel("A") if layered else image.convert("L")
        resized = grey.size != (width, height)
        if resized:
            grey = grey.resize((width, height), Image.Resampling.NEAREST)
        mask = grey.point(lambda v: 255 if v >= 128 else 0)
    anything = mask.getextrema()[1] == 255
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue(), resized, anything


def edit_params(
    operation: str, prompt: str | None, style: str | None = None, seed: int | None = None
) -> dict[str, Any]:
    return _validated(EditParams, operation=operation, prompt=prompt, style=style, seed=seed)


def video_params(operation: str, prompt: str, style: str | None, aspect_ratio: str | None) -> dict[str, Any]:
    return _validated(VideoParams, operation=operation, prompt=prompt, style=style, aspect_ratio=aspect_ratio)
