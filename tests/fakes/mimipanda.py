"""A fake of the Mimi Panda image API: a real aiohttp server on 127.0.0.1 for adapter and engine tests.

It speaks the documented protocol (seed 002 and docs/providers.md section 3): Bearer auth, Laravel-style
validation errors, jobs that move in_queue -> processing -> ready (or failed), real images rendered with
Pillow, the paint-by-numbers download/palette extras, and fault injection for the gotchas real clients
met (429/5xx/403, slow answers, 404 or HTML right after creation, truncated JSON).

    fake = FakeMimiPanda(token="mp-test-token")
    await fake.start()      # fake.base_url == "http://127.0.0.1:PORT/api/service"
    ...
    await fake.stop()
"""

from __future__ import annotations

import asyncio
import colorsys
import contextlib
import hashlib
import io
import json
import math
import random
import re
import time
import uuid
import zipfile
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from xml.sax.saxutils import escape

import pillow_heif
from aiohttp import web
from multidict import CIMultiDict
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from tests.fakes.loopback import LoopbackServer

pillow_heif.register_heif_opener()

# --- the documented vocabulary -------------------------------------------------------------------------

KINDS = ("coloring", "pbn", "ai/coloring", "ai/image", "image/upscale", "image/filter")
Route = Literal["create", "item", "extra", "file", "other"]

# Formats judged by content: Pillow's names for jpg/jpeg, png, webp and heic/heif (pillow-heif says HEIF).
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "HEIF"})
MIMES = "jpg, png, webp, jpeg, heic, heif"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
UPSCALE_MAX_SIDE = 4000
UPSCALE_4X_MAX_SIDE = 1000  # larger images are limited to 2x

COLORING_TYPES = {
    "v2": ("v2_general", "v2_detailed", "v2_anime", "v2_simplified", "v2_comic"),
    "v1": ("for_adults", "for_kids", "simple", "image", "photo", "sketching"),
}
SEGMENTS_COMPLEXITY = ("none", "level1", "level2", "level3", "simplest")
GRADIENT_STEPS = ("high", "normal")
COLOR_PRECISIONS = ("high", "normal", "low", "lowest")
DETAILS_FILTERS = ("ultra", "high", "normal", "low", "lowest")
AI_FILTER_TYPES = (
    "none",
    "painting-general",
    "painting-oil-painting",
    "painting-palette-knife",
    "painting-acrylic",
    "painting-watercolor",
    "painting-gouache",
    "painting-digital",
    "painting-graffiti",
    "painting-grimdark",
    "painting-impasto",
    "painting-impressionism-painting-style",
    "painting-magic-realism",
    "painting-pointillism",
    "painting-renaissance",
    "painting-retrofuturism",
)
AI_COLORING_STYLES = ("kids_coloring_page", "teenagers_coloring_page", "adults_coloring_page")
AI_COLORING_RATIOS = ("1x1", "2x3", "3x2", "4x3", "3x4", "9x16", "16x9")
AI_IMAGE_RATIOS = ("1x1", "2x3", "3x2", "4x5", "5x4")
FILTER_STRENGTHS = tuple(round(0.1 * step, 1) for step in range(2, 11))  # 0.2 .. 1.0
DOWNLOAD_TYPES = {
    "svg": ("image/svg+xml", "svg"),
    "png": ("image/png", "png"),
    "pdf": ("application/pdf", "pdf"),
    "jpeg": ("image/jpeg", "jpg"),
}
COLOR_FILE_TYPES = ("csv", "gpl", "kpl", "swatches")
SWATCHES_PER_FILE = 30  # Procreate's limit per .swatches file: why bigger palettes come as a zip

CONTENT_POLICY_ERROR = "The prompt contains trademarks or other protected content"
QUOTA_ERROR = "Your API quota has been exceeded."
PBN_SOURCE_ERROR = "Either image or prompt must be provided"
PBN_BOTH_ERROR = "Either image or prompt must be provided, not both"

DEFAULT_FAULT_BODIES = {
    401: "Unauthenticated.",
    403: QUOTA_ERROR,
    404: "Not found",
    429: "Too Many Attempts.",
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Mimi Panda</title></head>"
    "<body><h1>Please wait</h1><p>Your image is being prepared.</p></body></html>\n"
)


def _build_color_table() -> list[tuple[str, str]]:
    """About a hundred named colours (hue x shade, plus neutrals), the pure hues first so small palettes
    stay varied."""
    hues = [
        ("Red", 0),
        ("Red Orange", 12),
        ("Orange", 30),
        ("Yellow Orange", 45),
        ("Yellow", 58),
        ("Yellow Green", 85),
        ("Green", 125),
        ("Blue Green", 170),
        ("Sky Blue", 200),
        ("Blue", 225),
        ("Violet", 275),
        ("Red Violet", 320),
    ]
    shades = [
        ("", 0.85, 0.92),
        ("Dark", 0.9, 0.5),
        ("Light", 0.45, 1.0),
        ("Deep", 1.0, 0.35),
        ("Pale", 0.22, 1.0),
        ("Muted", 0.4, 0.6),
        ("Bright", 1.0, 1.0),
        ("Soft", 0.55, 0.8),
    ]
    table: list[tuple[str, str]] = []
    for index, (prefix, saturation, value) in enumerate(shades):
        for name, hue in hues:
            r, g, b = colorsys.hsv_to_rgb(hue / 360, saturation, value)
            table.append((f"{prefix} {name}".strip(), f"#{round(r * 255):02X}{round(g * 255):02X}{round(b * 255):02X}"))
        if index == 0:
            table += [("Black", "#000000"), ("White", "#FFFFFF")]
    table += [("Light Grey", "#D3D3D3"), ("Silver", "#C0C0C0"), ("Grey", "#808080"), ("Charcoal", "#36454F")]
    return table


NAMED_COLORS: list[tuple[str, str]] = _build_color_table()  # (name, "#RRGGBB"), 102 entries


# --- requests, jobs, faults ----------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One request as the fake saw it. `path` has no prefix ("pbn", "item/<key>", "storage/<key>/x.png")."""

    method: str
    path: str
    route: Route
    headers: CIMultiDict[str]
    query: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)
    json: Any = None
    status: int | None = None  # what the fake answered
    fault: str | None = None  # the injected fault, e.g. "fail:429", "slow:1.0", "malformed", "early_404"
    job_key: str | None = None  # the job created (creates) or addressed (item, extras, files)
    at: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class Job:
    key: str
    kind: str
    params: dict[str, Any]  # exactly what the ready payload echoes as "parameters"
    image: bytes | None  # the uploaded input
    image_size: tuple[int, int] | None
    created: datetime
    queue_seconds: float
    processing_seconds: float
    auto: bool  # time-driven; False once a test drives it by hand
    fail_with: str | None = None  # set when a marker says the job must end failed
    image_count: int = 1
    requested_upscale: int | None = None
    error: str | None = None
    polls: int = 0
    colors: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, tuple[str, bytes]] | None = None  # name -> (content type, bytes), rendered when ready
    downloads: dict[str, bytes] = field(default_factory=dict)
    _status: str = "in_queue"
    _updated: datetime | None = None
    _started: float = field(default_factory=time.monotonic)
    _render_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def status(self) -> str:
        self._tick()
        return self._status

    @property
    def updated(self) -> datetime:
        self._tick()
        return self._updated or self.created

    def _tick(self) -> None:
        """Time-driven progress, evaluated lazily so no background task is needed."""
        if not self.auto or self._status in ("ready", "failed"):
            return
        elapsed = time.monotonic() - self._started
        done_at = self.queue_seconds + self.processing_seconds
        if elapsed >= done_at:
            self._finish(self.created + timedelta(seconds=done_at))
        elif elapsed >= self.queue_seconds and self._status == "in_queue":
            self._status = "processing"
            self._updated = self.created + timedelta(seconds=self.queue_seconds)

    def _finish(self, when: datetime) -> None:
        if self.fail_with is not None:
            self._status, self.error = "failed", self.fail_with
        else:
            self._status = "ready"
        self._updated = when

    def _set(self, status: str, error: str | None = None) -> None:
        self.auto = False
        self._status, self.error, self._updated = status, error, _now()


@dataclass
class _Fault:
    kind: Literal["fail", "slow", "malformed"]
    remaining: int
    route: str | None
    status: int = 200
    retry_after: str | None = None
    body: Any = None
    content_type: str | None = None
    seconds: float = 0.0

    def matches(self, record: RecordedRequest) -> bool:
        return self.remaining > 0 and (self.route is None or self.route in (record.route, record.path))


RECORD = web.RequestKey("record", RecordedRequest)


class ValidationError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the server ----------------------------------------------------------------------------------------


class FakeMimiPanda(LoopbackServer):
    """The fake server. Every knob is a plain attribute that tests may change at any time."""

    def __init__(self, token: str = "mp-test-token", *, prefix: str = "/api/service") -> None:
        super().__init__()
        self.token = token
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        # Job timing: small so tests are fast. auto_advance=False leaves jobs to advance/finish/fail.
        self.queue_seconds = 0.05
        self.processing_seconds = 0.1
        self.auto_advance = True
        # Content: a word the content policy rejects, a marker that makes the job end failed.
        self.blocked_word: str | None = "mickey"
        self.fail_marker: str | None = "FAILME"
        self.failure_message = "Failed to generate image"
        # Account: saved palettes (id -> colour codes), optional create quota, known filter types.
        self.palettes: dict[int, list[str]] = {1: [hex_code for _, hex_code in NAMED_COLORS]}
        self.quota_remaining: int | None = None
        self.filter_types: set[str] | None = None  # None: any string ("available from support only")
        self.max_upload_bytes = MAX_UPLOAD_BYTES
        self.strict_booleans = True  # Laravel's boolean rule: true, false, 1, 0, "1", "0" only
        # Output: the doc's AI example returns two images; sizes are small so rendering stays cheap.
        self.ai_image_count = 2
        self.ai_base_size = 512
        self.max_render_pixels = 16_000_000  # upscale results beyond this are rendered smaller
        # Real-client gotchas: the first N polls of each new job answer 404, then N answer HTML.
        self.early_404_polls = 0
        self.html_polls = 0

        self.requests: list[RecordedRequest] = []
        self.jobs: dict[str, Job] = {}
        self._faults: list[_Fault] = []

    # lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        p = self.prefix
        app.router.add_post(p + "/{kind:coloring|pbn|ai/coloring|ai/image|image/upscale|image/filter}", self._create)
        app.router.add_get(p + "/item/{key}", self._item)
        app.router.add_get(p + "/item/{key}/pbn/download/{type}", self._pbn_download)
        app.router.add_get(p + "/item/{key}/pbn/colors/{type}", self._pbn_colors)
        app.router.add_get("/storage/{key}/{name}", self._file)
        await self.serve(app)

    @property
    def base_url(self) -> str:
        return self.origin + self.prefix

    # inspection

    def creates(self, kind: str | None = None) -> list[RecordedRequest]:
        """Create requests, optionally of one kind ("pbn", "ai/image", ...)."""
        return [r for r in self.requests if r.route == "create" and (kind is None or r.path == kind)]

    def polls(self, key: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.route == "item" and (key is None or r.job_key == key)]

    # manual control

    def advance(self, key: str) -> str:
        """One step: in_queue -> processing -> ready (or failed when a marker said so)."""
        job = self.jobs[key]
        status = job.status
        if status == "in_queue":
            job._set("processing")
        elif status == "processing":
            job.auto = False
            job._finish(_now())
        else:
            job.auto = False
        return job.status

    def finish(self, key: str) -> None:
        self.jobs[key]._set("ready")

    def fail(self, key: str, message: str | None = None) -> None:
        self.jobs[key]._set("failed", message or self.failure_message)

    # fault injection; `route` limits a fault to "create", "item", "extra", "file" or one create kind

    def fail_next(
        self,
        status: int,
        count: int = 1,
        retry_after: float | str | None = None,
        body: Any = None,
        *,
        route: str | None = None,
        content_type: str | None = None,
    ) -> None:
        """Answer the next `count` matching requests with `status` without processing them (as a gateway
        or rate limiter would). `body`: a dict/list (JSON) or str/bytes; default {"error": "..."}."""
        after = None if retry_after is None else _format_number(retry_after)
        self._faults.append(_Fault("fail", count, route, status, after, body, content_type))

    def slow_next(self, seconds: float, count: int = 1, *, route: str | None = None) -> None:
        """Process normally (a create still creates its job), then answer `seconds` late."""
        self._faults.append(_Fault("slow", count, route, seconds=seconds))

    def malformed_next(self, count: int = 1, *, route: str | None = None) -> None:
        """Process normally, then answer 200 with the body cut in half (invalid JSON)."""
        self._faults.append(_Fault("malformed", count, route))

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take(self, kind: str, record: RecordedRequest) -> _Fault | None:
        for fault in self._faults:
            if fault.kind == kind and fault.matches(record):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # plumbing

    def _classify(self, path: str) -> tuple[Route, str]:
        if path.startswith("/storage/"):
            return "file", path.lstrip("/")
        if not path.startswith(self.prefix + "/"):
            return "other", path.lstrip("/")
        rest = path[len(self.prefix) + 1 :]
        if rest in KINDS:
            return "create", rest
        if re.fullmatch(r"item/[^/]+", rest):
            return "item", rest
        if re.fullmatch(r"item/[^/]+/pbn/(download|colors)/[^/]+", rest):
            return "extra", rest
        return "other", rest

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        route, path = self._classify(request.path)
        record = RecordedRequest(request.method, path, route, CIMultiDict(request.headers), dict(request.query))
        if route in ("item", "extra", "file"):
            record.job_key = path.split("/")[1]
        request[RECORD] = record
        if request.method == "POST":
            await self._parse_body(request, record)
        self.requests.append(record)

        response = await self._respond(request, handler, record)
        if self._take("malformed", record) is not None:
            record.fault = "malformed"
            body = response.body if isinstance(response, web.Response) else b""
            raw = bytes(body) if isinstance(body, bytes | bytearray) else b"{}"
            response = web.Response(
                status=200,
                body=raw[: max(1, len(raw) // 2)],
                headers={"Content-Type": response.headers.get("Content-Type", "application/json")},
            )
        slow = self._take("slow", record)
        if slow is not None:
            record.fault = f"slow:{slow.seconds}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), slow.seconds)
        record.status = response.status
        return response

    async def _respond(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        record: RecordedRequest,
    ) -> web.StreamResponse:
        failure = self._take("fail", record)
        if failure is not None:
            record.fault = f"fail:{failure.status}"
            return _fault_response(failure)
        if route_needs_auth(record.route) and not self._authorized(request):
            return _error(401, "Unauthenticated.")
        try:
            return await handler(request)
        except web.HTTPException as exc:  # unknown routes and methods answer JSON like the API does
            message = "Not found" if exc.status == 404 else exc.reason
            return _error(exc.status, message)

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.token

    async def _parse_body(self, request: web.Request, record: RecordedRequest) -> None:
        data: dict[str, Any] = {}
        files: dict[str, UploadedFile] = {}
        error: str | None = None
        if request.content_type == "application/json":
            raw = await request.read()
            try:
                parsed = json.loads(raw) if raw.strip() else {}
            except ValueError:
                parsed, error = None, "The request body is not valid JSON."
            record.json = parsed
            if isinstance(parsed, dict):
                data = parsed
            elif error is None:
                error = "The request body must be a JSON object."
        elif request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            for name, value in (await request.post()).items():
                if isinstance(value, str):
                    record.form.setdefault(name, value)
                    data.setdefault(name, value)
                elif name not in files:
                    upload = UploadedFile(value.filename, value.content_type, value.file.read())
                    files[name] = upload
                    record.files[name] = (upload.filename, upload.content_type, upload.data)
        request[INPUT] = _Input(data, files, error)

    # handlers

    async def _create(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        record: RecordedRequest = request[RECORD]
        if request[INPUT].error:
            return _error(400, request[INPUT].error)
        try:
            job = await asyncio.to_thread(self._validate, kind, request[INPUT])
        except ValidationError as exc:
            return _error(400, exc.message)
        prompt = job.params.get("prompt")
        if prompt and self.blocked_word and self.blocked_word.lower() in prompt.lower():
            return _error(400, CONTENT_POLICY_ERROR)
        if self.quota_remaining is not None:
            if self.quota_remaining <= 0:
                return _error(403, QUOTA_ERROR)
            self.quota_remaining -= 1
        self.jobs[job.key] = job
        record.job_key = job.key
        return web.json_response({"key": job.key, "status": "in_queue", "created": _stamp(job.created)})

    async def _item(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["key"])
        if job is None:
            return _error(404, "Not found")
        record: RecordedRequest = request[RECORD]
        job.polls += 1
        if job.polls <= self.early_404_polls:
            record.fault = "early_404"
            return _error(404, "Not found")
        if job.polls <= self.early_404_polls + self.html_polls:
            record.fault = "html"
            return web.Response(status=200, text=HTML_PAGE, content_type="text/html")
        status = job.status
        body: dict[str, Any] = {
            "key": job.key,
            "status": status,
            "created": _stamp(job.created),
            "updated": _stamp(job.updated),
        }
        if status == "ready":
            await self._render(job)
            body.update(self._ready_payload(job))
        elif status == "failed":
            body["error"] = job.error or self.failure_message
        return web.json_response(body)

    async def _pbn_download(self, request: web.Request) -> web.Response:
        job, problem = await self._pbn_job(request, DOWNLOAD_TYPES)
        if problem is not None:
            return problem
        assert job is not None
        kind = request.match_info["type"]
        content_type, ext = DOWNLOAD_TYPES[kind]
        return _attachment(job.downloads[kind], content_type, f"{job.key}.{ext}")

    async def _pbn_colors(self, request: web.Request) -> web.Response:
        job, problem = await self._pbn_job(request, COLOR_FILE_TYPES)
        if problem is not None:
            return problem
        assert job is not None
        kind = request.match_info["type"]
        data, content_type, filename = _palette_file(job.key, job.colors, kind)
        return _attachment(data, content_type, filename)

    async def _pbn_job(self, request: web.Request, types: Iterable[str]) -> tuple[Job | None, web.Response | None]:
        job = self.jobs.get(request.match_info["key"])
        if job is None or job.kind != "pbn":
            return None, _error(404, "Not found")
        if request.match_info["type"] not in types:
            return None, _error(400, "The selected type is invalid.")
        if job.status != "ready":
            return None, _error(400, "The item is not ready yet.")
        await self._render(job)
        return job, None

    async def _file(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["key"])
        entry = job.files.get(request.match_info["name"]) if job is not None and job.files else None
        if entry is None:
            return _error(404, "Not found")
        content_type, data = entry
        return web.Response(body=data, content_type=content_type)

    # results

    def _url(self, job: Job, name: str) -> str:
        return f"{self.origin}/storage/{job.key}/{name}"

    def _ready_payload(self, job: Job) -> dict[str, Any]:
        assert job.files is not None
        if job.kind == "pbn":
            images: Any = {
                "pbn": self._url(job, "pbn.png"),
                "picture": self._url(job, "picture.jpg"),
                "source": self._url(job, "source.jpg"),
            }
            return {"images": images, "colors": job.colors, "parameters": dict(job.params)}
        return {"images": [self._url(job, name) for name in job.files], "parameters": dict(job.params)}

    async def _render(self, job: Job) -> None:
        async with job._render_lock:
            if job.files is None:
                job.files, job.downloads = await asyncio.to_thread(_render_job, job, self.max_render_pixels)

    # validation: Laravel-style, first failing rule in the documented field order wins

    def _validate(self, kind: str, inp: _Input) -> Job:
        image: tuple[UploadedFile, tuple[int, int]] | None = None
        extra: dict[str, Any] = {}
        if kind == "coloring":
            image = inp.image(self.max_upload_bytes, required=True)
            version = inp.choice("version", ("v1", "v2"), default="v2")
            assert version is not None
            params: dict[str, Any] = {
                "version": version,
                "type": inp.choice("type", COLORING_TYPES[version], default=COLORING_TYPES[version][0]),
            }
        elif kind == "pbn":
            image, params = self._validate_pbn(inp)
        elif kind == "ai/coloring":
            prompt = inp.prompt(required=True)
            style = inp.choice("style", AI_COLORING_STYLES, required=True)
            ratio = inp.choice("aspectRatio", AI_COLORING_RATIOS, default="1x1")
            inp.choice("version", ("v1", "v2"), required=True)
            width, height = _ratio_size(ratio or "1x1", self.ai_base_size)
            params = {
                "prompt": prompt,
                "style": style,
                "aspectRatio": ratio,
                "width": width,
                "height": height,
            }
        elif kind == "ai/image":
            prompt = inp.prompt(required=True)
            ratio = inp.choice("aspectRatio", AI_IMAGE_RATIOS, required=True)
            width, height = _ratio_size(ratio or "1x1", self.ai_base_size)
            params = {"prompt": prompt, "style": None, "aspectRatio": ratio, "width": width, "height": height}
        elif kind == "image/upscale":
            image = inp.image(self.max_upload_bytes, required=True, max_side=UPSCALE_MAX_SIDE)
            requested = inp.integer("upscale", required=True, options=(2, 4))
            assert image is not None
            assert requested is not None
            (width, height) = image[1]
            factor = 2 if max(width, height) > UPSCALE_4X_MAX_SIDE else requested
            extra["requested_upscale"] = requested
            params = {"upscale": factor, "width": width * factor, "height": height * factor}
        else:  # image/filter
            image = inp.image(self.max_upload_bytes, required=True)
            filter_type = inp.string("filterType", required=True, max_len=255)
            if self.filter_types is not None and filter_type not in self.filter_types:
                raise ValidationError("The selected filter type is invalid.")
            params = {"filterType": filter_type, "strength": inp.strength()}

        upload = image[0] if image else None
        markers = [params.get("prompt") or "", upload.filename if upload else ""]
        fail_with = (
            self.failure_message if self.fail_marker and any(self.fail_marker in text for text in markers) else None
        )
        created = _now()
        return Job(
            key=str(uuid.uuid4()),
            kind=kind,
            params=params,
            image=upload.data if upload else None,
            image_size=image[1] if image else None,
            created=created,
            queue_seconds=self.queue_seconds,
            processing_seconds=self.processing_seconds,
            auto=self.auto_advance,
            fail_with=fail_with,
            image_count=self.ai_image_count if kind.startswith("ai/") else 1,
            _updated=created,
            **extra,
        )

    def _validate_pbn(self, inp: _Input) -> tuple[tuple[UploadedFile, tuple[int, int]] | None, dict[str, Any]]:
        has_image = inp.has("image") or "image" in inp.files
        has_prompt = inp.has("prompt")
        if not has_image and not has_prompt:
            raise ValidationError(PBN_SOURCE_ERROR)
        if has_image and has_prompt:
            raise ValidationError(PBN_BOTH_ERROR)
        image = inp.image(self.max_upload_bytes, required=True) if has_image else None
        prompt = inp.prompt(required=True) if has_prompt else None
        number_of_colors = inp.integer("numberOfColors", default=30, between=(7, 100))
        segments = inp.choice("segmentsComplexity", SEGMENTS_COMPLEXITY, default="none")
        gradient = inp.choice("gradientStep", GRADIENT_STEPS, default="high")
        precision = inp.choice("colorPrecision", COLOR_PRECISIONS, default="high")
        canvas = inp.canvas_size()
        crop = inp.boolean("crop", strict=self.strict_booleans)
        details = inp.choice("detailsFilter", DETAILS_FILTERS)
        palette = inp.integer("palette")
        if palette is not None and palette not in self.palettes:
            raise ValidationError("The selected palette is invalid.")
        palette_colors = inp.string("paletteColors")
        if palette_colors is not None:
            codes = [code.strip() for code in palette_colors.split(",") if code.strip()]
            if len(codes) < 7:
                raise ValidationError("The palette colors field must contain at least 7 colors.")
            if palette is None:
                raise ValidationError("The palette field is required when palette colors is present.")
            known = {_norm_code(code) for code in self.palettes[palette]}
            if any(_norm_code(code) not in known for code in codes):
                raise ValidationError("The selected palette colors is invalid.")
        mix = inp.boolean("mixPalette", strict=self.strict_booleans)
        ai_filter = inp.choice("aiFilterType", AI_FILTER_TYPES, default="none")
        min_area = inp.integer("minArea", default=0, between=(0, 100))
        params = {
            "prompt": prompt,
            "numberOfColors": number_of_colors,
            "segmentsComplexity": segments,
            "gradientStep": gradient,
            "colorPrecision": precision,
            "canvasSize": canvas,
            "crop": crop,
            "detailsFilter": details,
            "palette": palette,
            "paletteColors": palette_colors,
            "mixPalette": mix,
            "aiFilterType": ai_filter,
            "minArea": min_area,
        }
        return image, params


def route_needs_auth(route: Route) -> bool:
    # Result files live on public storage URLs, as the real ones do; everything else needs the token.
    return route != "file"


# --- input validation helpers --------------------------------------------------------------------------


def _label(name: str) -> str:
    """Laravel's displayable attribute: numberOfColors -> "number of colors"."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def _norm_code(code: str) -> str:
    return code.strip().lstrip("#").upper()


class _Input:
    """Request fields from multipart, urlencoded or JSON; strings trimmed and "" treated as absent, as
    Laravel's TrimStrings and ConvertEmptyStringsToNull middleware do."""

    def __init__(self, data: Mapping[str, Any], files: dict[str, UploadedFile], error: str | None = None) -> None:
        self.data = data
        self.files = files
        self.error = error  # the body could not be parsed at all

    def value(self, name: str) -> Any:
        value = self.data.get(name)
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    def has(self, name: str) -> bool:
        return self.value(name) is not None

    def string(
        self, name: str, *, required: bool = False, min_len: int | None = None, max_len: int | None = None
    ) -> str | None:
        value = self.value(name)
        label = _label(name)
        if value is None:
            if required:
                raise ValidationError(f"The {label} field is required.")
            return None
        if not isinstance(value, str):
            raise ValidationError(f"The {label} field must be a string.")
        if min_len is not None and len(value) < min_len:
            raise ValidationError(f"The {label} field must be at least {min_len} characters.")
        if max_len is not None and len(value) > max_len:
            raise ValidationError(f"The {label} field must not be greater than {max_len} characters.")
        return value

    def prompt(self, *, required: bool) -> str | None:
        return self.string("prompt", required=required, min_len=3, max_len=600)

    def choice(
        self, name: str, options: Iterable[str], *, required: bool = False, default: str | None = None
    ) -> str | None:
        value = self.value(name)
        if value is None:
            if required:
                raise ValidationError(f"The {_label(name)} field is required.")
            return default
        if isinstance(value, bool) or str(value) not in tuple(options):
            raise ValidationError(f"The selected {_label(name)} is invalid.")
        return str(value)

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        default: int | None = None,
        between: tuple[int, int] | None = None,
        options: tuple[int, ...] | None = None,
    ) -> int | None:
        value = self.value(name)
        label = _label(name)
        if value is None:
            if required:
                raise ValidationError(f"The {label} field is required.")
            return default
        number = _as_int(value)
        if number is None:
            if options is not None:  # `in:2,4` fails before `integer` would for junk like "4x"
                raise ValidationError(f"The selected {label} is invalid.")
            raise ValidationError(f"The {label} field must be an integer.")
        if options is not None and number not in options:
            raise ValidationError(f"The selected {label} is invalid.")
        if between is not None and not between[0] <= number <= between[1]:
            raise ValidationError(f"The {label} field must be between {between[0]} and {between[1]}.")
        return number

    def boolean(self, name: str, *, strict: bool) -> bool:
        value = self.value(name)
        if value is None:
            return False
        accepted: dict[Any, bool] = {"1": True, "0": False}
        if not strict:
            accepted |= {"true": True, "false": False}
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in accepted:
            return accepted[value.lower()]
        raise ValidationError(f"The {_label(name)} field must be true or false.")

    def canvas_size(self) -> str | None:
        value = self.string("canvasSize")
        if value is None or value == "none":
            return None
        match = re.fullmatch(r"(\d+(?:\.\d+)?)x(\d+(?:\.\d+)?)", value)
        if match is None:
            raise ValidationError("The canvas size field format is invalid.")
        if not all(4 <= float(side) <= 45 for side in match.groups()):
            raise ValidationError("The canvas size must be between 4x4 and 45x45 inches.")
        return value

    def strength(self) -> float:
        value = self.value("strength")
        if value is None:
            raise ValidationError("The strength field is required.")
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise ValidationError("The strength field must be a number.")
        for option in FILTER_STRENGTHS:
            if abs(number - option) < 1e-9:
                return option
        raise ValidationError("The selected strength is invalid.")

    def image(
        self, max_bytes: int, *, required: bool, max_side: int | None = None
    ) -> tuple[UploadedFile, tuple[int, int]] | None:
        """Rules in Laravel order: required, file, mimes (by content), max size, dimensions."""
        upload = self.files.get("image")
        if upload is None:
            if self.has("image"):
                raise ValidationError("The image field must be a file.")
            if required:
                raise ValidationError("The image field is required.")
            return None
        if not upload.data:
            raise ValidationError("The image field is required.")
        size = _probe_image(upload.data)
        if len(upload.data) > max_bytes:
            raise ValidationError(f"The image field must not be greater than {max_bytes // 1024} kilobytes.")
        if max_side is not None and max(size) > max_side:
            raise ValidationError("The image field has invalid image dimensions.")
        return upload, size


INPUT = web.RequestKey("input", _Input)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    return None


_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1")


def _probe_image(data: bytes) -> tuple[int, int]:
    """The image's size if its content is an accepted format that decodes; the API's error otherwise."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in IMAGE_FORMATS:
                raise ValidationError(f"The image field must be a file of type: {MIMES}.")
            if img.width * img.height <= 40_000_000:  # decode small ones fully: catches truncated files
                img.load()
            return img.size
    except ValidationError:
        raise
    except Exception as exc:  # Pillow and pillow-heif raise a variety of errors for broken files
        if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
            raise ValidationError("Failed to process HEIC image") from exc
        raise ValidationError(f"The image field must be a file of type: {MIMES}.") from exc


# --- responses -----------------------------------------------------------------------------------------


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _fault_response(fault: _Fault) -> web.Response:
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    body = fault.body
    if body is None:
        body = {"error": DEFAULT_FAULT_BODIES.get(fault.status, "Error")}
    if isinstance(body, str | bytes):
        raw = body.encode() if isinstance(body, str) else body
        content_type = fault.content_type or "text/plain"
        headers["Content-Type"] = content_type
        return web.Response(status=fault.status, body=raw, headers=headers)
    if fault.content_type:
        headers["Content-Type"] = fault.content_type
        return web.Response(status=fault.status, body=json.dumps(body).encode(), headers=headers)
    return web.json_response(body, status=fault.status, headers=headers)


def _attachment(data: bytes, content_type: str, filename: str) -> web.Response:
    return web.Response(
        body=data,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _format_number(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _ratio_size(ratio: str, base: int) -> tuple[int, int]:
    """The short side is `base`: 1x1 -> 512x512, 2x3 -> 512x768 (the doc's 3x4 at 1024 -> 1024x1365)."""
    w, h = (int(part) for part in ratio.split("x"))
    if w <= h:
        return base, round(base * h / w)
    return round(base * w / h), base


# --- rendering (runs in a worker thread) ---------------------------------------------------------------


def _rng(*seed: object) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, seed)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=88)
    else:
        image.save(out, fmt)
    return out.getvalue()


def _open_rgb(data: bytes, max_side: int | None = None) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        if max_side is not None and max(img.size) > max_side:
            img.draft("RGB", (max_side, max_side))  # JPEG: decode at reduced scale, cheaply
        image = ImageOps.exif_transpose(img).convert("RGB")
    if max_side is not None:
        image.thumbnail((max_side, max_side))
    return image


def _line_art(image: Image.Image) -> Image.Image:
    """A coloring page from a picture: black edge lines on white."""
    edges = image.convert("L").filter(ImageFilter.SMOOTH).filter(ImageFilter.FIND_EDGES)
    lines = edges.point(lambda v: 0 if v > 24 else 255).filter(ImageFilter.MinFilter(3))
    page = lines.convert("RGB")
    ImageDraw.Draw(page).rectangle((0, 0, page.width - 1, page.height - 1), outline=(0, 0, 0), width=3)
    return page


def _shapes(draw: ImageDraw.ImageDraw, rnd: random.Random, width: int, height: int, *, filled: bool) -> None:
    for _ in range(7):
        x0, y0 = rnd.randrange(width * 3 // 4), rnd.randrange(height * 3 // 4)
        x1 = min(width - 4, x0 + rnd.randint(width // 8, width // 3))
        y1 = min(height - 4, y0 + rnd.randint(height // 8, height // 3))
        fill = tuple(rnd.randrange(256) for _ in range(3)) if filled else None
        if rnd.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), outline=(0, 0, 0), width=3, fill=fill)
        else:
            draw.rectangle((x0, y0, x1, y1), outline=(0, 0, 0), width=3, fill=fill)


def _ai_coloring_page(width: int, height: int, seed: str) -> Image.Image:
    page = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    _shapes(draw, _rng(seed), width, height, filled=False)
    draw.line((0, height * 5 // 6, width, height * 5 // 6), fill=(0, 0, 0), width=3)
    draw.rectangle((0, 0, width - 1, height - 1), outline=(0, 0, 0), width=3)
    return page


def _ai_picture(width: int, height: int, seed: str, label: str) -> Image.Image:
    rnd = _rng(seed)
    top, bottom = (tuple(rnd.randrange(256) for _ in range(3)) for _ in range(2))
    picture = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(picture)
    for y in range(height):  # a vertical gradient, so the picture is not flat
        t = y / max(1, height - 1)
        draw.line((0, y, width, y), fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    _shapes(draw, rnd, width, height, filled=True)
    draw.text((10, 10), label[:48], fill=(255, 255, 255), font=_font(16))
    return picture


def _filtered(image: Image.Image, filter_type: str, strength: float) -> Image.Image:
    effects: list[Callable[[Image.Image], Image.Image]] = [
        lambda img: ImageOps.posterize(img, 3).filter(ImageFilter.EDGE_ENHANCE_MORE),
        lambda img: img.filter(ImageFilter.CONTOUR),
        lambda img: img.filter(ImageFilter.EMBOSS),
        lambda img: ImageOps.solarize(img, 128),
    ]
    styled = effects[_rng(filter_type).randrange(len(effects))](image)
    return Image.blend(image, styled, strength)


def _pick_colors(params: dict[str, Any]) -> list[dict[str, Any]]:
    count = int(params["numberOfColors"])
    if params.get("paletteColors"):
        names = {_norm_code(hex_code): name for name, hex_code in NAMED_COLORS}
        codes = [code.strip() for code in str(params["paletteColors"]).split(",") if code.strip()][:count]
        chosen = [(names.get(_norm_code(code), f"Color {code}"), "#" + _norm_code(code)) for code in codes]
    else:
        chosen = NAMED_COLORS[:count]
    return [{"number": i, "hex": hex_code, "name": name} for i, (name, hex_code) in enumerate(chosen, 1)]


def _hex_rgb(hex_code: str) -> tuple[int, int, int]:
    value = hex_code.lstrip("#")
    if not re.fullmatch(r"[0-9A-Fa-f]{6}", value):  # a palette code that is not a hex colour
        digest = hashlib.sha256(value.encode()).digest()
        return digest[0], digest[1], digest[2]
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _pbn(job: Job) -> tuple[dict[str, tuple[str, bytes]], dict[str, bytes]]:
    params = job.params
    if job.image is not None:
        source = _open_rgb(job.image, 768)
    else:
        source = _ai_picture(512, 512, job.key, str(params["prompt"]))
    width, height = source.size
    if params["crop"] and params["canvasSize"]:  # crop to cover the canvas: its aspect ratio wins
        cw, ch = (float(side) for side in str(params["canvasSize"]).split("x"))
        width, height = (512, round(512 * ch / cw)) if cw >= ch else (round(512 * cw / ch), 512)
        source = ImageOps.fit(source, (width, height))
    scale = 512 / max(width, height)
    width, height = max(64, round(width * scale)), max(64, round(height * scale))

    colors = job.colors
    count = len(colors)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    picture = Image.new("RGB", (width, height), (255, 255, 255))
    template = Image.new("RGB", (width, height), (255, 255, 255))
    paint, outline = ImageDraw.Draw(picture), ImageDraw.Draw(template)
    font = _font(max(9, min(width // cols, height // rows) // 3))
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="#FFFFFF"/>',
    ]
    for index in range(rows * cols):
        row, col = divmod(index, cols)
        box = (
            col * width // cols,
            row * height // rows,
            (col + 1) * width // cols,
            (row + 1) * height // rows,
        )
        number = index % count + 1
        fill = _hex_rgb(colors[number - 1]["hex"])
        paint.rectangle(box, fill=fill)
        outline.rectangle(box, outline=(0, 0, 0), width=1)
        cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
        outline.text((cx, cy), str(number), fill=(0, 0, 0), font=font, anchor="mm")
        svg.append(
            f'<rect x="{box[0]}" y="{box[1]}" width="{box[2] - box[0]}" height="{box[3] - box[1]}" '
            f'fill="none" stroke="#000000" stroke-width="1"/>'
            f'<text x="{cx}" y="{cy}" font-size="12" text-anchor="middle" '
            f'dominant-baseline="middle">{number}</text>'
        )
    svg.append("</svg>")
    files = {
        "pbn.png": ("image/png", _encode(template, "PNG")),
        "picture.jpg": ("image/jpeg", _encode(picture, "JPEG")),
        "source.jpg": ("image/jpeg", _encode(source, "JPEG")),
    }
    downloads = {
        "svg": "\n".join(svg).encode(),
        "png": files["pbn.png"][1],
        "pdf": _encode(template, "PDF"),
        "jpeg": _encode(template, "JPEG"),
    }
    return files, downloads


def _render_job(job: Job, max_pixels: int) -> tuple[dict[str, tuple[str, bytes]], dict[str, bytes]]:
    params = job.params
    if job.kind == "pbn":
        job.colors = _pick_colors(params)
        return _pbn(job)
    if job.kind == "coloring":
        assert job.image is not None
        return {"coloring.png": ("image/png", _encode(_line_art(_open_rgb(job.image, 1024)), "PNG"))}, {}
    if job.kind in ("ai/coloring", "ai/image"):
        width, height = int(params["width"]), int(params["height"])
        files = {}
        for n in range(1, job.image_count + 1):
            seed = f"{job.key}/{n}"
            if job.kind == "ai/coloring":
                files[f"image-{n}.png"] = (
                    "image/png",
                    _encode(_ai_coloring_page(width, height, seed), "PNG"),
                )
            else:
                picture = _ai_picture(width, height, seed, str(params["prompt"]))
                files[f"image-{n}.jpg"] = ("image/jpeg", _encode(picture, "JPEG"))
        return files, {}
    assert job.image is not None
    if job.kind == "image/upscale":
        width, height = int(params["width"]), int(params["height"])
        if width * height > max_pixels:  # keep memory small; `parameters` still report the real size
            shrink = math.sqrt(max_pixels / (width * height))
            width, height = max(1, int(width * shrink)), max(1, int(height * shrink))
        upscaled = _open_rgb(job.image).resize((width, height), Image.Resampling.BICUBIC)
        return {"upscaled.jpg": ("image/jpeg", _encode(upscaled, "JPEG"))}, {}
    filtered = _filtered(_open_rgb(job.image, 2048), str(params["filterType"]), float(params["strength"]))
    return {"filtered.jpg": ("image/jpeg", _encode(filtered, "JPEG"))}, {}


# --- palette files -------------------------------------------------------------------------------------


def _palette_file(key: str, colors: list[dict[str, Any]], kind: str) -> tuple[bytes, str, str]:
    """(bytes, content type, filename). Above 30 colours: a zip of files of at most 30 colours each."""
    ext = {"csv": "csv", "gpl": "gpl", "kpl": "kpl", "swatches": "swatches"}[kind]
    content_type = {"csv": "text/csv", "gpl": "text/plain"}.get(kind, "application/octet-stream")
    chunks = [colors[i : i + SWATCHES_PER_FILE] for i in range(0, len(colors), SWATCHES_PER_FILE)]
    if len(chunks) == 1:
        return _palette_bytes(kind, f"Mimi Panda {key}", colors), content_type, f"{key}.{ext}"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, chunk in enumerate(chunks, 1):
            archive.writestr(f"{key}-{n}.{ext}", _palette_bytes(kind, f"Mimi Panda {key} ({n})", chunk))
    return out.getvalue(), "application/zip", f"{key}-{kind}.zip"


def _palette_bytes(kind: str, title: str, colors: list[dict[str, Any]]) -> bytes:
    rgb = [(c, _hex_rgb(c["hex"])) for c in colors]
    if kind == "csv":
        lines = ["number,name,hex,r,g,b"] + [
            f'{c["number"]},"{c["name"]}",{c["hex"]},{r},{g},{b}' for c, (r, g, b) in rgb
        ]
        return ("\r\n".join(lines) + "\r\n").encode()
    if kind == "gpl":
        lines = ["GIMP Palette", f"Name: {title}", "Columns: 10", "#"]
        lines += [f"{r:3d} {g:3d} {b:3d}\t{c['number']} {c['name']}" for c, (r, g, b) in rgb]
        return ("\n".join(lines) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if kind == "kpl":  # Krita: a zip whose first entry is the stored mimetype
            archive.writestr(zipfile.ZipInfo("mimetype"), "krita/x-colorset", compress_type=zipfile.ZIP_STORED)
            entries = "".join(_kpl_entry(c, r, g, b) for c, (r, g, b) in rgb)
            archive.writestr(
                "colorset.xml",
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Colorset version="1.0" readonly="false" '
                f'columns="10" rows="{math.ceil(len(colors) / 10)}" name="{escape(title)}" comment="">'
                f"{entries}</Colorset>\n",
            )
        else:  # Procreate .swatches: a zip holding Swatches.json with HSB values
            swatches = []
            for _, (r, g, b) in rgb:
                h, s, v = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
                swatches.append({"hue": h, "saturation": s, "brightness": v, "alpha": 1, "colorSpace": 0})
            archive.writestr("Swatches.json", json.dumps([{"name": title, "swatches": swatches}]))
    return out.getvalue()


def _kpl_entry(colour: dict[str, Any], r: int, g: int, b: int) -> str:
    index = colour["number"] - 1
    return (
        f'<ColorSetEntry name="{escape(colour["name"])}" id="{colour["number"]}" spot="false" bitdepth="U8">'
        f'<RGB r="{r / 255:.4f}" g="{g / 255:.4f}" b="{b / 255:.4f}" space="sRGB-elle-V2-srgbtrc.icc"/>'
        f'<Position row="{index // 10}" column="{index % 10}"/></ColorSetEntry>'
    )
