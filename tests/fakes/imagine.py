"""A fake of the Imagine (Vyro) v2 API: a real aiohttp server on 127.0.0.1 for adapter and engine tests.

It speaks the protocol of docs/providers.md section 4: Bearer auth (codes 1000/1001/1002), multipart only
(a JSON body is a 1100), every field validated with the documented codes, real images derived from the
inputs and the prompt (sync answers with the bytes), video jobs whose status moves on a clock through the
documented words and then serve a real MP4 on a pre-signed URL, a per-key rate limit (1202/429 with
Retry-After), an out-of-credits switch (1101/402), and fault switches (1200/503, a connection dropped after
the request was read, a slow answer).

    fake = FakeImagine(api_key="vk-test")
    await fake.start()      # fake.base_url == "http://127.0.0.1:PORT/v2"
    ...
    await fake.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict
from PIL import Image, ImageChops, ImageDraw, ImageStat

from tests.fakes.loopback import LoopbackServer
from tests.fakes.video import make_mp4

IMAGE_STYLES = ("imagine-turbo", "realistic", "anime", "flux-schnell", "flux-dev", "flux-dev-fast", "sdxl-1.0")
ASPECT_RATIOS = ("1:1", "3:2", "4:3", "3:4", "16:9", "9:16")
BACKGROUND_STYLES = ("product-shoot",)
VIDEO_ASPECT_RATIOS = ("1:1", "16:9", "9:16")
VIDEO_STYLES = ("kling-1.0-pro",)

IMAGE_ROUTES = (
    "image/generations",
    "image/generations/transparent",
    "image/generations/ai-background",
    "image/edits/generative-fill",
    "image/background/remover",
    "image/enhance",
    "image/edits/remove",
)
VIDEO_ROUTES = ("video/text-to-video", "video/image-to-video")
STATUS_ROUTES = ("video/{id}/status", "video/status/{id}", "assets/{id}/status")

# (code, HTTP status, error name)
ERRORS: dict[int, tuple[int, str]] = {
    1000: (400, "TOKEN_MISSING"),
    1001: (401, "TOKEN_INVALID"),
    1002: (406, "TOKEN_EXPIRED"),
    1100: (400, "INVALID_REQUEST"),
    1101: (402, "INSUFFICIENT_CREDITS"),
    1200: (503, "SERVICE_UNAVAILABLE"),
    1202: (429, "TOO_MANY_REQUESTS"),
}
MESSAGES = {
    1000: "Authorization token is missing",
    1001: "Authorization token is invalid",
    1002: "Authorization token has expired",
    1101: "You do not have enough credits for this request",
    1200: "The service is temporarily unavailable",
    1202: "Too many requests",
}
# The video's path through the documented status words, and when (seconds after the create) each begins.
DEFAULT_VIDEO_TIMELINE: tuple[tuple[float, str], ...] = ((0.0, "queued"), (0.05, "processing"), (0.1, "generating"))


def error_response(code: int, message: str | None = None, *, retry_after: int | None = None) -> web.Response:
    status, name = ERRORS[code]
    body = {"status": "error", "code": code, "error": name, "message": message or MESSAGES.get(code, name)}
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.json_response(body, status=status, headers=headers)


class Invalid(Exception):
    """A 1100 answer with this message."""


@dataclass
class RecordedRequest:
    """One request as the fake saw it; `path` is without the /v2 prefix."""

    method: str
    path: str
    headers: CIMultiDict[str]
    content_type: str
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)  # name -> (filename, type, bytes)
    status: int | None = None
    code: int | None = None
    fault: str | None = None


@dataclass
class VideoJob:
    id: str
    prompt: str
    width: int
    height: int
    created: float
    fail: bool = False
    forced: str | None = None  # a status set by a test, overriding the clock
    polls: int = 0


@dataclass
class _Fault:
    kind: str  # error | drop | slow
    remaining: int
    route: str | None
    code: int = 1200
    retry_after: int | None = None
    seconds: float = 0.0


class FakeImagine(LoopbackServer):
    """The fake server; every knob is a plain attribute tests may change at any time."""

    def __init__(self, api_key: str = "vk-test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.expired_keys: set[str] = set()
        self.credits: int | None = None  # None: unlimited; 0: every create answers 1101/402
        self.rate_limit: int | None = None  # requests per window per key; None: no limit
        self.rate_window_s = 60.0
        self.image_long_side = 256
        self.generation_format = "JPEG"  # plain generations come as JPEG, edits and transparent ones as PNG
        self.octet_stream = False  # answer images as application/octet-stream, as some deployments do
        # "bytes" (what every known client gets) or "link": JSON with a URL, as the seed's overview describes
        self.image_answer = "bytes"
        self.video_bare = False  # the status answer as a bare video object, without the {"video": ...} wrapper
        self.video_timeline = DEFAULT_VIDEO_TIMELINE
        self.video_seconds = 0.15  # after this the video is finished
        self.video_url_shape = "list"  # or "string": both shapes of url.generation exist; "none": no url
        self.video_id_key = "id"  # or "uuid"
        self.fail_marker = "FAILME"  # a video prompt containing it ends "failed"
        self.requests: list[RecordedRequest] = []
        self.videos: dict[str, VideoJob] = {}
        self._faults: list[_Fault] = []
        self._window: dict[str, tuple[float, int]] = {}
        self._mp4: dict[tuple[int, int], bytes] = {}
        self.stored: dict[str, tuple[bytes, str]] = {}  # linked results: name -> (bytes, content type)

    # lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        for route in (*IMAGE_ROUTES, *VIDEO_ROUTES):
            app.router.add_post(f"/v2/{route}", self._create)
        for route in STATUS_ROUTES:
            app.router.add_get(f"/v2/{route}", self._status)
        app.router.add_get("/media/{id}.mp4", self._media)
        app.router.add_get("/media/{name}", self._stored)
        await self.serve(app)

    @property
    def base_url(self) -> str:
        return self.origin + "/v2"

    # inspection and control

    def calls(self, path: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and (path is None or r.path == path)]

    def set_status(self, video_id: str, status: str | None) -> None:
        """Force a video's status word (any word, documented or not); None gives it back to the clock."""
        self.videos[video_id].forced = status

    def fail_next(
        self, code: int = 1200, count: int = 1, *, retry_after: int | None = None, route: str | None = None
    ) -> None:
        """Answer the next `count` matching requests with the error `code`, without processing them."""
        self._faults.append(_Fault("error", count, route, code=code, retry_after=retry_after))

    def drop_next(self, count: int = 1, *, route: str | None = None) -> None:
        """Read the whole request, process it (a create is billed), then close the connection unanswered."""
        self._faults.append(_Fault("drop", count, route))

    def slow_next(self, seconds: float, count: int = 1, *, route: str | None = None) -> None:
        """Process normally, then answer `seconds` late."""
        self._faults.append(_Fault("slow", count, route, seconds=seconds))

    def garbage_next(self, count: int = 1, *, route: str | None = None) -> None:
        """Process normally (a create is billed), then answer 200 with an HTML page instead of the image."""
        self._faults.append(_Fault("garbage", count, route))

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take(self, kind: str, record: RecordedRequest) -> _Fault | None:
        for fault in self._faults:
            if fault.kind == kind and fault.remaining > 0 and fault.route in (None, record.path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # plumbing

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path.removeprefix("/v2/").lstrip("/")
        record = RecordedRequest(request.method, path, CIMultiDict(request.headers), request.content_type)
        if request.method == "POST":
            await self._parse(request, record)
        self.requests.append(record)
        request[RECORD] = record
        response = await self._answer(request, handler, record)
        self._rate_headers(request, response)
        if self._take("drop", record) is not None:
            record.fault = "drop"
            assert request.transport is not None
            request.transport.close()  # the request was read and processed; the answer never leaves
            return response
        if self._take("garbage", record) is not None:
            record.fault = "garbage"
            response = web.Response(status=200, text="<html>upstream hiccup</html>", content_type="text/html")
        slow = self._take("slow", record)
        if slow is not None:
            record.fault = f"slow:{slow.seconds}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), slow.seconds)
        record.status = response.status
        return response

    async def _answer(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        record: RecordedRequest,
    ) -> web.StreamResponse:
        if path_is_media(record.path):
            return await handler(request)
        fault = self._take("error", record)
        if fault is not None:
            record.fault, record.code = f"error:{fault.code}", fault.code
            return error_response(fault.code, retry_after=fault.retry_after)
        key, problem = self._auth(request)
        if problem is None:
            problem = self._rate(key)
        if problem is not None:
            record.code = problem[0]
            return error_response(problem[0], retry_after=problem[1])
        try:
            return await handler(request)
        except Invalid as exc:
            record.code = 1100
            return error_response(1100, str(exc))
        except web.HTTPNotFound:
            return web.json_response({"status": "error", "code": 404, "message": "Not found"}, status=404)

    def _auth(self, request: web.Request) -> tuple[str, tuple[int, int | None] | None]:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if not header or scheme.lower() != "bearer" or not key:
            return "", (1000, None)
        if key in self.expired_keys:
            return key, (1002, None)
        if key != self.api_key:
            return key, (1001, None)
        return key, None

    def _rate(self, key: str) -> tuple[int, int | None] | None:
        if self.rate_limit is None:
            return None
        now = time.monotonic()
        start, count = self._window.get(key, (now, 0))
        if now - start >= self.rate_window_s:
            start, count = now, 0
        if count >= self.rate_limit:
            return 1202, max(1, math.ceil(self.rate_window_s - (now - start)))
        self._window[key] = (start, count + 1)
        return None

    def _rate_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        """`x-ratelimit-*` as the real API sends them (observed: a limit of 50 per 60 s)."""
        if self.rate_limit is None or response.prepared:
            return
        _, _, key = request.headers.get("Authorization", "").partition(" ")
        _, used = self._window.get(key.strip(), (0.0, 0))
        response.headers["x-ratelimit-limit"] = str(self.rate_limit)
        response.headers["x-ratelimit-remaining"] = str(max(0, self.rate_limit - used))

    async def _parse(self, request: web.Request, record: RecordedRequest) -> None:
        if request.content_type != "multipart/form-data":
            await request.read()
            return
        reader = await request.multipart()
        async for part in reader:
            if not hasattr(part, "filename") or part.name is None:
                continue
            data = await part.read()  # type: ignore[union-attr]
            if part.filename is None:
                record.fields.setdefault(part.name, data.decode())
            else:
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                record.files.setdefault(part.name, (part.filename, content_type, bytes(data)))

    # creates

    def _charge(self) -> web.Response | None:
        if self.credits is None:
            return None
        if self.credits <= 0:
            return error_response(1101)
        self.credits -= 1
        return None

    async def _create(self, request: web.Request) -> web.Response:
        record: RecordedRequest = request[RECORD]
        if record.content_type != "multipart/form-data":
            raise Invalid(f"Invalid request: send multipart/form-data, not {record.content_type or 'no body'}")
        form = Form(record)
        if record.path in VIDEO_ROUTES:
            job = await asyncio.to_thread(self._video_job, record.path, form)
            refusal = self._charge()
            if refusal is not None:
                return refusal
            self.videos[job.id] = job
            return web.json_response({"id": job.id, "status": "processing"})
        data, fmt = await asyncio.to_thread(self._image, record.path, form)
        refusal = self._charge()
        if refusal is not None:
            return refusal
        content_type = "application/octet-stream" if self.octet_stream else f"image/{fmt.lower()}"
        if self.image_answer == "link":
            name = f"{uuid.uuid4().hex}.{'jpg' if fmt == 'JPEG' else fmt.lower()}"
            self.stored[name] = (data, content_type)
            return web.json_response({"status": "success", "data": {"url": f"{self.origin}/media/{name}"}})
        return web.Response(body=data, content_type=content_type)

    def _image(self, path: str, form: Form) -> tuple[bytes, str]:
        """Validate in the documented field order, then render."""
        if path == "image/generations":
            prompt = form.prompt()
            style = form.choice("style", IMAGE_STYLES, "imagine-turbo")
            ratio = form.choice("aspect_ratio", ASPECT_RATIOS, "1:1")
            seed = form.seed()
            size = ratio_size(ratio, self.image_long_side)
            return encode(render_scene(size, f"{prompt}|{style}|{seed}", prompt), self.generation_format)
        if path == "image/generations/transparent":
            prompt = form.prompt()
            ratio = form.choice("aspect_ratio", ASPECT_RATIOS, "1:1")
            seed = form.seed()
            return encode(render_cutout(ratio_size(ratio, self.image_long_side), f"{prompt}|{seed}"), "PNG")
        if path == "image/generations/ai-background":
            prompt = form.prompt()
            image = form.image("image")
            form.choice("style", BACKGROUND_STYLES, "product-shoot")
            seed = form.seed()
            if image.mode != "RGBA" or image.getchannel("A").getextrema()[0] == 255:
                raise Invalid("Invalid request: the image must have a transparent background")
            background = render_scene(image.size, f"{prompt}|{seed}", prompt).convert("RGBA")
            return encode(Image.alpha_composite(background, image).convert("RGB"), "JPEG")
        if path in ("image/edits/generative-fill", "image/edits/remove"):
            prompt = form.prompt() if path.endswith("fill") else None
            image = form.image("image")
            mask = form.image("mask")
            if mask.size != image.size:
                raise Invalid(
                    f"Invalid request: the mask is {mask.width}x{mask.height}, the image {image.width}x{image.height}"
                )
            return encode(fill_masked(image, mask, prompt), "PNG")
        if path == "image/background/remover":
            return encode(remove_background(form.image("image")), "PNG")
        image = form.image("image")  # image/enhance
        bigger = image.resize((image.width * 2, image.height * 2), Image.Resampling.LANCZOS)
        return encode(bigger, "PNG" if bigger.mode == "RGBA" else "JPEG")

    def _video_job(self, path: str, form: Form) -> VideoJob:
        prompt = form.prompt()
        form.choice("style", VIDEO_STYLES, "kling-1.0-pro")
        if path == "video/text-to-video":
            ratio = form.choice("aspect_ratio", VIDEO_ASPECT_RATIOS, "1:1")
            size = {"1:1": (64, 64), "16:9": (112, 64), "9:16": (64, 112)}[ratio]
        else:
            if "image" in form.record.files and "file" not in form.record.files:
                raise Invalid("Invalid request: file is required (the image field is named file here)")
            picture = form.image("file")
            scale = 96 / max(picture.size)
            size = (max(2, round(picture.width * scale) // 2 * 2), max(2, round(picture.height * scale) // 2 * 2))
        job_id = str(uuid.uuid4())
        fail = bool(self.fail_marker and self.fail_marker in prompt)
        return VideoJob(job_id, prompt, size[0], size[1], time.monotonic(), fail=fail)

    # video status and media

    def video_status(self, job: VideoJob) -> str:
        if job.forced is not None:
            return job.forced
        age = time.monotonic() - job.created
        if age >= self.video_seconds:
            return "failed" if job.fail else "finished"
        return [word for start, word in self.video_timeline if age >= start][-1]

    async def _status(self, request: web.Request) -> web.Response:
        job = self.videos.get(request.match_info["id"])
        if job is None:
            return web.json_response({"status": "error", "code": 404, "message": "Not found"}, status=404)
        job.polls += 1
        status = self.video_status(job)
        video: dict[str, Any] = {self.video_id_key: job.id, "status": status, "prompt": job.prompt}
        if status in ("finished", "success"):
            url = f"{self.origin}/media/{job.id}.mp4?X-Amz-Signature={_sign(job.id)}&X-Amz-Expires=3600"
            thumb = f"{self.origin}/media/{job.id}.jpg"
            if self.video_url_shape != "none":
                video["url"] = {"generation": [url] if self.video_url_shape == "list" else url, "thumbnail": thumb}
        elif status in ("failed", "error", "rejected"):
            video["message"] = "The video could not be generated"
        return web.json_response(video if self.video_bare else {"status": "success", "video": video})

    async def _stored(self, request: web.Request) -> web.Response:
        entry = self.stored.get(request.match_info["name"])
        if entry is None:
            return web.Response(status=404, text="NoSuchKey")
        return web.Response(body=entry[0], content_type=entry[1])

    async def _media(self, request: web.Request) -> web.Response:
        job = self.videos.get(request.match_info["id"])
        if job is None or request.query.get("X-Amz-Signature") != _sign(job.id):
            return web.Response(status=403, text="AccessDenied")
        key = (job.width, job.height)
        if key not in self._mp4:
            self._mp4[key] = await asyncio.to_thread(make_mp4, job.width, job.height, seconds=0.5, label=job.prompt)
        return web.Response(body=self._mp4[key], content_type="video/mp4")


RECORD = web.RequestKey("record", RecordedRequest)


def path_is_media(path: str) -> bool:
    return path.startswith("media/")


def _sign(video_id: str) -> str:
    return hashlib.sha256(f"signed:{video_id}".encode()).hexdigest()[:32]


class Form:
    """The multipart fields of one request, validated as the API does (1100 with a message)."""

    def __init__(self, record: RecordedRequest) -> None:
        self.record = record

    def prompt(self) -> str:
        value = self.record.fields.get("prompt", "").strip()
        if not value:
            raise Invalid("Invalid request: prompt is required")
        return value

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = self.record.fields.get(name)
        if value is None:
            return default
        if value not in options:
            raise Invalid(f"Invalid request: {name} must be one of {', '.join(options)}")
        return value

    def seed(self) -> int | None:
        value = self.record.fields.get("seed")
        if value is None:
            return None
        if not value.strip().isdigit() or int(value) < 1:
            raise Invalid("Invalid request: seed must be an integer of at least 1")
        return int(value)

    def image(self, name: str) -> Image.Image:
        upload = self.record.files.get(name)
        if upload is None:
            raise Invalid(f"Invalid request: {name} is required")
        try:
            with Image.open(io.BytesIO(upload[2])) as opened:
                opened.load()
                has_alpha = "A" in opened.getbands() or "transparency" in opened.info
                return opened.convert("RGBA" if has_alpha else "RGB")
        except OSError as exc:
            raise Invalid(f"Invalid request: {name} is not an image") from exc


# --- rendering -------------------------------------------------------------------------------------------


def _colour(seed: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(seed.encode()).digest()
    return digest[0], digest[1], digest[2]


def ratio_size(ratio: str, long_side: int) -> tuple[int, int]:
    w, h = (int(part) for part in ratio.split(":"))
    scale = long_side / max(w, h)
    return round(w * scale), round(h * scale)


def render_scene(size: tuple[int, int], seed: str, label: str) -> Image.Image:
    image = Image.new("RGB", size, _colour(seed))
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=_colour(seed + "shape"))
    draw.text((6, 6), label[:40], fill=(255, 255, 255))
    return image


def render_cutout(size: tuple[int, int], seed: str) -> Image.Image:
    """An opaque subject on fully transparent pixels."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    w, h = size
    ImageDraw.Draw(image).ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=(*_colour(seed), 255))
    return image


def fill_masked(image: Image.Image, mask: Image.Image, prompt: str | None) -> Image.Image:
    """Only the masked (white) pixels change: to the prompt's colour, or (object removal) to the mean
    colour of the unmasked ones."""
    selected = mask.convert("L").point(lambda v: 255 if v > 127 else 0)
    if prompt is not None:
        colour = _colour(prompt)
    else:
        inverse = ImageChops.invert(selected)
        mean = ImageStat.Stat(image.convert("RGB"), inverse).mean
        colour = (round(mean[0]), round(mean[1]), round(mean[2]))
    fill = Image.new(image.mode, image.size, (*colour, 255) if image.mode == "RGBA" else colour)
    return Image.composite(fill, image, selected)


def remove_background(image: Image.Image) -> Image.Image:
    """Pixels close to the top-left corner's colour become fully transparent."""
    rgb = image.convert("RGB")
    corner = rgb.getpixel((0, 0))
    assert isinstance(corner, tuple)
    distance = ImageChops.difference(rgb, Image.new("RGB", rgb.size, corner[:3])).convert("L")
    alpha = distance.point(lambda v: 0 if v < 24 else 255)
    out = rgb.convert("RGBA")
    out.putalpha(alpha)
    return out


def encode(image: Image.Image, fmt: str) -> tuple[bytes, str]:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=90)
    else:
        image.save(out, fmt)
    return out.getvalue(), fmt
