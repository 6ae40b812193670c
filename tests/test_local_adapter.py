"""The local studio's adapter over a real worker pool, with the test renderers of tests/ext/local_dummy."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.providers.base import ErrorKind, Finished, InputFile, InvalidInput, JobContext, ProviderError
from bot.providers.local.adapter import (
    DEFAULT_DEADLINE_S,
    LocalAdapter,
    LocalCancelled,
    LocalCrashed,
    LocalOutOfMemory,
    LocalTimedOut,
)
from bot.providers.local.features import DEFAULT_COSTS, FEATURES, RENDERERS
from bot.providers.local.pool import RendererBug, WorkerPool, default_workers
from bot.settings import Settings

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
