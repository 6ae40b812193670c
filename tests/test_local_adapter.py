"""The local studio's adapter over a real worker pool, with the test renderers of tests/ext/local_dummy."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import httpx
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from bot.app import EaselBot
from bot.inputs import read_image
from bot.jobs.access import Actor
from bot.jobs.engine import FreeLedger, ProviderLimits
from bot.jobs.model import JobStatus
from bot.providers.base import ErrorKind, Finished, InputFile, InvalidInput, JobContext, ProviderError
from bot.providers.local.adapter import (
    DEFAULT_DEADLINE_S,
    LocalAdapter,
    LocalCancelled,
    LocalCrashed,
    LocalOutOfMemory,
    LocalTimedOut,
    pool_size,
)
from bot.providers.local.features import DEFAULT_COSTS, FEATURES, RENDERERS
from bot.providers.local.pool import RendererBug, WorkerPool, default_workers
from bot.settings import Settings
from bot.tree import defer
from tests.conftest import EaselFactory
from tests.emulator import Attachment, DiscordEmulator, Interaction
from tests.harness import Easel, eventually

DUMMY = "tests.ext.local_dummy"
RENDERERS_FOR_TESTS = {
    "local_coloring": f"{DUMMY}:render_invert",
    "local_refuse": f"{DUMMY}:render_refuse",
    "local_wait": f"{DUMMY}:render_wait",
    "local_hog": f"{DUMMY}:render_hog",
    "local_crash": f"{DUMMY}:render_crash",
    "local_bug": f"{DUMMY}:render_bug",
}


@pytest.fixture
async def adapter() -> AsyncIterator[LocalAdapter]:
    local = LocalAdapter(WorkerPool(workers=1, memory_mb=256), renderers=RENDERERS_FOR_TESTS, timeout_s=20)
    yield local
    await local.close()


def photo(tmp_path: Path, colour: tuple[int, int, int] = (10, 120, 250)) -> InputFile:
    path = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), colour).save(path, format="PNG")
    return InputFile("image", path, "photo.png", "image/png", path.stat().st_size)


def process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def job(feature: str, inputs: list[InputFile], job_id: str = "job1", **params: Any) -> JobContext:
    return JobContext(job_id, feature, params, {}, inputs, None, 1)


async def test_submit_finishes_with_the_rendered_files(adapter: LocalAdapter, tmp_path: Path) -> None:
    outcome = await adapter.submit(job("local_coloring", [photo(tmp_path)], style="bold"))
    assert isinstance(outcome, Finished)
    image, note = outcome.files
    assert (image.filename, image.kind, image.send, image.url) == ("negative.png", "image", True, None)
    assert image.data is not None
    decoded = Image.open(io.BytesIO(image.data))
    assert decoded.size == (64, 48) and decoded.getpixel((0, 0)) == (245, 135, 5)
    assert (note.kind, note.label, note.send, note.data) == ("file", "note", False, b"inverted 64x48")
    assert outcome.text == "inverted"
    assert outcome.meta["params"] == {"style": "bold"}
    assert outcome.meta["width"] == 64


async def test_the_image_input_is_found_by_name(adapter: LocalAdapter, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    other = photo(tmp_path / "other", (0, 0, 0))
    mask = InputFile("mask", other.path, "mask.png", "image/png", other.size)
    outcome = await adapter.submit(job("local_coloring", [mask, photo(tmp_path)]))
    assert isinstance(outcome, Finished) and outcome.files[0].data is not None
    assert Image.open(io.BytesIO(outcome.files[0].data)).getpixel((0, 0)) == (245, 135, 5)
    with pytest.raises(InvalidInput, match="one image"):
        await adapter.submit(job("local_coloring", []))


async def test_a_refusal_reaches_the_member_as_invalid_input(adapter: LocalAdapter, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        await adapter.submit(job("local_refuse", [photo(tmp_path)]))
    assert caught.value.message == "that picture is too plain to colour in"
    assert caught.value.kind is ErrorKind.INVALID_INPUT


async def test_worker_failures_become_clear_provider_errors(tmp_path: Path) -> None:
    local = LocalAdapter(WorkerPool(workers=1, memory_mb=256), renderers=RENDERERS_FOR_TESTS, timeout_s=1.5)
    try:
        with pytest.raises(LocalTimedOut, match=r"took longer than 1\.5 s and was stopped") as timed_out:
            await local.submit(job("local_wait", [photo(tmp_path)], seconds=600))
        with pytest.raises(LocalOutOfMemory, match="needed more memory than this studio allows") as hog:
            await local.submit(job("local_hog", [photo(tmp_path)], mb=4096))
        with pytest.raises(LocalCrashed, match="stopped unexpectedly") as crashed:
            await local.submit(job("local_crash", [photo(tmp_path)]))
        # All refunded failures with the detail shown (FAILED), none retried as transient.
        assert {e.value.kind for e in (timed_out, hog, crashed)} == {ErrorKind.FAILED}
        # A renderer bug is not a provider error: it reaches the engine's bug handler, with the traceback.
        with pytest.raises(RendererBug, match="KeyError"):
            await local.submit(job("local_bug", [photo(tmp_path)], missing="x"))
        with pytest.raises(ProviderError, match="cannot do local_nothing"):
            await local.submit(job("local_nothing", [photo(tmp_path)]))
        outcome = await local.submit(job("local_coloring", [photo(tmp_path)]))
        assert isinstance(outcome, Finished)
    finally:
        await local.close()


async def test_cancel_kills_the_running_job(adapter: LocalAdapter, tmp_path: Path) -> None:
    started = tmp_path / "started"
    context = job("local_wait", [photo(tmp_path)], "victim", started=str(started), seconds=600)
    submit = asyncio.create_task(adapter.submit(context))
    async with asyncio.timeout(60):
        while not started.exists():  # noqa: ASYNC110 - written by the worker process
            await asyncio.sleep(0.02)
    pid = int(started.read_text())
    assert await adapter.cancel(context) is True
    assert not process_exists(pid)
    with pytest.raises(LocalCancelled) as caught:
        await submit
    assert caught.value.kind is ErrorKind.CANCELLED
    assert await adapter.cancel(context) is False  # nothing left to stop
    assert isinstance(await adapter.submit(job("local_coloring", [photo(tmp_path)], "next")), Finished)


async def test_one_cpu_slot_group_sized_by_the_pool(adapter: LocalAdapter) -> None:
    assert {adapter.slot_group(f) for f in FEATURES} == {"cpu"}
    assert adapter.workers == 1
    assert adapter.deadline("local_pbn") == DEFAULT_DEADLINE_S
    assert adapter.name == "local"


class SettingsWithLocalFields(Settings):
    """The fields settings.py is to gain (see the report); until then the adapter reads them by name."""

    local_workers: int | None = 2
    local_job_timeout_seconds: float = 45
    local_job_memory_mb: int = 300


async def test_from_settings_reads_the_local_fields_with_defaults() -> None:
    async with httpx.AsyncClient() as client:
        plain = LocalAdapter.from_settings(Settings(_env_file=None), client)  # type: ignore[call-arg]
        built = LocalAdapter.from_settings(SettingsWithLocalFields(_env_file=None), client)  # type: ignore[call-arg]
    assert (plain.workers, plain.pool.memory_mb, plain.timeout_s) == (default_workers(), 1024, 120.0)
    assert plain.renderers == RENDERERS
    assert (built.workers, built.pool.memory_mb, built.timeout_s) == (2, 300, 45.0)
    assert pool_size(SettingsWithLocalFields(_env_file=None)) == 2  # type: ignore[call-arg]
    await plain.close()
    await built.close()


def test_features_map_to_their_renderers_free_of_charge() -> None:
    assert RENDERERS == {
        "local_coloring": "bot.providers.local.lineart:render_coloring",
        "local_pbn": "bot.providers.local.pbn:render_pbn",
        "local_upscale": "bot.providers.local.upscale:render_upscale",
        "local_filter": "bot.providers.local.filters:render_filter",
    }
    assert dict.fromkeys(RENDERERS, 0) == DEFAULT_COSTS


# --- end to end: the real engine and bot, through the Discord emulator -----------------------------------
# This module doubles as the test extension that starts local jobs (loaded by name below): the test renderers
# module stays free of discord imports, since every worker process imports it.


class LocalJobs(commands.Cog):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot

    @app_commands.command(name="local-test", description="Start a local studio job (tests only)")
    async def local_test(
        self,
        interaction: discord.Interaction[EaselBot],
        image: discord.Attachment,
        feature: str = "local_coloring",
        started: str | None = None,
        gate: str | None = None,
    ) -> None:
        await defer(interaction, ephemeral=True)
        upload = await read_image(image)
        params: dict[str, Any] = {"seconds": 600} | ({"started": started} if started else {})
        params |= {"gate": gate} if gate else {}
        await self.bot.jobs.create(interaction, feature=feature, provider="local", params=params, inputs=[upload])


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(LocalJobs(bot))


@pytest.fixture
async def local_easel(easel_factory: EaselFactory) -> AsyncIterator[tuple[Easel, LocalAdapter]]:
    adapter = LocalAdapter(WorkerPool(workers=1, memory_mb=512), renderers=RENDERERS_FOR_TESTS, timeout_s=60)
    fast = ProviderLimits(min_poll_s=0.02, max_poll_s=0.2, retry_base_s=0.01, max_active={"cpu": adapter.workers})
    easel = await easel_factory(
        adapters={"local": adapter},
        ledger=FreeLedger(),
        extra_extensions=(__name__,),
        provider_limits_override={"local": fast},
    )
    yield easel, adapter
    await adapter.close()


def png_attachment(colour: tuple[int, int, int] = (10, 120, 250)) -> dict[str, Attachment]:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, format="PNG")
    return {"image": Attachment(out.getvalue(), "photo.png", "image/png")}


async def job_of(ix: Interaction) -> str:
    await ix.response()
    message = await ix.wait_original(lambda m: "job `" in m["content"])
    return str(message["content"].split("job `")[1].split("`")[0])


async def test_a_local_job_is_rendered_and_delivered(
    emulator: DiscordEmulator, local_easel: tuple[Easel, LocalAdapter]
) -> None:
    easel, _ = local_easel
    member = emulator.add_member("lou")
    ix = await emulator.invoke("local-test", {}, user=member, attachments=png_attachment())
    job_id = await job_of(ix)
    posted = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=60)
    # The image is attached; the note (send=False) is kept for buttons, not posted.
    assert [a["filename"] for a in posted["attachments"]] == ["negative.png"]
    image = Image.open(io.BytesIO(emulator.file_bytes(posted["attachments"][0])))
    assert image.getpixel((0, 0)) == (245, 135, 5)
    done = await easel.bot.jobs.store.get(job_id)
    assert done is not None and done.status is JobStatus.SUCCEEDED and done.slot_group == "cpu"
    assert done.meta["width"] == 64
    results = await easel.bot.jobs.store.results(job_id)
    assert [(r.filename, r.kind, r.send, r.label) for r in results] == [
        ("negative.png", "image", True, None),
        ("note.txt", "file", False, "note"),
    ]


async def test_jobs_beyond_the_workers_queue_in_the_engine(
    emulator: DiscordEmulator, local_easel: tuple[Easel, LocalAdapter], tmp_path: Path
) -> None:
    easel, adapter = local_easel
    member = emulator.add_member("max")
    gate, started = tmp_path / "gate", tmp_path / "started"
    first = await emulator.invoke(
        "local-test",
        {"feature": "local_wait", "started": str(started), "gate": str(gate)},
        user=member,
        attachments=png_attachment(),
    )
    await job_of(first)
    await eventually(lambda: asyncio.sleep(0, started.exists()), within=60)
    second = await emulator.invoke("local-test", {}, user=member, attachments=png_attachment())
    second_id = await job_of(second)
    waiting = await easel.bot.jobs.store.get(second_id)
    assert waiting is not None and waiting.status is JobStatus.QUEUED  # held by the engine's "cpu" slot group
    assert adapter.pool.queued == 0
    gate.touch()
    await first.wait_followup(lambda m: bool(m["attachments"]), timeout=60)
    await second.wait_followup(lambda m: bool(m["attachments"]), timeout=60)


async def test_a_refused_image_is_explained_and_refunded(
    emulator: DiscordEmulator, local_easel: tuple[Easel, LocalAdapter]
) -> None:
    easel, _ = local_easel
    member = emulator.add_member("ned")
    ix = await emulator.invoke("local-test", {"feature": "local_refuse"}, user=member, attachments=png_attachment())
    job_id = await job_of(ix)
    told = await ix.wait_followup(lambda m: "too plain" in (m.get("content") or str(m.get("embeds"))), timeout=60)
    assert told
    failed = await easel.bot.jobs.store.get(job_id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.error is not None and "that picture is too plain to colour in" in failed.error


async def test_cancelling_a_rendering_job_kills_its_worker(
    emulator: DiscordEmulator, local_easel: tuple[Easel, LocalAdapter], tmp_path: Path
) -> None:
    easel, _ = local_easel
    member = emulator.add_member("ola")
    started = tmp_path / "started"
    ix = await emulator.invoke(
        "local-test", {"feature": "local_wait", "started": str(started)}, user=member, attachments=png_attachment()
    )
    job_id = await job_of(ix)
    await eventually(lambda: asyncio.sleep(0, started.exists()), within=60)
    await easel.bot.jobs.cancel(job_id, actor=Actor(user_id=member.id, guild_id=emulator.guild_id))
    pid = int(started.read_text())
    await eventually(lambda: asyncio.sleep(0, not process_exists(pid)), within=3)
