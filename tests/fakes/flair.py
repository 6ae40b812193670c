"""A fake of the Flair AI Custom Model API (seed 001, docs/providers.md §2) for the test suite.

A real aiohttp server on 127.0.0.1. It checks the API key in a configurable header, validates every field
and range (422 for a bad field, 400 for a malformed body or a refused action), keeps models, raw training
images (content type, magic bytes, 10 MB), trainings and predictions whose states move on a clock the test
controls, serves real images for `dataUrl` and `outputImages`, and injects faults (any status with
`Retry-After`, dropped connections, slow answers).

    fake = FakeFlair(api_key="fl_live_123")
    await fake.start()          # fake.base_url == "http://127.0.0.1:PORT/v1"
    fake.advance(61)            # trainings (60 s) and predictions (5 s) finish on the fake's clock
    await fake.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict
from PIL import Image, ImageDraw

from tests.fakes.loopback import LoopbackServer

PREFIX = "/v1"
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
TOO_LATE = "Training already completed; it is too late to cancel it"

# operation -> "METHOD /path"; a test may move any of them (as a deployment corrects FLAIR_PATHS)
ROUTES: Mapping[str, str] = {
    "create_model": "POST /models",
    "list_models": "GET /models",
    "get_model": "GET /models/{model_id}",
    "rename_model": "PATCH /models/{model_id}",
    "delete_model": "DELETE /models/{model_id}",
    "upload_data": "POST /models/{model_id}/data",
    "list_data": "GET /models/{model_id}/data",
    "get_data": "GET /models/{model_id}/data/{data_id}",
    "replace_data": "PUT /models/{model_id}/data/{data_id}",
    "delete_data": "DELETE /models/{model_id}/data/{data_id}",
    "start_training": "POST /models/{model_id}/trainings",
    "list_trainings": "GET /models/{model_id}/trainings",
    "get_training": "GET /models/{model_id}/trainings/{training_id}",
    "cancel_training": "POST /models/{model_id}/trainings/{training_id}/cancel",
    "delete_training": "DELETE /models/{model_id}/trainings/{training_id}",
    "create_prediction": "POST /predictions",
    "get_prediction": "GET /predictions/{prediction_id}",
    "delete_prediction": "DELETE /predictions/{prediction_id}",
}

# what each accepted content type must really be (by magic bytes and by Pillow)
CONTENT_TYPES = {"image/webp": "WEBP", "image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG"}
PREDICTION_KEYS = frozenset(
    {
        "scaleConfigs",
        "prompt",
        "seed",
        "image_size",
        "num_images",
        "output_format",
        "guidance_scale",
        "num_inference_steps",
    }
)


def _new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))


def new_trigger_word() -> str:
    """Like the seed's "FJA90AB": seven upper-case letters and digits, starting with a letter."""
    alphabet = string.ascii_uppercase + string.digits
    return secrets.choice(string.ascii_uppercase) + "".join(secrets.choice(alphabet) for _ in range(6))


def _magic_format(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _decodes_as(data: bytes, fmt: str) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            return image.format == fmt
    except Exception:
        return False


def render_image(text: str, index: int, width: int, height: int, fmt: str) -> bytes:
    """A real image: a colour from the prompt, a frame and the prompt written on it."""
    digest = hashlib.sha256(f"{text}|{index}".encode()).digest()
    image = Image.new("RGB", (width, height), (digest[0], digest[1], digest[2]))
    draw = ImageDraw.Draw(image)
    draw.rectangle((4, 4, width - 5, height - 5), outline=(255, 255, 255), width=3)
    draw.text((12, 12), f"#{index + 1} {text}"[:80], fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "PNG" if fmt == "png" else "JPEG", quality=85)
    return out.getvalue()


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]  # looked up case-insensitively, as HTTP does
    json: Any
    body: bytes


@dataclass
class Fault:
    status: int | None  # None: drop the connection
    remaining: int
    route: str | None = None
    retry_after: float | str | None = None
    body: Any = None
    skip: int = 0  # let this many matching requests through first
    after_processing: bool = False  # drop only after the request took effect (the answer is lost)


@dataclass
class FakeModel:
    id: str
    key: str
    display_name: str
    custom_model_type: str | None = None
    deleted: bool = False
    data_ids: list[str] = field(default_factory=list)
    training_ids: list[str] = field(default_factory=list)


@dataclass
class FakeData:
    id: str
    model_id: str
    content_type: str
    data: bytes
    replaced: int = 0


@dataclass
class FakeTraining:
    id: str
    model_id: str
    strength: int
    speed: str
    started_at: float
    trigger_word: str
    data_ids: list[str]
    cancelled: bool = False
    deleted: bool = False
    forced_status: str | None = None


@dataclass
class FakePrediction:
    id: str
    key: str
    body: dict[str, Any]
    created_at: float
    trigger_words_in_prompt: dict[str, bool]  # model id -> was its trigger word in the prompt
    deleted: bool = False
    forced_status: str | None = None
    image_paths: list[str] = field(default_factory=list)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class Invalid(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _int_in(body: Mapping[str, Any], key: str, low: int, high: int, *, required: bool = False) -> int | None:
    value = body.get(key)
    if value is None:
        if required:
            raise Invalid(422, f"{key} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(422, f"{key} must be an integer between {low} and {high}")
    return value


def _number_in(body: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise Invalid(422, f"{key} must be a number between {low} and {high}")
    return float(value)


class FakeFlair(LoopbackServer):
    """Fake Flair. Every key is its own account."""

    def __init__(
        self,
        api_key: str = "fl_live_123",
        *,
        auth_header: str = "API-Key",
        other_keys: Iterable[str] = (),
        no_credit_keys: Iterable[str] = (),
        training_seconds: float = 60.0,
        prediction_seconds: float = 5.0,
        queue_seconds: float = 0.0,
        page_size: int = 20,
        routes: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.auth_header = auth_header
        self.no_credit_keys: set[str] = set(no_credit_keys)
        self.keys: set[str] = {api_key, *other_keys, *self.no_credit_keys}
        self.training_seconds = training_seconds
        self.prediction_seconds = prediction_seconds
        self.queue_seconds = queue_seconds  # "queued" before "processing"
        self.page_size = page_size
        self.routes = {**ROUTES, **(routes or {})}

        self.requests: list[RecordedRequest] = []
        self.models: dict[str, FakeModel] = {}
        self.data: dict[str, FakeData] = {}
        self.trainings: dict[str, FakeTraining] = {}
        self.predictions: dict[str, FakePrediction] = {}
        self.files: dict[str, tuple[bytes, str]] = {}  # path under /files/ -> (bytes, content type)
        self.errors: list[BaseException] = []  # unexpected exceptions in handlers

        self._offset = 0.0
        self._faults: list[Fault] = []
        self._slow: list[tuple[float, int, str | None]] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return self.origin + PREFIX

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        for name, template in self.routes.items():
            method, _, path = template.partition(" ")
            app.router.add_route(method, PREFIX + path, getattr(self, f"_{name}"))
        app.router.add_get("/files/{path:.+}", self._file)
        await self.serve(app)

    # ------------------------------------------------------------------ the clock

    def now(self) -> float:
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock: trainings and predictions progress as if `seconds` had passed."""
        self._offset += seconds

    # ------------------------------------------------------------------ fault switches

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        route: str | None = None,
        retry_after: float | str | None = None,
        body: Any = None,
        skip: int = 0,
    ) -> None:
        """The next `count` matching requests get `status` without taking effect. `route` is None (any),
        an operation name ("start_training"), or a method and path prefix ("POST /models")."""
        self._faults.append(Fault(status, count, route, retry_after, body, skip))

    def drop_next(
        self, count: int = 1, *, route: str | None = None, skip: int = 0, after_processing: bool = False
    ) -> None:
        """Close the connection without an answer; with `after_processing` the request took effect first."""
        self._faults.append(Fault(None, count, route, skip=skip, after_processing=after_processing))

    def slow_next(self, seconds: float, count: int = 1, *, route: str | None = None) -> None:
        """Answer the next matching requests late (they take effect first)."""
        self._slow.append((seconds, count, route))

    def rate_limit_next(self, count: int = 1, *, retry_after: float | str = 1, route: str | None = None) -> None:
        self.fail_next(429, count, route=route, retry_after=retry_after)

    def out_of_credits_next(self, count: int = 1, *, route: str | None = None) -> None:
        self.fail_next(402, count, route=route, body={"error": "Insufficient credits"})

    def force_status(self, item_id: str, status: str) -> None:
        """Make a training or prediction report `status` from now on (e.g. an undocumented word)."""
        item = self.trainings.get(item_id) or self.predictions.get(item_id)
        if item is None:
            raise KeyError(item_id)
        item.forced_status = status

    def _matches(self, route: str | None, request: web.Request) -> bool:
        if route is None:
            return True
        if route in self.routes:
            resource = request.match_info.route.resource
            method, _, path = self.routes[route].partition(" ")
            return request.method == method and resource is not None and resource.canonical == PREFIX + path
        method, _, prefix = route.rpartition(" ")
        path = request.path.removeprefix(PREFIX)
        return (not method or method.upper() == request.method) and path.startswith(prefix)

    def _take_fault(self, request: web.Request) -> Fault | None:
        for fault in self._faults:
            if self._matches(fault.route, request):
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _take_slow(self, request: web.Request) -> float:
        for n, (seconds, count, route) in enumerate(self._slow):
            if self._matches(route, request):
                if count <= 1:
                    del self._slow[n]
                else:
                    self._slow[n] = (seconds, count - 1, route)
                return seconds
        return 0.0

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never delivered: the socket is gone

    def _fault_response(self, fault: Fault) -> web.Response:
        assert fault.status is not None
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        if fault.body is None:
            return _error(
                fault.status,
                {429: "Too many requests", 402: "Insufficient credits"}.get(fault.status, "Error"),
                headers,
            )
        if isinstance(fault.body, dict | list):
            return web.json_response(fault.body, status=fault.status, headers=headers)
        raw = fault.body.encode() if isinstance(fault.body, str) else fault.body
        return web.Response(body=raw, status=fault.status, headers=headers, content_type="text/html")

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        body = await request.read()
        parsed: Any = None
        if request.content_type == "application/json":
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        self.requests.append(
            RecordedRequest(
                request.method, request.path, dict(request.query), CIMultiDict(request.headers), parsed, body
            )
        )
        fault = self._take_fault(request)
        if fault is not None and not fault.after_processing:
            return self._drop(request) if fault.status is None else self._fault_response(fault)
        delay = self._take_slow(request)
        try:
            response = await handler(request)
        except web.HTTPException:
            raise
        except Invalid as exc:
            response = _error(exc.status, exc.message)
        except Exception as exc:  # recorded so a test can assert the fake itself stayed healthy
            self.errors.append(exc)
            response = _error(500, "Internal Server Error")
        if fault is not None:
            return self._drop(request)
        if delay:
            with contextlib.suppress(TimeoutError):  # a slow answer ends early when the fake stops
                await asyncio.wait_for(self._stopping.wait(), delay)
        return response

    # ------------------------------------------------------------------ helpers

    def _key(self, request: web.Request) -> str:
        key = request.headers.get(self.auth_header, "")
        if key not in self.keys:
            raise Invalid(401, "Invalid or missing API key")
        return key

    def _paid(self, key: str) -> None:
        if key in self.no_credit_keys:
            raise Invalid(402, "Insufficient credits")

    @staticmethod
    async def _json(request: web.Request) -> dict[str, Any]:
        try:
            data = json.loads(await request.read() or b"null")
        except ValueError as exc:
            raise Invalid(400, "Request body must be JSON") from exc
        if not isinstance(data, dict):
            raise Invalid(400, "Request body must be a JSON object")
        return data

    @staticmethod
    def _only(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise Invalid(422, f"Unknown field(s): {', '.join(unknown)}")

    def _model(self, request: web.Request, key: str) -> FakeModel:
        model = self.models.get(request.match_info["model_id"])
        if model is None or model.key != key or model.deleted:
            raise Invalid(404, "Model not found")
        return model

    def _training(self, request: web.Request, key: str) -> FakeTraining:
        model = self._model(request, key)
        training = self.trainings.get(request.match_info["training_id"])
        if training is None or training.model_id != model.id or training.deleted:
            raise Invalid(404, "Training not found")
        return training

    def _data_item(self, request: web.Request, key: str) -> FakeData:
        model = self._model(request, key)
        item = self.data.get(request.match_info["data_id"])
        if item is None or item.model_id != model.id:
            raise Invalid(404, "Training data not found")
        return item

    def _file_url(self, path: str) -> str:
        return f"{self.origin}/files/{path}"

    async def _image_body(self, request: web.Request) -> tuple[bytes, str]:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in CONTENT_TYPES:
            raise Invalid(415, f"Unsupported content type {content_type or '(none)'}: send webp, png or jpeg")
        data = await request.read()
        if not data:
            raise Invalid(400, "The body must be the raw image")
        if len(data) > MAX_UPLOAD_BYTES:
            raise Invalid(413, "Image too large: the maximum file size is 10MB")
        expected = CONTENT_TYPES[content_type]
        if _magic_format(data) != expected or not _decodes_as(data, expected):
            raise Invalid(400, f"The body is not a valid {expected.lower()} image")
        return data, content_type

    def training_status(self, training: FakeTraining) -> str:
        if training.forced_status is not None:
            return training.forced_status
        if training.cancelled:
            return "canceled"
        elapsed = self.now() - training.started_at
        if elapsed < self.queue_seconds:
            return "queued"
        return "processing" if elapsed < self.queue_seconds + self.training_seconds else "succeeded"

    def prediction_status(self, prediction: FakePrediction) -> str:
        if prediction.forced_status is not None:
            return prediction.forced_status
        elapsed = self.now() - prediction.created_at
        if elapsed < self.queue_seconds:
            return "queued"
        return "processing" if elapsed < self.queue_seconds + self.prediction_seconds else "succeeded"

    # ------------------------------------------------------------------ models

    async def _create_model(self, request: web.Request) -> web.Response:
        key = self._key(request)
        body = await self._json(request)
        self._only(body, ("displayName", "customModelType"))
        name = body.get("displayName")
        if not isinstance(name, str) or not name.strip():
            raise Invalid(422, "displayName is required")
        kind = body.get("customModelType")
        if kind is not None and not isinstance(kind, str):
            raise Invalid(422, "customModelType must be a string")
        model = FakeModel(_new_id("m"), key, name, kind)
        self.models[model.id] = model
        return web.json_response({"id": model.id, "displayName": model.display_name})

    async def _list_models(self, request: web.Request) -> web.Response:
        key = self._key(request)
        mine = [m for m in self.models.values() if m.key == key and not m.deleted]
        start = 0
        cursor = request.query.get("lastDocId")
        if cursor:
            ids = [m.id for m in mine]
            if cursor not in ids:
                raise Invalid(400, "Unknown lastDocId")
            start = ids.index(cursor) + 1
        page = mine[start : start + self.page_size]
        more = start + self.page_size < len(mine)
        models = [{"id": m.id, "displayName": m.display_name, "customModelType": m.custom_model_type} for m in page]
        return web.json_response(
            {"models": models, "nextPageCursor": page[-1].id if more and page else None, "hasMore": more}
        )

    async def _get_model(self, request: web.Request) -> web.Response:
        model = self._model(request, self._key(request))
        return web.json_response({"displayName": model.display_name})

    async def _rename_model(self, request: web.Request) -> web.Response:
        key = self._key(request)
        model = self._model(request, key)
        body = await self._json(request)
        self._only(body, ("updatedDisplayName",))
        name = body.get("updatedDisplayName")
        if not isinstance(name, str) or not name.strip():
            raise Invalid(422, "updatedDisplayName is required")
        model.display_name = name
        return web.json_response({"success": True})

    async def _delete_model(self, request: web.Request) -> web.Response:
        self._model(request, self._key(request)).deleted = True  # soft: trainings and predictions are kept
        return web.json_response({"success": True})

    # ------------------------------------------------------------------ training data

    async def _upload_data(self, request: web.Request) -> web.Response:
        model = self._model(request, self._key(request))
        data, content_type = await self._image_body(request)
        item = FakeData(_new_id("d"), model.id, content_type, data)
        self.data[item.id] = item
        model.data_ids.append(item.id)
        return web.json_response({"dataId": item.id})

    async def _list_data(self, request: web.Request) -> web.Response:
        model = self._model(request, self._key(request))
        return web.json_response([{"id": d, "contentType": self.data[d].content_type} for d in model.data_ids])

    async def _get_data(self, request: web.Request) -> web.Response:
        item = self._data_item(request, self._key(request))
        path = f"data/{item.id}/{item.replaced}"
        self.files[path] = (item.data, item.content_type)
        return web.json_response({"dataUrl": self._file_url(path)})

    async def _replace_data(self, request: web.Request) -> web.Response:
        item = self._data_item(request, self._key(request))
        item.data, item.content_type = await self._image_body(request)
        item.replaced += 1
        return web.json_response({"success": True})

    async def _delete_data(self, request: web.Request) -> web.Response:
        item = self._data_item(request, self._key(request))
        del self.data[item.id]  # permanent [seed]
        self.models[item.model_id].data_ids.remove(item.id)
        return web.json_response({"success": True})

    # ------------------------------------------------------------------ trainings

    async def _start_training(self, request: web.Request) -> web.Response:
        key = self._key(request)
        model = self._model(request, key)
        body = await self._json(request)
        self._only(body, ("trainingStrength", "trainingSpeed"))
        strength = _int_in(body, "trainingStrength", 0, 10, required=True)
        speed = body.get("trainingSpeed")
        if speed not in ("fast", "high_quality"):
            raise Invalid(422, 'trainingSpeed must be "fast" or "high_quality"')
        if not model.data_ids:
            raise Invalid(400, "The model has no training data")
        self._paid(key)
        assert strength is not None
        training = FakeTraining(
            _new_id("t"), model.id, strength, str(speed), self.now(), new_trigger_word(), list(model.data_ids)
        )
        self.trainings[training.id] = training
        model.training_ids.append(training.id)
        return web.json_response({"trainingId": training.id})

    async def _list_trainings(self, request: web.Request) -> web.Response:
        model = self._model(request, self._key(request))
        shown = [self.trainings[t] for t in model.training_ids if not self.trainings[t].deleted]
        return web.json_response([{"id": t.id, "status": self.training_status(t)} for t in shown])

    async def _get_training(self, request: web.Request) -> web.Response:
        training = self._training(request, self._key(request))
        return web.json_response({"status": self.training_status(training), "triggerWord": training.trigger_word})

    async def _cancel_training(self, request: web.Request) -> web.Response:
        training = self._training(request, self._key(request))
        status = self.training_status(training)
        if status == "succeeded":
            raise Invalid(409, TOO_LATE)
        if status not in ("canceled", "queued", "processing"):
            raise Invalid(409, f"Training cannot be canceled (status {status})")
        training.cancelled = True
        return web.json_response({"status": "canceled"})

    async def _delete_training(self, request: web.Request) -> web.Response:
        self._training(request, self._key(request)).deleted = True  # not cancelled [seed]
        return web.json_response({"success": True})

    # ------------------------------------------------------------------ predictions

    def _scale_configs(self, value: Any, key: str) -> list[tuple[str, FakeTraining]]:
        if not isinstance(value, dict) or not value:
            raise Invalid(422, "scaleConfigs must be an object with at least one model")
        if sorted(value) != sorted(str(n) for n in range(1, len(value) + 1)):
            raise Invalid(422, 'scaleConfigs keys must be "1", "2", ...')
        used = []
        for name in sorted(value, key=int):
            config = value[name]
            if not isinstance(config, dict):
                raise Invalid(422, f"scaleConfigs.{name} must be an object")
            self._only(config, ("scale", "modelId", "trainingId"))
            _number_in(config, "scale", 0.0, 2.0)
            if config.get("scale") is None:
                raise Invalid(422, f"scaleConfigs.{name}.scale is required")
            model_id, training_id = config.get("modelId"), config.get("trainingId")
            if not isinstance(model_id, str) or not isinstance(training_id, str):
                raise Invalid(422, f"scaleConfigs.{name} needs modelId and trainingId")
            model = self.models.get(model_id)
            training = self.trainings.get(training_id)
            if model is None or model.key != key or model.deleted:
                raise Invalid(404, f"Model {model_id} not found")
            if training is None or training.model_id != model_id:
                raise Invalid(404, f"Training {training_id} not found for model {model_id}")
            status = self.training_status(training)
            if status != "succeeded":
                raise Invalid(400, f"Model {model_id} is not trained (training {training_id} is {status})")
            used.append((model_id, training))
        return used

    async def _create_prediction(self, request: web.Request) -> web.Response:
        key = self._key(request)
        body = await self._json(request)
        self._only(body, PREDICTION_KEYS)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise Invalid(422, "prompt is required")
        _int_in(body, "seed", 0, 2**32 - 1)
        size = body.get("image_size")
        if size is not None:
            if not isinstance(size, dict):
                raise Invalid(422, "image_size must be an object {width, height}")
            self._only(size, ("width", "height"))
            _int_in(size, "width", 512, 1536, required=True)
            _int_in(size, "height", 512, 1536, required=True)
        _int_in(body, "num_images", 1, 4)
        if body.get("output_format") not in (None, "jpeg", "png"):
            raise Invalid(422, 'output_format must be "jpeg" or "png"')
        _number_in(body, "guidance_scale", 0.0, 10.0)
        _int_in(body, "num_inference_steps", 1, 50)
        used = self._scale_configs(body.get("scaleConfigs"), key)
        self._paid(key)
        words = {model_id: training.trigger_word in prompt for model_id, training in used}
        prediction = FakePrediction(_new_id("p"), key, body, self.now(), words)
        self.predictions[prediction.id] = prediction
        return web.json_response({"predictionId": prediction.id})

    def _outputs(self, prediction: FakePrediction) -> list[str]:
        if not prediction.image_paths:
            body = prediction.body
            size = body.get("image_size") or {"width": 1024, "height": 1024}
            fmt = body.get("output_format") or "jpeg"
            for n in range(body.get("num_images") or 1):
                path = f"predictions/{prediction.id}/{n}.{'png' if fmt == 'png' else 'jpg'}"
                data = render_image(body["prompt"], n, size["width"], size["height"], fmt)
                self.files[path] = (data, f"image/{fmt}")
                prediction.image_paths.append(path)
        return [self._file_url(p) for p in prediction.image_paths]

    def _prediction(self, request: web.Request, key: str) -> FakePrediction:
        prediction = self.predictions.get(request.match_info["prediction_id"])
        if prediction is None or prediction.key != key or prediction.deleted:
            raise Invalid(404, "Prediction not found")
        return prediction

    async def _get_prediction(self, request: web.Request) -> web.Response:
        prediction = self._prediction(request, self._key(request))
        status = self.prediction_status(prediction)
        images = self._outputs(prediction) if status == "succeeded" else []
        return web.json_response({"status": status, "outputImages": images})

    async def _delete_prediction(self, request: web.Request) -> web.Response:
        self._prediction(request, self._key(request)).deleted = True
        return web.json_response({"success": True})

    async def _file(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["path"])
        if found is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=found[0], content_type=found[1])

    # ------------------------------------------------------------------ accounting

    def uploads_to(self, model_id: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == f"{PREFIX}/models/{model_id}/data"]
