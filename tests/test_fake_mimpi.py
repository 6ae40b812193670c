"""The mimpi.ai fake speaks the documented protocol: driven here with plain httpx, as an adapter would."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from PIL import Image

from tests.fakes import images
from tests.fakes.mimpi import NO_CARD_ERROR, FakeMimpi

LIVE = "mk_live_123"
OTHER = "mk_live_other"
TEST = "mk_test_123"
NO_CARD = "mk_nocard_123"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Receiver:
    """A callback endpoint: records every POSTed JSON body and answers with `status`."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.json_response({"ok": True}, status=self.status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/callback", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/callback"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[FakeMimpi]:
    server = FakeMimpi(api_key=LIVE, test_keys={TEST}, no_card_keys={NO_CARD}, other_keys={OTHER})
    await server.start()
    yield server
    await server.stop()
    assert server.errors == []


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(fake: FakeMimpi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url, headers=bearer(LIVE), timeout=5) as http:
        yield http


async def put_signed(
    http: httpx.AsyncClient, url: str, content: bytes, content_type: str = "image/jpeg"
) -> httpx.Response:
    # the signed URL carries its own authorisation: the API key must not travel to the storage host
    request = http.build_request("PUT", url, content=content, headers={"Content-Type": content_type})
    del request.headers["Authorization"]
    return await http.send(request)


async def upload(http: httpx.AsyncClient, count: int = 1, key: str = LIVE) -> list[str]:
    """signedUrl + PUT of a real JPEG, as the doc's upload loop does."""
    ids = []
    for n in range(count):
        signed = await http.post("/signedUrl", headers=bearer(key))
        assert signed.status_code == 200, signed.text
        data = signed.json()["data"]
        put = await put_signed(http, data["url"], images.jpeg(64, 64, label=f"face {n}"))
        assert put.status_code == 200, put.text
        ids.append(data["id"])
    return ids


async def create_model(
    http: httpx.AsyncClient,
    key: str = LIVE,
    subject: str = "man",
    callback: str | None = None,
    images_: int = 2,
) -> httpx.Response:
    ids = await upload(http, images_, key)
    body: dict[str, Any] = {"subject": subject, "imageIds": ids}
    if callback:
        body["callbackUrl"] = callback
    return await http.post("/model", json=body, headers=bearer(key))


async def test_every_api_route_requires_a_known_bearer_key(fake: FakeMimpi) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        for headers in ({}, bearer("mk_live_wrong"), {"Authorization": LIVE}):
            for method, path in (
                ("POST", "/signedUrl"),
                ("POST", "/model"),
                ("GET", "/model/x"),
                ("POST", "/prompt"),
                ("GET", "/prompt/x"),
            ):
                response = await http.request(method, path, headers=headers, json={})
                assert response.status_code == 401, (method, path, headers)
                assert response.json() == {"error": "Unauthorized"}
    assert fake.models == {}


async def test_full_flow_upload_train_callback_prompt_and_download(
    fake: FakeMimpi, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    ids = await upload(client, 3)
    assert set(fake.uploads) == set(ids)
    created = await client.post("/model", json={"subject": "man", "callbackUrl": receiver.url, "imageIds": ids})
    assert created.status_code == 200
    model = created.json()["data"]
    assert set(model) == {
        "id",
        "callbackUrl",
        "imageUrls",
        "subject",
        "createdAt",
        "status",
        "progress",
        "failedMessage",
        "isTest",
        "prompts",
    }
    assert model["status"] == "PENDING"
    assert (model["progress"], model["failedMessage"], model["isTest"], model["prompts"]) == (
        0,
        None,
        False,
        [],
    )
    assert model["callbackUrl"] == receiver.url

    await fake.wait_for_callbacks(1)
    assert receiver.bodies == [{"id": model["id"], "type": "model", "status": "COMPLETED"}]
    assert fake.callbacks[0].status == 200
    model = (await client.get(f"/model/{model['id']}")).json()["data"]
    assert (model["status"], model["progress"]) == ("COMPLETED", 100)
    assert fake.billed_models == 1
    training = [(await client.get(url)).content for url in model["imageUrls"]]
    assert training == [fake.uploads[i] for i in ids]

    prompt_text = "sks man in soft light, portrait, in the style of Van Gogh"
    created = await client.post(
        "/prompt",
        json={"prompt": prompt_text, "callbackUrl": receiver.url, "modelId": model["id"], "imageCount": 4},
    )
    assert created.status_code == 200
    prompt = created.json()["data"]
    assert set(prompt) == {
        "id",
        "callbackUrl",
        "generatedImages",
        "imageCount",
        "imageSize",
        "createdAt",
        "status",
        "progress",
        "failedMessage",
        "isTest",
    }
    assert (prompt["status"], prompt["generatedImages"], prompt["imageCount"]) == ("PENDING", [], 4)

    await fake.wait_for_callbacks(2)
    assert receiver.bodies[1] == {"id": prompt["id"], "type": "prompt", "status": "COMPLETED"}
    prompt = (await client.get(f"/prompt/{prompt['id']}")).json()["data"]
    assert prompt["status"] == "COMPLETED"
    assert len(prompt["generatedImages"]) == 4
    for url in prompt["generatedImages"]:
        downloaded = await client.get(url)
        assert downloaded.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(downloaded.content)) as image:
            assert (image.format, image.size) == ("JPEG", (512, 512))

    model = (await client.get(f"/model/{model['id']}")).json()["data"]
    assert model["prompts"] == [
        {"id": prompt["id"], "generatedImages": prompt["generatedImages"], "status": "COMPLETED"}
    ]
    assert fake.billed_models == 1  # prompts do not count as model usage


async def test_progress_rises_while_running(fake: FakeMimpi, client: httpx.AsyncClient) -> None:
    fake.model_seconds = 0.3
    model_id = (await create_model(client)).json()["data"]["id"]
    seen: list[tuple[str, int]] = []
    while not seen or seen[-1][0] != "COMPLETED":
        data = (await client.get(f"/model/{model_id}")).json()["data"]
        seen.append((data["status"], data["progress"]))
        await asyncio.sleep(0.02)
    running = [p for s, p in seen if s == "RUNNING"]
    assert any(0 < p < 100 for p in running)
    assert running == sorted(running)
    assert seen[0][0] == "PENDING"


async def test_manual_control(fake: FakeMimpi, client: httpx.AsyncClient, receiver: Receiver) -> None:
    fake.auto_advance = False
    model_id = (await create_model(client, callback=receiver.url)).json()["data"]["id"]
    await asyncio.sleep(fake.model_seconds + 0.05)  # nothing moves on its own
    assert fake.models[model_id].status == "PENDING"
    fake.set_progress(model_id, 40)
    data = (await client.get(f"/model/{model_id}")).json()["data"]
    assert (data["status"], data["progress"]) == ("RUNNING", 40)
    await fake.complete_model(model_id)
    assert receiver.bodies == [{"id": model_id, "type": "model", "status": "COMPLETED"}]

    prompt = await client.post("/prompt", json={"prompt": "sks man", "modelId": model_id, "imageCount": 1})
    prompt_id = prompt.json()["data"]["id"]
    await fake.fail_prompt(prompt_id, "NSFW content detected")
    data = (await client.get(f"/prompt/{prompt_id}")).json()["data"]
    assert (data["status"], data["failedMessage"], data["generatedImages"]) == (
        "FAILED",
        "NSFW content detected",
        [],
    )
    with pytest.raises(ValueError, match="already FAILED"):
        await fake.complete_prompt(prompt_id)


async def test_signed_url_method_is_configurable_for_the_get_fallback(
    fake: FakeMimpi, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/signedUrl")).status_code == 405
    fake.signed_url_methods = {"GET"}
    refused = await client.post("/signedUrl")
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "GET"
    answered = await client.get("/signedUrl")
    assert answered.status_code == 200
    assert set(answered.json()["data"]) == {"id", "url"}


async def test_upload_must_be_a_signed_jpeg(fake: FakeMimpi, client: httpx.AsyncClient) -> None:
    data = (await client.post("/signedUrl")).json()["data"]
    assert (await put_signed(client, data["url"], images.png())).status_code == 400
    assert (await put_signed(client, data["url"], images.jpeg(), "image/png")).status_code == 415
    assert (await put_signed(client, data["url"].replace("sig=", "sig=0"), images.jpeg())).status_code == 403
    leaky = await client.put(data["url"], content=images.jpeg(), headers={"Content-Type": "image/jpeg"})
    assert leaky.status_code == 400  # the bearer key sent along to the storage host
    assert fake.uploads == {}
    # an id whose upload never succeeded is unknown to the model endpoint
    refused = await client.post("/model", json={"subject": "man", "imageIds": [data["id"]]})
    assert (refused.status_code, refused.json()) == (400, {"error": f"Image {data['id']} not found"})
    made_up = await client.post("/model", json={"subject": "man", "imageIds": ["nope"]})
    assert made_up.json() == {"error": "Image nope not found"}


async def test_model_validation_and_single_use_images(client: httpx.AsyncClient) -> None:
    ids = await upload(client, 1)
    for body in (
        {"imageIds": ids},
        {"subject": "", "imageIds": ids},
        {"subject": "man", "imageIds": []},
        {"subject": "man"},
    ):
        assert (await client.post("/model", json=body)).status_code == 400, body
    assert (await client.post("/model", content=b"not json")).status_code == 400
    assert (await client.post("/model", json={"subject": "man", "imageIds": ids})).status_code == 200
    reused = await client.post("/model", json={"subject": "man", "imageIds": ids})
    assert reused.status_code == 400
    assert "already used" in reused.json()["error"]


async def test_no_payment_card_is_402(fake: FakeMimpi, client: httpx.AsyncClient) -> None:
    response = await create_model(client, key=NO_CARD)
    assert (response.status_code, response.json()) == (402, {"error": NO_CARD_ERROR})
    assert fake.models == {}


async def test_thirty_concurrent_models_then_a_slot_frees(fake: FakeMimpi, client: httpx.AsyncClient) -> None:
    fake.auto_advance = False
    ids = await upload(client, 32)
    model_ids = []
    for image_id in ids[:30]:
        response = await client.post("/model", json={"subject": "man", "imageIds": [image_id]})
        assert response.status_code == 200
        model_ids.append(response.json()["data"]["id"])
    refused = await client.post("/model", json={"subject": "man", "imageIds": [ids[30]]})
    assert (refused.status_code, refused.json()) == (429, {"error": "Too many concurrent models (limit 30)"})
    # the limit is per account: another key is unaffected
    assert (await create_model(client, key=OTHER, images_=1)).status_code == 200

    await fake.complete_model(model_ids[0])
    assert (await client.post("/model", json={"subject": "man", "imageIds": [ids[30]]})).status_code == 200
    fake.set_progress(model_ids[1], 50)  # RUNNING still occupies a slot
    assert (await client.post("/model", json={"subject": "man", "imageIds": [ids[31]]})).status_code == 429
    await fake.fail_model(model_ids[1])  # failed models free their slot too
    assert (await client.post("/model", json={"subject": "man", "imageIds": [ids[31]]})).status_code == 200
    assert fake.billed_models == 1


async def test_unknown_ids_are_404(client: httpx.AsyncClient) -> None:
    model = await client.get("/model/cm_missing")
    assert (model.status_code, model.json()) == (404, {"error": "Model not found"})
    prompt = await client.get("/prompt/cp_missing")
    assert prompt.status_code == 404
    for_missing_model = await client.post("/prompt", json={"prompt": "x", "modelId": "cm_missing", "imageCount": 1})
    assert for_missing_model.status_code == 404


async def test_another_accounts_objects_are_invisible(fake: FakeMimpi, client: httpx.AsyncClient) -> None:
    mine = (await create_model(client)).json()["data"]["id"]
    await fake.wait_for_status(mine, "COMPLETED")
    theirs = await client.get(f"/model/{mine}", headers=bearer(OTHER))
    assert (theirs.status_code, theirs.json()) == (404, {"error": "Model not found"})
    prompt = await client.post(
        "/prompt", headers=bearer(OTHER), json={"prompt": "sks man", "modelId": mine, "imageCount": 1}
    )
    assert prompt.status_code == 404
    my_image = (await upload(client, 1))[0]
    stolen = await client.post("/model", headers=bearer(OTHER), json={"subject": "man", "imageIds": [my_image]})
    assert stolen.json() == {"error": f"Image {my_image} not found"}
    prompt_id = (await client.post("/prompt", json={"prompt": "sks man", "modelId": mine, "imageCount": 1})).json()[
        "data"
    ]["id"]
    assert (await client.get(f"/prompt/{prompt_id}", headers=bearer(OTHER))).status_code == 404


async def test_prompt_validation(fake: FakeMimpi, client: httpx.AsyncClient) -> None:
    fake.auto_advance = False
    model_id = (await create_model(client)).json()["data"]["id"]
    not_ready = await client.post("/prompt", json={"prompt": "sks man", "modelId": model_id, "imageCount": 1})
    assert (not_ready.status_code, not_ready.json()) == (400, {"error": "Model is not ready"})
    await fake.complete_model(model_id)
    for bad in (
        {"prompt": "", "imageCount": 1},
        {"prompt": "x" * 1001, "imageCount": 1},
        {"prompt": "sks man", "imageCount": 0},
        {"prompt": "sks man", "imageCount": 9},
        {"prompt": "sks man", "imageCount": "4"},
        {"prompt": "sks man", "imageCount": True},
    ):
        response = await client.post("/prompt", json={**bad, "modelId": model_id})
        assert response.status_code == 400, bad
    assert (
        await client.post("/prompt", json={"prompt": "x" * 1000, "modelId": model_id, "imageCount": 8})
    ).status_code == 200
    fake.max_image_count = 10
    assert (
        await client.post("/prompt", json={"prompt": "sks man", "modelId": model_id, "imageCount": 9})
    ).status_code == 200


async def test_test_keys_complete_at_once_with_sample_data_and_bill_nothing(
    fake: FakeMimpi, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    fake.auto_advance = False  # test keys ignore it: the doc says they complete right away
    model = (await create_model(client, key=TEST, callback=receiver.url)).json()["data"]
    assert (model["status"], model["progress"], model["isTest"]) == ("COMPLETED", 100, True)
    await fake.wait_for_callbacks(1)
    assert receiver.bodies == [{"id": model["id"], "type": "model", "status": "COMPLETED"}]

    created = await client.post(
        "/prompt",
        headers=bearer(TEST),
        json={"prompt": "sks man", "callbackUrl": receiver.url, "modelId": model["id"], "imageCount": 2},
    )
    prompt = created.json()["data"]
    assert (prompt["status"], prompt["isTest"], len(prompt["generatedImages"])) == ("COMPLETED", True, 2)
    await fake.wait_for_callbacks(2)
    sample = await client.get(prompt["generatedImages"][0])
    assert Image.open(io.BytesIO(sample.content)).format == "JPEG"
    assert fake.billed_models == 0


async def test_failed_model_has_a_message_gets_a_callback_and_is_not_billed(
    fake: FakeMimpi, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    model_id = (await create_model(client, subject="man FAILME", callback=receiver.url)).json()["data"]["id"]
    await fake.wait_for_callbacks(1)
    assert receiver.bodies == [{"id": model_id, "type": "model", "status": "FAILED"}]
    data = (await client.get(f"/model/{model_id}")).json()["data"]
    assert data["status"] == "FAILED"
    assert data["failedMessage"]
    assert fake.billed_models == 0
    refused = await client.post("/prompt", json={"prompt": "sks man", "modelId": model_id, "imageCount": 1})
    assert refused.json() == {"error": "Model is not ready"}

    good = (await create_model(client)).json()["data"]["id"]
    await fake.wait_for_status(good, "COMPLETED")
    prompt = await client.post(
        "/prompt",
        json={"prompt": "FAILME please", "modelId": good, "imageCount": 2, "callbackUrl": receiver.url},
    )
    prompt_id = prompt.json()["data"]["id"]
    await fake.wait_for_status(prompt_id, "FAILED")
    data = (await client.get(f"/prompt/{prompt_id}")).json()["data"]
    assert data["failedMessage"]
    assert data["generatedImages"] == []


async def test_undeliverable_callbacks_are_recorded_and_harmless(
    fake: FakeMimpi, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/callback"
    receiver.status = 500
    await create_model(client, callback=dead)
    await create_model(client, callback=receiver.url)
    attempts = await fake.wait_for_callbacks(2)
    by_url = {a.url: a for a in attempts}
    assert by_url[dead].status is None
    assert by_url[dead].error
    assert by_url[receiver.url].status == 500
    assert (await client.get("/model/x")).status_code == 404  # still serving


async def test_fault_injection(fake: FakeMimpi, client: httpx.AsyncClient) -> None:
    ids = await upload(client, 1)
    body = {"subject": "man", "imageIds": ids}
    fake.fail_next(503, count=2, route="POST /model")
    assert (await client.get("/model/x")).status_code == 404  # other routes unaffected
    assert [(await client.post("/model", json=body)).status_code for _ in range(2)] == [503, 503]
    assert fake.models == {}  # a faulted request is never processed

    fake.fail_next(429, retry_after=3)
    limited = await client.post("/model", json=body)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
    fake.fail_next(502, body="<html>Bad Gateway</html>")
    html = await client.get("/model/x")
    assert (html.status_code, html.text) == (502, "<html>Bad Gateway</html>")
    fake.fail_next(500, route="/upload")
    signed = (await client.post("/signedUrl")).json()["data"]  # not matched by the "/upload" route
    assert [(await put_signed(client, signed["url"], images.jpeg())).status_code for _ in range(2)] == [
        500,
        200,
    ]

    # a slow create still happens: the client's timeout does not undo it
    fake.slow_next(0.3, route="/model")
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/model", json=body, timeout=0.1)
    assert len(fake.models) == 1
    assert [r.path for r in fake.requests].count("/api/model") == 4
    assert fake.requests[-1].json == body
