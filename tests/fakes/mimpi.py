"""A fake of the mimpi.ai API (person-model training and portrait generation) for the test suite.

A real aiohttp server on 127.0.0.1 that speaks the documented protocol (seed 000, docs/providers.md §1):
bearer auth, signed-URL uploads, models and prompts that move PENDING -> RUNNING -> COMPLETED | FAILED
over time, callbacks, test keys, billing, the 30-concurrent-models limit and injected faults.

    fake = FakeMimpi(api_key="mk_live_123", test_keys={"mk_test_123"}, no_card_keys=set())
    await fake.start()          # fake.base_url == "http://127.0.0.1:PORT/api"
    ...
    await fake.stop()

Trigger words: a model subject or a prompt containing "FAILME" ends FAILED.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import secrets
import string
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from aiohttp import web
from PIL import Image, ImageDraw, ImageFont

from tests.fakes.loopback import LoopbackServer

Status = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED"]
ACTIVE: frozenset[str] = frozenset({"PENDING", "RUNNING"})
TERMINAL: frozenset[str] = frozenset({"COMPLETED", "FAILED"})
FAIL_TRIGGER = "FAILME"
NO_CARD_ERROR = "No payment card connected. Please add a payment card in the dashboard."
MODEL_FAILED_MESSAGE = "Training failed: no face could be detected in the training images"
PROMPT_FAILED_MESSAGE = "Image generation failed"

_ID_ALPHABET = string.ascii_lowercase + string.digits


def _new_id(prefix: str = "c") -> str:
    # cuid-like ids, as in the doc's example "cs123123123"
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def _now_iso() -> str:
    # the JavaScript toISOString() form a Node backend would emit
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_jpeg(data: bytes) -> bool:
    if not data.startswith(b"\xff\xd8\xff"):
        return False
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            return image.format == "JPEG"
    except Exception:
        return False


def render_portrait(text: str, index: int = 0, size: int = 512) -> bytes:
    """A real JPEG "portrait": a head-and-shoulders silhouette with `text` written under it."""
    digest = hashlib.sha256(f"{text}|{index}".encode()).digest()
    image = Image.new("RGB", (size, size), (digest[0], digest[1], digest[2]))
    draw = ImageDraw.Draw(image)
    skin = (224, 186, 150)
    cx = size // 2
    draw.ellipse((cx - size // 2.6, size * 0.62, cx + size // 2.6, size * 1.2), fill=(40, 40, 60))
    draw.ellipse((cx - size // 7, size * 0.18, cx + size // 7, size * 0.56), fill=skin, outline=(0, 0, 0))
    draw.rectangle((0, size * 0.78, size, size), fill=(0, 0, 0))
    font = ImageFont.load_default(size=max(10, size // 32))
    lines = textwrap.wrap(f"#{index + 1} {text}", width=48)[:3]
    draw.multiline_text((10, size * 0.8), "\n".join(lines), fill=(255, 255, 255), font=font)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    body_length: int


@dataclass
class CallbackAttempt:
    url: str
    body: dict[str, Any]
    status: int | None  # HTTP status of the receiver, None when delivery failed
    error: str | None


@dataclass
class Fault:
    status: int
    remaining: int
    retry_after: float | str | None = None
    body: Any = None  # dict/list -> JSON, str/bytes -> sent raw (e.g. a gateway's HTML page)
    route: str | None = None


@dataclass
class Slowdown:
    seconds: float
    remaining: int
    route: str | None = None


@dataclass
class SignedUpload:
    id: str
    key: str
    sig: str
    expires: int


@dataclass
class _Job:
    id: str
    key: str
    callback_url: str | None
    is_test: bool
    created_at: str = field(default_factory=_now_iso)
    status: Status = "PENDING"
    progress: int = 0
    failed_message: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


@dataclass
class FakeModelJob(_Job):
    subject: str = ""
    image_ids: list[str] = field(default_factory=list)
    prompt_ids: list[str] = field(default_factory=list)

    @property
    def kind(self) -> Literal["model"]:
        return "model"

    @property
    def fails(self) -> bool:
        return FAIL_TRIGGER in self.subject


@dataclass
class FakePromptJob(_Job):
    prompt: str = ""
    model_id: str = ""
    image_count: int = 1
    image_size: int = 512
    image_paths: list[str] = field(default_factory=list)

    @property
    def kind(self) -> Literal["prompt"]:
        return "prompt"

    @property
    def fails(self) -> bool:
        return FAIL_TRIGGER in self.prompt


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class FakeMimpi(LoopbackServer):
    """Fake mimpi.ai. Every key is its own account; `api_key` and `other_keys` are live keys."""

    def __init__(
        self,
        api_key: str = "mk_live_123",
        test_keys: Iterable[str] = (),
        no_card_keys: Iterable[str] = (),
        *,
        other_keys: Iterable[str] = (),
        model_seconds: float = 0.2,
        prompt_seconds: float = 0.1,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.test_keys: set[str] = set(test_keys)
        self.no_card_keys: set[str] = set(no_card_keys)
        self.live_keys: set[str] = {api_key, *other_keys}

        # behaviour knobs, changeable at any time
        self.signed_url_methods: set[str] = {"POST"}
        self.max_concurrent_models = 30
        self.max_image_count = 8
        self.max_prompt_chars = 1000
        self.image_size = 512
        self.model_seconds = model_seconds
        self.prompt_seconds = prompt_seconds
        self.auto_advance = True
        self.signed_url_ttl = 3600
        self.max_upload_bytes = 10 * 1024 * 1024
        self.callback_timeout = 2.0
        # storage rejects a signed-URL PUT that also carries an Authorization header (as S3 does), which
        # also catches a client leaking its API key to the storage host
        self.reject_upload_authorization = True

        # records
        self.requests: list[RecordedRequest] = []
        self.models: dict[str, FakeModelJob] = {}
        self.prompts: dict[str, FakePromptJob] = {}
        self.signed: dict[str, SignedUpload] = {}
        self.uploads: dict[str, bytes] = {}
        self.used_image_ids: set[str] = set()
        self.files: dict[str, bytes] = {}  # path under /files/ -> JPEG bytes
        self.callbacks: list[CallbackAttempt] = []
        self.errors: list[BaseException] = []  # unexpected exceptions in background work

        self._faults: list[Fault] = []
        self._slowdowns: list[Slowdown] = []
        self._secret = secrets.token_bytes(16)
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._http: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ lifecycle of the server

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api"

    @property
    def valid_keys(self) -> set[str]:
        return self.live_keys | self.test_keys | self.no_card_keys

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/signedUrl", self._signed_url)
        app.router.add_post("/api/model", self._create_model)
        app.router.add_get("/api/model/{id}", self._get_model)
        app.router.add_post("/api/prompt", self._create_prompt)
        app.router.add_get("/api/prompt/{id}", self._get_prompt)
        app.router.add_put("/upload/{id}", self._upload)
        app.router.add_get("/files/{path:.+}", self._file)
        await self.serve(app)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().stop()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        status: int,
        count: int = 1,
        retry_after: float | str | None = None,
        body: Any = None,
        route: str | None = None,
    ) -> None:
        """The next `count` matching requests get `status` without being processed (no side effects).

        `route` is None (any request), a path ("/model", "/api/model", "/upload") matched as a prefix,
        or "METHOD /path" ("POST /model").
        """
        self._faults.append(Fault(status, count, retry_after, body, route))

    def slow_next(self, seconds: float, count: int = 1, route: str | None = None) -> None:
        """Delay the next `count` matching responses. The request is processed first, so a client that
        times out on a create has still created (and may be billed for) the job."""
        self._slowdowns.append(Slowdown(seconds, count, route))

    @staticmethod
    def _route_matches(route: str | None, method: str, path: str) -> bool:
        if route is None:
            return True
        want_method, _, want_path = route.rpartition(" ")
        if want_method and want_method.upper() != method:
            return False
        candidates = {path, path.removeprefix("/api")}
        want_path = want_path.rstrip("/") or "/"
        return any(p == want_path or p.startswith(want_path + "/") for p in candidates)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if self._route_matches(fault.route, method, path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _take_slowdown(self, method: str, path: str) -> float:
        for slow in self._slowdowns:
            if self._route_matches(slow.route, method, path):
                slow.remaining -= 1
                if slow.remaining <= 0:
                    self._slowdowns.remove(slow)
                return slow.seconds
        return 0.0

    @staticmethod
    def _fault_response(fault: Fault) -> web.Response:
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        if fault.body is None:
            reasons = {
                429: "Too many requests",
                500: "Internal Server Error",
                502: "Bad Gateway",
                503: "Service Unavailable",
                504: "Gateway Timeout",
            }
            return web.json_response(
                {"error": reasons.get(fault.status, "Error")}, status=fault.status, headers=headers
            )
        if isinstance(fault.body, (dict, list)):
            return web.json_response(fault.body, status=fault.status, headers=headers)
        raw = fault.body.encode() if isinstance(fault.body, str) else fault.body
        return web.Response(body=raw, status=fault.status, headers=headers, content_type="text/html")

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        body = await request.read()
        parsed: Any = None
        if body and not request.path.startswith("/upload/"):
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        self.requests.append(
            RecordedRequest(request.method, request.path, dict(request.query), dict(request.headers), parsed, len(body))
        )
        fault = self._take_fault(request.method, request.path)
        if fault is not None:
            return self._fault_response(fault)
        delay = self._take_slowdown(request.method, request.path)
        response = await handler(request)
        if delay:
            await asyncio.sleep(delay)
        return response

    # ------------------------------------------------------------------ helpers for handlers

    def _auth(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or token not in self.valid_keys:
            return None
        return token

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any] | None:
        # lenient like a Node backend calling req.json(): the Content-Type is not checked
        try:
            data = json.loads(await request.read() or b"null")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _sign(self, image_id: str, expires: int) -> str:
        return hmac.new(self._secret, f"{image_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    def _file_url(self, path: str) -> str:
        return f"{self.origin}/files/{path}"

    def _active_models(self, key: str) -> int:
        return sum(1 for m in self.models.values() if m.key == key and m.status in ACTIVE)

    def model_json(self, model: FakeModelJob) -> dict[str, Any]:
        return {
            "id": model.id,
            "callbackUrl": model.callback_url,
            "imageUrls": [self._file_url(f"uploads/{i}.jpg") for i in model.image_ids],
            "subject": model.subject,
            "createdAt": model.created_at,
            "status": model.status,
            "progress": model.progress,
            "failedMessage": model.failed_message,
            "isTest": model.is_test,
            "prompts": [
                {"id": p.id, "generatedImages": self._images(p), "status": p.status}
                for p in (self.prompts[pid] for pid in model.prompt_ids)
            ],
        }

    def prompt_json(self, prompt: FakePromptJob) -> dict[str, Any]:
        return {
            "id": prompt.id,
            "callbackUrl": prompt.callback_url,
            "generatedImages": self._images(prompt),
            "imageCount": prompt.image_count,
            "imageSize": prompt.image_size,
            "createdAt": prompt.created_at,
            "status": prompt.status,
            "progress": prompt.progress,
            "failedMessage": prompt.failed_message,
            "isTest": prompt.is_test,
        }

    def _images(self, prompt: FakePromptJob) -> list[str]:
        return [self._file_url(p) for p in prompt.image_paths] if prompt.status == "COMPLETED" else []

    # ------------------------------------------------------------------ API handlers

    async def _signed_url(self, request: web.Request) -> web.Response:
        if request.method not in self.signed_url_methods:
            allow = ", ".join(sorted(self.signed_url_methods))
            return _error(405, "Method not allowed", {"Allow": allow})
        key = self._auth(request)
        if key is None:
            return _error(401, "Unauthorized")
        image_id = _new_id("ci")
        expires = int(time.time()) + self.signed_url_ttl
        sig = self._sign(image_id, expires)
        self.signed[image_id] = SignedUpload(image_id, key, sig, expires)
        url = f"{self.origin}/upload/{image_id}?expires={expires}&sig={sig}"
        return web.json_response({"data": {"id": image_id, "url": url}})

    async def _upload(self, request: web.Request) -> web.Response:
        # storage-style answers (XML), as from a cloud bucket, not the API's JSON
        def storage_error(status: int, code: str) -> web.Response:
            body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code></Error>'
            return web.Response(status=status, text=body, content_type="application/xml")

        image_id = request.match_info["id"]
        signed = self.signed.get(image_id)
        try:
            expires = int(request.query.get("expires", ""))
        except ValueError:
            return storage_error(403, "SignatureDoesNotMatch")
        sig = request.query.get("sig", "")
        if signed is None or not hmac.compare_digest(sig, self._sign(image_id, expires)):
            return storage_error(403, "SignatureDoesNotMatch")
        if expires < time.time():
            return storage_error(403, "ExpiredToken")
        if self.reject_upload_authorization and "Authorization" in request.headers:
            return storage_error(400, "InvalidArgument")
        if image_id in self.used_image_ids:
            return storage_error(403, "AccessDenied")  # the object belongs to a model now
        if request.content_type != "image/jpeg":
            return storage_error(415, "InvalidContentType")
        data = await request.read()
        if len(data) > self.max_upload_bytes:
            return storage_error(413, "EntityTooLarge")
        if not _is_jpeg(data):
            return storage_error(400, "InvalidImage")
        self.uploads[image_id] = data
        self.files[f"uploads/{image_id}.jpg"] = data
        return web.Response(status=200, headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'})  # noqa: S324

    async def _create_model(self, request: web.Request) -> web.Response:
        key = self._auth(request)
        if key is None:
            return _error(401, "Unauthorized")
        body = await self._json_body(request)
        if body is None:
            return _error(400, "Invalid JSON body")
        subject = body.get("subject")
        if not isinstance(subject, str) or not subject.strip():
            return _error(400, "subject is required")
        callback_url = body.get("callbackUrl")
        if callback_url is not None and (not isinstance(callback_url, str) or "://" not in callback_url):
            return _error(400, "callbackUrl must be a valid URL")
        image_ids = body.get("imageIds")
        if not isinstance(image_ids, list) or not image_ids or not all(isinstance(i, str) for i in image_ids):
            return _error(400, "imageIds must be a non-empty array of image ids")
        for image_id in image_ids:
            signed = self.signed.get(image_id)
            # issued-but-never-uploaded ids are as unknown to the backend as made-up ones
            if signed is None or signed.key != key or image_id not in self.uploads:
                return _error(400, f"Image {image_id} not found")
            if image_id in self.used_image_ids:
                return _error(400, f"Image {image_id} is already used by another model")
        if len(set(image_ids)) != len(image_ids):
            return _error(400, "imageIds must not contain duplicates")
        if key in self.no_card_keys:
            return _error(402, NO_CARD_ERROR)
        is_test = key in self.test_keys
        if not is_test and self._active_models(key) >= self.max_concurrent_models:
            return _error(429, f"Too many concurrent models (limit {self.max_concurrent_models})")

        model = FakeModelJob(_new_id("cm"), key, callback_url, is_test, subject=subject, image_ids=list(image_ids))
        self.models[model.id] = model
        self.used_image_ids.update(image_ids)
        self._begin(model, self.model_seconds)
        return web.json_response({"data": self.model_json(model)})

    async def _get_model(self, request: web.Request) -> web.Response:
        key = self._auth(request)
        if key is None:
            return _error(401, "Unauthorized")
        model = self.models.get(request.match_info["id"])
        if model is None or model.key != key:
            return _error(404, "Model not found")
        return web.json_response({"data": self.model_json(model)})

    async def _create_prompt(self, request: web.Request) -> web.Response:
        key = self._auth(request)
        if key is None:
            return _error(401, "Unauthorized")
        body = await self._json_body(request)
        if body is None:
            return _error(400, "Invalid JSON body")
        text = body.get("prompt")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "prompt is required")
        if len(text) > self.max_prompt_chars:
            return _error(400, f"prompt must be at most {self.max_prompt_chars} characters")
        callback_url = body.get("callbackUrl")
        if callback_url is not None and (not isinstance(callback_url, str) or "://" not in callback_url):
            return _error(400, "callbackUrl must be a valid URL")
        count = body.get("imageCount")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= self.max_image_count:
            return _error(400, f"imageCount must be an integer between 1 and {self.max_image_count}")
        model_id = body.get("modelId")
        if not isinstance(model_id, str) or not model_id:
            return _error(400, "modelId is required")
        model = self.models.get(model_id)
        if model is None or model.key != key:
            return _error(404, "Model not found")
        if model.status != "COMPLETED":
            return _error(400, "Model is not ready")

        prompt = FakePromptJob(
            _new_id("cp"),
            key,
            callback_url,
            key in self.test_keys,
            prompt=text,
            model_id=model_id,
            image_count=count,
            image_size=self.image_size,
        )
        self.prompts[prompt.id] = prompt
        model.prompt_ids.append(prompt.id)
        self._begin(prompt, self.prompt_seconds)
        return web.json_response({"data": self.prompt_json(prompt)})

    async def _get_prompt(self, request: web.Request) -> web.Response:
        key = self._auth(request)
        if key is None:
            return _error(401, "Unauthorized")
        prompt = self.prompts.get(request.match_info["id"])
        if prompt is None or prompt.key != key:
            return _error(404, "Prompt not found")
        return web.json_response({"data": self.prompt_json(prompt)})

    async def _file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["path"])
        if data is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=data, content_type="image/jpeg")

    # ------------------------------------------------------------------ job lifecycles

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # recorded so a test can assert the fake itself stayed healthy
                self.errors.append(exc)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _begin(self, job: FakeModelJob | FakePromptJob, seconds: float) -> None:
        if job.is_test:
            # test keys: finished at once, callback fired immediately (possibly before the client has
            # read the create response, a race the client must tolerate)
            self._settle(job, "FAILED" if job.fails else "COMPLETED")
            self._spawn(self._finish(job, job.status))
        elif self.auto_advance:
            job.task = self._spawn(self._advance(job, seconds))

    async def _advance(self, job: FakeModelJob | FakePromptJob, seconds: float) -> None:
        steps = 10
        await asyncio.sleep(seconds * 0.2)
        job.status, job.progress = "RUNNING", 0
        self._touch()
        for step in range(1, steps):
            await asyncio.sleep(seconds * 0.8 / steps)
            job.progress = round(100 * step / steps)
            self._touch()
        await asyncio.sleep(seconds * 0.8 / steps)
        job.task = None  # finishing is not cancellable from here on
        self._settle(job, "FAILED" if job.fails else "COMPLETED")
        await self._finish(job, job.status)

    def _settle(self, job: FakeModelJob | FakePromptJob, status: Status, message: str | None = None) -> None:
        """Move a job to its terminal state and produce its results (no I/O)."""
        job.status = status
        if status == "COMPLETED":
            job.progress = 100
            if isinstance(job, FakePromptJob):
                job.image_paths = [self._render_result(job, n) for n in range(job.image_count)]
        else:
            default = MODEL_FAILED_MESSAGE if isinstance(job, FakeModelJob) else PROMPT_FAILED_MESSAGE
            job.failed_message = message or default
        self._touch()

    def _render_result(self, prompt: FakePromptJob, index: int) -> str:
        if prompt.is_test:
            # test keys answer with shared sample data, not the prompt
            path = f"samples/{index}.jpg"
            if path not in self.files:
                self.files[path] = render_portrait("sample portrait", index, 512)
            return path
        path = f"prompts/{prompt.id}/{index}.jpg"
        self.files[path] = render_portrait(prompt.prompt, index, prompt.image_size)
        return path

    async def _finish(self, job: FakeModelJob | FakePromptJob, status: str) -> None:
        if job.callback_url:
            await self._deliver(job.callback_url, {"id": job.id, "type": job.kind, "status": status})

    async def _deliver(self, url: str, body: dict[str, Any]) -> None:
        status: int | None = None
        error: str | None = None
        if self._http is None:  # created on first use: most tests never send a callback
            self._http = httpx.AsyncClient(timeout=self.callback_timeout)
        try:
            response = await self._http.post(url, json=body, timeout=self.callback_timeout)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.callbacks.append(CallbackAttempt(url, body, status, error))
        self._touch()

    # ------------------------------------------------------------------ manual control

    def _job(self, job_id: str) -> FakeModelJob | FakePromptJob:
        job = self.models.get(job_id) or self.prompts.get(job_id)
        if job is None:
            raise KeyError(f"no model or prompt {job_id!r}")
        return job

    def _take_over(self, job: FakeModelJob | FakePromptJob) -> None:
        if job.status in TERMINAL:
            raise ValueError(f"{job.kind} {job.id} is already {job.status}")
        if job.task is not None:
            job.task.cancel()
            job.task = None

    def set_progress(self, job_id: str, pct: int) -> None:
        """Model or prompt: RUNNING at `pct` percent; stops its automatic advance."""
        job = self._job(job_id)
        self._take_over(job)
        job.status, job.progress = "RUNNING", max(0, min(100, int(pct)))
        self._touch()

    async def _complete(self, job: FakeModelJob | FakePromptJob) -> None:
        self._take_over(job)
        self._settle(job, "COMPLETED")
        await self._finish(job, "COMPLETED")

    async def _fail(self, job: FakeModelJob | FakePromptJob, message: str | None) -> None:
        self._take_over(job)
        self._settle(job, "FAILED", message)
        await self._finish(job, "FAILED")

    async def complete_model(self, model_id: str) -> None:
        """Complete now; returns once the callback (if any) was attempted."""
        await self._complete(self.models[model_id])

    async def fail_model(self, model_id: str, message: str | None = None) -> None:
        await self._fail(self.models[model_id], message)

    async def complete_prompt(self, prompt_id: str) -> None:
        await self._complete(self.prompts[prompt_id])

    async def fail_prompt(self, prompt_id: str, message: str | None = None) -> None:
        await self._fail(self.prompts[prompt_id], message)

    # ------------------------------------------------------------------ waiting and accounting

    def _touch(self) -> None:
        # wake every waiter: each waits on the event current when it looked, so none misses a change
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_until(self, predicate: Callable[[], bool], within: float = 2.0) -> None:
        """Wait until `predicate()` holds after some state change (bounded, so a broken test fails fast)."""
        async with asyncio.timeout(within):
            while not predicate():
                await self._changed.wait()

    async def wait_for_callbacks(self, count: int, within: float = 2.0) -> list[CallbackAttempt]:
        """Wait until at least `count` callback attempts were recorded."""
        await self.wait_until(lambda: len(self.callbacks) >= count, within)
        return self.callbacks

    async def wait_for_status(self, job_id: str, *statuses: str, within: float = 2.0) -> None:
        await self.wait_until(lambda: self._job(job_id).status in statuses, within)

    async def drain(self, within: float = 5.0) -> None:
        """Wait for all background work (lifecycles, callbacks) to finish."""
        async with asyncio.timeout(within):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def billed_models(self) -> int:
        """Completed live models: failed and test-key models are never billed."""
        return sum(1 for m in self.models.values() if m.status == "COMPLETED" and not m.is_test)

    def billed_models_for(self, key: str) -> int:
        billed = (m for m in self.models.values() if m.status == "COMPLETED" and not m.is_test)
        return sum(1 for m in billed if m.key == key)
