"""Imagine's answers as pydantic models: error bodies, video creates and video statuses (both shapes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ErrorBody(_Answer):
    """`{"status": "error", "code": 1100, "error": "...", "message": "..."}`."""

    status: str | None = None
    code: int | None = None
    error: str | None = None
    message: str | None = None


VIDEO_KEYS = ("video", "id", "uuid", "url")
LINK_KEYS = ("url", "image_url", "image", "output", "generation", "result", "data")


def error_body(body: Any) -> ErrorBody | None:
    """The documented error shape, if `body` is one (a bare video object whose status is "error" is not)."""
    if not isinstance(body, dict):
        return None
    try:
        parsed = ErrorBody.model_validate(body)
    except ValidationError:
        return None
    if parsed.code is None and (parsed.status != "error" or any(key in body for key in VIDEO_KEYS)):
        return None
    return parsed


def image_link(body: Any, depth: int = 0) -> str | None:
    """The first http(s) link in a JSON answer: the seed says results are "typically returned as a URL",
    while every known client gets the bytes. Both are taken."""
    if depth > 3:
        return None
    if isinstance(body, str):
        return body if body.startswith(("https://", "http://")) else None
    if isinstance(body, list):
        return next((link for item in body[:5] if (link := image_link(item, depth + 1))), None)
    if isinstance(body, dict):
        return next((link for key in LINK_KEYS if (link := image_link(body.get(key), depth + 1))), None)
    return None


class VideoCreated(_Answer):
    id: str = Field(min_length=1)
    status: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


class VideoUrls(_Answer):
    generation: list[str] | str | None = None
    thumbnail: list[str] | str | None = None

    def generations(self) -> list[str]:
        values = [self.generation] if isinstance(self.generation, str) else list(self.generation or [])
        return [url for url in values if isinstance(url, str) and url]


class VideoInfo(_Answer):
    id: str | None = None
    uuid: str | None = None
    status: str = ""
    url: VideoUrls | None = None
    error: str | None = None
    message: str | None = None

    @property
    def ident(self) -> str | None:
        return self.id or self.uuid


class VideoStatus(_Answer):
    """GET video/{id}/status: `{"status": "success", "video": {...}}`; a bare video object is taken too."""

    status: str | None = None
    video: VideoInfo | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, data: Any) -> Any:
        if isinstance(data, dict) and "video" not in data and ("url" in data or "id" in data or "uuid" in data):
            return {"status": "success", "video": data}
        return data


VIDEO_WAITING = frozenset({"queued", "pending"})
VIDEO_RUNNING = frozenset({"generating", "running", "processing", "in_progress"})
VIDEO_FAILED = frozenset({"error", "failed", "cancelled", "canceled", "rejected"})
VIDEO_DONE = frozenset({"finished", "success"})
