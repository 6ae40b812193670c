"""The mimpi adapter against the fake mimpi server (a real HTTP server): uploads, models, prompts, errors."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
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
from bot.providers.mimpi import PORTRAIT, TRAINING, UPLOAD_ATTEMPTS, MemoryUploadLog, MimpiAdapter
from tests.fakes import images
from tests.fakes.mimpi import FakeMimpi

LIVE = "mk_live_123"
TEST = "mk_test_123"
NO_CARD = "mk_nocard_123"


@pytest.fixture
async def fake() -> AsyncIterator[FakeMimpi]:
    server = FakeMimpi(api_key=LIVE, test_keys={TEST}, no_card_keys={NO_CARD})
    await server.start()
    yield server
    await server.stop()
    assert server.errors == []


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client() as http:  # the client production uses
        yield http


def adapter(fake: FakeMimpi, client: httpx.AsyncClient, key: str = LIVE, **kwargs: Any) -> MimpiAdapter:
    return MimpiAdapter(client, api_key=key, base_url=fake.base_url, **kwargs)


def photos(tmp_path: Path, count: int, fmt: str = "png", who: str = "face") -> list[InputFile]:
    """Training photos stored as the job engine stores inputs: by content hash."""
    made = []
    for n in range(count):
        label = f"{who} {n}"
        data = images.png(96, 96, label=label) if fmt == "png" else images.jpeg(96, 96, label=label)
        sha = hashlib.sha256(data).hexdigest()
        path = tmp_path / sha
        path.write_bytes(data)
        made.append(InputFile("photo", path, f"face{n}.{fmt}", f"image/{fmt}", len(data)))
    return made


def training(
    inputs: list[InputFile], *, job_id: str = "job1", callback: str | None = None, **params: Any
) -> JobContext:
    values = {"subject": "man", "name": "Me", "token": "sks man", **params}
    return JobContext(job_id, TRAINING, values, {}, inputs, callback, 1)


def prompt_job(model_id: str, *, callback: str | None = None, images_: int = 2, text: str = "sks man") -> JobContext:
    params = {"prompt": text, "_model_id": model_id, "images": images_}
    return JobContext("job2", PORTRAIT, params, {}, [], callback, 1)


def with_ref(job: JobContext, ref: dict[str, Any]) -> JobContext:
    return JobContext(job.id, job.feature, job.params, ref, job.inputs, job.callback_url, job.attempts)


def requests_to(fake: FakeMimpi, method: str, prefix: str) -> list[Any]:
    return [r for r in fake.requests if r.method == method and r.path.startswith(prefix)]


async def test_uploads_are_jpeg_through_signed_urls_without_the_api_key(
    fake: FakeMimpi, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    fake.auto_advance = False
    inputs = photos(tmp_path, 3, fmt="png")
    submitted = await adapter(fake, client).submit(training(inputs))
    assert isinstance(submitted, Submitted)
    puts = requests_to(fake, "PUT", "/upload/")
    assert len(puts) == 3
    for put in puts:
        assert "Authorization" not in put.headers, "the API key must never travel to the storage host"
        assert put.headers["Content-Type"] == "image/jpeg"
    assert len(fake.uploads) == 3
    for data in fake.uploads.values():
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG", "PNG photos are converted before upload"
    model = fake.models[submitted.ref["model_id"]]
    assert model.image_ids == submitted.ref["image_ids"]
    assert set(model.image_ids) == set(fake.uploads)
    for post in requests_to(fake, "POST", "/api/"):
        assert post.headers["Authorization"] == f"Bearer {LIVE}"


@pytest.mark.parametrize(("configured", "served"), [("POST", "GET"), ("GET", "POST")])
async def test_signed_url_method_falls_back_on_405_and_remembers(
    fake: FakeMimpi, client: httpx.AsyncClient, tmp_path: Path, configured: str, served: str
) -> None:
    fake.signed_url_methods = {served}
    mimpi = adapter(fake, client, signed_url_method=configured)
    ids = [await mimpi.upload(images.jpeg(64, 64, label=str(n))) for n in range(3)]
    assert set(ids) == set(fake.uploads)
    assert len(requests_to(fake, configured, "/api/signedUrl")) == 1, "405 once, then the other method sticks"
    assert len(requests_to(fake, served, "/api/signedUrl")) == 3
    assert mimpi.signed_url_method == served


async def test_a_refused_signed_url_is_replaced_by_a_fresh_one(fake: FakeMimpi, client: httpx.AsyncClient) -> None:
    fake.fail_next(403, route="/upload", body="<Error><Code>ExpiredToken</Code></Error>")
    image_id = await adapter(fake, client).upload(images.webp(64, 64))
    assert list(fake.uploads) == [image_id]
    assert len(requests_to(fake, "POST", "/api/signedUrl")) == 2


async def test_model_lifecycle_with_callback_url(fake: FakeMimpi, client: httpx.AsyncClient, tmp_path: Path) -> None:
    fake.auto_advance = False
    mimpi = adapter(fake, client)
    job = training(photos(tmp_path, 2), callback="http://127.0.0.1:9/callbacks/mimpi/job1/s3cret")
    submitted = await mimpi.submit(job)
    assert isinstance(submitted, Submitted)
    create = requests_to(fake, "POST", "/api/model")[0].json
    assert create["callbackUrl"] == job.callback_url
    assert create["subject"] == "man"
    assert submitted.next_check == MimpiAdapter.callback_poll_s[TRAINING], "with callbacks, polling is a safety net"
    job = with_ref(job, submitted.ref)
    model_id = submitted.ref["model_id"]

    pending = await mimpi.check(job)
    assert isinstance(pending, Pending)
    assert pending.running is False
    fake.set_progress(model_id, 40)
    running = await mimpi.check(job)
    assert isinstance(running, Pending)
    assert running.running is True
    assert running.progress == 40
    await fake.complete_model(model_id)
    done = await mimpi.check(job)
    assert isinstance(done, Finished)
    assert done.meta["model_id"] == model_id
    assert done.meta["is_test"] is False
    assert done.text is not None
    assert "sks man" in done.text
    assert f"<t:{done.meta['expires_at']}:R>" in done.text
    assert done.files == [], "the member's photos are not posted with the result"


async def test_no_callback_url_is_sent_when_polling(fake: FakeMimpi, client: httpx.AsyncClient, tmp_path: Path) -> None:
    fake.auto_advance = False
    mimpi = adapter(fake, client)
    submitted = await mimpi.submit(training(photos(tmp_path, 2)))
    assert isinstance(submitted, Submitted)
    assert "callbackUrl" not in requests_to(fake, "POST", "/api/model")[0].json
    assert submitted.next_check == MimpiAdapter.first_check_s


async def test_failed_training_reports_mimpis_message(
    fake: FakeMimpi, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    fake.auto_advance = False
    mimpi = adapter(fake, client)
    job = training(photos(tmp_path, 2))
    submitted = await mimpi.submit(job)
    assert isinstance(submitted, Submitted)
    await fake.fail_model(submitted.ref["model_id"], "no face could be detected")
    failed = await mimpi.check(with_ref(job, submitted.ref))
    assert isinstance(failed, Failed)
    assert failed.kind is ErrorKind.FAILED
    assert failed.message == "no face could be detected"


async def test_prompt_lifecycle_and_results(fake: FakeMimpi, client: httpx.AsyncClient, tmp_path: Path) -> None:
    mimpi = adapter(fake, client)
    trained = await mimpi.submit(training(photos(tmp_path, 2)))
    assert isinstance(trained, Submitted)
    model_id = trained.ref["model_id"]
    await fake.wait_for_status(model_id, "COMPLETED")
    fake.auto_advance = False
    job = prompt_job(model_id, callback="http://127.0.0.1:9/cb", images_=3, text="sks man in soft light")
    submitted = await mimpi.submit(job)
    assert isinstance(submitted, Submitted)
    body = requests_to(fake, "POST", "/api/prompt")[0].json
    assert body == {
        "prompt": "sks man in soft light",
        "modelId": model_id,
        "imageCount": 3,
        "callbackUrl": "http://127.0.0.1:9/cb",
    }
    job = with_ref(job, submitted.ref)
    assert isinstance(await mimpi.check(job), Pending)
    await fake.complete_prompt(submitted.ref["prompt_id"])
    done = await mimpi.check(job)
    assert isinstance(done, Finished)
    assert len(done.files) == 3
    assert done.text is None
    for result in done.files:
        assert result.url is not None
        got = await client.get(result.url)
        assert got.content.startswith(b"\xff\xd8\xff")


async def test_failed_prompt(fake: FakeMimpi, client: httpx.AsyncClient, tmp_path: Path) -> None:
    mimpi = adapter(fake, client)
    trained = await mimpi.submit(training(photos(tmp_path, 2)))
    assert isinstance(trained, Submitted)
    await fake.wait_for_status(trained.ref["model_id"], "COMPLETED")
    job = prompt_job(trained.ref["model_id"], text="sks man FAILME")
    submitted = await mimpi.submit(job)
    assert isinstance(submitted, Submitted)
    await fake.wait_for_status(submitted.ref["prompt_id"], "FAILED")
    failed = await mimpi.check(with_ref(job, submitted.ref))
    assert isinstance(failed, Failed)
    assert failed.message == "Image generation failed"


async def test_no_payment_card_tells_the_admin_to_add_one(
    fake: FakeMimpi, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with pytest.raises(OutOfCredits) as caught:
        await adapter(fake, client, key=NO_CARD).submit(training(photos(tmp_path, 2)))
    assert "payment card" in caught.value.message
    assert "dashboard" in caught.value.message
    assert fake.models == {}


async def test_concurrent_model_limit_is_rate_limited_and_the_retry_does_not_reupload(
    fake: FakeMimpi, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    fake.auto_advance = False
    fake.max_concurrent_models = 1
    mimpi = adapter(fake, client)
    first = await mimpi.submit(training(photos(tmp_path, 2, who="alice")))
    assert isinstance(first, Submitted)
    second = training(photos(tmp_path, 3, who="bea"), job_id="job2", subject="woman")
    with pytest.raises(RateLimited):
        await mimpi.submit(second)
    assert len(fake.models) == 1
    uploads_before = len(requests_to(fake, "PUT", "/upload/"))
    assert await mimpi.upload_log.create_state("job2") == (False, None), "a refused create may be sent again"
    await fake.complete_model(first.ref["model_id"])
    retried = await mimpi.submit(second)
    assert isinstance(retried, Submitted)
    assert len(requests_to(fake, "PUT", "/upload/")) == uploads_before, "uploaded photos are reused, not resent"
    assert len(fake.models) == 2


async def test_errors_map_to_the_engines_classes(fake: FakeMimpi, client: httpx.AsyncClient, tmp_path: Path) -> None:
    with pytest.raises(AuthenticationFailed):
        await adapter(fake, client, key="mk_live_wrong").upload(images.jpeg(32, 32))
    mimpi = adapter(fake, client)
    with pytest.raises(NotFoundAtProvider):
        await mimpi.check(with_ref(training([]), {"model_id": "cm_nope"}))
    with pytest.raises(NotFoundAtProvider):
        await mimpi.submit(prompt_job("cm_nope"))
    fake.auto_advance = False
    untrained = await mimpi.submit(training(photos(tmp_path, 1, who="zed"), job_id="job0"))
    assert isinstance(untrained, Submitted)
    with pytest.raises(InvalidInput, match="not ready"):
        await mimpi.submit(prompt_job(untrained.ref["model_id"]))
    fake.fail_next(503, count=UPLOAD_ATTEMPTS, route="/upload")  # every fresh signed URL fails too
    with pytest.raises(Transient) as caught:
        await mimpi.submit(training(photos(tmp_path, 1)))
    assert caught.value.reached is False, "failed uploads never reached the paid create: safe to resubmit"
    assert len(fake.models) == 1, "only the untrained model above"
    fake.fail_next(500, route="POST /model")
    with pytest.raises(Transient) as created:
        await mimpi.submit(training(photos(tmp_path, 1), job_id="job3"))
    assert created.value.reached is True
    assert await mimpi.upload_log.create_state("job3") == (True, None)


async def test_malformed_answers_are_transient(fake: FakeMimpi, client: httpx.AsyncClient) -> None:
    fake.fail_next(200, body={"data": {"nope": 1}}, route="GET /model")
    with pytest.raises(Transient, match="does not understand"):
        await adapter(fake, client).check(with_ref(training([]), {"model_id": "x"}))


async def test_test_key_answers_are_marked_sample_data(
    fake: FakeMimpi, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    mimpi = adapter(fake, client, key=TEST)
    job = training(photos(tmp_path, 2))
    submitted = await mimpi.submit(job)
    assert isinstance(submitted, Submitted)
    assert submitted.ref["is_test"] is True
    assert submitted.next_check == 0.0, "test-key models are complete at once"
    done = await mimpi.check(with_ref(job, submitted.ref))
    assert isinstance(done, Finished)
    assert done.meta["is_test"] is True
    assert done.text is not None
    assert "test key" in done.text
    portrait = prompt_job(submitted.ref["model_id"])
    made = await mimpi.submit(portrait)
    assert isinstance(made, Submitted)
    result = await mimpi.check(with_ref(portrait, made.ref))
    assert isinstance(result, Finished)
    assert result.meta["is_test"] is True
    assert result.text is not None
    assert "sample images" in result.text
    assert fake.billed_models == 0


async def test_recover_finishes_a_submit_that_never_sent_its_create(
    fake: FakeMimpi, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    log = MemoryUploadLog()
    mimpi = adapter(fake, client, upload_log=log)
    inputs = photos(tmp_path, 2)
    first_id = await mimpi.upload(inputs[0].read())
    await log.record_upload("job1", inputs[0].path.name, first_id)  # a crash after the first upload
    recovered = await mimpi.recover(training(inputs))
    assert isinstance(recovered, Submitted)
    assert len(fake.uploads) == 2, "only the missing photo is uploaded"
    assert fake.models[recovered.ref["model_id"]].image_ids[0] == first_id
    # Once the create may have been sent, nothing is sent again: known model or nothing.
    assert await mimpi.recover(training(inputs)) == Submitted(ref={"model_id": recovered.ref["model_id"]}, next_check=0)
    await log.set_create_sent("job9", True)
    assert await mimpi.recover(training(inputs, job_id="job9")) is None
    assert await mimpi.recover(prompt_job("x")) is None
    assert len(fake.models) == 1


async def test_callback_bodies_are_hints_and_slots_and_deadlines(client: httpx.AsyncClient) -> None:
    mimpi = MimpiAdapter(client, api_key=LIVE, base_url="http://127.0.0.1:1/api")
    body = json.dumps({"id": "cm1", "type": "model", "status": "COMPLETED"}).encode()
    assert mimpi.parse_callback(body) == {"id": "cm1", "type": "model", "status": "COMPLETED"}
    assert mimpi.parse_callback(b"not json") == {}
    assert mimpi.slot_group(TRAINING) == "models"
    assert mimpi.slot_group(PORTRAIT) is None
    assert mimpi.deadline(TRAINING) >= 3600
    assert mimpi.deadline(PORTRAIT) <= 3600
