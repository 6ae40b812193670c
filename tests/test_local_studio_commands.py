"""Easel's own studio from Discord, with no paid studio configured: real renders in real worker processes."""

from __future__ import annotations

import io
import re
import struct
import zlib
from typing import Any
from xml.etree import ElementTree

import pytest
from PIL import Image, ImageDraw

from bot.jobs.model import Delivery, JobStatus
from tests.conftest import EaselFactory
from tests.emulator import Attachment, DiscordEmulator, Interaction
from tests.harness import Easel, eventually


def shapes_photo(width: int = 640, height: int = 480) -> bytes:
    """A picture with a few flat regions: a sky, a sun, a hill, a house."""
    image = Image.new("RGB", (width, height), (120, 170, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.65, height * 0.08, width * 0.85, height * 0.35), fill=(250, 210, 60))
    draw.rectangle((0, height * 0.6, width, height), fill=(70, 150, 70))
    draw.rectangle((width * 0.2, height * 0.4, width * 0.45, height * 0.75), fill=(190, 80, 60))
    draw.polygon(
        [(width * 0.18, height * 0.4), (width * 0.325, height * 0.25), (width * 0.47, height * 0.4)], fill=(90, 50, 40)
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def photo(data: bytes | None = None, name: str = "photo.jpg") -> dict[str, Attachment]:
    return {"image": Attachment(data if data is not None else shapes_photo(), name, "image/jpeg")}


async def job_of(ix: Interaction) -> str:
    await ix.response()
    message = await ix.wait_original(lambda m: "job `" in m["content"], timeout=10)
    return str(message["content"].split("job `")[1].split("`")[0])


async def result_of(ix: Interaction, job_id: str) -> dict[str, Any]:
    return await ix.wait_followup(
        lambda m: bool(m.get("embeds")) and job_id in m["embeds"][0]["footer"]["text"], timeout=90
    )


async def final(easel: Easel, job_id: str) -> Any:
    async def ended() -> Any:
        job = await easel.bot.jobs.store.get(job_id)
        return job if job is not None and job.status.final and job.delivery is not Delivery.PENDING else None

    return await eventually(ended, within=90)


def open_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.fixture
async def easel(easel_factory: EaselFactory) -> Easel:
    return await easel_factory(local_workers=1, local_job_timeout_seconds=60)


async def test_a_coloring_page_with_no_paid_studio(emulator: DiscordEmulator, easel: Easel) -> None:
    member = emulator.add_member("kid")
    ix = await emulator.invoke("coloring photo", {"style": "bold"}, user=member, attachments=photo())
    job_id = await job_of(ix)
    assert "free" in (ix.original or {}).get("content", "")
    result = await result_of(ix, job_id)
    (page,) = result["attachments"]
    image = open_png(emulator.file_bytes(page))
    assert image.mode in ("1", "L", "RGB") and image.width > 1000, "a printable page"
    pdf = next(r for r in await easel.bot.jobs.store.results(job_id) if r.label == "pdf")
    assert easel.bot.jobs.files.resolve(pdf.path).read_bytes().startswith(b"%PDF")
    job = await final(easel, job_id)
    assert (job.status, job.provider, job.credits) == (JobStatus.SUCCEEDED, "local", 0)


async def test_paint_by_numbers_files_are_real_and_numbered_like_the_legend(
    emulator: DiscordEmulator, easel: Easel
) -> None:
    member = emulator.add_member("painter")
    ix = await emulator.invoke("paint-by-numbers", {"colors": 8}, user=member, attachments=photo())
    job_id = await job_of(ix)
    result = await result_of(ix, job_id)
    for attachment in result["attachments"]:
        open_png(emulator.file_bytes(attachment))  # template, preview, legend: all real PNGs
    assert len(result["attachments"]) == 3
    svg_press = await emulator.press_button(result, f"ej:mp-file:{job_id}:svg", user=member)
    await svg_press.response()
    svg_message = await svg_press.wait_original(lambda m: bool(m["attachments"]), timeout=10)
    svg = emulator.file_bytes(svg_message["attachments"][0])
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own output, parsed to check it
    numbers = {int(t.text) for t in root.iter() if t.tag.endswith("text") and t.text and t.text.strip().isdigit()}
    legend = re.findall(r"`\s*(\d+)`", result["content"])
    assert numbers, "the template has numbers"
    assert numbers == {int(n) for n in legend} == set(range(1, max(numbers) + 1)), "numbers 1..N, as in the legend"
    pdf = next(r for r in await easel.bot.jobs.store.results(job_id) if r.label == "pdf")
    assert easel.bot.jobs.files.resolve(pdf.path).read_bytes().startswith(b"%PDF")


async def test_upscale_and_a_filter_from_easels_studio(emulator: DiscordEmulator, easel: Easel) -> None:
    member = emulator.add_member("editor")
    small = shapes_photo(160, 120)
    ix = await emulator.invoke("upscale", {"factor": 2}, user=member, attachments=photo(small))
    job_id = await job_of(ix)
    upscaled = open_png(emulator.file_bytes((await result_of(ix, job_id))["attachments"][0]))
    assert upscaled.size == (320, 240)
    ix = await emulator.invoke("ai-filter", {"filter": "pencil"}, user=member, attachments=photo(small))
    job_id = await job_of(ix)
    filtered = open_png(emulator.file_bytes((await result_of(ix, job_id))["attachments"][0]))
    assert filtered.size == (160, 120)
    refused = await emulator.invoke("ai-filter", {"filter": "glitter"}, user=member, attachments=photo(small))
    await refused.response()
    answer = await refused.wait_original(lambda m: bool(m["content"]), timeout=10)
    assert "has no filter" in answer["content"] and "pencil" in answer["content"]


async def test_a_job_over_its_time_limit_is_refunded_and_the_studio_keeps_working(
    emulator: DiscordEmulator, easel_factory: EaselFactory
) -> None:
    easel = await easel_factory(local_workers=1, local_job_timeout_seconds=0.05, quota_costs={"local_pbn": 2})
    member = emulator.add_member("slow")
    ix = await emulator.invoke("paint-by-numbers", {}, user=member, attachments=photo(shapes_photo(1600, 1200)))
    job_id = await job_of(ix)
    notice = await ix.wait_followup(timeout=60)
    assert "longer than" in notice["content"]
    assert "2 credits went back" in notice["content"]
    assert (await final(easel, job_id)).status is JobStatus.FAILED
    await easel.restart(local_job_timeout_seconds=60)
    ix = await emulator.invoke("upscale", {"factor": 2}, user=member, attachments=photo(shapes_photo(80, 60)))
    job_id = await job_of(ix)
    await result_of(ix, job_id)


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge picture (a decompression bomb): tiny on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


async def test_a_decompression_bomb_is_refused_and_a_big_photo_is_handled(
    emulator: DiscordEmulator, easel: Easel
) -> None:
    member = emulator.add_member("bomber")
    ix = await emulator.invoke(
        "coloring photo",
        {},
        user=member,
        attachments={"image": Attachment(bomb_png(60000, 60000), "b.png", "image/png")},
    )
    await ix.response()
    answer = await ix.wait_original(lambda m: bool(m["content"]), timeout=10)
    assert "too large" in answer["content"] or "megapixel" in answer["content"]
    rows = await easel.bot.db.fetchall("SELECT COUNT(*) FROM jobs")
    assert rows[0][0] == 0, "refused before any job"
    big = Image.new("RGB", (6000, 4000), (200, 120, 40))
    ImageDraw.Draw(big).ellipse((1500, 800, 4500, 3200), fill=(40, 90, 200))
    out = io.BytesIO()
    big.save(out, "JPEG", quality=85)
    ix = await emulator.invoke("paint-by-numbers", {"colors": 7}, user=member, attachments=photo(out.getvalue()))
    job_id = await job_of(ix)
    await result_of(ix, job_id)
    assert (await final(easel, job_id)).status is JobStatus.SUCCEEDED


async def test_a_crash_mid_render_refunds_the_job_and_says_so(
    emulator: DiscordEmulator, easel_factory: EaselFactory
) -> None:
    easel = await easel_factory(local_workers=1, local_job_timeout_seconds=60, quota_costs={"local_pbn": 3})
    member = emulator.add_member("restarter")
    big = shapes_photo(3000, 2200)
    ix = await emulator.invoke(
        "paint-by-numbers", {"colors": 40, "detail": "high"}, user=member, attachments=photo(big)
    )
    job_id = await job_of(ix)

    async def rendering() -> bool:
        job = await easel.bot.jobs.store.get(job_id)
        return job is not None and job.status is JobStatus.SUBMITTING

    await eventually(rendering, within=30)
    # A crash, not a graceful stop (which lets a render finish): the step is cut off mid-render.
    await easel.bot.jobs.scheduler.stop(grace=0)
    await easel.restart()  # the worker dies with the bot; the render is lost, never half-delivered
    job = await final(easel, job_id)
    assert job.status is JobStatus.FAILED
    rows = await easel.bot.db.fetchall("SELECT kind FROM quota_ledger WHERE job_id = ? ORDER BY id", (job_id,))
    assert [r["kind"] for r in rows] == ["reserve", "refund"]
    notice = await ix.wait_followup(timeout=30)
    assert "restarted" in notice["content"] and "3 credits went back" in notice["content"]
