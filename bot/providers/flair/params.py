"""The job parameters of the two Flair features, as the commands store them (validated again at submit)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bot.providers.flair.models import (
    GUIDANCE_MAX,
    GUIDANCE_MIN,
    IMAGES_MAX,
    IMAGES_MIN,
    SIDE_MAX,
    SIDE_MIN,
    STEPS_MAX,
    STEPS_MIN,
    STRENGTH_MAX,
    STRENGTH_MIN,
    CreatePrediction,
    ImageSize,
    OutputFormat,
    ScaleConfig,
    TrainingSpeed,
)


class _Params(BaseModel):
    # Extra keys are the engine's and the commands' own (names, labels): ignored here.
    model_config = ConfigDict(extra="ignore")


class StyleTrainingParams(_Params):
    model_id: str = Field(min_length=1)  # the Flair model, created by the command beforehand
    strength: int = Field(default=7, ge=STRENGTH_MIN, le=STRENGTH_MAX)
    speed: TrainingSpeed = "high_quality"


class BlendedModel(_Params):
    model_id: str = Field(min_length=1)
    training_id: str = Field(min_length=1)
    scale: float = Field(default=1.0, ge=0.0, le=2.0)
    trigger_word: str | None = None  # when known, added to the prompt if missing (it activates the model)


class StyleImageParams(_Params):
    prompt: str = Field(min_length=1, max_length=2000)
    models: list[BlendedModel] = Field(min_length=1, max_length=8)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    width: int = Field(default=1024, ge=SIDE_MIN, le=SIDE_MAX)
    height: int = Field(default=1024, ge=SIDE_MIN, le=SIDE_MAX)
    num_images: int = Field(default=1, ge=IMAGES_MIN, le=IMAGES_MAX)
    output_format: OutputFormat = "jpeg"
    guidance_scale: float | None = Field(default=None, ge=GUIDANCE_MIN, le=GUIDANCE_MAX)
    steps: int | None = Field(default=None, ge=STEPS_MIN, le=STEPS_MAX)

    def full_prompt(self) -> str:
        """The prompt with every known trigger word in it: Flair applies a model only when its word is."""
        missing = [m.trigger_word for m in self.models if m.trigger_word and m.trigger_word not in self.prompt]
        if not missing:
            return self.prompt
        return f"{self.prompt}, in the style of {' and '.join(dict.fromkeys(missing))}"

    def request(self) -> CreatePrediction:
        return CreatePrediction.blend(
            [ScaleConfig(scale=m.scale, model_id=m.model_id, training_id=m.training_id) for m in self.models],
            prompt=self.full_prompt(),
            seed=self.seed,
            image_size=ImageSize(width=self.width, height=self.height),
            num_images=self.num_images,
            output_format=self.output_format,
            guidance_scale=self.guidance_scale,
            num_inference_steps=self.steps,
        )
