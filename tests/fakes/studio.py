"""A small generic image studio on 127.0.0.1, one route per execution style, for the job engine's tests.

- POST /render (multipart or JSON) -> the image bytes at once (synchronous, like Imagine);
- POST /jobs -> {"id"} then GET /jobs/{id} -> {"status": queued|running|done|failed, "progress", "images"}
  (submit + poll, like Mimi Panda); with "callback_url" it POSTs there when done (like mimpi);
- POST /jobs/{id}/cancel;
- GET /files/{name} -> the result images (real PNGs).
Bearer auth; faults on demand (status codes with Retry-After, slow answers, malformed JSON), or drawn at
random for every request (`chaos`, for bench/chaos.py): 500, 429 with Retry-After, answers slower than the
adapter's timeout, and connections closed right after the request was read. Every create the studio
accepted is kept in `accepted`, so a job submitted twice shows (its prompt carries the caller's tag).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from tests.fakes import images


@dataclass
class StudioJob:
    id: str
    prompt: str
    size: int
    count: int
    callback_url: str | None
    status: str = "queued"
    progress: float = 0.0
    polls: int = 0
    cancelled: bool = False


@dataclass
class Fault:
    status: int
    route: str | None
    retry_after: float | None = None
    slow: float = 0.0
    malformed: bool = False


FAULT_KINDS = ("500", "429", "slow", "drop")  # drawn by default
EXTRA_KINDS = ("garbage",)  # on request: a 200 whose body is not what the route promises (no image, bad JSON)


@dataclass
class RandomFaults:
    """Faults drawn for each request with probability `rate`, the kind uniformly among `kinds`."""

    rate: float
    rng: random.Random
    kinds: tuple[str, ...] = FAULT_KINDS
    slow_s: float = 2.0  # beyond the adapter's timeout: the answer comes too late to be read
    retry_after: float = 0.3
    enabled: bool = True
    injected: Counter[str] = field(default_factory=Counter)  # "create 500", "poll drop", ...

    def draw(self) -> str | None:
        if not self.enabled or self.rate <= 0 or self.rng.random() >= self.rate:
            return None
        return self.rng.choice(self.kinds)


@dataclass(frozen=True)
class Accepted:
    """A create the studio took (and will bill): POST /render rendered, or POST /jobs made a job."""

    route: str
    studio_id: str
    prompt: str
    at: float


def request_phase(method: str, path: str) -> str:
    """What a request is, in the engine's terms: create, poll, cancel or download."""
    parts = path.strip("/").split("/")
    if parts[0] == "files":
        return "download"
    if method == "POST" and len(parts) == 1:
        return "create"
    if method == "POST" and parts[-1] == "cancel":
        return "cancel"
    return "poll"


@dataclass
class FakeStudio:
    token: str = "studio-key"
    polls_to_finish: int = 2  # job is "running" for this many polls, then done
    auto_finish: bool = True
    jobs: dict[str, StudioJob] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    callbacks: list[tuple[str, int | None]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    noisy_results: bool = False  # results that do not compress: to test upload limits
    chaos: RandomFaults | None = None
    accepted: list[Accepted] = field(default_factory=list)
    finished_seen: dict[str, float] = field(default_factory=dict)  # studio id -> when a poll first saw it end

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._client: httpx.AsyncClient | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeStudio:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/render", self._render)
        app.router.add_post("/jobs", self._create)
        app.router.add_get("/jobs/{id}", self._status)
        app.router.add_post("/jobs/{id}/cancel", self._cancel)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.aclose()

    def _callback_client(self) -> httpx.AsyncClient:
        # One client for all callbacks: a new one costs ~0.1 s of CPU (its TLS context), and a busy fake
        # studio that blocks its event loop skews whatever it serves.
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    def fail_next(
        self, status: int, *, route: str | None = None, count: int = 1, retry_after: float | None = None
    ) -> None:
        self.faults.extend(Fault(status, route, retry_after) for _ in range(count))

    def slow_next(self, seconds: float, *, route: str | None = None, count: int = 1) -> None:
        self.faults.extend(Fault(200, route, slow=seconds) for _ in range(count))

    def malformed_next(self, *, route: str | None = None, count: int = 1) -> None:
        self.faults.extend(Fault(200, route, malformed=True) for _ in range(count))

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(prefix))

    async def finish(self, job_id: str) -> None:
        await self._complete(self.jobs[job_id], "done")

    async def fail(self, job_id: str) -> None:
        await self._complete(self.jobs[job_id], "failed")

    # Server

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if not request.path.startswith("/files/") and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "bad token"}, status=401)
        route = request.path.split("/")[1]
        fault = next((f for f in self.faults if f.route in (None, route)), None)
        if fault is not None:
            self.faults.remove(fault)
            if fault.slow:
                await asyncio.sleep(fault.slow)
            elif fault.malformed:
                return web.Response(text='{"status": "run', content_type="application/json")
            else:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                return web.json_response({"error": f"injected {fault.status}"}, status=fault.status, headers=headers)
        if self.chaos is not None and (kind := self.chaos.draw()) is not None:
            injected = await self._inject(request, kind)
            if injected is not None:
                return injected
        response: web.StreamResponse = await handler(request)
        return response

    async def _inject(self, request: web.Request, kind: str) -> web.StreamResponse | None:
        """One random fault; None when the request goes on to its handler (after a slow start)."""
        assert self.chaos is not None
        self.chaos.injected[f"{request_phase(request.method, request.path)} {kind}"] += 1
        if kind == "slow":
            await request.read()  # kept by aiohttp: the handler still has the body once the client has gone
            await asyncio.sleep(self.chaos.slow_s)  # then answers normally: a create here is still accepted
            return None
        if kind == "drop":
            await request.read()
            if request.transport is not None:
                request.transport.abort()  # the client sees the connection die with no answer
            return web.Response(status=500)  # never reaches the client
        if kind == "garbage":
            await request.read()
            if request.path.startswith(("/render", "/files/")):
                return web.Response(body=b"\x00not an image", content_type="image/png")
            return web.Response(text='{"status": "run', content_type="application/json")
        if kind == "429":
            headers = {"Retry-After": str(self.chaos.retry_after)}
            return web.json_response({"error": "injected 429"}, status=429, headers=headers)
        return web.json_response({"error": f"injected {kind}"}, status=int(kind))

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        form = await request.post()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    def _image(self, size: int, label: str) -> bytes:
        return images.noisy_png(size, size) if self.noisy_results else images.png(size, size, label=label)

    async def _render(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        prompt = str(params.get("prompt", ""))
        if not prompt:
            return web.json_response({"error": "prompt is required"}, status=400)
        if "forbidden" in prompt:
            return web.json_response({"error": "content policy violation"}, status=400)
        data = await asyncio.to_thread(self._image, int(params.get("size", 128)), prompt)
        self.accepted.append(Accepted("render", "", prompt, time.time()))
        return web.Response(body=data, content_type="image/png")

    async def _create(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        job = StudioJob(
            str(next(self._ids)),
            str(params.get("prompt", "")),
            int(params.get("size", 128)),
            int(params.get("count", 1)),
            params.get("callback_url"),
        )
        self.jobs[job.id] = job
        self.accepted.append(Accepted("jobs", job.id, job.prompt, time.time()))
        return web.json_response({"id": job.id, "status": job.status})

    async def _status(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.json_response({"error": "no such job"}, status=404)
        job.polls += 1
        if self.auto_finish and job.status in ("queued", "running"):
            if job.polls >= self.polls_to_finish:
                await self._complete(job, "failed" if "FAILME" in job.prompt else "done")
            else:
                job.status = "running"
                job.progress = round(100 * job.polls / (self.polls_to_finish + 1))
        body: dict[str, Any] = {"id": job.id, "status": job.status, "progress": job.progress}
        if job.status not in ("queued", "running"):
            self.finished_seen.setdefault(job.id, time.time())
        if job.status == "done":
            body["images"] = [f"{self.base_url}/files/{job.id}-{i}.png" for i in range(job.count)]
        if job.status == "failed":
            body["error"] = "the studio could not render this"
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def _cancel(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.json_response({"error": "no such job"}, status=404)
        job.cancelled = True
        job.status = "cancelled"
        return web.json_response({"id": job.id, "status": job.status})

    async def _file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["name"])
        if data is None:
            return web.json_response({"error": "no such file"}, status=404)
        return web.Response(body=data, content_type="image/png")

    async def _complete(self, job: StudioJob, status: str) -> None:
        job.status = status
        job.progress = 100.0 if status == "done" else job.progress
        if status == "done":
            for i in range(job.count):
                self.files[f"{job.id}-{i}.png"] = await asyncio.to_thread(self._image, job.size, f"{job.prompt} {i}")
        if job.callback_url:
            try:
                answer = await self._callback_client().post(job.callback_url, json={"id": job.id, "status": status})
                self.callbacks.append((job.callback_url, answer.status_code))
            except httpx.HTTPError:
                self.callbacks.append((job.callback_url, None))
