"""Mimi Panda requests and answers as pydantic models: every documented option, enum and range.

Field names are Python-style; `alias` is the API's name. Cogs build a model from the member's options (so
a bad value is refused before anything is charged), store `model.params()` in the job, and the adapter
rebuilds the model from those params at submit time and sends `model.wire()`.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PROMPT_MIN, PROMPT_MAX = 3, 600
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
UPSCALE_MAX_SIDE = 4000  # px, either side
UPSCALE_4X_MAX_SIDE = 1000  # larger images are upscaled 2x at most
PBN_COLORS_MIN, PBN_COLORS_MAX = 7, 100
PALETTE_COLORS_MIN = 7
CANVAS_MIN_IN, CANVAS_MAX_IN = 4, 45
FILTER_STRENGTHS = tuple(round(step / 10, 1) for step in range(2, 11))  # 0.2 .. 1.0

ColoringVersion = Literal["v1", "v2"]
COLORING_TYPES: dict[str, tuple[str, ...]] = {
    "v2": ("v2_general", "v2_detailed", "v2_anime", "v2_simplified", "v2_comic"),
    "v1": ("for_adults", "for_kids", "simple", "image", "photo", "sketching"),
}
ColoringType = Literal[
    "v2_general",
    "v2_detailed",
    "v2_anime",
    "v2_simplified",
    "v2_comic",
    "for_adults",
    "for_kids",
    "simple",
    "image",
    "photo",
    "sketching",
]
AiColoringStyle = Literal["kids_coloring_page", "teenagers_coloring_page", "adults_coloring_page"]
AiColoringRatio = Literal["1x1", "2x3", "3x2", "4x3", "3x4", "9x16", "16x9"]
AiImageRatio = Literal["1x1", "2x3", "3x2", "4x5", "5x4"]
SegmentsComplexity = Literal["none", "level1", "level2", "level3", "simplest"]
GradientStep = Literal["high", "normal"]
ColorPrecision = Literal["high", "normal", "low", "lowest"]
DetailsFilter = Literal["ultra", "high", "normal", "low", "lowest"]
AiFilterType = Literal[
    "none",
    "painting-general",
    "painting-oil-painting",
    "painting-palette-knife",
    "painting-acrylic",
    "painting-watercolor",
    "painting-gouache",
    "painting-digital",
    "painting-graffiti",
    "painting-grimdark",
    "painting-impasto",
    "painting-impressionism-painting-style",
    "painting-magic-realism",
    "painting-pointillism",
    "painting-renaissance",
    "painting-retrofuturism",
]
AI_FILTER_TYPES: tuple[str, ...] = get_args(AiFilterType)
PBN_DOWNLOADS = ("svg", "pdf", "png", "jpeg")
PBN_COLOR_FILES = ("csv", "gpl", "kpl", "swatches")

_CANVAS = re.compile(r"(\d{1,2}(?:\.\d+)?)\s*[xX×]\s*(\d{1,2}(?:\.\d+)?)")
_FILTER_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def clean_prompt(value: str) -> str:
    """The prompt as sent: trimmed, and within the API's 3-600 characters."""
    text = value.strip()
    if len(text) < PROMPT_MIN:
        raise ValueError(f"the prompt needs at least {PROMPT_MIN} characters (not counting spaces at the ends)")
    if len(text) > PROMPT_MAX:
        raise ValueError(f"the prompt can be at most {PROMPT_MAX} characters; yours has {len(text)}")
    return text


def _form_value(value: Any) -> str:
    # Multipart sends text: Laravel's boolean rule accepts "1"/"0" (not "true"/"false").
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def params(self) -> dict[str, Any]:
        """What the job keeps (shown in its details): the member's choices, defaults left out."""
        return self.model_dump(exclude_none=True, exclude_defaults=True)

    def wire(self) -> dict[str, Any]:
        """Every field the API gets, under its documented name (defaults sent explicitly)."""
        return self.model_dump(by_alias=True, exclude_none=True)

    def form(self) -> dict[str, str]:
        return {key: _form_value(value) for key, value in self.wire().items()}


class _Prompted(_Request):
    prompt: str

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, value: object) -> object:
        return clean_prompt(value) if isinstance(value, str) else value


class ColoringRequest(_Request):
    """POST coloring (multipart, with `image`). Without a version, a type implies its own version."""

    version: ColoringVersion = "v2"
    type: ColoringType

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if v is not None}
        type_ = data.get("type")
        if "version" not in data:
            data["version"] = version_of_type(type_) if isinstance(type_, str) else "v2"
        if type_ is None and data["version"] in COLORING_TYPES:
            data["type"] = COLORING_TYPES[data["version"]][0]  # the documented default of that version
        return data

    @model_validator(mode="after")
    def _type_matches_version(self) -> ColoringRequest:
        allowed = COLORING_TYPES[self.version]
        if self.type not in allowed:
            raise ValueError(
                f"type {self.type} is a {other_version(self.version)} type; {self.version} types are "
                + ", ".join(allowed)
            )
        return self

    def params(self) -> dict[str, Any]:
        return self.model_dump()  # both, always: the type alone does not say which version ran


def other_version(version: str) -> str:
    return "v1" if version == "v2" else "v2"


def version_of_type(type_: str) -> str:
    return next((version for version, types in COLORING_TYPES.items() if type_ in types), "v2")


class AiColoringRequest(_Prompted):
    """POST ai/coloring (JSON)."""

    style: AiColoringStyle
    aspect_ratio: AiColoringRatio | None = Field(default=None, alias="aspectRatio")
    version: ColoringVersion


class AiImageRequest(_Prompted):
    """POST ai/image (JSON)."""

    aspect_ratio: AiImageRatio = Field(alias="aspectRatio")


class PbnRequest(_Request):
    """POST pbn (multipart): from an uploaded `image` or a `prompt`, exactly one of them."""

    from_image: bool = Field(default=False, exclude=True)  # the image travels as a file, not a field
    prompt: str | None = None
    number_of_colors: int = Field(default=30, ge=PBN_COLORS_MIN, le=PBN_COLORS_MAX, alias="numberOfColors")
    segments_complexity: SegmentsComplexity = Field(default="none", alias="segmentsComplexity")
    gradient_step: GradientStep = Field(default="high", alias="gradientStep")
    color_precision: ColorPrecision = Field(default="high", alias="colorPrecision")
    canvas_size: str | None = Field(default=None, alias="canvasSize")
    crop: bool = False
    details_filter: DetailsFilter | None = Field(default=None, alias="detailsFilter")
    palette: int | None = Field(default=None, ge=1)
    palette_colors: str | None = Field(default=None, alias="paletteColors")
    mix_palette: bool = Field(default=False, alias="mixPalette")
    ai_filter_type: AiFilterType = Field(default="none", alias="aiFilterType")
    min_area: int = Field(default=0, ge=0, le=100, alias="minArea")

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, value: object) -> object:
        return clean_prompt(value) if isinstance(value, str) else value

    @field_validator("canvas_size", mode="before")
    @classmethod
    def _canvas(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text or text.lower() == "none":
            return None
        match = _CANVAS.fullmatch(text)
        if match is None:
            raise ValueError('the canvas size is width x height in inches, e.g. "12x16"')
        width, height = (float(side) for side in match.groups())
        if not all(CANVAS_MIN_IN <= side <= CANVAS_MAX_IN for side in (width, height)):
            raise ValueError(f"each side of the canvas must be {CANVAS_MIN_IN} to {CANVAS_MAX_IN} inches")
        return f"{match.group(1)}x{match.group(2)}"

    @field_validator("palette_colors", mode="before")
    @classmethod
    def _palette_colors(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        codes = [code.strip() for code in value.split(",") if code.strip()]
        if not codes:
            return None
        if len(codes) < PALETTE_COLORS_MIN:
            raise ValueError(
                f"list at least {PALETTE_COLORS_MIN} colour codes from your palette, separated by commas "
                f"(you gave {len(codes)})"
            )
        if any(len(code) > 32 or "," in code for code in codes):
            raise ValueError("each colour code must be a short code from your palette")
        return ",".join(codes)

    @model_validator(mode="after")
    def _consistent(self) -> PbnRequest:
        if self.from_image == (self.prompt is not None):
            raise ValueError("give exactly one of an image and a prompt")
        if self.palette_colors is not None and self.palette is None:
            raise ValueError("palette colours need the palette they come from: set the palette id too")
        return self


class UpscaleRequest(_Request):
    """POST image/upscale (multipart, with `image`)."""

    upscale: Literal[2, 4]


class FilterRequest(_Request):
    """POST image/filter (multipart, with `image`). The list of filter types is available from support only,
    so any plausible name is accepted and the API has the last word."""

    filter_type: str = Field(alias="filterType")
    strength: float

    @field_validator("filter_type", mode="before")
    @classmethod
    def _filter_type(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not _FILTER_TYPE.fullmatch(text):
            raise ValueError("a filter type is one word of letters, digits, dashes or underscores (at most 100)")
        return text

    @field_validator("strength", mode="before")
    @classmethod
    def _strength(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return value
        try:
            number = float(value)
        except ValueError:
            return value
        for option in FILTER_STRENGTHS:
            if math.isfinite(number) and abs(number - option) < 1e-6:
                return option
        raise ValueError("the strength is one of 0.2, 0.3, ... 1.0 (steps of 0.1)")


def effective_upscale(requested: int, width: int, height: int) -> int:
    """The factor the API will apply: images over 1000 px (either side) get 2x at most."""
    return 2 if max(width, height) > UPSCALE_4X_MAX_SIDE else requested


REQUEST_MODELS: dict[str, type[_Request]] = {
    "coloring": ColoringRequest,
    "ai_coloring": AiColoringRequest,
    "ai_image": AiImageRequest,
    "pbn": PbnRequest,
    "upscale": UpscaleRequest,
    "filter": FilterRequest,
}
ENDPOINTS = {
    "coloring": "coloring",
    "ai_coloring": "ai/coloring",
    "ai_image": "ai/image",
    "pbn": "pbn",
    "upscale": "image/upscale",
    "filter": "image/filter",
}
IMAGE_FEATURES = frozenset({"coloring", "upscale", "filter"})  # an image is required
JSON_FEATURES = frozenset({"ai_coloring", "ai_image"})  # prompt-only endpoints take JSON


# Answers


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateResponse(_Answer):
    key: str = Field(min_length=1)
    status: str = "in_queue"
    created: str | None = None


class PbnColor(_Answer):
    number: int
    hex: str
    name: str = ""

    @field_validator("hex", mode="before")
    @classmethod
    def _hex(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return text if text.startswith("#") else f"#{text}"
        return value

    def rgb(self) -> tuple[int, int, int] | None:
        value = self.hex.lstrip("#")
        if re.fullmatch(r"[0-9A-Fa-f]{6}", value) is None:
            return None
        return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


class PbnImages(_Answer):
    pbn: str | None = None
    picture: str | None = None
    source: str | None = None


Status = Literal["in_queue", "processing", "ready", "failed"]


class ItemResponse(_Answer):
    """GET item/{key}. `images` is a list of URLs, or for paint-by-numbers a dict of named URLs."""

    key: str | None = None
    status: str
    created: str | None = None
    updated: str | None = None
    images: list[str] | PbnImages | None = None
    colors: list[PbnColor] | None = None
    parameters: dict[str, Any] | None = None
    error: str | None = None
    message: str | None = None

    def image_urls(self) -> list[str]:
        if isinstance(self.images, list):
            return [url for url in self.images if isinstance(url, str) and url]
        return []
