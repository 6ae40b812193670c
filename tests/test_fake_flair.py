"""The fake Flair server obeys the documented protocol (seed 001), spoken to with plain httpx."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.fakes import images
from tests.fakes.flair import MAX_UPLOAD_BYTES, TOO_LATE, FakeFlair

KEY = "fl_live_123"
BROKE = "fl_broke_123"


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlair]:
    async with FakeFlair(KEY, no_credit_keys={BROKE}) as server:
        yield server
        assert server.errors == []


@pytest.fixture
async def http(fake: FakeFlair) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url, headers={"API-Key": KEY}, timeout=5) as client:
        yield client


async def new_model(http: httpx.AsyncClient, name: str = "Style") -> str:
    answer = await http.post("/models", json={"displayName": name})
    assert answer.status_code == 200, answer.text
    assert answer.json()["displayName"] == name
    return str(answer.json()["id"])


async def upload(
    http: httpx.AsyncClient, model_id: str, data: bytes, content_type: str = "image/png"
) -> httpx.Response:
    return await http.post(f"/models/{model_id}/data", content=data, headers={"Content-Type": content_type})


async def trained(fake: FakeFlair, http: httpx.AsyncClient, name: str = "Style") -> tuple[str, str, str]:
    """A model with one image and a succeeded training: (model id, training id, trigger word)."""
    model_id = await new_model(http, name)
    assert (await upload(http, model_id, images.png(64, 64, label=name))).status_code == 200
    started = await http.post(f"/models/{model_id}/trainings", json={"trainingStrength": 7, "trainingSpeed": "fast"})
    training_id = started.json()["trainingId"]
    fake.advance(fake.training_seconds + 1)
    status = (await http.get(f"/models/{model_id}/trainings/{training_id}")).json()
    assert status["status"] == "succeeded"
    return model_id, training_id, status["triggerWord"]


def prediction(model_id: str, training_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "scaleConfigs": {"1": {"scale": 0.8, "modelId": model_id, "trainingId": training_id}},
        "prompt": "a dress",
        "image_size": {"width": 512, "height": 512},
        "num_images": 2,
        "output_format": "png",
        "guidance_scale": 7.5,
        "num_inference_steps": 20,
    }
    body.update(fields)
    return body


async def test_the_api_key_travels_in_a_configurable_header() -> None:
    async with FakeFlair(KEY, auth_header="X-Flair-Key") as fake, httpx.AsyncClient(base_url=fake.base_url) as http:
        assert (await http.get("/models")).status_code == 401
        assert (await http.get("/models", headers={"API-Key": KEY})).status_code == 401
        assert (await http.get("/models", headers={"X-Flair-Key": "fl_wrong"})).status_code == 401
        assert (await http.get("/models", headers={"X-Flair-Key": KEY})).status_code == 200


async def test_models_rename_soft_delete_and_cursor_pages(fake: FakeFlair, http: httpx.AsyncClient) -> None:
    fake.page_size = 2
    ids = [await new_model(http, f"Model {n}") for n in range(5)]
    assert (await http.post("/models", json={})).status_code == 422
    assert (await http.post("/models", json={"displayName": "x", "name": "y"})).status_code == 422
    renamed = await http.patch(f"/models/{ids[0]}", json={"updatedDisplayName": "Summer"})
    assert renamed.status_code == 200
    assert (await http.get(f"/models/{ids[0]}")).json() == {"displayName": "Summer"}
    assert (await http.delete(f"/models/{ids[1]}")).status_code == 200
    assert (await http.get(f"/models/{ids[1]}")).status_code == 404
    assert fake.models[ids[1]].deleted, "soft delete: the record is kept"

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = (await http.get("/models", params={"lastDocId": cursor} if cursor else None)).json()
        pages += 1
        seen += [m["id"] for m in page["models"]]
        if not page["hasMore"]:
            assert page["nextPageCursor"] is None
            break
        cursor = page["nextPageCursor"]
    assert seen == [ids[0], *ids[2:]]
    assert pages == 2
    assert (await http.get("/models", params={"lastDocId": "nope"})).status_code == 400


async def test_training_data_is_a_raw_checked_body(fake: FakeFlair, http: httpx.AsyncClient) -> None:
    model_id = await new_model(http)
    png = images.png(80, 60, label="dress")
    made = await upload(http, model_id, png)
    assert made.status_code == 200
    data_id = made.json()["dataId"]
    assert fake.data[data_id].data == png, "stored byte for byte"
    assert (await upload(http, model_id, images.webp(64, 64), "image/webp")).status_code == 200
    assert (await upload(http, model_id, images.jpeg(64, 64), "image/jpeg")).status_code == 200
    # refused: HEIC, a lying content type, multipart, not an image, too large
    assert (await upload(http, model_id, images.heic(64, 64), "image/heic")).status_code == 415
    assert (await upload(http, model_id, png, "image/jpeg")).status_code == 400
    multipart = await http.post(f"/models/{model_id}/data", files={"file": ("a.png", png, "image/png")})
    assert multipart.status_code == 415
    assert (await upload(http, model_id, b"\x89PNG\r\n\x1a\nnot really")).status_code == 400
    big = b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES)
    too_big = await upload(http, model_id, big)
    assert too_big.status_code == 413
    assert "10MB" in too_big.json()["error"]
    assert len(fake.models[model_id].data_ids) == 3

    listed = (await http.get(f"/models/{model_id}/data")).json()
    assert [item["id"] for item in listed] == fake.models[model_id].data_ids
    url = (await http.get(f"/models/{model_id}/data/{data_id}")).json()["dataUrl"]
    assert (await http.get(url)).content == png
    jpeg = images.jpeg(70, 70, label="better")
    replaced = await http.put(
        f"/models/{model_id}/data/{data_id}", content=jpeg, headers={"Content-Type": "image/jpeg"}
    )
    assert replaced.status_code == 200
    url = (await http.get(f"/models/{model_id}/data/{data_id}")).json()["dataUrl"]
    got = await http.get(url)
    assert got.content == jpeg
    assert got.headers["Content-Type"] == "image/jpeg"
    assert (await http.delete(f"/models/{model_id}/data/{data_id}")).status_code == 200
    assert (await http.get(f"/models/{model_id}/data/{data_id}")).status_code == 404
    assert data_id not in fake.data, "deleting training data is permanent"


async def test_training_moves_on_the_clock_and_gives_a_trigger_word(fake: FakeFlair, http: httpx.AsyncClient) -> None:
    model_id = await new_model(http)
    start = f"/models/{model_id}/trainings"
    assert (await http.post(start, json={"trainingStrength": 5, "trainingSpeed": "fast"})).status_code == 400
    await upload(http, model_id, images.png(64, 64))
    for bad in (
        {"trainingStrength": 11, "trainingSpeed": "fast"},
        {"trainingStrength": -1, "trainingSpeed": "fast"},
        {"trainingStrength": 5.5, "trainingSpeed": "fast"},
        {"trainingStrength": 5, "trainingSpeed": "slow"},
        {"trainingStrength": 5, "trainingSpeed": "fast", "steps": 3},
        {"trainingSpeed": "fast"},
    ):
        answer = await http.post(start, json=bad)
        assert answer.status_code == 422, bad
        assert answer.json()["error"]
    started = await http.post(start, json={"trainingStrength": 10, "trainingSpeed": "high_quality"})
    training_id = started.json()["trainingId"]
    status = (await http.get(f"{start}/{training_id}")).json()
    assert status["status"] == "processing"
    assert re.fullmatch(r"[A-Z][A-Z0-9]{6}", status["triggerWord"])
    fake.advance(fake.training_seconds + 1)
    assert (await http.get(f"{start}/{training_id}")).json() == {
        "status": "succeeded",
        "triggerWord": status["triggerWord"],
    }
    assert (await http.get(start)).json() == [{"id": training_id, "status": "succeeded"}]


async def test_cancel_stops_a_running_training_and_is_too_late_once_succeeded(
    fake: FakeFlair, http: httpx.AsyncClient
) -> None:
    model_id, done_id, _ = await trained(fake, http)
    late = await http.post(f"/models/{model_id}/trainings/{done_id}/cancel")
    assert late.status_code == 409
    assert late.json()["error"] == TOO_LATE
    again = await http.post(f"/models/{model_id}/trainings", json={"trainingStrength": 3, "trainingSpeed": "fast"})
    running_id = again.json()["trainingId"]
    assert (await http.post(f"/models/{model_id}/trainings/{running_id}/cancel")).status_code == 200
    fake.advance(fake.training_seconds + 1)
    assert (await http.get(f"/models/{model_id}/trainings/{running_id}")).json()["status"] == "canceled"
    # soft delete hides the training from the list but keeps the trained model usable
    assert (await http.delete(f"/models/{model_id}/trainings/{done_id}")).status_code == 200
    assert [t["id"] for t in (await http.get(f"/models/{model_id}/trainings")).json()] == [running_id]
    assert fake.trainings[done_id].deleted


async def test_predictions_validate_every_field(fake: FakeFlair, http: httpx.AsyncClient) -> None:
    model_id, training_id, _ = await trained(fake, http)
    bad_fields: list[dict[str, Any]] = [
        {"image_size": {"width": 511, "height": 512}},
        {"image_size": {"width": 512, "height": 1537}},
        {"num_images": 0},
        {"num_images": 5},
        {"output_format": "webp"},
        {"guidance_scale": 10.5},
        {"guidance_scale": -0.1},
        {"num_inference_steps": 0},
        {"num_inference_steps": 51},
        {"seed": "42"},
        {"prompt": ""},
        {"imageSize": {"width": 512, "height": 512}},  # camelCase where the API wants snake_case
        {"numImages": 2},
        {"scaleConfigs": {}},
        {"scaleConfigs": {"2": {"scale": 1, "modelId": model_id, "trainingId": training_id}}},
        {"scaleConfigs": {"1": {"scale": 1, "model_id": model_id, "trainingId": training_id}}},
    ]
    for fields in bad_fields:
        answer = await http.post("/predictions", json=prediction(model_id, training_id, **fields))
        assert answer.status_code == 422, fields
    unknown = await http.post("/predictions", json=prediction("m_nope", training_id))
    assert unknown.status_code == 404
    assert fake.predictions == {}


async def test_prediction_refuses_untrained_models_and_records_trigger_words(
    fake: FakeFlair, http: httpx.AsyncClient
) -> None:
    a_model, a_training, a_word = await trained(fake, http, "A")
    b_model, b_training, b_word = await trained(fake, http, "B")
    await upload(http, b_model, images.png(64, 64, label="more"))
    retrain = await http.post(f"/models/{b_model}/trainings", json={"trainingStrength": 1, "trainingSpeed": "fast"})
    refused = await http.post("/predictions", json=prediction(b_model, retrain.json()["trainingId"]))
    assert refused.status_code == 400
    assert "not trained" in refused.json()["error"]

    blend = {
        "1": {"scale": 0.7, "modelId": a_model, "trainingId": a_training},
        "2": {"scale": 0.3, "modelId": b_model, "trainingId": b_training},
    }
    made = await http.post(
        "/predictions", json=prediction(a_model, a_training, scaleConfigs=blend, prompt=f"a {a_word} hat")
    )
    assert made.status_code == 200
    prediction_id = made.json()["predictionId"]
    assert fake.predictions[prediction_id].trigger_words_in_prompt == {a_model: True, b_model: False}
    assert b_word not in fake.predictions[prediction_id].body["prompt"]
    assert (await http.get(f"/predictions/{prediction_id}")).json() == {"status": "processing", "outputImages": []}
    fake.advance(fake.prediction_seconds + 1)
    done = (await http.get(f"/predictions/{prediction_id}")).json()
    assert done["status"] == "succeeded"
    assert len(done["outputImages"]) == 2
    for url in done["outputImages"]:
        with Image.open(io.BytesIO((await http.get(url)).content)) as image:
            assert (image.format, image.size) == ("PNG", (512, 512))
    assert (await http.delete(f"/predictions/{prediction_id}")).status_code == 200
    assert (await http.get(f"/predictions/{prediction_id}")).status_code == 404
    assert fake.predictions[prediction_id].deleted


async def test_paid_operations_need_credits(fake: FakeFlair) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url, headers={"API-Key": BROKE}) as broke:
        model_id = await new_model(broke)  # free
        assert (await upload(broke, model_id, images.png(64, 64))).status_code == 200  # free
        answer = await broke.post(
            f"/models/{model_id}/trainings", json={"trainingStrength": 5, "trainingSpeed": "fast"}
        )
        assert answer.status_code == 402
    assert fake.trainings == {}


async def test_fault_switches(fake: FakeFlair, http: httpx.AsyncClient) -> None:
    fake.rate_limit_next(retry_after=3, route="create_model")
    limited = await http.post("/models", json={"displayName": "x"})
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"
    assert fake.models == {}, "a refused request takes no effect"
    fake.fail_next(500, route="GET /models")
    assert (await http.get("/models")).status_code == 500
    fake.out_of_credits_next()
    assert (await http.get("/models")).status_code == 402
    model_id = await new_model(http)
    fake.fail_next(503, route="upload_data", skip=1)
    assert (await upload(http, model_id, images.png(32, 32, label="1"))).status_code == 200
    assert (await upload(http, model_id, images.png(32, 32, label="2"))).status_code == 503
    fake.drop_next(route="create_model")
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post("/models", json={"displayName": "lost"})
    assert len(fake.models) == 1
    fake.drop_next(route="create_model", after_processing=True)
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post("/models", json={"displayName": "answer lost"})
    assert len(fake.models) == 2, "the create took effect; only its answer was lost"
    fake.slow_next(5, route="get_model")
    with pytest.raises(httpx.ReadTimeout):
        await http.get(f"/models/{model_id}", timeout=0.2)
    await asyncio.sleep(0)
