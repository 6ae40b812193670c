"""The Flair client and adapter against the fake Flair server, through the production HTTP client."""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from bot.http_client import build_http_client
from bot.providers.base import (
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
    RateLimited,
    Submitted,
    Transient,
)
from bot.providers.flair import IMAGE, TRAINING, FlairAdapter, FlairClient, MemoryUploadLog, TooLateToCancel
from bot.providers.flair.models import UPLOAD_MAX_BYTES, CreatePrediction, ScaleConfig
from bot.providers.flair.routes import Routes
from bot.providers.registry import build_adapters
from bot.settings import Settings
from tests.fakes import images
from tests.fakes.flair import FakeFlair

KEY = "fl_live_123"
BROKE = "fl_broke_123"


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlair]:
    async with FakeFlair(KEY, no_credit_keys={BROKE}) as server:
        yield server
        assert server.errors == []


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client() as client:  # the client production uses
        yield client


def flair(fake: FakeFlair, http: httpx.AsyncClient, key: str = KEY, **kwargs: Any) -> FlairAdapter:
    return FlairAdapter(http, api_key=key, base_url=fake.base_url, **kwargs)


def client(fake: FakeFlair, http: httpx.AsyncClient, key: str = KEY, **kwargs: Any) -> FlairClient:
    return FlairClient(http, api_key=key, base_url=fake.base_url, **kwargs)


def stored(tmp_path: Path, count: int, who: str = "dress") -> list[InputFile]:
    """Training images stored as the job engine stores inputs: by content hash, name "image"."""
    made = []
    for n in range(count):
        data = images.png(64, 64, label=f"{who} {n}") if n % 2 else images.jpeg(64, 64, label=f"{who} {n}")
        path = tmp_path / hashlib.sha256(data).hexdigest()
        path.write_bytes(data)
        made.append(InputFile("image", path, f"{who}{n}.png", "image/png", len(data)))
    return made


def training_job(model_id: str, inputs: list[InputFile], job_id: str = "job1", **params: Any) -> JobContext:
    return JobContext(
        job_id, TRAINING, {"model_id": model_id, "strength": 7, "speed": "fast", **params}, {}, inputs, None, 1
    )


def image_job(params: dict[str, Any], job_id: str = "job2") -> JobContext:
    return JobContext(job_id, IMAGE, params, {}, [], None, 1)


def with_ref(job: JobContext, ref: dict[str, Any]) -> JobContext:
    return JobContext(job.id, job.feature, job.params, ref, job.inputs, job.callback_url, job.attempts)


def posts(fake: FakeFlair, path: str) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST" and r.path == "/v1" + path]


async def trained_model(fake: FakeFlair, api: FlairClient, name: str) -> tuple[str, str, str]:
    """(model id, training id, trigger word) of a model trained through the client."""
    model = await api.create_model(name)
    await api.upload_data(model.id, images.png(64, 64, label=name))
    training_id = await api.start_training(model.id, strength=5, speed="fast")
    fake.advance(fake.training_seconds + 1)
    status = await api.get_training(model.id, training_id)
    assert status.status == "succeeded"
    assert status.trigger_word is not None
    return model.id, training_id, status.trigger_word


# ---------------------------------------------------------------- the client


async def test_every_client_operation(fake: FakeFlair, http: httpx.AsyncClient) -> None:
    api = client(fake, http)
    created = await api.create_model("Summer Collection", custom_model_type="style")
    assert (await api.get_model(created.id)).display_name == "Summer Collection"
    await api.rename_model(created.id, "Summer Dresses")
    assert fake.models[created.id].display_name == "Summer Dresses"

    png = images.png(80, 80, label="dress")
    data_id = await api.upload_data(created.id, png)
    assert [d.data_id for d in await api.list_data(created.id)] == [data_id]
    info = await api.get_data(created.id, data_id)
    assert (await http.get(info.data_url)).content == png
    jpeg = images.jpeg(90, 90, label="better dress")
    await api.replace_data(created.id, data_id, jpeg)
    assert fake.data[data_id].data == jpeg
    second = await api.upload_data(created.id, images.webp(64, 64))
    await api.delete_data(created.id, second)
    assert second not in fake.data

    training_id = await api.start_training(created.id, strength=10, speed="high_quality")
    assert posts(fake, f"/models/{created.id}/trainings")[0].json == {
        "trainingStrength": 10,
        "trainingSpeed": "high_quality",
    }
    assert [(t.id, t.status) for t in await api.list_trainings(created.id)] == [(training_id, "processing")]
    fake.advance(fake.training_seconds + 1)
    status = await api.get_training(created.id, training_id)
    assert (status.status, status.trigger_word) == ("succeeded", fake.trainings[training_id].trigger_word)

    request = CreatePrediction.blend(
        [ScaleConfig(scale=1.0, model_id=created.id, training_id=training_id)],
        prompt=f"a hat in style of {status.trigger_word}",
    )
    prediction_id = await api.create_prediction(request)
    assert (await api.get_prediction(prediction_id)).status == "processing"
    fake.advance(fake.prediction_seconds + 1)
    assert len((await api.get_prediction(prediction_id)).output_images) == 1
    await api.delete_prediction(prediction_id)
    assert fake.predictions[prediction_id].deleted
    await api.delete_training(created.id, training_id)
    assert await api.list_trainings(created.id) == []
    await api.delete_model(created.id)
    with pytest.raises(NotFoundAtProvider):
        await api.get_model(created.id)
    assert fake.models[created.id].deleted
    for request_seen in (r for r in fake.requests if r.path.startswith("/v1/")):
        assert request_seen.headers["API-Key"] == KEY
        assert "Authorization" not in request_seen.headers


async def test_requests_out_of_range_are_refused_before_sending(fake: FakeFlair, http: httpx.AsyncClient) -> None:
    api = client(fake, http)
    with pytest.raises(InvalidInput, match="trainingStrength"):
        await api.start_training("m1", strength=11, speed="fast")
    with pytest.raises(InvalidInput, match="trainingSpeed"):
        await api.start_training("m1", strength=5, speed="slow")
    with pytest.raises(InvalidInput, match="displayName"):
        await api.create_model("")
    assert fake.requests == []


async def test_the_upload_is_the_raw_image_body(fake: FakeFlair, http: httpx.AsyncClient) -> None:
    api = client(fake, http)
    model = await api.create_model("Raw")
    for data, content_type in (
        (images.png(64, 64), "image/png"),
        (images.jpeg(64, 64), "image/jpeg"),
        (images.webp(64, 64), "image/webp"),
    ):
        data_id = await api.upload_data(model.id, data)
        sent = posts(fake, f"/models/{model.id}/data")[-1]
        assert sent.body == data, "accepted formats are sent byte for byte, not multipart"
        assert sent.headers["Content-Type"] == content_type
        assert fake.data[data_id].data == data


async def test_heic_and_other_formats_are_converted_and_oversize_is_shrunk(
    fake: FakeFlair, http: httpx.AsyncClient
) -> None:
    api = client(fake, http)
    model = await api.create_model("Converted")
    heic_id = await api.upload_data(model.id, images.heic(96, 64))
    gif = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 10, 10)).save(gif, "GIF")
    gif_id = await api.upload_data(model.id, gif.getvalue())
    for data_id in (heic_id, gif_id):
        assert fake.data[data_id].content_type == "image/jpeg"
        assert fake.data[data_id].data.startswith(b"\xff\xd8\xff")
    assert Image.open(io.BytesIO(fake.data[heic_id].data)).size == (96, 64)

    noise = np.random.default_rng(7).integers(0, 256, (1880, 1880, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(noise).save(out, "PNG", compress_level=0)
    oversize = out.getvalue()
    assert len(oversize) > UPLOAD_MAX_BYTES
    big_id = await api.upload_data(model.id, oversize)
    assert len(fake.data[big_id].data) <= UPLOAD_MAX_BYTES
    assert fake.data[big_id].content_type == "image/jpeg"
    with pytest.raises(InvalidInput, match="not an image"):
        await api.upload_data(model.id, b"just some text")
    assert len(fake.models[model.id].data_ids) == 3


async def test_models_are_listed_across_cursor_pages(fake: FakeFlair, http: httpx.AsyncClient) -> None:
    fake.page_size = 2
    api = client(fake, http)
    ids = [(await api.create_model(f"Model {n}")).id for n in range(5)]
    assert [m.id async for m in api.iter_models()] == ids
    lists = [r for r in fake.requests if r.method == "GET" and r.path == "/v1/models"]
    assert [r.query.get("lastDocId") for r in lists] == [None, ids[1], ids[3]]
    first = await api.list_models()
    assert (first.has_more, first.next_page_cursor) == (True, ids[1])


async def test_paths_and_auth_header_are_configurable(http: httpx.AsyncClient) -> None:
    moved = {"rename_model": "PUT /models/{model_id}/name", "list_models": "GET /models/all"}
    async with FakeFlair(KEY, auth_header="X-Api-Key", routes=moved) as fake:
        api = FlairClient(http, api_key=KEY, base_url=fake.base_url, auth_header="X-Api-Key", paths=moved)
        model = await api.create_model("Moved")
        await api.rename_model(model.id, "Renamed")
        assert [m.display_name async for m in api.iter_models()] == ["Renamed"]
        wrong_header = FlairClient(http, api_key=KEY, base_url=fake.base_url, paths=moved)
        with pytest.raises(AuthenticationFailed):
            await wrong_header.get_model(model.id)
    assert Routes('{"get_model": "GET /custom/{model_id}"}')["get_model"].format(model_id="a/b") == "/custom/a%2Fb"
    for bad in ({"nope": "GET /x"}, {"get_model": "GET /models"}, {"get_model": "FETCH /m/{model_id}"}):
        with pytest.raises(ValueError, match="flair_paths"):
            Routes(bad)


async def test_built_from_settings_by_the_registry(fake: FakeFlair, http: httpx.AsyncClient, tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        discord_token="t",
        database_path=tmp_path / "easel.db",
        flair_api_key=KEY,
        flair_base_url=fake.base_url,
    )
    adapter = build_adapters(settings, http)["flair"]
    assert isinstance(adapter, FlairAdapter)
    await adapter.api.create_model("From settings")
    assert fake.requests[-1].headers["API-Key"] == KEY


# ---------------------------------------------------------------- style training jobs


async def test_training_job_submit_check_finished_with_trigger_word(
    fake: FakeFlair, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    adapter = flair(fake, http)
    model = await adapter.api.create_model("Brand")
    job = training_job(model.id, stored(tmp_path, 4), strength=9, speed="high_quality")
    submitted = await adapter.submit(job)
    assert isinstance(submitted, Submitted)
    training_id = submitted.ref["training_id"]
    assert submitted.ref == {"model_id": model.id, "training_id": training_id}
    assert len(fake.models[model.id].data_ids) == 4
    assert fake.trainings[training_id].data_ids == fake.models[model.id].data_ids
    assert (fake.trainings[training_id].strength, fake.trainings[training_id].speed) == (9, "high_quality")
    job = with_ref(job, submitted.ref)
    assert isinstance(await adapter.check(job), Pending)
    fake.advance(fake.training_seconds + 1)
    done = await adapter.check(job)
    assert isinstance(done, Finished)
    word = fake.trainings[training_id].trigger_word
    assert done.meta["trigger_word"] == word
    assert done.meta["training_id"] == training_id
    assert done.files == []
    assert done.text is not None
    assert word in done.text
    again = await adapter.submit(job)
    assert isinstance(again, Submitted)
    assert again.ref["training_id"] == training_id, "a repeated submit never starts a second training"
    assert len(fake.trainings) == 1


@pytest.mark.parametrize("parallelism", [1, 3])
async def test_a_failure_mid_uploads_then_resubmit_uploads_only_the_rest(
    fake: FakeFlair, http: httpx.AsyncClient, tmp_path: Path, parallelism: int
) -> None:
    log = MemoryUploadLog()
    first = flair(fake, http, upload_log=log)
    first.upload_parallelism = parallelism
    model = await first.api.create_model("Crashy")
    inputs = stored(tmp_path, 6)
    fake.drop_next(route="upload_data", skip=2)  # the connection dies on the third upload to arrive
    with pytest.raises(Transient) as caught:
        await first.submit(training_job(model.id, inputs))
    assert caught.value.reached is False, "the paid start was never sent: the engine may resubmit"
    recorded = await log.uploaded("job1")
    assert sorted(recorded.values()) == sorted(fake.data), "every upload Flair stored is recorded"
    assert 2 <= len(fake.data) <= parallelism + 1, "no new upload starts after the failure"
    assert fake.trainings == {}

    restarted = flair(fake, http, upload_log=log)  # a new process, the same (persisted) log
    submitted = await restarted.submit(training_job(model.id, inputs))
    assert isinstance(submitted, Submitted)
    assert len(fake.uploads_to(model.id)) == 7, "six images and the dropped request: none uploaded twice"
    assert len(fake.data) == 6
    assert sorted(fake.models[model.id].data_ids) == sorted((await log.uploaded("job1")).values())
    assert len(fake.trainings) == 1
    assert len(posts(fake, f"/models/{model.id}/trainings")) == 1


async def test_a_crash_while_recording_stops_the_submit(
    fake: FakeFlair, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    class CrashingLog(MemoryUploadLog):
        async def record_upload(self, job_id: str, key: str, data_id: str) -> None:
            if len(await self.uploaded(job_id)) == 2:
                raise RuntimeError("disk full")
            await super().record_upload(job_id, key, data_id)

    log = CrashingLog()
    adapter = flair(fake, http, upload_log=log)
    adapter.upload_parallelism = 1
    model = await adapter.api.create_model("Disk full")
    with pytest.raises(RuntimeError):
        await adapter.submit(training_job(model.id, stored(tmp_path, 4)))
    assert len(fake.data) == 3, "nothing more is uploaded once a step failed"
    assert fake.trainings == {}, "the paid start is never sent after a failed step"
    assert (await log.start_state("job1")).sent is False


async def test_a_start_whose_answer_was_lost_is_found_in_the_training_list(
    fake: FakeFlair, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    log = MemoryUploadLog()
    adapter = flair(fake, http, upload_log=log)
    model = await adapter.api.create_model("Lost answer")
    inputs = stored(tmp_path, 2)
    older = await adapter.submit(training_job(model.id, inputs, job_id="old"))
    assert isinstance(older, Submitted)
    fake.drop_next(route="start_training", after_processing=True)
    found = await adapter.submit(training_job(model.id, inputs, job_id="new"))
    assert isinstance(found, Submitted)
    new_id = next(t for t in fake.trainings if t != older.ref["training_id"])
    assert found.ref == {"model_id": model.id, "training_id": new_id}, "the new one, not the model's older training"
    assert len(fake.trainings) == 2
    assert (await log.start_state("new")).training_id == new_id

    fake.drop_next(route="start_training")  # this time it never took effect
    lost = training_job(model.id, inputs, job_id="lost")
    with pytest.raises(Transient) as caught:
        await adapter.submit(lost)
    assert caught.value.reached is True, "it might still land: the engine must not send it again"
    with pytest.raises(Transient, match="not sent again"):
        await adapter.submit(lost)
    assert len(fake.trainings) == 2


async def test_recover_after_a_crash_mid_submit(fake: FakeFlair, http: httpx.AsyncClient, tmp_path: Path) -> None:
    log = MemoryUploadLog()
    adapter = flair(fake, http, upload_log=log)
    model = await adapter.api.create_model("Crash")
    inputs = stored(tmp_path, 2)
    older = await adapter.submit(training_job(model.id, inputs, job_id="old"))
    assert isinstance(older, Submitted)
    # The process died after sending a start, before reading its answer: the log knows it was sent.
    await log.set_start_sent("landed", True, (older.ref["training_id"],))
    landed_id = await adapter.api.start_training(model.id, strength=7, speed="fast")
    restarted = flair(fake, http, upload_log=log)
    recovered = await restarted.recover(training_job(model.id, inputs, job_id="landed"))
    assert recovered == Submitted(ref={"model_id": model.id, "training_id": landed_id}, next_check=0.0)
    assert len(fake.trainings) == 2

    # Died before the start arrived: nothing new is listed, so the job is finished now, once.
    await log.set_start_sent("unsent", True, tuple(fake.trainings))
    unsent = await restarted.recover(training_job(model.id, inputs, job_id="unsent"))
    assert isinstance(unsent, Submitted)
    assert len(fake.trainings) == 3
    # Died mid-uploads (start never sent): the rest is uploaded and the training started.
    uploads = len(fake.data)
    fresh = stored(tmp_path, 3, who="fresh")
    await log.record_upload("mid", fresh[0].path.name, await adapter.api.upload_data(model.id, fresh[0].read()))
    mid = await restarted.recover(training_job(model.id, fresh, job_id="mid"))
    assert isinstance(mid, Submitted)
    assert len(fake.data) == uploads + 3
    assert len(fake.trainings) == 4
    # Two unexplained new trainings: no guessing.
    await log.set_start_sent("ambiguous", True, ())
    assert await restarted.recover(training_job(model.id, inputs, job_id="ambiguous")) is None
    assert len(fake.trainings) == 4
    assert await restarted.recover(image_job({})) is None


async def test_cancel_stops_a_running_training_but_is_too_late_once_succeeded(
    fake: FakeFlair, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    adapter = flair(fake, http)
    model = await adapter.api.create_model("Cancel")
    running = training_job(model.id, stored(tmp_path, 1))
    submitted = await adapter.submit(running)
    assert isinstance(submitted, Submitted)
    running = with_ref(running, submitted.ref)
    assert await adapter.cancel(running) is True
    cancelled = await adapter.check(running)
    assert isinstance(cancelled, Failed)
    assert cancelled.kind is ErrorKind.CANCELLED

    done = training_job(model.id, stored(tmp_path, 1), job_id="job9")
    finished = await adapter.submit(done)
    assert isinstance(finished, Submitted)
    fake.advance(fake.training_seconds + 1)
    done = with_ref(done, finished.ref)
    assert await adapter.cancel(done) is False
    with pytest.raises(TooLateToCancel, match="already finished"):
        await adapter.api.cancel_training(model.id, finished.ref["training_id"])
    assert isinstance(await adapter.check(done), Finished)
    assert await adapter.cancel(image_job({})) is False


@pytest.mark.parametrize(
    ("status", "outcome", "kind"),
    [
        ("queued", Pending, None),
        ("pending", Pending, None),
        ("starting", Pending, None),
        ("processing", Pending, None),
        ("failed", Failed, ErrorKind.FAILED),
        ("error", Failed, ErrorKind.FAILED),
        ("canceled", Failed, ErrorKind.CANCELLED),
        ("cancelled", Failed, ErrorKind.CANCELLED),
        ("exploded", Failed, ErrorKind.FAILED),
    ],
)
async def test_status_words(
    fake: FakeFlair,
    http: httpx.AsyncClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    status: str,
    outcome: type[Pending | Failed],
    kind: ErrorKind | None,
) -> None:
    adapter = flair(fake, http)
    model = await adapter.api.create_model("Words")
    job = training_job(model.id, stored(tmp_path, 1))
    submitted = await adapter.submit(job)
    assert isinstance(submitted, Submitted)
    fake.force_status(submitted.ref["training_id"], status)
    with caplog.at_level(logging.WARNING, logger="bot.providers.flair"):
        result = await adapter.check(with_ref(job, submitted.ref))
    assert isinstance(result, outcome)
    if isinstance(result, Pending):
        assert result.running is (status == "processing")
    else:
        assert result.kind is kind
    unknown_logged = any("exploded" in r.getMessage() for r in caplog.records)
    assert unknown_logged is (status == "exploded"), "only an unknown word is logged, with its raw value"


# ---------------------------------------------------------------- style images


async def test_prediction_blends_two_models_with_exact_key_names(fake: FakeFlair, http: httpx.AsyncClient) -> None:
    adapter = flair(fake, http)
    a_model, a_training, a_word = await trained_model(fake, adapter.api, "A")
    b_model, b_training, b_word = await trained_model(fake, adapter.api, "B")
    params = {
        "prompt": f"a summer dress in the style of {a_word}",
        "models": [
            {"model_id": a_model, "training_id": a_training, "scale": 0.7},
            {"model_id": b_model, "training_id": b_training, "scale": 0.3, "trigger_word": b_word},
        ],
        "seed": 42,
        "width": 768,
        "height": 512,
        "num_images": 2,
        "output_format": "png",
        "guidance_scale": 7.5,
        "steps": 30,
    }
    job = image_job(params)
    submitted = await adapter.submit(job)
    assert isinstance(submitted, Submitted)
    prediction_id = submitted.ref["prediction_id"]
    assert submitted.ref == {"prediction_id": prediction_id}
    assert posts(fake, "/predictions")[0].json == {
        "scaleConfigs": {
            "1": {"scale": 0.7, "modelId": a_model, "trainingId": a_training},
            "2": {"scale": 0.3, "modelId": b_model, "trainingId": b_training},
        },
        "prompt": f"a summer dress in the style of {a_word}, in the style of {b_word}",
        "seed": 42,
        "image_size": {"width": 768, "height": 512},
        "num_images": 2,
        "output_format": "png",
        "guidance_scale": 7.5,
        "num_inference_steps": 30,
    }
    assert fake.predictions[prediction_id].trigger_words_in_prompt == {a_model: True, b_model: True}
    job = with_ref(job, submitted.ref)
    assert isinstance(await adapter.check(job), Pending)
    fake.advance(fake.prediction_seconds + 1)
    done = await adapter.check(job)
    assert isinstance(done, Finished)
    assert [f.filename for f in done.files] == ["style_1.png", "style_2.png"]
    for result in done.files:
        assert result.url is not None
        with Image.open(io.BytesIO((await http.get(result.url)).content)) as image:
            assert (image.format, image.size) == ("PNG", (768, 512))


async def test_style_image_params_are_checked_before_sending(fake: FakeFlair, http: httpx.AsyncClient) -> None:
    adapter = flair(fake, http)
    model = {"model_id": "m", "training_id": "t"}
    for bad in (
        {"prompt": "x", "models": []},
        {"prompt": "x", "models": [model], "width": 2048},
        {"prompt": "x", "models": [model], "num_images": 5},
        {"prompt": "x", "models": [model], "steps": 51},
        {"prompt": "x", "models": [model], "guidance_scale": 11},
        {"prompt": "x", "models": [model], "output_format": "gif"},
    ):
        with pytest.raises(InvalidInput):
            await adapter.submit(image_job(bad))
    assert fake.requests == []


# ---------------------------------------------------------------- errors


async def test_errors_map_to_the_engines_classes(fake: FakeFlair, http: httpx.AsyncClient, tmp_path: Path) -> None:
    with pytest.raises(AuthenticationFailed) as denied:
        await client(fake, http, key="fl_wrong").create_model("x")
    assert "fl_wrong" not in str(denied.value), "no key in error messages"
    fake.fail_next(403, route="get_model")
    with pytest.raises(AuthenticationFailed):
        await client(fake, http).get_model("m")
    adapter = flair(fake, http)
    model = await adapter.api.create_model("Errors")

    broke = flair(fake, http, key=BROKE)
    broke_model = await broke.api.create_model("Broke")
    with pytest.raises(OutOfCredits):
        await broke.submit(training_job(broke_model.id, stored(tmp_path, 1)))
    assert (await broke.upload_log.start_state("job1")).sent is False, "a refused start may be sent again"

    fake.rate_limit_next(retry_after=30, route="start_training")
    with pytest.raises(RateLimited) as limited:
        await adapter.submit(training_job(model.id, stored(tmp_path, 1), job_id="rl"))
    assert limited.value.retry_after == 30
    fake.rate_limit_next(retry_after=0, route="start_training")  # short: retried within the call
    assert isinstance(await adapter.submit(training_job(model.id, stored(tmp_path, 1), job_id="rl")), Submitted)
    assert len(fake.trainings) == 1

    untrained = {"model_id": model.id, "training_id": next(iter(fake.trainings))}
    with pytest.raises(InvalidInput, match="is not trained"):
        await adapter.submit(image_job({"prompt": "x", "models": [untrained]}))
    fake.fail_next(422, route="create_prediction", body={"error": "prompt contains forbidden words"})
    with pytest.raises(InvalidInput, match="forbidden words"):
        await adapter.submit(image_job({"prompt": "x", "models": [{"model_id": "m", "training_id": "t"}]}))
    with pytest.raises(NotFoundAtProvider):
        await adapter.check(with_ref(image_job({}), {"prediction_id": "p_nope"}))

    fake.fail_next(500, route="start_training")
    with pytest.raises(Transient) as crashed:
        await adapter.submit(training_job(model.id, stored(tmp_path, 1), job_id="t500"))
    assert crashed.value.reached is True
    assert (await adapter.upload_log.start_state("t500")).sent is True, "a start that may have landed is never resent"
    assert len(posts(fake, f"/models/{model.id}/trainings")) == 4, "the 500 was not retried (429; 429, ok; 500)"

    fake.fail_next(503, route="get_prediction")  # a status read is safe: retried within the call
    fake.drop_next(route="create_prediction", after_processing=True)
    a_model, a_training, _ = await trained_model(fake, adapter.api, "Drop")
    with pytest.raises(Transient) as dropped:
        await adapter.submit(image_job({"prompt": "x", "models": [{"model_id": a_model, "training_id": a_training}]}))
    assert dropped.value.reached is True
    assert len(fake.predictions) == 1, "never created twice"
    prediction_id = next(iter(fake.predictions))
    fake.advance(fake.prediction_seconds + 1)
    assert isinstance(await adapter.check(with_ref(image_job({}), {"prediction_id": prediction_id})), Finished)


async def test_malformed_answers_and_lost_ids(fake: FakeFlair, http: httpx.AsyncClient) -> None:
    adapter = flair(fake, http)
    fake.fail_next(200, route="get_prediction", body={"outputImages": []})
    with pytest.raises(Transient, match="does not understand"):
        await adapter.check(with_ref(image_job({}), {"prediction_id": "p"}))
    lost = await adapter.check(image_job({}))
    assert isinstance(lost, Failed)
    assert lost.kind is ErrorKind.LOST
    a_model, a_training, _ = await trained_model(fake, adapter.api, "Inline")
    made = await adapter.submit(
        image_job({"prompt": "x", "models": [{"model_id": a_model, "training_id": a_training}]})
    )
    assert isinstance(made, Submitted)
    fake.fail_next(
        200,
        route="get_prediction",
        body={"status": "succeeded", "outputImages": ["data:image/png;base64,iVBORw0KGgo="]},
    )
    inline = await adapter.check(with_ref(image_job({}), made.ref))
    assert isinstance(inline, Finished)
    assert inline.files[0].data == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("status", "kind"),
    [("failed", ErrorKind.FAILED), ("cancelled", ErrorKind.CANCELLED), ("melted", ErrorKind.FAILED)],
)
async def test_prediction_endings(fake: FakeFlair, http: httpx.AsyncClient, status: str, kind: ErrorKind) -> None:
    adapter = flair(fake, http)
    model_id, training_id, _ = await trained_model(fake, adapter.api, "Endings")
    made = await adapter.submit(
        image_job({"prompt": "x", "models": [{"model_id": model_id, "training_id": training_id}]})
    )
    assert isinstance(made, Submitted)
    fake.force_status(made.ref["prediction_id"], status)
    ended = await adapter.check(with_ref(image_job({}), made.ref))
    assert isinstance(ended, Failed)
    assert ended.kind is kind


async def test_a_success_without_images_is_a_failure(fake: FakeFlair, http: httpx.AsyncClient) -> None:
    fake.fail_next(200, route="get_prediction", body={"status": "succeeded", "outputImages": []})
    empty = await flair(fake, http).check(with_ref(image_job({}), {"prediction_id": "p"}))
    assert isinstance(empty, Failed)
    assert empty.kind is ErrorKind.FAILED
