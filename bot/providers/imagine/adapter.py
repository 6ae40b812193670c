"""Imagine (Vyro) v2: AI images, transparent pictures, AI backgrounds, generative fill, object and background
removal, enhance, and videos from text or a picture.

Every POST is multipart/form-data, also without files (JSON is refused with code 1100). Image endpoints
answer synchronously with the image bytes, so `submit()` returns `Finished`; a create whose answer was lost
(dropped connection, read timeout) may have run and billed, so it is never sent again (`safe=False`:
`Transient(reached=True)`, the engine refunds). Videos answer an id; `check()` polls its status.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from bot.media import MediaError, identify_async
from bot.providers.base import (
    Adapter,
    ErrorKind,
    Failed,
    Finished,
    InvalidInput,
    JobContext,
    Pending,
    ProviderError,
    ResultFile,
    Submitted,
    Transient,
)
from bot.providers.http import ProviderHTTP, error_text
from bot.providers.imagine.answers import (
    VIDEO_DONE,
    VIDEO_FAILED,
    VIDEO_RUNNING,
    VIDEO_WAITING,
    VideoCreated,
    VideoStatus,
    error_body,
    image_link,
)
from bot.providers.imagine.errors import classify
from bot.providers.imagine.models import PARAM_MODELS, Call, plan
from bot.providers.imagine.uploads import Upload, prepare_all
from bot.settings import Settings

log = logging.getLogger(__name__)

# Minutes a job may take before it is stopped and refunded. Image calls hold the request open (~10-60 s).
DEFAULT_DEADLINES_MIN = {"imagine_image": 10, "imagine_edit": 10, "imagine_upscale": 10, "imagine_video": 30}
VIDEO_STATUS_PATH = "video/{id}/status"  # older deployments: "video/status/{id}", "assets/{id}/status"


class ImagineAdapter(Adapter):
    name = "imagine"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        read_timeout_s: float = 180.0,
        status_timeout_s: float = 30.0,
        first_poll_s: float = 15.0,
        video_status_path: str = VIDEO_STATUS_PATH,
        deadlines_min: dict[str, float] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = ProviderHTTP(
            client,
            provider=self.name,
            base_url=self.base_url,
            auth_headers={"Authorization": f"Bearer {api_key}"},
            classify=classify,
        )
        # Generations hold the request open while they run: clients allow 60-180 s.
        self._create_timeout = httpx.Timeout(read_timeout_s, connect=10.0)
        self._status_timeout = httpx.Timeout(status_timeout_s, connect=10.0)
        self.first_poll_s = first_poll_s
        self.video_status_path = video_status_path
        self._deadlines = {**DEFAULT_DEADLINES_MIN, **(deadlines_min or {})}

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient) -> ImagineAdapter:
        key = settings.imagine_api_key
        if key is None:
            raise ValueError("IMAGINE_API_KEY is not set")
        return cls(client, base_url=str(settings.imagine_base_url), api_key=key.get_secret_value())

    def deadline(self, feature: str) -> float:
        return float(self._deadlines.get(feature, 15)) * 60

    # Submitting

    def call_for(self, job: JobContext) -> Call:
        """The create a job makes; InvalidInput (before anything is sent) if its parameters do not fit."""
        model = PARAM_MODELS.get(job.feature)
        if model is None:
            raise InvalidInput(f"Imagine has no feature {job.feature!r}")
        try:
            params = model.model_validate({k: v for k, v in job.params.items() if not k.startswith("_")})
        except ValidationError as exc:
            raise InvalidInput(_validation_message(exc)) from exc
        return plan(job.feature, params)

    async def submit(self, job: JobContext) -> Submitted | Finished:
        call = self.call_for(job)
        uploads = await asyncio.to_thread(prepare_all, call.files, job.inputs, call.operation)
        # A list of parts, text fields as (None, value): multipart even when there is no file.
        parts: list[tuple[str, tuple[str | None, bytes] | tuple[str, bytes, str]]] = [
            (name, (None, value.encode())) for name, value in call.request.form().items()
        ]
        parts += [(upload.field, upload.part()) for upload in uploads]
        # A create may bill: never retried once it may have reached Imagine (safe=False).
        response = await self.http.request("POST", call.path, safe=False, files=parts, timeout=self._create_timeout)
        if call.video:
            return self._video_submitted(job, call, response)
        return await self._image_finished(job, call, uploads, response)

    def _video_submitted(self, job: JobContext, call: Call, response: httpx.Response) -> Submitted:
        body = _json_or_none(response)
        if error_body(body) is not None:
            raise _error_from_body(response.status_code, body)
        try:
            created = VideoCreated.model_validate(body)
        except ValidationError as exc:
            raise Transient("Imagine answered the video create without an id") from exc
        log.info("Imagine video %s created for job %s", created.id, job.id)
        return Submitted({"id": created.id, "operation": call.operation}, next_check=self.first_poll_s)

    async def _image_finished(
        self, job: JobContext, call: Call, uploads: list[Upload], response: httpx.Response
    ) -> Finished:
        data = response.content
        if response.headers.get("Content-Type", "").startswith("application/json"):
            body = _json_or_none(response)
            if error_body(body) is not None:
                raise _error_from_body(response.status_code, body)
            link = image_link(body)
            if link is not None:  # the engine downloads and verifies it
                linked = {"operation": call.operation, **self._sent(call)}
                return Finished([ResultFile(f"{call.stem}.{_link_extension(link)}", url=link)], meta=linked)
        try:
            info = await identify_async(data)
        except MediaError as exc:
            # It answered 200, so it ran (and may have billed): never resent, the engine refunds.
            raise Transient(f"Imagine answered the {call.operation} with something that is not an image") from exc
        if info.kind != "image":
            raise Transient(f"Imagine answered the {call.operation} with a {info.format} file, not an image")
        meta: dict[str, Any] = {"operation": call.operation, "width": info.width, "height": info.height}
        meta.update(self._sent(call))
        source = next((u for u in uploads if u.field == "image"), None)
        if source is not None:
            meta["source"] = f"{source.width}×{source.height}"
        log.info("Imagine %s for job %s: %s %d×%d", call.operation, job.id, info.format, info.width, info.height)
        return Finished([ResultFile(f"{call.stem}.{info.extension}", data=data)], meta=meta)

    @staticmethod
    def _sent(call: Call) -> dict[str, Any]:
        sent = call.request.model_dump(exclude_none=True)
        return {k: v for k, v in sent.items() if k in ("style", "aspect_ratio", "seed")}

    # Checking (videos)

    async def check(self, job: JobContext) -> Pending | Finished | Failed:
        if not job.ref.get("id"):
            return Failed(ErrorKind.FAILED, "Easel has no Imagine video id for this job")
        video_id = str(job.ref["id"])
        path = self.video_status_path.format(id=video_id)
        response = await self.http.request("GET", path, safe=True, timeout=self._status_timeout)
        body = _json_or_none(response)
        if error_body(body) is not None:
            raise _error_from_body(response.status_code, body)
        try:
            answer = VideoStatus.model_validate(body)
        except ValidationError as exc:
            raise Transient("Imagine sent a video status that is not the documented JSON") from exc
        video = answer.video
        if video is None:
            raise Transient("Imagine sent a video status without the video")
        status = video.status.strip().lower()
        if status in VIDEO_WAITING:
            return Pending(running=False)
        if status in VIDEO_RUNNING:
            return Pending(running=True)
        if status in VIDEO_FAILED:
            message = video.message or video.error or f"Imagine could not make the video ({status})"
            kind = ErrorKind.CANCELLED if status in ("cancelled", "canceled") else ErrorKind.FAILED
            return Failed(kind, message)
        if status in VIDEO_DONE:
            urls = video.url.generations() if video.url is not None else []
            if not urls:
                return Failed(ErrorKind.FAILED, "Imagine said the video is finished but sent no link to it")
            names = [f"video-{n}.mp4" for n in range(1, len(urls) + 1)] if len(urls) > 1 else ["video.mp4"]
            files = [ResultFile(name, url=url, kind="video") for name, url in zip(names, urls, strict=True)]
            meta = {"operation": job.ref.get("operation", "video"), "video": video.ident or video_id}
            return Finished(files, meta=meta)
        log.warning("Imagine video %s has an unknown status %r; still waiting", video_id, status)
        return Pending(running=True)

    async def recover(self, job: JobContext) -> Submitted | None:
        """Imagine has no lookup: an image create whose answer was lost is gone, and a video's id was in that
        answer, so neither can be found again."""
        return None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _link_extension(link: str) -> str:
    suffix = urlsplit(link).path.rsplit(".", 1)[-1].lower()
    return {"jpeg": "jpg"}.get(suffix, suffix) if suffix in ("png", "jpg", "jpeg", "webp") else "png"


def _error_from_body(status: int, body: Any) -> ProviderError:
    """An error body that came with a 2xx status."""
    message = error_text(body) or "Imagine answered with an error"
    return classify(status, body, message) or InvalidInput(message, status=status)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
