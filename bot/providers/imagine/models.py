"""Imagine (Vyro) v2 requests as pydantic models: every documented field, value and default.

Two layers:
- the job's parameters per feature (`ImageParams`, `EditParams`, `UpscaleParams`, `VideoParams`): what a cog
  stores in the job after validating the member's options, so a bad value is refused before any spend;
- the wire requests per endpoint (`GenerationRequest`, ...): exactly the multipart text fields the API gets.
`plan()` turns the first into the second: endpoint, text fields, and which input goes in which file field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bot.providers.imagine.choices import (
    DEFAULT_VIDEO_STYLE,
    BackgroundStyle,
    ImageAspect,
    ImageStyle,
    VideoAspect,
)

FEATURES = ("imagine_image", "imagine_edit", "imagine_upscale", "imagine_video")
ImageOperation = Literal["generate", "transparent"]
EditOperation = Literal["fill", "erase", "remove_background", "background"]
VideoOperation = Literal["text", "image"]
PROMPT_MAX = 2000  # not documented; generous, so only runaway input is refused here

_STYLE_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def clean_prompt(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("the prompt is empty")
    if len(text) > PROMPT_MAX:
        raise ValueError(f"the prompt can be at most {PROMPT_MAX} characters; yours has {len(text)}")
    return text


def _prompt_or_none(value: object) -> object:
    return clean_prompt(value) if isinstance(value, str) else value


Prompt = Annotated[str, BeforeValidator(_prompt_or_none)]


# --- wire requests: one per endpoint ---------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def form(self) -> dict[str, str]:
        """The multipart text fields: every value as text, defaults sent explicitly, absent ones left out."""
        return {key: str(value) for key, value in self.model_dump(exclude_none=True).items()}


class _PromptWire(_Wire):
    prompt: Prompt


class GenerationRequest(_PromptWire):
    """POST image/generations."""

    style: ImageStyle = "imagine-turbo"
    aspect_ratio: ImageAspect = "1:1"
    seed: int | None = Field(default=None, ge=1)


class TransparentRequest(_PromptWire):
    """POST image/generations/transparent: a PNG with a transparent background."""

    aspect_ratio: ImageAspect = "1:1"
    seed: int | None = Field(default=None, ge=1)


class AiBackgroundRequest(_PromptWire):
    """POST image/generations/ai-background, with `image` (a picture with a transparent background)."""

    style: BackgroundStyle = "product-shoot"
    seed: int | None = Field(default=None, ge=1)


class GenerativeFillRequest(_PromptWire):
    """POST image/edits/generative-fill, with `image` and `mask` (same size; white = fill)."""


class NoFields(_Wire):
    """Endpoints that take only files: background/remover, enhance, edits/remove."""


class VideoFromTextRequest(_PromptWire):
    """POST video/text-to-video."""

    style: str = DEFAULT_VIDEO_STYLE
    aspect_ratio: VideoAspect = "1:1"

    @field_validator("style")
    @classmethod
    def _style(cls, value: str) -> str:
        return _video_style(value)


class VideoFromImageRequest(_PromptWire):
    """POST video/image-to-video, with the picture in the field named `file` (not `image`)."""

    style: str = DEFAULT_VIDEO_STYLE

    @field_validator("style")
    @classmethod
    def _style(cls, value: str) -> str:
        return _video_style(value)


def _video_style(value: str) -> str:
    text = value.strip().lower()
    if not _STYLE_SLUG.fullmatch(text):
        raise ValueError("a video style is a name of letters, digits, dots and dashes, e.g. kling-1.0-pro")
    return text


# --- the job's parameters, per feature -------------------------------------------------------------------


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def params(self) -> dict[str, Any]:
        """What the job keeps: the member's choices, absent ones left out."""
        return self.model_dump(exclude_none=True)


def _refuse(given: dict[str, object], operation: str) -> None:
    names = [name for name, value in given.items() if value is not None]
    if names:
        raise ValueError(f"{' and '.join(names)} cannot be chosen for {operation}")


class ImageParams(_Params):
    """imagine_image: generate | transparent."""

    operation: ImageOperation = "generate"
    prompt: Prompt
    style: ImageStyle | None = None
    aspect_ratio: ImageAspect | None = None
    seed: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _fits_operation(self) -> ImageParams:
        if self.operation == "transparent":
            _refuse({"a style": self.style}, "a transparent picture")
        return self


class EditParams(_Params):
    """imagine_edit: fill (image + mask + prompt) | erase (image + mask) | remove_background (image) |
    background (a transparent image + prompt, style, seed)."""

    operation: EditOperation
    prompt: Prompt | None = None
    style: BackgroundStyle | None = None
    seed: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _fits_operation(self) -> EditParams:
        if self.operation in ("fill", "background") and self.prompt is None:
            raise ValueError(f"{OPERATION_TITLES[self.operation].lower()} needs a prompt")
        if self.operation != "background":
            _refuse({"a style": self.style, "a seed": self.seed}, OPERATION_TITLES[self.operation].lower())
        if self.operation in ("erase", "remove_background"):
            _refuse({"a prompt": self.prompt}, OPERATION_TITLES[self.operation].lower())
        return self


class UpscaleParams(_Params):
    """imagine_upscale: no options (the API enhances and enlarges)."""


class VideoParams(_Params):
    """imagine_video: text | image (the picture is the job's input "image")."""

    operation: VideoOperation = "text"
    prompt: Prompt
    style: str | None = None
    aspect_ratio: VideoAspect | None = None

    @field_validator("style")
    @classmethod
    def _style(cls, value: str | None) -> str | None:
        return None if value is None else _video_style(value)

    @model_validator(mode="after")
    def _fits_operation(self) -> VideoParams:
        if self.operation == "image":
            _refuse({"an aspect ratio": self.aspect_ratio}, "a video from a picture (the picture sets it)")
        return self


PARAM_MODELS: dict[str, type[_Params]] = {
    "imagine_image": ImageParams,
    "imagine_edit": EditParams,
    "imagine_upscale": UpscaleParams,
    "imagine_video": VideoParams,
}

OPERATION_TITLES = {
    "generate": "AI image",
    "transparent": "Transparent picture",
    "fill": "Generative fill",
    "erase": "Object removal",
    "remove_background": "Background removal",
    "background": "AI background",
    "upscale": "Enhance",
    "text": "Video from text",
    "image": "Video from a picture",
}


# --- from parameters to a call ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One create: the path, its text fields, and `files` mapping the API's file field to the job's input."""

    operation: str
    path: str
    request: _Wire
    files: dict[str, str]
    stem: str  # the result's file name without extension
    video: bool = False


def _given(**values: object) -> dict[str, object]:
    return {key: value for key, value in values.items() if value is not None}


def plan(feature: str, params: _Params) -> Call:
    """The create for a job's validated parameters (wire models validate again: defaults made explicit)."""
    if isinstance(params, ImageParams):
        fields = _given(prompt=params.prompt, aspect_ratio=params.aspect_ratio, seed=params.seed)
        if params.operation == "transparent":
            return Call(
                "transparent",
                "image/generations/transparent",
                TransparentRequest.model_validate(fields),
                {},
                "transparent",
            )
        request = GenerationRequest.model_validate({**fields, **_given(style=params.style)})
        return Call("generate", "image/generations", request, {}, "imagine")
    if isinstance(params, EditParams):
        both = {"image": "image", "mask": "mask"}
        if params.operation == "fill":
            fill = GenerativeFillRequest.model_validate({"prompt": params.prompt})
            return Call("fill", "image/edits/generative-fill", fill, both, "filled")
        if params.operation == "erase":
            return Call("erase", "image/edits/remove", NoFields(), both, "erased")
        if params.operation == "remove_background":
            return Call(
                "remove_background", "image/background/remover", NoFields(), {"image": "image"}, "no-background"
            )
        background = AiBackgroundRequest.model_validate(
            _given(prompt=params.prompt, style=params.style, seed=params.seed)
        )
        return Call("background", "image/generations/ai-background", background, {"image": "image"}, "ai-background")
    if isinstance(params, UpscaleParams):
        return Call("upscale", "image/enhance", NoFields(), {"image": "image"}, "enhanced")
    if isinstance(params, VideoParams):
        fields = _given(prompt=params.prompt, style=params.style)
        if params.operation == "image":
            from_image = VideoFromImageRequest.model_validate(fields)
            return Call("image", "video/image-to-video", from_image, {"file": "image"}, "video", video=True)
        from_text = VideoFromTextRequest.model_validate({**fields, **_given(aspect_ratio=params.aspect_ratio)})
        return Call("text", "video/text-to-video", from_text, {}, "video", video=True)
    raise ValueError(f"Imagine has no feature {feature!r}")
