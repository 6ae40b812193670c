"""The fake Imagine server obeys the documented protocol (docs/providers.md section 4), checked with a plain
httpx client: auth codes, multipart only, validation codes, real images, the video clock, limits, faults."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.media.video import probe
from tests.fakes import images
from tests.fakes.imagine import FakeImagine

KEY = "vk-fake-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeImagine]:
    server = FakeImagine(api_key=KEY)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http(fake: FakeImagine) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url + "/", headers=AUTH, timeout=10) as client:
        yield client


def form(**fields: Any) -> list[tuple[str, Any]]:
    return [(name, (None, str(value).encode())) for name, value in fields.items()]


def png_rgba(width: int, height: int, *, transparent: bool) -> bytes:
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0 if transparent else 255))
    image.paste((10, 200, 10, 255), (width // 4, height // 4, width // 2, height // 2))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def picture(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def assert_error(response: httpx.Response, status: int, code: int, words: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error"
    assert body["code"] == code
    assert isinstance(body["error"], str)
    assert words.lower() in body["message"].lower()


async def test_auth_codes(fake: FakeImagine) -> None:
    fake.expired_keys.add("vk-old")
    async with httpx.AsyncClient(base_url=fake.base_url + "/") as client:
        fields = form(prompt="x")
        assert_error(await client.post("image/generations", files=fields), 400, 1000)
        wrong = {"Authorization": "Bearer vk-nope"}
        assert_error(await client.post("image/generations", files=fields, headers=wrong), 401, 1001)
        old = {"Authorization": "Bearer vk-old"}
        assert_error(await client.post("image/generations", files=fields, headers=old), 406, 1002)
        basic = {"Authorization": f"Basic {KEY}"}
        assert_error(await client.post("image/generations", files=fields, headers=basic), 400, 1000)
    assert fake.videos == {}


async def test_json_and_urlencoded_bodies_are_invalid_requests(http: httpx.AsyncClient, fake: FakeImagine) -> None:
    assert_error(await http.post("image/generations", json={"prompt": "a fox"}), 400, 1100, "multipart")
    assert_error(await http.post("video/text-to-video", data={"prompt": "a fox"}), 400, 1100, "multipart")
    assert [r.content_type for r in fake.requests] == ["application/json", "application/x-www-form-urlencoded"]
    assert picture(await http.post("image/generations", files=form(prompt="a fox"))).format == "JPEG"


@pytest.mark.parametrize(
    ("path", "fields", "files", "words"),
    [
        ("image/generations", {}, {}, "prompt is required"),
        ("image/generations", {"prompt": "  "}, {}, "prompt is required"),
        ("image/generations", {"prompt": "x", "style": "oil-paint"}, {}, "style"),
        ("image/generations", {"prompt": "x", "aspect_ratio": "2:1"}, {}, "aspect_ratio"),
        ("image/generations", {"prompt": "x", "seed": "0"}, {}, "seed"),
        ("image/generations", {"prompt": "x", "seed": "abc"}, {}, "seed"),
        ("image/generations/transparent", {"prompt": "x", "aspect_ratio": "5:4"}, {}, "aspect_ratio"),
        ("image/generations/ai-background", {"prompt": "x"}, {}, "image is required"),
        ("image/generations/ai-background", {"prompt": "x"}, {"image": "opaque"}, "transparent"),
        ("image/generations/ai-background", {"prompt": "x", "style": "studio"}, {"image": "cutout"}, "style"),
        ("image/edits/generative-fill", {"prompt": "x"}, {"image": "photo"}, "mask is required"),
        ("image/edits/generative-fill", {"prompt": "x"}, {"image": "photo", "mask": "small"}, "mask is"),
        ("image/edits/generative-fill", {}, {"image": "photo", "mask": "mask"}, "prompt"),
        ("image/edits/remove", {}, {"image": "photo", "mask": "small"}, "mask is"),
        ("image/background/remover", {}, {"image": "text"}, "not an image"),
        ("image/enhance", {}, {}, "image is required"),
        ("video/text-to-video", {"prompt": "x", "aspect_ratio": "4:3"}, {}, "aspect_ratio"),
        ("video/text-to-video", {"prompt": "x", "style": "sora"}, {}, "style"),
        ("video/image-to-video", {"prompt": "x"}, {"image": "photo"}, "named file"),
    ],
)
async def test_every_field_is_validated_with_1100(
    http: httpx.AsyncClient, fake: FakeImagine, path: str, fields: dict[str, str], files: dict[str, str], words: str
) -> None:
    made = {
        "photo": images.png(64, 48),
        "mask": images.png(64, 48),
        "small": images.png(32, 24),
        "opaque": png_rgba(40, 40, transparent=False),
        "cutout": png_rgba(40, 40, transparent=True),
        "text": b"not a picture",
    }
    parts = form(**fields) + [(name, (f"{name}.png", made[kind], "image/png")) for name, kind in files.items()]
    if not parts:
        parts = form(unused="1")  # still multipart
    assert_error(await http.post(path, files=parts), 400, 1100, words)
    assert fake.videos == {}


@pytest.mark.parametrize(
    ("ratio", "size"),
    [("1:1", (256, 256)), ("3:2", (256, 171)), ("4:3", (256, 192)), ("3:4", (192, 256)), ("16:9", (256, 144))],
)
async def test_generation_size_follows_the_aspect_ratio(
    http: httpx.AsyncClient, ratio: str, size: tuple[int, int]
) -> None:
    response = await http.post("image/generations", files=form(prompt="a hill", aspect_ratio=ratio))
    assert response.headers["Content-Type"] == "image/jpeg"
    assert picture(response).size == size


async def test_images_are_derived_from_prompt_and_seed(http: httpx.AsyncClient) -> None:
    one = await http.post("image/generations", files=form(prompt="a hill", seed=1))
    again = await http.post("image/generations", files=form(prompt="a hill", seed=1))
    other = await http.post("image/generations", files=form(prompt="a hill", seed=2))
    assert one.content == again.content
    assert one.content != other.content


async def test_transparent_and_remover_answer_rgba_png_with_transparent_pixels(http: httpx.AsyncClient) -> None:
    for response in (
        await http.post("image/generations/transparent", files=form(prompt="a vase", aspect_ratio="9:16")),
        await http.post("image/background/remover", files=[("image", ("p.png", images.png(64, 64), "image/png"))]),
    ):
        image = picture(response)
        assert (image.format, image.mode) == ("PNG", "RGBA")
        low, high = image.getchannel("A").getextrema()
        assert (low, high) == (0, 255)


async def test_erase_changes_only_the_masked_pixels_and_enhance_doubles(http: httpx.AsyncClient) -> None:
    photo = images.png(40, 40, label="room")
    mask = Image.new("L", (40, 40), 0)
    mask.paste(255, (20, 0, 40, 40))
    out = io.BytesIO()
    mask.save(out, "PNG")
    erased = picture(
        await http.post(
            "image/edits/remove",
            files=[("image", ("a.png", photo, "image/png")), ("mask", ("m.png", out.getvalue(), "image/png"))],
        )
    ).convert("RGB")
    source = Image.open(io.BytesIO(photo)).convert("RGB")
    assert erased.crop((0, 0, 20, 40)).tobytes() == source.crop((0, 0, 20, 40)).tobytes()
    assert erased.crop((20, 0, 40, 40)).tobytes() != source.crop((20, 0, 40, 40)).tobytes()
    bigger = picture(await http.post("image/enhance", files=[("image", ("a.png", photo, "image/png"))]))
    assert bigger.size == (80, 80)


async def test_a_video_moves_through_the_documented_words_then_serves_a_real_mp4(
    http: httpx.AsyncClient, fake: FakeImagine
) -> None:
    fake.video_timeline = ((0.0, "queued"), (0.05, "processing"), (0.1, "generating"))
    fake.video_seconds = 0.2
    created = await http.post("video/text-to-video", files=form(prompt="rain", aspect_ratio="9:16"))
    assert created.status_code == 200
    assert created.json()["status"] == "processing"
    video_id = created.json()["id"]
    seen: list[str] = []
    body: dict[str, Any] = {}
    for _ in range(200):
        body = (await http.get(f"video/{video_id}/status")).json()
        assert body["status"] == "success"
        word = body["video"]["status"]
        if not seen or seen[-1] != word:
            seen.append(word)
        if word == "finished":
            break
        await asyncio.sleep(0.01)
    order = ["queued", "processing", "generating", "finished"]
    assert seen[-1] == "finished"
    assert [order.index(w) for w in seen] == sorted(order.index(w) for w in seen)  # never backwards
    url = body["video"]["url"]["generation"][0]
    async with httpx.AsyncClient() as plain:
        data = (await plain.get(url)).content
        unsigned = await plain.get(url.split("?")[0])
    assert unsigned.status_code == 403  # pre-signed: the link alone is the credential
    info = probe(data)
    assert (info.width, info.height, info.codec) == (64, 112, "h264")
    for older in (f"video/status/{video_id}", f"assets/{video_id}/status"):
        assert (await http.get(older)).json()["video"]["status"] == "finished"
    assert (await http.get("video/nope/status")).status_code == 404


async def test_rate_limit_and_credits(http: httpx.AsyncClient, fake: FakeImagine) -> None:
    fake.rate_limit, fake.rate_window_s = 2, 30.0
    first = await http.post("image/generations", files=form(prompt="a"))
    assert (first.status_code, first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == (
        200,
        "2",
        "1",
    )
    assert (await http.post("image/generations", files=form(prompt="b"))).status_code == 200
    limited = await http.post("image/generations", files=form(prompt="c"))
    assert_error(limited, 429, 1202)
    assert 1 <= int(limited.headers["Retry-After"]) <= 30
    fake.rate_limit = None
    fake.credits = 1
    assert (await http.post("image/generations", files=form(prompt="d"))).status_code == 200
    assert_error(await http.post("image/generations", files=form(prompt="e")), 402, 1101)
    assert fake.credits == 0


async def test_fault_switches_and_the_request_log(fake: FakeImagine, http: httpx.AsyncClient) -> None:
    fake.fail_next(1200, route="image/enhance")
    photo = images.png(20, 20)
    assert_error(await http.post("image/enhance", files=[("image", ("x.png", photo, "image/png"))]), 503, 1200)
    fake.credits = 3
    fake.drop_next()
    with pytest.raises(httpx.TransportError):
        await http.post("image/generations", files=form(prompt="dropped"))
    assert fake.credits == 2  # it was processed before the connection went
    fake.slow_next(5.0)
    with pytest.raises(httpx.ReadTimeout):
        await http.post("image/generations", files=form(prompt="slow"), timeout=httpx.Timeout(5, read=0.2))
    log = fake.calls()
    assert [r.path for r in log] == ["image/enhance", "image/generations", "image/generations"]
    assert log[0].files["image"] == ("x.png", "image/png", photo)
    assert log[1].fields == {"prompt": "dropped"}
    assert (log[0].fault, log[1].fault, log[2].fault) == ("error:1200", "drop", "slow:5.0")
