"""Mimi Panda: coloring pages, paint-by-numbers, AI coloring pages and images, upscaling, AI filters.

Every create answers `{"key", "status": "in_queue"}`; `GET item/{key}` is polled until `ready` or `failed`.
Gotchas seen by real clients: right after a create the item endpoint may answer 404 or an HTML page, so
those count as "still pending" for a grace period; the first poll waits a few seconds; then every 3-5 s,
backing off for jobs that run long. Paint-by-numbers extras (SVG, PDF, palette files) are fetched once,
when the job finishes, and kept for the result's buttons.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from bot.legend import Swatch, legend_file, legend_text, render_legend_async
from bot.providers.base import (
    Adapter,
    AuthenticationFailed,
    ErrorKind,
    Failed,
    Finished,
    InputFile,
    InvalidInput,
    JobContext,
    NotFoundAtProvider,
    OutOfCredits,
    Pending,
    ProviderError,
    RateLimited,
    ResultFile,
    Submitted,
    Transient,
)
from bot.providers.http import ProviderHTTP
from bot.providers.mimipanda_models import (
    ENDPOINTS,
    IMAGE_FEATURES,
    JSON_FEATURES,
    PBN_COLOR_FILES,
    REQUEST_MODELS,
    CreateResponse,
    ItemResponse,
    PbnImages,
    PbnRequest,
)
from bot.settings import Settings

log = logging.getLogger(__name__)

CONTENT_POLICY_MARKERS = ("trademarks or other protected content",)
QUOTA_WORDS = ("quota", "exceeded", "limit", "credit")
# Minutes a job may take before it is stopped and refunded; most finish within a minute.
DEFAULT_DEADLINES_MIN = {"coloring": 10, "ai_coloring": 10, "ai_image": 10, "pbn": 20, "upscale": 15, "filter": 10}
PBN_EXTRAS: tuple[tuple[str, str], ...] = (
    ("download", "svg"),
    ("download", "pdf"),
    *(("colors", kind) for kind in PBN_COLOR_FILES),
)
RESULT_STEMS = {
    "coloring": "coloring-page",
    "ai_coloring": "ai-coloring-page",
    "ai_image": "ai-image",
    "upscale": "upscaled",
    "filter": "filtered",
}
LEGEND_TEXT_BUDGET = 1500  # of a 2000-character message, leaving room for the mention and notes
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp")
_DISPOSITION_NAME = re.compile(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', re.IGNORECASE)


def classify(status: int, body: Any, message: str) -> ProviderError | None:
    """403 means either "quota exceeded" or "no permission" (e.g. not on the commercial plan)."""
    if status == 403:
        if any(word in message.lower() for word in QUOTA_WORDS):
            return OutOfCredits(message, status=status)
        return AuthenticationFailed(message, status=status)
    return None


def _extension(url: str, default: str = "png") -> str:
    suffix = urlsplit(url).path.rsplit(".", 1)[-1].lower() if "." in urlsplit(url).path else ""
    return suffix if suffix in IMAGE_EXTENSIONS else default


class MimiPandaAdapter(Adapter):
    name = "mimipanda"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        token: str,
        first_poll_s: float = 4.0,
        poll_s: float | None = 3.0,
        poll_early_max_s: float = 5.0,
        poll_max_s: float = 30.0,
        early_grace_s: float = 60.0,
        create_timeout_s: float = 120.0,
        get_timeout_s: float = 30.0,
        deadlines_min: dict[str, float] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`poll_s=None` leaves the polling rhythm to the engine (tests use that to run fast)."""
        self.base_url = base_url.rstrip("/")
        self.http = ProviderHTTP(
            client,
            provider=self.name,
            base_url=self.base_url,
            auth_headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            classify=classify,
            content_policy_markers=CONTENT_POLICY_MARKERS,
        )
        self.first_poll_s = first_poll_s
        self.poll_s = poll_s
        self.poll_early_max_s = poll_early_max_s
        self.poll_max_s = poll_max_s
        self.early_grace_s = early_grace_s
        self._create_timeout = httpx.Timeout(create_timeout_s, connect=10.0)
        self._get_timeout = httpx.Timeout(get_timeout_s, connect=10.0)
        self._deadlines = {**DEFAULT_DEADLINES_MIN, **(deadlines_min or {})}
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient) -> MimiPandaAdapter:
        token = settings.mimipanda_api_token
        if token is None:
            raise ValueError("MIMIPANDA_API_TOKEN is not set")
        return cls(client, base_url=str(settings.mimipanda_base_url), token=token.get_secret_value())

    def deadline(self, feature: str) -> float:
        return float(self._deadlines.get(feature, 15)) * 60

    # Submitting

    async def submit(self, job: JobContext) -> Submitted:
        if job.feature not in ENDPOINTS:
            raise InvalidInput(f"Mimi Panda has no feature {job.feature!r}")
        image = next((item for item in job.inputs if item.name == "image"), None)
        model_class = REQUEST_MODELS[job.feature]
        values = dict(job.params)
        if model_class is PbnRequest:
            values["from_image"] = image is not None
        try:
            request = model_class.model_validate({k: v for k, v in values.items() if not k.startswith("_")})
        except ValidationError as exc:
            raise InvalidInput(_validation_message(exc)) from exc
        if job.feature in IMAGE_FEATURES and image is None:
            raise InvalidInput("this needs an image")
        path = ENDPOINTS[job.feature]
        kwargs: dict[str, Any] = {"timeout": self._create_timeout}
        if job.feature in JSON_FEATURES:
            kwargs["json"] = request.wire()
        elif image is not None:
            kwargs["data"] = request.form()
            kwargs["files"] = {"image": await _upload(image)}
        else:
            # A prompt-only paint-by-numbers: still multipart (as the docs' -F example), fields without files.
            kwargs["files"] = {name: (None, value.encode()) for name, value in request.form().items()}
        # A create may bill: never retried once it may have reached Mimi Panda (ProviderHTTP, safe=False).
        answer = await self.http.json("POST", path, safe=False, **kwargs)
        try:
            created = CreateResponse.model_validate(answer)
        except ValidationError as exc:
            raise Transient("Mimi Panda answered the create without a job key") from exc
        log.info("Mimi Panda %s job %s created for job %s", job.feature, created.key, job.id)
        return Submitted({"key": created.key, "submitted_at": self._clock()}, next_check=self.first_poll_s)

    # Checking

    def _age(self, job: JobContext) -> float:
        submitted = job.ref.get("submitted_at")
        return max(0.0, self._clock() - float(submitted)) if isinstance(submitted, int | float) else 0.0

    def next_poll(self, age: float) -> float | None:
        """3 s at first, easing to 5 s over the first minute (most jobs are done by then), then about a tenth
        of the job's age, capped."""
        if self.poll_s is None:
            return None
        if age < 60:
            return min(self.poll_early_max_s, self.poll_s + (self.poll_early_max_s - self.poll_s) * age / 60)
        return min(self.poll_max_s, max(self.poll_early_max_s, age * 0.1))

    async def check(self, job: JobContext) -> Pending | Finished | Failed:
        key = str(job.ref["key"])
        age = self._age(job)
        in_grace = age < self.early_grace_s
        try:
            response = await self.http.request("GET", f"item/{key}", safe=True, timeout=self._get_timeout)
        except NotFoundAtProvider:
            if in_grace:  # the item is not visible yet right after the create
                return Pending(running=False, next_check=self.next_poll(age))
            raise
        try:
            item = ItemResponse.model_validate(response.json())
        except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
            if in_grace:  # an HTML "please wait" page instead of JSON
                return Pending(running=False, next_check=self.next_poll(age))
            raise Transient("Mimi Panda sent a status answer that is not the documented JSON") from exc
        status = item.status
        if status == "in_queue":
            return Pending(running=False, next_check=self.next_poll(age))
        if status == "processing":
            return Pending(running=True, next_check=self.next_poll(age))
        if status == "ready":
            return await self._finished(job, key, item)
        if status == "failed":
            message = item.error or item.message or "Mimi Panda could not complete it"
            lowered = message.lower()
            kind = (
                ErrorKind.CONTENT_POLICY
                if any(marker in lowered for marker in CONTENT_POLICY_MARKERS)
                else ErrorKind.FAILED
            )
            return Failed(kind, message)
        log.warning("Mimi Panda job %s has an unknown status %r; still waiting", key, status)
        return Pending(running=True, next_check=self.next_poll(age))

    async def _finished(self, job: JobContext, key: str, item: ItemResponse) -> Finished | Failed:
        if job.feature == "pbn":
            return await self._pbn_finished(key, item)
        urls = item.image_urls()
        if not urls:
            return Failed(ErrorKind.FAILED, "Mimi Panda said the job is ready but sent no images")
        stem = RESULT_STEMS.get(job.feature, job.feature)
        files = [
            ResultFile(f"{stem}-{n}.{_extension(url)}" if len(urls) > 1 else f"{stem}.{_extension(url)}", url=url)
            for n, url in enumerate(urls, 1)
        ]
        meta = {k: v for k, v in (item.parameters or {}).items() if k in ("width", "height", "upscale")}
        return Finished(files, meta=meta)

    async def _pbn_finished(self, key: str, item: ItemResponse) -> Finished | Failed:
        images = item.images if isinstance(item.images, PbnImages) else None
        if images is None or not (images.pbn or images.picture):
            return Failed(ErrorKind.FAILED, "Mimi Panda said the paint-by-numbers is ready but sent no images")
        files: list[ResultFile] = []
        if images.pbn:
            files.append(ResultFile(f"pbn-template.{_extension(images.pbn)}", url=images.pbn, label="template"))
        if images.picture:
            files.append(ResultFile(f"pbn-colored.{_extension(images.picture)}", url=images.picture, label="picture"))
        swatches = [Swatch(c.number, c.name, c.hex) for c in item.colors or []]
        text: str | None = None
        if swatches:
            files.append(
                ResultFile("pbn-legend.png", data=await render_legend_async(swatches), label="legend"),
            )
            body, complete = legend_text(swatches, budget=LEGEND_TEXT_BUDGET)
            text = f"**Palette** ({len(swatches)} colours)\n{body}"
            if not complete:
                files.append(ResultFile("pbn-legend.txt", data=legend_file(swatches), kind="file", label="legend-text"))
        for group, kind in PBN_EXTRAS:
            extra = await self._pbn_extra(key, group, kind)
            if extra is not None:
                files.append(extra)
        return Finished(files, meta={"colors": len(swatches)}, text=text)

    async def _pbn_extra(self, key: str, group: str, kind: str) -> ResultFile | None:
        """One download or palette file, as bytes (never decoded: some are zips)."""
        try:
            response = await self.http.request(
                "GET", f"item/{key}/pbn/{group}/{kind}", safe=True, timeout=self._get_timeout
            )
        except (Transient, RateLimited):
            raise  # the engine checks again later and fetches everything anew
        except ProviderError as exc:
            log.warning("Mimi Panda job %s: the %s file is not available (%s)", key, kind, exc.message)
            return None
        data = response.content
        if not data:
            return None
        is_zip = data[:4] == b"PK\x03\x04" and kind in ("csv", "gpl")  # palettes over 30 colours come zipped
        match = _DISPOSITION_NAME.search(response.headers.get("Content-Disposition", ""))
        given = match.group(1).strip() if match else ""
        if given.lower().endswith(".zip"):
            is_zip = True
        prefix = "pbn" if group == "download" else "palette"
        filename = f"{prefix}-{kind}.zip" if is_zip else f"{prefix}.{kind}"
        return ResultFile(filename, data=data, kind="file", send=False, label=kind)


async def _upload(image: InputFile) -> tuple[str, bytes, str]:
    data = await asyncio.to_thread(image.read)
    return image.filename, data, image.content_type


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
