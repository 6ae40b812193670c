"""mimpi.ai: personal portrait models (seed 000, docs/providers.md §1).

Two features:
- `portrait_training`: upload the training photos through signed URLs (unpaid, idempotent: each upload is
  recorded in an `UploadLog` so a retried or recovered submit never uploads a photo twice), then create the
  model (paid: sent at most once). The job's `ref` keeps the mimpi model id; the job row is the model.
- `portrait`: create a prompt on a trained model, then fetch its images.

Both finish through callbacks when the bot has a public URL (the callback is only a signal: `check`
confirms with a GET), else by polling. mimpi has no cancel endpoint and no list endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from bot.downloads import check_target, host_is_private
from bot.http_client import PUBLIC_ONLY
from bot.media import MediaError, fit_within, to_jpeg
from bot.providers.base import (
    Adapter,
    ErrorKind,
    Failed,
    Finished,
    InputFile,
    InvalidInput,
    JobContext,
    OutOfCredits,
    Pending,
    ProviderError,
    RateLimited,
    ResultFile,
    Submitted,
    Transient,
)
from bot.providers.http import ProviderHTTP
from bot.providers.mimpi_models import (
    Callback,
    CreateModel,
    CreatePrompt,
    Model,
    ModelAnswer,
    Prompt,
    PromptAnswer,
    SignedUrl,
    SignedUrlAnswer,
)

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

TRAINING = "portrait_training"
PORTRAIT = "portrait"
MODELS_SLOT = "models"  # the account's concurrent-models limit (30) is shared by every training

MODEL_RETENTION_S = 30 * 24 * 3600  # mimpi keeps models and images 30 days [seed]
TRAINING_DEADLINE_S = 6 * 3600.0
PROMPT_DEADLINE_S = 30 * 60.0
UPLOAD_MAX_BYTES = 10 * 1024 * 1024  # keep uploads modest: storage buckets cap single PUTs
UPLOAD_ATTEMPTS = 3  # each with a fresh signed URL
NO_CARD_MESSAGE = (
    "mimpi.ai refused to train: the mimpi account has no payment card. The bot's owner must add a card "
    "in the mimpi.ai dashboard (Settings → Billing) before portrait models can be trained"
)

T = TypeVar("T", bound=BaseModel)


class MethodNotAllowed(InvalidInput):
    """405: the signedUrl route wants the other HTTP method."""


class UploadLog(Protocol):
    """Where a training's progress through its unpaid steps is kept, so no step runs twice."""

    async def uploaded(self, job_id: str) -> dict[str, str]:
        """Photos already uploaded for this job: input key -> mimpi image id."""
        ...

    async def record_upload(self, job_id: str, key: str, image_id: str) -> None: ...

    async def create_state(self, job_id: str) -> tuple[bool, str | None]:
        """(was a create request possibly sent, the model id if its answer was seen)."""
        ...

    async def set_create_sent(self, job_id: str, sent: bool) -> None: ...

    async def record_model(self, job_id: str, model_id: str) -> None: ...


class MemoryUploadLog:
    """The default: good for one process. The portraits feature installs a database-backed one."""

    def __init__(self) -> None:
        self._uploads: dict[str, dict[str, str]] = {}
        self._creates: dict[str, tuple[bool, str | None]] = {}

    async def uploaded(self, job_id: str) -> dict[str, str]:
        return dict(self._uploads.get(job_id, {}))

    async def record_upload(self, job_id: str, key: str, image_id: str) -> None:
        self._uploads.setdefault(job_id, {})[key] = image_id

    async def create_state(self, job_id: str) -> tuple[bool, str | None]:
        return self._creates.get(job_id, (False, None))

    async def set_create_sent(self, job_id: str, sent: bool) -> None:
        self._creates[job_id] = (sent, None)

    async def record_model(self, job_id: str, model_id: str) -> None:
        self._creates[job_id] = (True, model_id)


def _classify(status: int, body: Any, message: str) -> ProviderError | None:
    if status == 402 and "card" in message.lower():
        return OutOfCredits(f"{NO_CARD_MESSAGE} (mimpi said: {message})", status=status)
    if status == 405:
        return MethodNotAllowed(message, status=status)
    return None


_STORAGE_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")


def _classify_storage(status: int, body: Any, message: str) -> ProviderError | None:
    # Storage answers in XML (as cloud buckets do); its 401/403 mean "this signed URL no longer works"
    # (expired, already used), never that Easel's API key is wrong: sign a fresh URL and try again.
    code = _STORAGE_CODE.search(message)
    reason = code.group(1) if code else f"HTTP {status}"
    if status in (401, 403):
        return Transient(f"the upload storage refused the signed URL ({reason})", status=status)
    if status in (400, 413, 415, 422):
        return InvalidInput(f"the upload storage refused a training photo ({reason})", status=status)
    return None


def _upload_jpeg(data: bytes) -> bytes:
    """The photo as a JPEG small enough to upload (CPU work: call in a thread)."""
    jpeg = to_jpeg(data)
    if len(jpeg) <= UPLOAD_MAX_BYTES:
        return jpeg
    fitted = fit_within(jpeg, UPLOAD_MAX_BYTES)
    if fitted is None:
        raise MediaError("a training photo could not be made small enough to upload")
    return fitted[0]


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def _gather_all(coros: Sequence[Awaitable[str]]) -> list[str]:
    """Like gather, but the first failure cancels the rest (no uploads left running behind our back)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class MimpiAdapter(Adapter):
    name: ClassVar[str] = "mimpi"

    # Without callbacks: look soon, then the engine's age-proportional backoff takes over.
    first_check_s = 1.0
    # With callbacks: polling is only a safety net for a lost callback.
    callback_poll_s: ClassVar[dict[str, float]] = {TRAINING: 300.0, PORTRAIT: 60.0}
    upload_parallelism = 4

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        signed_url_method: str = "POST",
        upload_log: UploadLog | None = None,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._private: bool | None = None
        self.signed_url_method = signed_url_method.upper()
        self.upload_log: UploadLog = upload_log or MemoryUploadLog()
        self._http = ProviderHTTP(
            client,
            provider="mimpi",
            base_url=self.base_url,
            auth_headers={"Authorization": f"Bearer {api_key}"},
            classify=_classify,
            on_request=on_request,
        )
        # The signed URL carries its own authorisation: this client has no key to leak to the storage host.
        self._storage = ProviderHTTP(
            client, provider="mimpi storage", base_url="", auth_headers={}, classify=_classify_storage
        )

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient) -> MimpiAdapter:
        assert settings.mimpi_api_key is not None
        return cls(
            client,
            api_key=settings.mimpi_api_key.get_secret_value(),
            base_url=str(settings.mimpi_base_url),
            signed_url_method=settings.mimpi_signed_url_method,
        )

    # The engine's questions

    def slot_group(self, feature: str) -> str | None:
        return MODELS_SLOT if feature == TRAINING else None

    def deadline(self, feature: str) -> float:
        return TRAINING_DEADLINE_S if feature == TRAINING else PROMPT_DEADLINE_S

    def parse_callback(self, body: bytes) -> dict[str, Any]:
        try:
            parsed = Callback.model_validate_json(body or b"{}")
        except ValidationError:
            return {}
        return parsed.model_dump(exclude_none=True)

    async def submit(self, job: JobContext) -> Submitted | Finished:
        if job.feature == TRAINING:
            return await self._train(job)
        if job.feature == PORTRAIT:
            return await self._prompt(job)
        raise InvalidInput(f"mimpi does not offer {job.feature!r}")

    async def recover(self, job: JobContext) -> Submitted | None:
        """After a crash mid-submit. A training whose create was never sent is finished now (its uploads are
        recorded); one whose create may have been sent is found only if its answer was recorded."""
        if job.feature != TRAINING:
            return None  # no list endpoint: a prompt in flight cannot be found
        sent, model_id = await self.upload_log.create_state(job.id)
        if model_id is not None:
            return Submitted(ref={"model_id": model_id}, next_check=0.0)
        if sent:
            return None
        return await self._train(job)

    async def check(self, job: JobContext) -> Pending | Finished | Failed:
        if job.feature == TRAINING:
            model_id = job.ref.get("model_id")
            if not model_id:
                return Failed(ErrorKind.LOST, "the mimpi model id was never recorded")
            answer = await self._get(f"/model/{model_id}", ModelAnswer)
            return await self._model_outcome(job, answer.data)
        prompt_id = job.ref.get("prompt_id")
        if not prompt_id:
            return Failed(ErrorKind.LOST, "the mimpi prompt id was never recorded")
        prompt = (await self._get(f"/prompt/{prompt_id}", PromptAnswer)).data
        return self._prompt_outcome(job, prompt)

    # Requests

    async def _send(self, method: str, path: str, answer: type[T], *, safe: bool, body: BaseModel | None = None) -> T:
        payload = body.model_dump(by_alias=True, exclude_none=True) if body is not None else None
        data = await self._http.json(method, path, safe=safe, json=payload)
        try:
            return answer.model_validate(data)
        except ValidationError as exc:
            log.warning("mimpi %s %s: unexpected answer (%d problems)", method, path, exc.error_count())
            raise Transient("mimpi sent an answer Easel does not understand") from exc

    async def _get(self, path: str, answer: type[T]) -> T:
        return await self._send("GET", path, answer, safe=True)

    def _next_check(self, job: JobContext) -> float | None:
        return self.callback_poll_s.get(job.feature) if job.callback_url else None

    # Training

    async def _signed_url(self) -> SignedUrl:
        method = self.signed_url_method
        try:
            answer = await self._send(method, "/signedUrl", SignedUrlAnswer, safe=True)
        except MethodNotAllowed:
            other = "GET" if method == "POST" else "POST"
            answer = await self._send(other, "/signedUrl", SignedUrlAnswer, safe=True)
            log.warning("mimpi: /signedUrl wants %s, not %s; using %s from now on", other, method, other)
            self.signed_url_method = other
        return answer.data

    async def _provider_is_private(self) -> bool:
        if self._private is None:
            self._private = await host_is_private(self.base_url)
        return self._private

    async def upload(self, data: bytes) -> str:
        """Upload one photo (any readable image: sent as JPEG) through a signed URL; returns its image id."""
        try:
            jpeg = await asyncio.to_thread(_upload_jpeg, data)
        except (MediaError, OSError, ValueError) as exc:
            raise InvalidInput(f"a training photo could not be converted to JPEG ({exc})") from exc
        last: Transient | None = None
        for _attempt in range(UPLOAD_ATTEMPTS):
            signed = await self._signed_url()
            # The URL comes from the provider's answer: never let it point the bot at the admin's network.
            private_ok = await self._provider_is_private()
            await check_target(signed.url, allow_private=private_ok)
            try:
                # No bearer header here: the URL is the authorisation, and the key must not reach storage.
                await self._storage.request(
                    "PUT",
                    signed.url,
                    safe=False,
                    auth=False,
                    content=jpeg,
                    headers={"Content-Type": "image/jpeg"},
                    extensions={PUBLIC_ONLY: not private_ok},
                )
            except Transient as exc:
                last = exc
                continue
            return signed.id
        assert last is not None
        raise last

    async def _upload_inputs(self, job: JobContext) -> list[str]:
        if not job.inputs:
            raise InvalidInput("the training set has no photos")
        done = await self.upload_log.uploaded(job.id)
        gate = asyncio.Semaphore(self.upload_parallelism)

        async def one(item: InputFile) -> str:
            key = item.path.name  # the content hash: the same photo is the same upload
            if key in done:
                return done[key]
            async with gate:
                try:
                    data = await asyncio.to_thread(item.read)
                except FileNotFoundError as exc:
                    raise InvalidInput(f"the training photo {item.filename} is no longer stored") from exc
                image_id = await self.upload(data)
            await self.upload_log.record_upload(job.id, key, image_id)
            return image_id

        try:
            ids = await _gather_all([one(item) for item in job.inputs])
        except Transient as exc:
            # Uploads are unpaid and recorded: the paid create was not sent, so the engine may resubmit.
            raise Transient(
                f"uploading the training photos failed: {exc.message}", retry_after=exc.retry_after, reached=False
            ) from exc
        return list(dict.fromkeys(ids))

    async def _train(self, job: JobContext) -> Submitted:
        image_ids = await self._upload_inputs(job)
        try:
            body = CreateModel(
                subject=str(job.params.get("subject", "")), image_ids=image_ids, callback_url=job.callback_url
            )
        except ValidationError as exc:
            raise InvalidInput("the training request is incomplete (subject or photos missing)") from exc
        await self.upload_log.set_create_sent(job.id, True)
        try:
            answer = await self._send("POST", "/model", ModelAnswer, safe=False, body=body)
        except ProviderError as exc:
            # Refused before anything was created (429 concurrent models, any 4xx, no connection): the create
            # may be sent again later. A 5xx or a timeout may have created it: never sent again.
            refused = (
                isinstance(exc, RateLimited)
                or (isinstance(exc, Transient) and not exc.reached)
                or (exc.status is not None and 400 <= exc.status < 500)
            )
            if refused:
                await self.upload_log.set_create_sent(job.id, False)
            raise
        model = answer.data
        await self.upload_log.record_model(job.id, model.id)
        log.info("mimpi: job %s is model %s%s", job.id, model.id, " (test key)" if model.is_test else "")
        next_check = 0.0 if model.status in ("COMPLETED", "FAILED") else self._next_check(job) or self.first_check_s
        return Submitted(
            ref={"model_id": model.id, "image_ids": image_ids, "is_test": model.is_test}, next_check=next_check
        )

    def _unfinished(self, job: JobContext, item: Model | Prompt, what: str) -> Pending | Failed | None:
        """Models and prompts share one lifecycle: Pending or Failed while not COMPLETED, else None."""
        if item.status == "PENDING":
            return Pending(running=False, next_check=self._next_check(job))
        if item.status == "RUNNING":
            return Pending(progress=_percent(item.progress), next_check=self._next_check(job))
        if item.status == "FAILED":
            return Failed(ErrorKind.FAILED, item.failed_message or f"the {what} failed")
        if item.status != "COMPLETED":
            log.warning("mimpi %s %s: unknown status %r; still waiting", what, item.id, item.status[:40])
            return Pending(next_check=self._next_check(job))
        return None

    async def _model_outcome(self, job: JobContext, model: Model) -> Pending | Finished | Failed:
        return self._unfinished(job, model, "training") or await self._trained(job, model)

    async def _trained(self, job: JobContext, model: Model) -> Finished:
        created = _epoch(model.created_at)
        expires = int((created if created is not None else time.time()) + MODEL_RETENTION_S)
        name = str(job.params.get("name") or model.subject)
        token = str(job.params.get("token") or f"sks {model.subject}")
        text = (
            f"**{name}** is trained. Make portraits with `/portrait generate`; prompts refer to the subject as "
            f"“{token}”. mimpi keeps this model until <t:{expires}:f> (<t:{expires}:R>)."
        )
        if model.is_test:
            text += "\n🧪 mimpi test key: this is sample data, and the model's pictures will be sample images."
        meta = {
            "model_id": model.id,
            "subject": model.subject,
            "created_at": model.created_at,
            "expires_at": expires,
            "is_test": model.is_test,
            "training_images": len(model.image_urls) or len(job.inputs),
        }
        # Text only: the training photos are the member's own, and the result is posted in the channel.
        return Finished(files=[], meta=meta, text=text)

    # Generating

    async def _prompt(self, job: JobContext) -> Submitted:
        try:
            body = CreatePrompt(
                prompt=str(job.params.get("prompt", "")),
                model_id=str(job.params.get("_model_id", "")),
                image_count=int(job.params.get("images", 1)),
                callback_url=job.callback_url,
            )
        except (ValidationError, ValueError) as exc:
            raise InvalidInput("the portrait request is incomplete (prompt, model or image count)") from exc
        prompt = (await self._send("POST", "/prompt", PromptAnswer, safe=False, body=body)).data
        done = prompt.status in ("COMPLETED", "FAILED")
        return Submitted(
            ref={"prompt_id": prompt.id, "is_test": prompt.is_test},
            next_check=0.0 if done else self._next_check(job) or self.first_check_s,
        )

    def _prompt_outcome(self, job: JobContext, prompt: Prompt) -> Pending | Finished | Failed:
        unfinished = self._unfinished(job, prompt, "image generation")
        if unfinished is not None:
            return unfinished
        files = [
            ResultFile(f"portrait_{n + 1}.jpg", url=url, label=f"Portrait {n + 1}")
            for n, url in enumerate(prompt.generated_images)
        ]
        text = None
        if prompt.is_test:
            text = "🧪 mimpi test key: these are mimpi's sample images, not pictures made from your model."
        return Finished(
            files=files,
            text=text,
            meta={"prompt_id": prompt.id, "is_test": prompt.is_test, "image_size": prompt.image_size},
        )


def _percent(value: float | None) -> float | None:
    return None if value is None else max(0.0, min(100.0, float(value)))
