"""Flair's paid, long-running jobs for the engine: style model trainings and style images.

- `style_training`: the command has created the Flair model (free). submit() uploads each training image
  not yet uploaded (recorded in an `UploadLog`, so a retry or crash never uploads twice), then starts the
  training (paid: sent at most once). check() polls its status; the result is the trigger word.
- `style_image`: one prediction blending one or more trained models by weight.

Flair has no callbacks: both are polled. Status words beyond `succeeded` and `processing` are not
documented: unknown ones end the job as failed (never billed) and are logged with their raw value.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from bot.providers.base import (
    Adapter,
    ErrorKind,
    Failed,
    Finished,
    InputFile,
    InvalidInput,
    JobContext,
    Pending,
    ProviderError,
    RateLimited,
    ResultFile,
    Submitted,
    Transient,
)
from bot.providers.flair.client import FlairClient, TooLateToCancel
from bot.providers.flair.models import Phase, Prediction, TrainingStatus
from bot.providers.flair.params import StyleImageParams, StyleTrainingParams
from bot.providers.flair.upload_log import MemoryUploadLog, UploadLog

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

TRAINING = "style_training"
IMAGE = "style_image"
TRAINING_DEADLINE_S = 4 * 3600.0
IMAGE_DEADLINE_S = 20 * 60.0

P = TypeVar("P", bound=BaseModel)


def _params(model: type[P], job: JobContext, what: str) -> P:
    try:
        return model.model_validate(job.params)
    except ValidationError as exc:
        fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})) or "parameters"
        raise InvalidInput(f"the {what} request is invalid ({fields})") from exc


async def _settle_all(coros: Sequence[Awaitable[str]]) -> list[str]:
    """Run all; on a failure the ones not started yet stay unstarted (see `_Stop`), the ones in flight finish
    and are recorded (cancelling them could lose an upload Flair has already stored, to be sent twice later).
    Raises the first real failure."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException) and not isinstance(r, _Stop)]
    if failures:
        raise failures[0]
    return [r for r in results if isinstance(r, str)]


class _Stop(Exception):
    """An upload not started because another one failed."""


def _refused(exc: ProviderError) -> bool:
    """Flair refused the create before doing anything: it may be sent again."""
    return (
        isinstance(exc, RateLimited)
        or (isinstance(exc, Transient) and not exc.reached)
        or (exc.status is not None and 400 <= exc.status < 500)
    )


class FlairAdapter(Adapter):
    name: ClassVar[str] = "flair"

    first_check_s: ClassVar[dict[str, float]] = {TRAINING: 30.0, IMAGE: 3.0}
    upload_parallelism = 3

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        auth_header: str = "API-Key",
        paths: Mapping[str, str] | str | None = None,
        upload_log: UploadLog | None = None,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self.api = FlairClient(
            client, api_key=api_key, base_url=base_url, auth_header=auth_header, paths=paths, on_request=on_request
        )
        self.base_url = self.api.base_url
        self.upload_log: UploadLog = upload_log or MemoryUploadLog()

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient) -> FlairAdapter:
        if settings.flair_api_key is None or settings.flair_base_url is None:
            raise ValueError("Flair needs FLAIR_API_KEY and FLAIR_BASE_URL")
        return cls(
            client,
            api_key=settings.flair_api_key.get_secret_value(),
            base_url=str(settings.flair_base_url),
            auth_header=settings.flair_auth_header,
            paths=getattr(settings, "flair_paths", None),  # proposed setting FLAIR_PATHS (JSON)
        )

    def deadline(self, feature: str) -> float:
        return TRAINING_DEADLINE_S if feature == TRAINING else IMAGE_DEADLINE_S

    # ------------------------------------------------------------------ the engine's calls

    async def submit(self, job: JobContext) -> Submitted | Finished:
        if job.feature == TRAINING:
            return await self._train(job)
        if job.feature == IMAGE:
            return await self._predict(job)
        raise InvalidInput(f"Flair does not offer {job.feature!r}")

    async def check(self, job: JobContext) -> Pending | Finished | Failed:
        if job.feature == TRAINING:
            model_id, training_id = job.ref.get("model_id"), job.ref.get("training_id")
            if not model_id or not training_id:
                return Failed(ErrorKind.LOST, "the Flair training id was never recorded")
            status = await self.api.get_training(str(model_id), str(training_id))
            return self._training_outcome(str(model_id), str(training_id), status)
        prediction_id = job.ref.get("prediction_id")
        if not prediction_id:
            return Failed(ErrorKind.LOST, "the Flair prediction id was never recorded")
        prediction = await self.api.get_prediction(str(prediction_id))
        return self._prediction_outcome(job, str(prediction_id), prediction)

    def cancellable(self, feature: str) -> bool:
        return feature == TRAINING  # a training can be stopped (until it is done); a prediction cannot

    async def cancel(self, job: JobContext) -> bool:
        """Trainings only (predictions have no cancel). False when Flair says it is too late."""
        model_id, training_id = job.ref.get("model_id"), job.ref.get("training_id")
        if job.feature != TRAINING or not model_id or not training_id:
            return False
        try:
            await self.api.cancel_training(str(model_id), str(training_id))
        except TooLateToCancel as exc:
            log.info("Flair training %s: %s", training_id, exc.message)
            return False
        return True

    async def recover(self, job: JobContext) -> Submitted | None:
        """After a crash mid-submit. A training whose start was never sent is finished now (its uploads are
        recorded); one whose start may have been sent is looked up in the model's training list."""
        if job.feature != TRAINING:
            return None  # no prediction list: one in flight cannot be found
        params = _params(StyleTrainingParams, job, "style training")
        state = await self.upload_log.start_state(job.id)
        if state.training_id is not None:
            return self._submitted(params.model_id, state.training_id, next_check=0.0)
        if not state.sent:
            return await self._train(job)
        new = await self._new_trainings(job, params.model_id, state.earlier)
        if len(new) == 1:
            return self._submitted(params.model_id, new[0], next_check=0.0)
        if not new:
            # Flair lists no training it did not have before: the start never arrived (a restart takes long
            # enough for one in flight to have landed), so it may be sent.
            await self.upload_log.set_start_sent(job.id, False)
            return await self._train(job)
        return None

    async def _new_trainings(self, job: JobContext, model_id: str, earlier: tuple[str, ...]) -> list[str]:
        """The model's trainings that were not there before this job's start was sent; recorded if just one."""
        new = [t.id for t in await self.api.list_trainings(model_id) if t.id not in earlier]
        if len(new) == 1:
            await self.upload_log.record_training(job.id, new[0])
            log.info("Flair: job %s found as training %s of model %s", job.id, new[0], model_id)
        elif new:
            log.warning("Flair: job %s matches %d new trainings of model %s; not guessing", job.id, len(new), model_id)
        return new

    # ------------------------------------------------------------------ training

    def _submitted(self, model_id: str, training_id: str, *, next_check: float | None = None) -> Submitted:
        return Submitted(
            ref={"model_id": model_id, "training_id": training_id},
            next_check=self.first_check_s[TRAINING] if next_check is None else next_check,
        )

    @staticmethod
    async def _read(item: InputFile) -> bytes:
        try:
            return await asyncio.to_thread(item.read)
        except FileNotFoundError as exc:
            raise InvalidInput(f"the training image {item.filename} is no longer stored") from exc

    async def _upload_inputs(self, job: JobContext, model_id: str) -> list[str]:
        images = [item for item in job.inputs if item.name == "image"] or list(job.inputs)
        if not images:
            raise InvalidInput("the training set has no images")
        done = await self.upload_log.uploaded(job.id)
        gate = asyncio.Semaphore(self.upload_parallelism)
        failed = asyncio.Event()

        async def one(item: InputFile) -> str:
            key = item.path.name  # the engine stores inputs by content hash: the same image, the same upload
            if key in done:
                return done[key]
            try:
                async with gate:
                    if failed.is_set():
                        raise _Stop
                    data_id = await self.api.upload_data(model_id, await self._read(item))
                await self.upload_log.record_upload(job.id, key, data_id)
            except BaseException:
                failed.set()
                raise
            done[key] = data_id
            return data_id

        try:
            ids = await _settle_all([one(item) for item in images])
        except Transient as exc:
            # Uploads are free and recorded: the paid start was not sent, so the engine may resubmit.
            raise Transient(
                f"uploading the training images failed: {exc.message}", retry_after=exc.retry_after, reached=False
            ) from exc
        return list(dict.fromkeys(ids))

    async def _train(self, job: JobContext) -> Submitted:
        params = _params(StyleTrainingParams, job, "style training")
        state = await self.upload_log.start_state(job.id)
        if state.training_id is not None:
            return self._submitted(params.model_id, state.training_id)
        if state.sent:
            raise Transient("this training's start may already have reached Flair; it is not sent again")
        await self._upload_inputs(job, params.model_id)
        earlier = tuple(t.id for t in await self.api.list_trainings(params.model_id))
        await self.upload_log.set_start_sent(job.id, True, earlier)
        try:
            training_id = await self.api.start_training(params.model_id, strength=params.strength, speed=params.speed)
        except ProviderError as exc:
            if _refused(exc):
                await self.upload_log.set_start_sent(job.id, False)
            elif isinstance(exc, Transient):
                found = await self._found_after(job, params.model_id, earlier)
                if found is not None:
                    return found
            raise
        await self.upload_log.record_training(job.id, training_id)
        log.info("Flair: job %s is training %s of model %s", job.id, training_id, params.model_id)
        return self._submitted(params.model_id, training_id)

    async def _found_after(self, job: JobContext, model_id: str, earlier: tuple[str, ...]) -> Submitted | None:
        """The start may have landed (5xx, timeout, lost answer): the training list says whether it did."""
        try:
            new = await self._new_trainings(job, model_id, earlier)
        except ProviderError:
            return None
        # None new: it may still land later (a gateway timeout), so it is not sent again; the job stops.
        return self._submitted(model_id, new[0]) if len(new) == 1 else None

    def _training_outcome(self, model_id: str, training_id: str, status: TrainingStatus) -> Pending | Finished | Failed:
        phase = status.phase
        if phase is Phase.PENDING:
            return Pending(running=False)
        if phase is Phase.RUNNING:
            return Pending()
        if phase is Phase.SUCCEEDED:
            word = status.trigger_word
            text = (
                f"The style model is trained. Its trigger word is **{word}**: style images use it in the prompt."
                if word
                else "The style model is trained (Flair sent no trigger word)."
            )
            meta = {"trigger_word": word, "training_id": training_id, "model_id": model_id}
            return Finished(files=[], meta=meta, text=text)
        return self._ended(phase, "training", training_id, status.status)

    @staticmethod
    def _ended(phase: Phase, what: str, item_id: str, raw: str) -> Failed:
        if phase is Phase.CANCELLED:
            return Failed(ErrorKind.CANCELLED, f"the Flair {what} was cancelled")
        if phase is Phase.UNKNOWN:
            log.warning("Flair %s %s: unknown status %r, treated as failed", what, item_id, raw[:60])
            return Failed(ErrorKind.FAILED, f"the Flair {what} ended with an unexpected status")
        return Failed(ErrorKind.FAILED, f"the Flair {what} failed")

    # ------------------------------------------------------------------ style images

    async def _predict(self, job: JobContext) -> Submitted:
        params = _params(StyleImageParams, job, "style image")
        try:
            request = params.request()
        except ValidationError as exc:
            raise InvalidInput("the style image request is out of Flair's ranges") from exc
        prediction_id = await self.api.create_prediction(request)
        return Submitted(ref={"prediction_id": prediction_id}, next_check=self.first_check_s[IMAGE])

    def _prediction_outcome(
        self, job: JobContext, prediction_id: str, prediction: Prediction
    ) -> Pending | Finished | Failed:
        phase = prediction.phase
        if phase is Phase.PENDING:
            return Pending(running=False)
        if phase is Phase.RUNNING:
            return Pending()
        if phase is not Phase.SUCCEEDED:
            return self._ended(phase, "image generation", prediction_id, prediction.status)
        if not prediction.output_images:
            return Failed(ErrorKind.FAILED, "Flair finished the image generation without any image")
        ext = "png" if job.params.get("output_format") == "png" else "jpg"
        files = [_result_file(url, n, ext) for n, url in enumerate(prediction.output_images)]
        return Finished(files=files, meta={"prediction_id": prediction_id, "images": len(files)})


def _result_file(url: str, index: int, ext: str) -> ResultFile:
    filename, label = f"style_{index + 1}.{ext}", f"Image {index + 1}"
    if url.startswith("data:"):  # an inline image: no URL to download
        header, _, payload = url.partition(",")
        try:
            data = base64.b64decode(payload, validate=True) if header.endswith(";base64") else payload.encode()
        except (binascii.Error, ValueError) as exc:
            raise Transient("Flair sent an image Easel cannot decode") from exc
        return ResultFile(filename, data=data, label=label)
    return ResultFile(filename, url=url, label=label)
