"""Every operation of the Flair AI Custom Model API (seed 001), through the one request policy.

`FlairClient` is usable directly by commands for the free operations (models, training data, listings);
the paid, long-running ones (trainings, predictions) run as jobs through `FlairAdapter`.

Retry safety per operation: reads, renames, replaces (PUT), cancels and deletes are idempotent and retried
in-call; creates (model, upload, training, prediction) are sent again only when they provably never reached
Flair, since a second create is a second model, image, training or bill.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from bot.media import MediaError
from bot.providers.base import InvalidInput, Transient
from bot.providers.flair.images import Upload, prepare_upload
from bot.providers.flair.models import (
    CreatedModel,
    CreatedPrediction,
    CreateModel,
    CreatePrediction,
    DataInfo,
    DataItem,
    ModelInfo,
    ModelPage,
    ModelSummary,
    Prediction,
    RenameModel,
    StartedTraining,
    StartTraining,
    TrainingSpeed,
    TrainingStatus,
    TrainingSummary,
    UploadedData,
)
from bot.providers.flair.routes import Routes
from bot.providers.http import ProviderHTTP

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_PAGES = 1000  # a provider that always says hasMore must not loop us forever
_TOO_LATE = re.compile(r"too late|already|complete|succeeded|finished|cannot be cancel+ed|not (?:running|in progress)")


class TooLateToCancel(InvalidInput):
    """The training had already finished (or stopped) when the cancel arrived: it will be billed."""


def _listed(data: Any, *keys: str) -> Any:
    # The seed shows bare arrays for the lists; tolerate them wrapped in an object too.
    if isinstance(data, dict):
        for key in keys:
            if isinstance(data.get(key), list):
                return data[key]
    return data


class FlairClient:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        auth_header: str = "API-Key",
        paths: Mapping[str, str] | str | None = None,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.routes = Routes(paths)
        self._http = ProviderHTTP(
            client,
            provider="Flair",
            base_url=self.base_url,
            auth_headers={auth_header: api_key},
            on_request=on_request,
        )

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient) -> FlairClient:
        if settings.flair_api_key is None or settings.flair_base_url is None:
            raise ValueError("Flair needs FLAIR_API_KEY and FLAIR_BASE_URL")
        return cls(
            client,
            api_key=settings.flair_api_key.get_secret_value(),
            base_url=str(settings.flair_base_url),
            auth_header=settings.flair_auth_header,
            # Not a setting yet (proposed: FLAIR_PATHS, JSON): read defensively until it exists.
            paths=getattr(settings, "flair_paths", None),
        )

    # ------------------------------------------------------------------ plumbing

    async def _call(
        self,
        operation: str,
        answer: type[T] | TypeAdapter[T] | None,
        *,
        safe: bool,
        ids: Mapping[str, str] | None = None,
        body: BaseModel | None = None,
        upload: Upload | None = None,
        params: Mapping[str, str] | None = None,
        unwrap: tuple[str, ...] = (),
    ) -> T | None:
        route = self.routes[operation]
        path = route.format(**(ids or {}))
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["json"] = body.model_dump(by_alias=True, exclude_none=True)
        if upload is not None:  # the raw image is the whole body [seed]: no multipart, no JSON
            kwargs["content"] = upload.data
            kwargs["headers"] = {"Content-Type": upload.content_type}
        if params:
            kwargs["params"] = dict(params)
        if answer is None:
            await self._http.request(route.method, path, safe=safe, **kwargs)
            return None
        data = await self._http.json(route.method, path, safe=safe, **kwargs)
        if unwrap:
            data = _listed(data, *unwrap)
        adapter = answer if isinstance(answer, TypeAdapter) else TypeAdapter(answer)
        try:
            return adapter.validate_python(data)
        except ValidationError as exc:
            log.warning("Flair %s: unexpected answer (%d problems)", operation, exc.error_count())
            raise Transient("Flair sent an answer Easel does not understand") from exc

    async def _get(self, operation: str, answer: type[T] | TypeAdapter[T], **kwargs: Any) -> T:
        result = await self._call(operation, answer, safe=True, **kwargs)
        assert result is not None
        return result

    async def _create(self, operation: str, answer: type[T], **kwargs: Any) -> T:
        result = await self._call(operation, answer, safe=False, **kwargs)
        assert result is not None
        return result

    # ------------------------------------------------------------------ models

    async def create_model(self, display_name: str, custom_model_type: str | None = None) -> CreatedModel:
        body = _request(CreateModel, displayName=display_name, customModelType=custom_model_type)
        return await self._create("create_model", CreatedModel, body=body)

    async def get_model(self, model_id: str) -> ModelInfo:
        return await self._get("get_model", ModelInfo, ids={"model_id": model_id})

    async def rename_model(self, model_id: str, display_name: str) -> None:
        body = _request(RenameModel, updatedDisplayName=display_name)
        await self._call("rename_model", None, safe=True, ids={"model_id": model_id}, body=body)

    async def delete_model(self, model_id: str) -> None:
        """Soft delete: Flair keeps the model's history and predictions."""
        await self._call("delete_model", None, safe=True, ids={"model_id": model_id})

    async def list_models(self, cursor: str | None = None) -> ModelPage:
        params = {"lastDocId": cursor} if cursor else None
        return await self._get("list_models", ModelPage, params=params)

    async def iter_models(self) -> AsyncIterator[ModelSummary]:
        """Every model, following `nextPageCursor` while `hasMore`."""
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await self.list_models(cursor)
            for model in page.models:
                yield model
            if not page.has_more:
                return
            # Some cursor APIs send no explicit cursor: the last document's id is what lastDocId means.
            next_cursor = page.next_page_cursor or (page.models[-1].id if page.models else None)
            if not next_cursor or next_cursor == cursor:
                log.warning("Flair model list: hasMore without a new cursor; stopping")
                return
            cursor = next_cursor
        log.warning("Flair model list: stopped after %d pages", MAX_PAGES)

    # ------------------------------------------------------------------ training data

    async def prepare(self, data: bytes) -> Upload:
        try:
            return await asyncio.to_thread(prepare_upload, data)
        except (MediaError, OSError) as exc:
            raise InvalidInput(f"a training image cannot be sent to Flair: {exc}") from exc

    async def upload_data(self, model_id: str, data: bytes) -> str:
        """Upload one training image (any readable image; converted/shrunk as needed). Returns its data id."""
        upload = await self.prepare(data)
        answer = await self._create("upload_data", UploadedData, ids={"model_id": model_id}, upload=upload)
        return answer.data_id

    async def list_data(self, model_id: str) -> list[DataItem]:
        return await self._get(
            "list_data", TypeAdapter(list[DataItem]), ids={"model_id": model_id}, unwrap=("data", "items")
        )

    async def get_data(self, model_id: str, data_id: str) -> DataInfo:
        return await self._get("get_data", DataInfo, ids={"model_id": model_id, "data_id": data_id})

    async def replace_data(self, model_id: str, data_id: str, data: bytes) -> None:
        upload = await self.prepare(data)
        ids = {"model_id": model_id, "data_id": data_id}
        await self._call("replace_data", None, safe=True, ids=ids, upload=upload)

    async def delete_data(self, model_id: str, data_id: str) -> None:
        """Permanent [seed]."""
        await self._call("delete_data", None, safe=True, ids={"model_id": model_id, "data_id": data_id})

    # ------------------------------------------------------------------ trainings

    async def start_training(self, model_id: str, *, strength: int, speed: TrainingSpeed | str) -> str:
        """Start a (paid) training; returns its id. Sent at most once unless it never reached Flair."""
        body = _request(StartTraining, trainingStrength=strength, trainingSpeed=speed)
        answer = await self._create("start_training", StartedTraining, ids={"model_id": model_id}, body=body)
        return answer.training_id

    async def list_trainings(self, model_id: str) -> list[TrainingSummary]:
        return await self._get(
            "list_trainings", TypeAdapter(list[TrainingSummary]), ids={"model_id": model_id}, unwrap=("trainings",)
        )

    async def get_training(self, model_id: str, training_id: str) -> TrainingStatus:
        ids = {"model_id": model_id, "training_id": training_id}
        return await self._get("get_training", TrainingStatus, ids=ids)

    async def cancel_training(self, model_id: str, training_id: str) -> None:
        """Stop a training in progress. Raises TooLateToCancel when it had already finished."""
        ids = {"model_id": model_id, "training_id": training_id}
        try:
            await self._call("cancel_training", None, safe=True, ids=ids)
        except InvalidInput as exc:
            if exc.status == 409 or _TOO_LATE.search(exc.message.lower()):
                raise TooLateToCancel(
                    f"the training had already finished when the cancel arrived ({exc.message})", status=exc.status
                ) from exc
            raise

    async def delete_training(self, model_id: str, training_id: str) -> None:
        """Soft delete; it does not cancel a running training [seed]."""
        ids = {"model_id": model_id, "training_id": training_id}
        await self._call("delete_training", None, safe=True, ids=ids)

    # ------------------------------------------------------------------ predictions

    async def create_prediction(self, request: CreatePrediction) -> str:
        """Start a (paid) prediction; returns its id."""
        answer = await self._create("create_prediction", CreatedPrediction, body=request)
        return answer.prediction_id

    async def get_prediction(self, prediction_id: str) -> Prediction:
        return await self._get("get_prediction", Prediction, ids={"prediction_id": prediction_id})

    async def delete_prediction(self, prediction_id: str) -> None:
        await self._call("delete_prediction", None, safe=True, ids={"prediction_id": prediction_id})


R = TypeVar("R", bound=BaseModel)


def _request(model: type[R], **fields: Any) -> R:
    """Build a request, refusing out-of-range values before anything is sent."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"invalid Flair request: {problems}") from exc
