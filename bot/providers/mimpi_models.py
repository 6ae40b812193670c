"""mimpi.ai's requests and answers (seed 000, docs/providers.md §1), validated at the boundary.

Answers are parsed leniently (unknown fields ignored, optional ones defaulted): the seed is the only
description we have, so a new field must not break the bot; a missing required one is a malformed answer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SignedUrl(_Answer):
    id: str = Field(min_length=1)
    url: str = Field(min_length=1)


class SignedUrlAnswer(_Answer):
    data: SignedUrl


class PromptSummary(_Answer):
    id: str
    generated_images: list[str] = Field(default_factory=list, alias="generatedImages")
    status: str = "PENDING"


class Model(_Answer):
    id: str = Field(min_length=1)
    callback_url: str | None = Field(default=None, alias="callbackUrl")
    image_urls: list[str] = Field(default_factory=list, alias="imageUrls")
    subject: str = ""
    created_at: str | None = Field(default=None, alias="createdAt")
    # Kept as a plain string: an unknown status is logged and treated as "still working", not a crash.
    status: str
    progress: float | None = None
    failed_message: str | None = Field(default=None, alias="failedMessage")
    is_test: bool = Field(default=False, alias="isTest")
    prompts: list[PromptSummary] = Field(default_factory=list)


class ModelAnswer(_Answer):
    data: Model


class Prompt(_Answer):
    id: str = Field(min_length=1)
    callback_url: str | None = Field(default=None, alias="callbackUrl")
    generated_images: list[str] = Field(default_factory=list, alias="generatedImages")
    image_count: int | None = Field(default=None, alias="imageCount")
    image_size: int | None = Field(default=None, alias="imageSize")
    created_at: str | None = Field(default=None, alias="createdAt")
    status: str
    progress: float | None = None
    failed_message: str | None = Field(default=None, alias="failedMessage")
    is_test: bool = Field(default=False, alias="isTest")


class PromptAnswer(_Answer):
    data: Prompt


class CreateModel(_Request):
    subject: str = Field(min_length=1, max_length=100)
    image_ids: list[str] = Field(min_length=1, alias="imageIds")
    callback_url: str | None = Field(default=None, alias="callbackUrl")


class CreatePrompt(_Request):
    prompt: str = Field(min_length=1, max_length=1000)
    model_id: str = Field(min_length=1, alias="modelId")
    image_count: int = Field(ge=1, le=8, alias="imageCount")
    callback_url: str | None = Field(default=None, alias="callbackUrl")


class Callback(_Answer):
    """What mimpi POSTs to a callback URL (not documented; seen as {"id", "type", "status"})."""

    id: str | None = None
    type: str | None = None
    status: str | None = None
