"""Flair AI Custom Model API requests and answers (seed 001, docs/providers.md §2), validated at the boundary.

Requests are strict (unknown fields refused, every documented range enforced before anything is sent).
Answers are lenient (unknown fields ignored, optional ones defaulted): the seed is our only description
of the API, so a new field must not break the bot, while a missing required one is a malformed answer.
Key names are exactly the seed's, camelCase and snake_case mixed as documented (`scaleConfigs` but
`image_size`, `num_images`, ...).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

STRENGTH_MIN, STRENGTH_MAX = 0, 10
SIDE_MIN, SIDE_MAX = 512, 1536
IMAGES_MIN, IMAGES_MAX = 1, 4
GUIDANCE_MIN, GUIDANCE_MAX = 0.0, 10.0
STEPS_MIN, STEPS_MAX = 1, 50
UPLOAD_MAX_BYTES = 10 * 1024 * 1024  # "Maximum file size: 10MB" [seed]

TrainingSpeed = Literal["fast", "high_quality"]
OutputFormat = Literal["jpeg", "png"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def body(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


# ---------------------------------------------------------------- status words


class Phase(StrEnum):
    PENDING = "pending"  # accepted, not running yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    FAILED = "failed"
    UNKNOWN = "unknown"  # a word the seed does not list: a terminal failure, logged with the raw value


_PHASES: dict[str, Phase] = {
    "queued": Phase.PENDING,
    "pending": Phase.PENDING,
    "starting": Phase.PENDING,
    "processing": Phase.RUNNING,
    "succeeded": Phase.SUCCEEDED,
    "canceled": Phase.CANCELLED,
    "cancelled": Phase.CANCELLED,
    "failed": Phase.FAILED,
    "error": Phase.FAILED,
}


def phase_of(status: str | None) -> Phase:
    return _PHASES.get((status or "").strip().lower(), Phase.UNKNOWN)


# ---------------------------------------------------------------- models


class CreateModel(_Request):
    display_name: str = Field(min_length=1, max_length=200, alias="displayName")
    custom_model_type: str | None = Field(default=None, alias="customModelType")  # reserved [seed]


class CreatedModel(_Answer):
    id: str = Field(min_length=1)
    display_name: str = Field(default="", alias="displayName")


class ModelInfo(_Answer):
    """GET /models/{id} answers only `displayName` in the seed; an id is kept when sent."""

    id: str | None = None
    display_name: str = Field(alias="displayName")
    custom_model_type: str | None = Field(default=None, alias="customModelType")


class RenameModel(_Request):
    updated_display_name: str = Field(min_length=1, max_length=200, alias="updatedDisplayName")


class ModelSummary(_Answer):
    id: str = Field(min_length=1)
    display_name: str = Field(default="", alias="displayName")
    custom_model_type: str | None = Field(default=None, alias="customModelType")


class ModelPage(_Answer):
    models: list[ModelSummary] = Field(default_factory=list)
    next_page_cursor: str | None = Field(default=None, alias="nextPageCursor")
    has_more: bool = Field(default=False, alias="hasMore")


# ---------------------------------------------------------------- training data


class UploadedData(_Answer):
    data_id: str = Field(min_length=1, validation_alias=AliasChoices("dataId", "id"))


class DataItem(_Answer):
    """One entry of the training-data list (its shape is not in the seed: either id name is accepted)."""

    data_id: str = Field(min_length=1, validation_alias=AliasChoices("dataId", "id"))
    data_url: str | None = Field(default=None, alias="dataUrl")


class DataInfo(_Answer):
    data_url: str = Field(min_length=1, alias="dataUrl")


# ---------------------------------------------------------------- trainings


class StartTraining(_Request):
    training_strength: int = Field(ge=STRENGTH_MIN, le=STRENGTH_MAX, alias="trainingStrength")
    training_speed: TrainingSpeed = Field(alias="trainingSpeed")


class StartedTraining(_Answer):
    training_id: str = Field(min_length=1, validation_alias=AliasChoices("trainingId", "id"))


class TrainingSummary(_Answer):
    id: str = Field(min_length=1, validation_alias=AliasChoices("id", "trainingId"))
    status: str = ""

    @property
    def phase(self) -> Phase:
        return phase_of(self.status)


class TrainingStatus(_Answer):
    # Kept as a plain string: an unknown word is logged with its raw value, not a validation error.
    status: str
    trigger_word: str | None = Field(default=None, alias="triggerWord")

    @property
    def phase(self) -> Phase:
        return phase_of(self.status)


# ---------------------------------------------------------------- predictions


class ScaleConfig(_Request):
    scale: float = Field(ge=0.0, le=2.0)  # the seed gives no range; 0.8 in its example
    model_id: str = Field(min_length=1, alias="modelId")
    training_id: str = Field(min_length=1, alias="trainingId")


class ImageSize(_Request):
    width: int = Field(ge=SIDE_MIN, le=SIDE_MAX)
    height: int = Field(ge=SIDE_MIN, le=SIDE_MAX)


ConfigKey = Annotated[str, Field(pattern=r"^[1-9][0-9]*$")]


class CreatePrediction(_Request):
    scale_configs: dict[ConfigKey, ScaleConfig] = Field(min_length=1, alias="scaleConfigs")
    prompt: str = Field(min_length=1, max_length=2000)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    image_size: ImageSize | None = None
    num_images: int | None = Field(default=None, ge=IMAGES_MIN, le=IMAGES_MAX)
    output_format: OutputFormat | None = None
    guidance_scale: float | None = Field(default=None, ge=GUIDANCE_MIN, le=GUIDANCE_MAX)
    num_inference_steps: int | None = Field(default=None, ge=STEPS_MIN, le=STEPS_MAX)

    @field_validator("scale_configs")
    @classmethod
    def _numbered_from_one(cls, value: dict[str, ScaleConfig]) -> dict[str, ScaleConfig]:
        # The seed numbers the blended models "1", "2", ...: keep that exact shape.
        if sorted(value, key=int) != [str(n) for n in range(1, len(value) + 1)]:
            raise ValueError('scaleConfigs keys must be "1", "2", ... in sequence')
        return value

    @classmethod
    def blend(cls, models: list[ScaleConfig], **fields: Any) -> CreatePrediction:
        """The request for `models` in order (keys "1", "2", ...)."""
        return cls.model_validate({"scaleConfigs": {str(n + 1): m for n, m in enumerate(models)}, **fields})


class CreatedPrediction(_Answer):
    prediction_id: str = Field(min_length=1, validation_alias=AliasChoices("predictionId", "id"))


class Prediction(_Answer):
    status: str
    output_images: list[str] = Field(default_factory=list, alias="outputImages")

    @property
    def phase(self) -> Phase:
        return phase_of(self.status)

    @model_validator(mode="before")
    @classmethod
    def _images_may_be_objects(cls, data: Any) -> Any:
        # Tolerate [{"url": ...}] as well as the seed's list of strings.
        if isinstance(data, dict) and isinstance(data.get("outputImages"), list):
            data = dict(data)
            data["outputImages"] = [
                i.get("url") if isinstance(i, dict) else i for i in data["outputImages"] if i is not None
            ]
        return data
