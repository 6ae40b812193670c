"""The Mimi Panda fake speaks the documented protocol; these tests pin it so adapter tests can trust it."""

from __future__ import annotations

import asyncio
import io
import json
import re
import ssl
import uuid
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.fakes import images
from tests.fakes.mimipanda import (
    AI_FILTER_TYPES,
    CONTENT_POLICY_ERROR,
    NAMED_COLORS,
    PBN_BOTH_ERROR,
    PBN_SOURCE_ERROR,
    QUOTA_ERROR,
    FakeMimiPanda,
)

TOKEN = "mp-test-token"
MIMES_ERROR = "The image field must be a file of type: jpg, png, webp, jpeg, heic, heif."
# Building httpx's default SSL context costs ~35 ms per client; the fake is plain HTTP, so share one.
TLS = ssl.create_default_context()


@pytest.fixture
async def fake() -> AsyncIterator[FakeMimiPanda]:
    server = FakeMimiPanda(token=TOKEN)
    server.queue_seconds, server.processing_seconds = 0.01, 0.02
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(fake: FakeMimiPanda) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=fake.base_url, headers=headers, timeout=5, verify=TLS) as http:
        yield http


def upload(data: bytes, name: str = "photo.png", content_type: str = "image/png") -> dict[str, Any]:
    return {"image": (name, data, content_type)}


async def create(client: httpx.AsyncClient, kind: str, **kwargs: Any) -> str:
    response = await client.post(kind, **kwargs)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "in_queue"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["created"])
    assert uuid.UUID(body["key"]).version == 4
    return str(body["key"])


async def wait_done(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    for _ in range(300):
        response = await client.get(f"item/{key}")
        body = response.json()
        if body["status"] in ("ready", "failed"):
            return dict(body)
        await asyncio.sleep(0.01)
    raise AssertionError("job never finished")


async def fetch_image(url: str) -> tuple[Image.Image, str]:
    async with httpx.AsyncClient(verify=TLS) as http:  # result URLs are public storage: no token
        response = await http.get(url)
    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image, response.headers["content-type"]


async def rejected(client: httpx.AsyncClient, kind: str, message: str, **kwargs: Any) -> None:
    response = await client.post(kind, **kwargs)
    assert response.status_code == 400, response.text
    assert response.json() == {"error": message}


# --- auth and routing ----------------------------------------------------------------------------------


async def test_every_route_requires_the_bearer_token(fake: FakeMimiPanda) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url, verify=TLS) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = await http.post("coloring", files=upload(images.png()), headers=headers)
            assert response.status_code == 401
            assert response.json() == {"error": "Unauthenticated."}
        response = await http.get(f"item/{uuid.uuid4()}")
        assert response.status_code == 401
    assert not fake.jobs


async def test_unknown_item_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"item/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found"}


# --- each endpoint, happy path -------------------------------------------------------------------------


async def test_coloring_page_is_black_lines_on_white(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    key = await create(client, "coloring", files=upload(images.png(200, 120)), data={"type": "v2_anime"})
    seen = {(await client.get(f"item/{key}")).json()["status"]}
    body = await wait_done(client, key)
    seen.add(body["status"])
    assert body["status"] == "ready"
    assert "in_queue" in seen or "processing" in seen
    assert body["parameters"] == {"version": "v2", "type": "v2_anime"}
    assert len(body["images"]) == 1
    page, content_type = await fetch_image(body["images"][0])
    assert content_type == "image/png"
    colours = {colour: n for n, colour in page.convert("L").getcolors(1 << 16)}
    assert set(colours) <= {0, 255}
    assert colours[255] > colours[0] > 0  # mostly white, with black outlines
    assert fake.jobs[key].kind == "coloring"
    assert fake.jobs[key].image == images.png(200, 120)


async def test_coloring_v1_defaults_to_for_adults(client: httpx.AsyncClient) -> None:
    key = await create(client, "coloring", files=upload(images.jpeg(), "a.jpg", "image/jpeg"), data={"version": "v1"})
    body = await wait_done(client, key)
    assert body["parameters"] == {"version": "v1", "type": "for_adults"}


@pytest.mark.parametrize(
    ("kind", "payload", "ratio", "size", "content_type"),
    [
        ("ai/image", {"prompt": "A futuristic city", "aspectRatio": "2x3"}, "2x3", (512, 768), "image/jpeg"),
        ("ai/image", {"prompt": "A futuristic city", "aspectRatio": "5x4"}, "5x4", (640, 512), "image/jpeg"),
        (
            "ai/coloring",
            {"prompt": "A unicorn", "style": "kids_coloring_page", "aspectRatio": "16x9", "version": "v2"},
            "16x9",
            (910, 512),
            "image/png",
        ),
        (
            "ai/coloring",
            {"prompt": "A unicorn", "style": "adults_coloring_page", "version": "v1"},
            "1x1",
            (512, 512),
            "image/png",
        ),
    ],
)
async def test_ai_images_honour_the_aspect_ratio(
    client: httpx.AsyncClient,
    kind: str,
    payload: dict[str, str],
    ratio: str,
    size: tuple[int, int],
    content_type: str,
) -> None:
    key = await create(client, kind, json=payload)
    body = await wait_done(client, key)
    params = body["parameters"]
    assert params == {
        "prompt": payload["prompt"],
        "style": payload.get("style"),
        "aspectRatio": ratio,
        "width": size[0],
        "height": size[1],
    }
    assert len(body["images"]) == 2  # the doc's AI example returns two images
    for url in body["images"]:
        image, served_as = await fetch_image(url)
        assert image.size == size
        assert served_as == content_type


async def test_prompt_endpoints_accept_multipart_and_urlencoded(client: httpx.AsyncClient) -> None:
    await create(client, "ai/image", files={"prompt": (None, "A red fox"), "aspectRatio": (None, "1x1")})
    await create(client, "ai/image", data={"prompt": "A red fox", "aspectRatio": "1x1"})
    await create(client, "pbn", files={"prompt": (None, "Sunset over hills")})


@pytest.mark.parametrize(
    ("size", "requested", "factor"),
    [((100, 60), "4", 4), ((90, 50), "2", 2), ((1001, 10), "4", 2), ((10, 1200), "2", 2)],
)
async def test_upscale_really_scales(
    client: httpx.AsyncClient, size: tuple[int, int], requested: str, factor: int
) -> None:
    key = await create(client, "image/upscale", files=upload(images.png(*size)), data={"upscale": requested})
    body = await wait_done(client, key)
    expected = (size[0] * factor, size[1] * factor)
    assert body["parameters"] == {"upscale": factor, "width": expected[0], "height": expected[1]}
    image, _ = await fetch_image(body["images"][0])
    assert image.size == expected


async def test_upscale_beyond_the_render_budget_reports_the_real_size(
    fake: FakeMimiPanda, client: httpx.AsyncClient
) -> None:
    fake.max_render_pixels = 10_000
    key = await create(client, "image/upscale", files=upload(images.png(200, 100)), data={"upscale": "4"})
    body = await wait_done(client, key)
    assert (body["parameters"]["width"], body["parameters"]["height"]) == (800, 400)
    image, _ = await fetch_image(body["images"][0])
    assert image.width * image.height <= 10_000


async def test_filter_keeps_the_size_and_echoes_parameters(client: httpx.AsyncClient) -> None:
    data = {"filterType": "artistic", "strength": "0.7"}
    key = await create(client, "image/filter", files=upload(images.webp(120, 80), "x.webp", "image/webp"), data=data)
    body = await wait_done(client, key)
    assert body["parameters"] == {"filterType": "artistic", "strength": 0.7}
    image, content_type = await fetch_image(body["images"][0])
    assert image.size == (120, 80)
    assert content_type == "image/jpeg"


async def test_heic_is_accepted(client: httpx.AsyncClient) -> None:
    key = await create(client, "coloring", files=upload(images.heic(96, 64), "x.heic", "image/heic"))
    body = await wait_done(client, key)
    image, _ = await fetch_image(body["images"][0])
    assert image.size == (96, 64)


# --- paint by numbers ----------------------------------------------------------------------------------


async def test_pbn_payload_shape_and_parameter_echo(client: httpx.AsyncClient) -> None:
    data = {"numberOfColors": "12", "segmentsComplexity": "level2", "canvasSize": "12x16", "crop": "1"}
    key = await create(client, "pbn", files=upload(images.jpeg(300, 200), "p.jpg", "image/jpeg"), data=data)
    body = await wait_done(client, key)
    assert set(body["images"]) == {"pbn", "picture", "source"}
    assert [c["number"] for c in body["colors"]] == list(range(1, 13))
    for colour in body["colors"]:
        assert re.fullmatch(r"#[0-9A-F]{6}", colour["hex"])
        assert colour["name"].strip()
    assert len({c["name"] for c in body["colors"]}) == 12
    assert body["parameters"] == {
        "prompt": None,
        "numberOfColors": 12,
        "segmentsComplexity": "level2",
        "gradientStep": "high",
        "colorPrecision": "high",
        "canvasSize": "12x16",
        "crop": True,
        "detailsFilter": None,
        "palette": None,
        "paletteColors": None,
        "mixPalette": False,
        "aiFilterType": "none",
        "minArea": 0,
    }
    template, _ = await fetch_image(body["images"]["pbn"])
    picture, _ = await fetch_image(body["images"]["picture"])
    source, _ = await fetch_image(body["images"]["source"])
    assert template.size == picture.size == (384, 512)  # cropped to the 12x16 canvas
    assert source.size == (384, 512)
    assert template.convert("RGB").getpixel((5, 5)) == (255, 255, 255)
    first = tuple(int(body["colors"][0]["hex"][i : i + 2], 16) for i in (1, 3, 5))
    assert max(abs(a - b) for a, b in zip(picture.getpixel((5, 5)), first, strict=True)) < 12


async def test_pbn_from_prompt_with_palette(client: httpx.AsyncClient) -> None:
    codes = [hex_code for _, hex_code in NAMED_COLORS[10:18]]
    payload = {
        "prompt": "Beautiful sunset over mountains",
        "numberOfColors": 7,
        "palette": 1,
        "paletteColors": ",".join(codes),
        "mixPalette": True,
        "aiFilterType": "painting-watercolor",
        "minArea": 5,
        "detailsFilter": "ultra",
    }
    key = await create(client, "pbn", json=payload)
    body = await wait_done(client, key)
    assert [c["hex"] for c in body["colors"]] == codes[:7]
    assert body["parameters"]["prompt"] == payload["prompt"]
    assert body["parameters"]["palette"] == 1
    assert body["parameters"]["mixPalette"] is True
    assert body["parameters"]["minArea"] == 5
    source, _ = await fetch_image(body["images"]["source"])
    assert source.size == (512, 512)


async def test_pbn_downloads_and_palette_files(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    fake.auto_advance = False
    small = await create(client, "pbn", files=upload(images.png()), data={"numberOfColors": "10"})
    large = await create(client, "pbn", files=upload(images.png()), data={"numberOfColors": "40"})

    not_ready = await client.get(f"item/{small}/pbn/download/pdf")
    assert not_ready.status_code == 400
    fake.finish(small)
    fake.finish(large)

    downloads = {kind: await client.get(f"item/{small}/pbn/download/{kind}") for kind in ("svg", "png", "pdf", "jpeg")}
    assert downloads["pdf"].content.startswith(b"%PDF")
    assert downloads["pdf"].headers["content-type"] == "application/pdf"
    assert downloads["svg"].content.startswith(b"<svg")
    assert downloads["svg"].headers["content-type"] == "image/svg+xml"
    assert Image.open(io.BytesIO(downloads["png"].content)).format == "PNG"
    assert Image.open(io.BytesIO(downloads["jpeg"].content)).format == "JPEG"

    csv = (await client.get(f"item/{small}/pbn/colors/csv")).content.decode().splitlines()
    assert len(csv) == 11
    assert csv[0].startswith("number,")
    gpl = (await client.get(f"item/{small}/pbn/colors/gpl")).content
    assert gpl.startswith(b"GIMP Palette")
    swatches = zipfile.ZipFile(io.BytesIO((await client.get(f"item/{small}/pbn/colors/swatches")).content))
    assert len(json.loads(swatches.read("Swatches.json"))[0]["swatches"]) == 10
    kpl = zipfile.ZipFile(io.BytesIO((await client.get(f"item/{small}/pbn/colors/kpl")).content))
    assert kpl.read("mimetype") == b"krita/x-colorset"

    for kind in ("csv", "gpl", "kpl", "swatches"):  # more than 30 colours: a zip of <= 30-colour files
        response = await client.get(f"item/{large}/pbn/colors/{kind}")
        assert response.headers["content-type"] == "application/zip"
        assert len(zipfile.ZipFile(io.BytesIO(response.content)).namelist()) == 2

    assert (await client.get(f"item/{small}/pbn/download/gif")).status_code == 400
    assert (await client.get(f"item/{small}/pbn/colors/ase")).status_code == 400
    coloring = await create(client, "coloring", files=upload(images.png()))
    fake.finish(coloring)
    assert (await client.get(f"item/{coloring}/pbn/download/pdf")).status_code == 404


# --- validation ----------------------------------------------------------------------------------------

PNG = images.png(64, 64)
PROMPT = "A cat in a hat"


def mp(**fields: Any) -> dict[str, Any]:
    """A multipart upload of PNG plus text fields."""
    return {"files": upload(PNG), "data": {k: str(v) for k, v in fields.items()}}


def pbn(**fields: Any) -> dict[str, Any]:
    return {"json": {"prompt": PROMPT, **fields}}


AI_COLORING = {"prompt": PROMPT, "style": "kids_coloring_page", "version": "v2"}

REJECTIONS: list[tuple[str, str, dict[str, Any]]] = [
    # coloring
    ("coloring", "The image field is required.", {"data": {"version": "v2"}}),
    ("coloring", "The image field is required.", {"json": {"version": "v2"}}),
    ("coloring", "The image field must be a file.", {"data": {"image": "https://example.com/a.png"}}),
    ("coloring", MIMES_ERROR, {"files": upload(images.render(fmt="GIF"), "a.gif", "image/gif")}),
    ("coloring", MIMES_ERROR, {"files": upload(b"not an image at all", "a.png")}),
    ("coloring", MIMES_ERROR, {"files": upload(images.render(64, 64, fmt="BMP"), "a.jpg", "image/jpeg")}),
    ("coloring", MIMES_ERROR, {"files": upload(PNG[: len(PNG) // 2])}),
    (
        "coloring",
        "Failed to process HEIC image",
        {"files": upload(images.heic()[:300], "a.heic", "image/heic")},
    ),
    ("coloring", "The selected version is invalid.", mp(version="v3")),
    ("coloring", "The selected type is invalid.", mp(version="v1", type="v2_detailed")),
    ("coloring", "The selected type is invalid.", mp(type="for_kids")),
    # pbn
    ("pbn", PBN_SOURCE_ERROR, {"json": {"numberOfColors": 30}}),
    ("pbn", PBN_SOURCE_ERROR, {"data": {"prompt": "   "}}),
    ("pbn", PBN_BOTH_ERROR, mp(prompt=PROMPT)),
    ("pbn", "The prompt field must be at least 3 characters.", pbn(prompt="ab")),
    ("pbn", "The prompt field must be at least 3 characters.", pbn(prompt="  ab  ")),
    ("pbn", "The prompt field must not be greater than 600 characters.", pbn(prompt="x" * 601)),
    ("pbn", "The prompt field must be a string.", pbn(prompt=12345)),
    ("pbn", "The number of colors field must be between 7 and 100.", pbn(numberOfColors=6)),
    ("pbn", "The number of colors field must be between 7 and 100.", mp(numberOfColors=101)),
    ("pbn", "The number of colors field must be an integer.", pbn(numberOfColors="ten")),
    ("pbn", "The number of colors field must be an integer.", pbn(numberOfColors=12.5)),
    ("pbn", "The selected segments complexity is invalid.", pbn(segmentsComplexity="level4")),
    ("pbn", "The selected gradient step is invalid.", pbn(gradientStep="low")),
    ("pbn", "The selected color precision is invalid.", pbn(colorPrecision="ultra")),
    ("pbn", "The canvas size field format is invalid.", pbn(canvasSize="12 by 16")),
    ("pbn", "The canvas size must be between 4x4 and 45x45 inches.", pbn(canvasSize="3x10")),
    ("pbn", "The canvas size must be between 4x4 and 45x45 inches.", pbn(canvasSize="46x10")),
    ("pbn", "The crop field must be true or false.", pbn(crop="yes")),
    ("pbn", "The crop field must be true or false.", mp(crop="true")),  # Laravel's boolean rule is strict
    ("pbn", "The selected details filter is invalid.", pbn(detailsFilter="extreme")),
    ("pbn", "The palette field must be an integer.", pbn(palette="mine")),
    ("pbn", "The selected palette is invalid.", pbn(palette=999)),
    (
        "pbn",
        "The palette colors field must contain at least 7 colors.",
        pbn(palette=1, paletteColors="#000000,#FFFFFF"),
    ),
    (
        "pbn",
        "The palette field is required when palette colors is present.",
        pbn(paletteColors=",".join(h for _, h in NAMED_COLORS[:7])),
    ),
    (
        "pbn",
        "The selected palette colors is invalid.",
        pbn(palette=1, paletteColors=",".join(["#123456"] * 7)),
    ),
    ("pbn", "The mix palette field must be true or false.", pbn(mixPalette=2)),
    ("pbn", "The selected ai filter type is invalid.", pbn(aiFilterType="painting-cubism")),
    ("pbn", "The min area field must be between 0 and 100.", pbn(minArea=-1)),
    ("pbn", "The min area field must be between 0 and 100.", pbn(minArea=101)),
    ("pbn", "The min area field must be an integer.", pbn(minArea="1.5")),
    # ai/coloring (the doc's own example style "fantasy" is not among the documented styles)
    ("ai/coloring", "The prompt field is required.", {"json": {**AI_COLORING, "prompt": ""}}),
    (
        "ai/coloring",
        "The style field is required.",
        {"json": {k: v for k, v in AI_COLORING.items() if k != "style"}},
    ),
    ("ai/coloring", "The selected style is invalid.", {"json": {**AI_COLORING, "style": "fantasy"}}),
    ("ai/coloring", "The selected aspect ratio is invalid.", {"json": {**AI_COLORING, "aspectRatio": "4x5"}}),
    (
        "ai/coloring",
        "The version field is required.",
        {"json": {k: v for k, v in AI_COLORING.items() if k != "version"}},
    ),
    ("ai/coloring", "The selected version is invalid.", {"json": {**AI_COLORING, "version": "v3"}}),
    # ai/image (the doc's example "16x9" is not among the documented ratios)
    ("ai/image", "The prompt field is required.", {"json": {"aspectRatio": "1x1"}}),
    ("ai/image", "The aspect ratio field is required.", {"json": {"prompt": PROMPT}}),
    (
        "ai/image",
        "The selected aspect ratio is invalid.",
        {"json": {"prompt": PROMPT, "aspectRatio": "16x9"}},
    ),
    (
        "ai/image",
        "The request body is not valid JSON.",
        {"content": b"{", "headers": {"Content-Type": "application/json"}},
    ),
    # upscale
    ("image/upscale", "The image field is required.", {"data": {"upscale": "2"}}),
    ("image/upscale", "The upscale field is required.", mp()),
    ("image/upscale", "The selected upscale is invalid.", mp(upscale=3)),
    ("image/upscale", "The selected upscale is invalid.", mp(upscale="4x")),
    (
        "image/upscale",
        "The image field has invalid image dimensions.",
        {"files": upload(images.png(4001, 8)), "data": {"upscale": "2"}},
    ),
    (
        "image/upscale",
        "The image field has invalid image dimensions.",
        {"files": upload(images.png(8, 4001)), "data": {"upscale": "2"}},
    ),
    # filter
    ("image/filter", "The image field is required.", {"data": {"filterType": "artistic", "strength": "0.5"}}),
    ("image/filter", "The filter type field is required.", mp(strength=0.5)),
    ("image/filter", "The strength field is required.", mp(filterType="artistic")),
    ("image/filter", "The strength field must be a number.", mp(filterType="artistic", strength="strong")),
    ("image/filter", "The selected strength is invalid.", mp(filterType="artistic", strength=0.1)),
    ("image/filter", "The selected strength is invalid.", mp(filterType="artistic", strength=0.25)),
    ("image/filter", "The selected strength is invalid.", mp(filterType="artistic", strength=1.1)),
]


@pytest.mark.parametrize(("kind", "message", "request_kwargs"), REJECTIONS)
async def test_validation_rejects(
    fake: FakeMimiPanda, client: httpx.AsyncClient, kind: str, message: str, request_kwargs: dict[str, Any]
) -> None:
    await rejected(client, kind, message, **request_kwargs)
    assert not fake.jobs


@pytest.mark.parametrize(
    ("kind", "request_kwargs"),
    [
        ("pbn", pbn(prompt="abc", numberOfColors=7, canvasSize="4x4", crop=False)),
        ("pbn", pbn(prompt="x" * 600, numberOfColors="100", canvasSize="45x45", crop="0", minArea=100)),
        ("pbn", pbn(canvasSize="none", mixPalette=1, aiFilterType=AI_FILTER_TYPES[-1])),
        ("pbn", mp(numberOfColors=" 30 ", gradientStep="normal", colorPrecision="lowest")),
        ("image/filter", mp(filterType="anything", strength="0.2")),
        ("image/filter", mp(filterType="anything", strength="1")),
        ("image/filter", mp(filterType="anything", strength=1.0)),
        ("image/upscale", {"files": upload(images.png(4000, 8)), "data": {"upscale": "2"}}),
        ("coloring", {"files": upload(PNG, "no-extension", "application/octet-stream")}),
    ],
)
async def test_boundary_values_are_accepted(
    client: httpx.AsyncClient, kind: str, request_kwargs: dict[str, Any]
) -> None:
    await create(client, kind, **request_kwargs)


async def test_uploads_over_20_mb_are_rejected(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    padded = images.jpeg(32, 32) + bytes(20 * 1024 * 1024)  # a valid JPEG with trailing padding
    await rejected(
        client,
        "coloring",
        "The image field must not be greater than 20480 kilobytes.",
        files=upload(padded, "a.jpg"),
    )
    await create(client, "coloring", files=upload(images.jpeg(32, 32) + bytes(1024), "a.jpg"))


async def test_configured_filter_types_are_enforced(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    fake.filter_types = {"artistic"}
    await rejected(
        client,
        "image/filter",
        "The selected filter type is invalid.",
        **mp(filterType="cartoon", strength=0.5),
    )
    await create(client, "image/filter", **mp(filterType="artistic", strength=0.5))


# --- content policy, failures, quota -------------------------------------------------------------------


async def test_content_policy(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    await rejected(
        client,
        "ai/image",
        CONTENT_POLICY_ERROR,
        json={"prompt": "Mickey Mouse on a boat", "aspectRatio": "1x1"},
    )
    await rejected(client, "pbn", CONTENT_POLICY_ERROR, json={"prompt": "a MICKEY portrait"})
    await rejected(client, "ai/coloring", CONTENT_POLICY_ERROR, json={**AI_COLORING, "prompt": "mickey"})
    fake.blocked_word = "pikachu"
    await create(client, "ai/image", json={"prompt": "Mickey Mouse on a boat", "aspectRatio": "1x1"})
    await rejected(client, "ai/image", CONTENT_POLICY_ERROR, json={"prompt": "Pikachu", "aspectRatio": "1x1"})
    assert len(fake.jobs) == 1


async def test_fail_marker_ends_the_job_failed(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    key = await create(client, "ai/image", json={"prompt": "a FAILME cat", "aspectRatio": "1x1"})
    body = await wait_done(client, key)
    assert body["status"] == "failed"
    assert body["error"] == fake.failure_message
    assert "images" not in body
    key = await create(client, "coloring", files=upload(PNG, "FAILME.png"))
    assert (await wait_done(client, key))["status"] == "failed"


async def test_quota_exhaustion_is_403(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    fake.quota_remaining = 1
    await create(client, "ai/image", json={"prompt": PROMPT, "aspectRatio": "1x1"})
    response = await client.post("ai/image", json={"prompt": PROMPT, "aspectRatio": "1x1"})
    assert response.status_code == 403
    assert response.json() == {"error": QUOTA_ERROR}


# --- manual control ------------------------------------------------------------------------------------


async def test_manual_control(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    fake.auto_advance = False
    key = await create(client, "ai/image", json={"prompt": PROMPT, "aspectRatio": "3x2"})
    await asyncio.sleep(0.05)
    assert (await client.get(f"item/{key}")).json()["status"] == "in_queue"
    assert fake.advance(key) == "processing"
    processing = (await client.get(f"item/{key}")).json()
    assert processing["status"] == "processing"
    assert set(processing) == {"key", "status", "created", "updated"}
    assert fake.advance(key) == "ready"
    ready = (await client.get(f"item/{key}")).json()
    assert ready["status"] == "ready"
    assert ready["parameters"]["width"] == 768

    other = await create(client, "ai/image", json={"prompt": PROMPT, "aspectRatio": "1x1"})
    fake.fail(other, "GPU on fire")
    failed = (await client.get(f"item/{other}")).json()
    assert failed["status"] == "failed"
    assert failed["error"] == "GPU on fire"

    third = await create(client, "ai/image", json={"prompt": "FAILME", "aspectRatio": "1x1"})
    fake.finish(third)  # finish overrides the failure marker
    assert fake.jobs[third].status == "ready"
    assert fake.jobs[third].params["aspectRatio"] == "1x1"


# --- faults --------------------------------------------------------------------------------------------


async def test_early_404_then_html_then_json(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    fake.early_404_polls, fake.html_polls = 2, 1
    key = await create(client, "ai/image", json={"prompt": PROMPT, "aspectRatio": "1x1"})
    answers = [await client.get(f"item/{key}") for _ in range(4)]
    assert [a.status_code for a in answers] == [404, 404, 200, 200]
    assert answers[0].json() == {"error": "Not found"}
    assert answers[2].headers["content-type"].startswith("text/html")
    assert answers[3].json()["key"] == key
    assert [p.fault for p in fake.polls(key)] == ["early_404", "early_404", "html", None]


async def test_malformed_body(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    fake.malformed_next(route="create")
    response = await client.post("ai/image", json={"prompt": PROMPT, "aspectRatio": "1x1"})
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert len(fake.jobs) == 1  # the job was created; only the answer was broken
    key = next(iter(fake.jobs))
    fake.malformed_next()
    with pytest.raises(json.JSONDecodeError):
        (await client.get(f"item/{key}")).json()
    assert (await client.get(f"item/{key}")).json()["key"] == key


async def test_rate_limit_and_server_errors(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    payload = {"prompt": PROMPT, "aspectRatio": "1x1"}
    fake.fail_next(429, retry_after=1)
    limited = await client.post("ai/image", json=payload)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert "error" in limited.json()

    fake.fail_next(500, count=2)
    assert [(await client.post("ai/image", json=payload)).status_code for _ in range(3)] == [500, 500, 200]

    fake.fail_next(403, body={"error": QUOTA_ERROR})
    forbidden = await client.post("ai/image", json=payload)
    assert (forbidden.status_code, forbidden.json()) == (403, {"error": QUOTA_ERROR})
    assert len(fake.jobs) == 1  # faulted creates never reached the API


async def test_faults_can_target_a_route(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    fake.fail_next(503, route="item", body="<html>down</html>", content_type="text/html")
    key = await create(client, "ai/image", json={"prompt": PROMPT, "aspectRatio": "1x1"})
    poll = await client.get(f"item/{key}")
    assert poll.status_code == 503
    assert poll.text == "<html>down</html>"
    fake.fail_next(500, route="pbn")
    await create(client, "ai/image", json={"prompt": PROMPT, "aspectRatio": "1x1"})
    assert (await client.post("pbn", json={"prompt": PROMPT})).status_code == 500


async def test_slow_answer_times_out_but_the_job_exists(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    fake.slow_next(2.0)
    with pytest.raises(httpx.ReadTimeout):
        await client.post("ai/image", json={"prompt": PROMPT, "aspectRatio": "1x1"}, timeout=0.2)
    assert len(fake.creates("ai/image")) == 1
    assert len(fake.jobs) == 1  # why a create is not safe to retry blindly
    await create(client, "ai/image", json={"prompt": PROMPT, "aspectRatio": "1x1"})


# --- recording -----------------------------------------------------------------------------------------


async def test_requests_are_recorded(fake: FakeMimiPanda, client: httpx.AsyncClient) -> None:
    key = await create(client, "pbn", files=upload(PNG, "in.png"), data={"numberOfColors": "40"})
    await create(client, "ai/image", json={"prompt": PROMPT, "aspectRatio": "1x1"})
    await client.get(f"item/{key}")

    [pbn_create] = fake.creates("pbn")
    assert pbn_create.method == "POST"
    assert pbn_create.path == "pbn"
    assert pbn_create.form == {"numberOfColors": "40"}
    assert pbn_create.files == {"image": ("in.png", "image/png", PNG)}
    assert pbn_create.headers["authorization"] == f"Bearer {TOKEN}"
    assert pbn_create.job_key == key
    assert pbn_create.status == 200
    assert fake.creates("ai/image")[0].json == {"prompt": PROMPT, "aspectRatio": "1x1"}
    assert len(fake.creates()) == 2
    assert [r.path for r in fake.polls()] == [f"item/{key}"]
    job = fake.jobs[key]
    assert (job.kind, job.image, job.image_size, job.params["numberOfColors"]) == ("pbn", PNG, (64, 64), 40)
