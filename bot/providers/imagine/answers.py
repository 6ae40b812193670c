"""Imagine's answers as pydantic models: error bodies, video creates and video statuses (both shapes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ErrorBody(_Answer):
    """`{"status": "error", "code": 1100, "error": "...", "message": "..."}`."""

    status: str | None = None
    code: int | None = None
    error: str | None = None
    message: str | None = None


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
