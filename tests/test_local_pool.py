"""The local studio's worker pool, with real worker processes running the renderers of tests/ext/local_dummy."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bot.providers.local.pool import (
    Cancelled,
    PoolClosed,
    RendererBug,
    RenderFailed,
    WorkerCrashed,
    WorkerOutOfMemory,
    WorkerPool,
    WorkerTimeout,
    default_workers,
)

DUMMY = "tests.ext.local_dummy"
LONG = 60.0  # a time limit no healthy test job comes near


def png(width: int = 40, height: int = 30, colour: tuple[int, int, int] = (200, 30, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def children() -> set[int]:
    """Processes whose parent is this one, zombies included (read from /proc: psutil is not installed)."""
    mine = os.getpid()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == mine:
            found.add(int(entry.name))
    return found


def exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def until(check: Callable[[], bool]) -> None:
    """Wait for something another process does (a file appears): there is no event to await."""
    async with asyncio.timeout(LONG):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


@pytest.fixture
async def make_pool() -> AsyncIterator[Callable[..., WorkerPool]]:
    before = children()
    pools: list[WorkerPool] = []

    def make(workers: int = 1, memory_mb: int = 512, idle_s: float = 300) -> WorkerPool:
        pools.append(WorkerPool(workers=workers, memory_mb=memory_mb, idle_s=idle_s))
        return pools[-1]

    yield make
    for pool in pools:
        await pool.close()
    assert children() - before == set(), "a worker process was left behind"


async def invert(pool: WorkerPool, job_id: str = "ok") -> dict[str, Any]:
    rendered = await pool.run(job_id, f"{DUMMY}:render_invert", png(), {}, timeout_s=LONG)
    assert Image.open(io.BytesIO(rendered.files[0].data)).getpixel((0, 0)) == (55, 225, 245)
    return rendered.meta


async def test_result_comes_back_from_a_single_threaded_capped_worker(
    make_pool: Callable[..., WorkerPool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "secret-token")
    monkeypatch.setenv("MIMPI_API_KEY", "secret-key")
    pool = make_pool()
    rendered = await pool.run("j1", f"{DUMMY}:render_invert", png(40, 30), {"size": 3}, timeout_s=LONG)
    image, note = rendered.files
    decoded = Image.open(io.BytesIO(image.data))
    assert decoded.size == (40, 30)
    assert decoded.getpixel((5, 5)) == (55, 225, 245)  # the negative of (200, 30, 10)
    assert (image.filename, image.kind, image.send) == ("negative.png", "image", True)
    assert (note.kind, note.label, note.send, note.data) == ("file", "note", False, b"inverted 40x30")
    assert rendered.text == "inverted"
    meta = rendered.meta
    assert meta["pid"] != os.getpid() and meta["pid"] in pool.worker_pids()
    assert meta["params"] == {"size": 3}
    assert (meta["omp_threads"], meta["openblas_threads"], meta["cv2_threads"]) == ("1", "1", 1)
    assert meta["memory_limited"] is True
    assert "PATH" in meta["env"]
    assert "DISCORD_TOKEN" not in meta["env"] and "MIMPI_API_KEY" not in meta["env"], "secrets leaked to a worker"
    assert (pool.active, pool.queued) == (0, 0)


async def test_large_input_and_result_arrive_whole(
    make_pool: Callable[..., WorkerPool], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "bot.providers.local.pool")
    pool = make_pool()
    small = await pool.run("small", f"{DUMMY}:render_big", b"", {"mb": 1}, timeout_s=LONG)
    assert len(small.files[0].data) == 1 << 20
    data = np.random.default_rng(7).integers(0, 256, 10 << 20, np.uint8).tobytes()
    rendered = await pool.run("big", f"{DUMMY}:render_big", data, {"mb": 50, "seed": 3}, timeout_s=LONG)
    (blob,) = rendered.files
    assert len(blob.data) == 50 << 20
    assert hashlib.sha256(blob.data).hexdigest() == rendered.meta["sha256"]
    assert rendered.meta["input_sha256"] == hashlib.sha256(data).hexdigest()
    # Each job's own peak memory is logged, for tuning the cap: 50 MB random + its bytes copy, not the baseline.
    peaks = [float(r.getMessage().rsplit(" ", 2)[1]) for r in caplog.records if "peak memory" in r.getMessage()]
    assert len(peaks) == 2 and peaks[1] >= 100 and peaks[0] < peaks[1] - 90


async def test_jobs_beyond_the_workers_wait_in_fifo_order(make_pool: Callable[..., WorkerPool], tmp_path: Path) -> None:
    pool = make_pool(workers=1)
    gate, order = tmp_path / "gate", tmp_path / "order"
    finished: list[str] = []

    async def job(tag: str) -> None:
        params = {"gate": str(gate), "started": str(tmp_path / tag), "log": str(order), "tag": tag, "seconds": 120}
        rendered = await pool.run(tag, f"{DUMMY}:render_wait", b"", params, timeout_s=LONG * 3)
        (tmp_path / f"{tag}.meta").write_text(json.dumps(rendered.meta))
        finished.append(tag)

    first = asyncio.create_task(job("first"))
    await until((tmp_path / "first").exists)
    tasks = [first]
    for tag in ("second", "third", "fourth", "fifth"):
        tasks.append(asyncio.create_task(job(tag)))
        await until(lambda tag=tag: pool.position(tag) is not None)  # type: ignore[misc]
    assert (pool.active, pool.queued) == (1, 4)
    assert [pool.position(t) for t in ("first", "second", "third", "fourth", "fifth")] == [0, 1, 2, 3, 4]
    # Only this loop can open the gate: had waiting on the worker blocked it, the first job would have run out
    # its `seconds` instead.
    gate.touch()
    await asyncio.gather(*tasks)
    assert json.loads((tmp_path / "first.meta").read_text())["gate_opened"] is True
    expected = ["first", "second", "third", "fourth", "fifth"]
    assert finished == expected
    assert order.read_text().split() == expected  # the order the worker ran them in, too


async def test_a_job_past_its_time_limit_is_killed_and_the_pool_keeps_serving(
    make_pool: Callable[..., WorkerPool], tmp_path: Path
) -> None:
    pool = make_pool(workers=1)
    started = tmp_path / "started"
    with pytest.raises(WorkerTimeout) as caught:
        await pool.run("slow", f"{DUMMY}:render_wait", b"", {"started": str(started), "seconds": 600}, timeout_s=1.5)
    assert caught.value.timeout_s == 1.5
    assert not exists(int(started.read_text())), "the timed-out worker is still there"
    meta = await invert(pool, "next")
    assert meta["pid"] != int(started.read_text())
    assert pool.started_workers == 2


async def test_kill_stops_a_running_job_and_frees_its_worker(
    make_pool: Callable[..., WorkerPool], tmp_path: Path
) -> None:
    pool = make_pool(workers=1)
    started = tmp_path / "started"
    params = {"started": str(started), "seconds": 600}
    running = asyncio.create_task(pool.run("victim", f"{DUMMY}:render_wait", b"", params, timeout_s=LONG))
    await until(started.exists)
    waiting = asyncio.create_task(pool.run("after", f"{DUMMY}:render_invert", png(), {}, timeout_s=LONG))
    await until(lambda: pool.queued == 1)
    assert await pool.kill("victim") is True
    assert not exists(int(started.read_text()))
    with pytest.raises(Cancelled):
        await running
    # The freed slot went to the waiting job, in a fresh worker.
    rendered = await waiting
    assert rendered.meta["pid"] != int(started.read_text())
    assert await pool.kill("victim") is False
    assert await pool.kill("never-seen") is False


async def test_kill_takes_a_waiting_job_out_of_the_queue(make_pool: Callable[..., WorkerPool], tmp_path: Path) -> None:
    pool = make_pool(workers=1)
    gate, started = tmp_path / "gate", tmp_path / "started"
    params = {"gate": str(gate), "started": str(started)}
    running = asyncio.create_task(pool.run("running", f"{DUMMY}:render_wait", b"", params, timeout_s=LONG))
    await until(started.exists)
    queued = asyncio.create_task(pool.run("queued", f"{DUMMY}:render_invert", png(), {}, timeout_s=LONG))
    await until(lambda: pool.queued == 1)
    assert await pool.kill("queued") is True
    with pytest.raises(Cancelled):
        await queued
    assert (pool.active, pool.queued) == (1, 0)
    gate.touch()
    await running
    assert pool.started_workers == 1  # the running job's worker was never touched


async def test_a_cancelled_caller_takes_its_job_down_with_it(
    make_pool: Callable[..., WorkerPool], tmp_path: Path
) -> None:
    """asyncio cancellation (e.g. the engine stopping mid-submit) must not leave a worker rendering for nobody."""
    pool = make_pool(workers=1)
    started = tmp_path / "started"
    params = {"started": str(started), "seconds": 600}
    running = asyncio.create_task(pool.run("running", f"{DUMMY}:render_wait", b"", params, timeout_s=LONG))
    await until(started.exists)
    queued = asyncio.create_task(pool.run("queued", f"{DUMMY}:render_invert", png(), {}, timeout_s=LONG))
    await until(lambda: pool.queued == 1)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert (pool.active, pool.queued) == (1, 0)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert not exists(int(started.read_text()))
    assert (pool.active, pool.queued) == (0, 0)
    await invert(pool, "next")


async def test_the_memory_hog_is_stopped_and_the_pool_keeps_serving(make_pool: Callable[..., WorkerPool]) -> None:
    pool = make_pool(workers=1, memory_mb=256)
    with pytest.raises(WorkerOutOfMemory):
        await pool.run("hog", f"{DUMMY}:render_hog", b"", {"mb": 4096}, timeout_s=LONG)
    await invert(pool)
    assert pool.started_workers == 2  # a worker that ran out of memory is not trusted with another job


async def test_a_crashing_worker_is_replaced(make_pool: Callable[..., WorkerPool]) -> None:
    pool = make_pool(workers=1)
    first = (await invert(pool, "before"))["pid"]
    with pytest.raises(WorkerCrashed) as segfault:
        await pool.run("segfault", f"{DUMMY}:render_crash", b"", {"how": "segfault"}, timeout_s=LONG)
    assert segfault.value.signal == signal.SIGSEGV
    assert "SIGSEGV" in str(segfault.value)
    assert not exists(first)
    second = (await invert(pool, "after segfault"))["pid"]
    assert second != first
    with pytest.raises(WorkerCrashed) as exited:
        await pool.run("exit", f"{DUMMY}:render_crash", b"", {"how": "exit"}, timeout_s=LONG)
    assert (exited.value.returncode, exited.value.signal) == (3, None)
    assert not exists(second)
    assert (await invert(pool, "after exit"))["pid"] not in (first, second)
    assert pool.started_workers == 3


async def test_a_refusal_keeps_the_worker_and_a_bug_carries_its_traceback(
    make_pool: Callable[..., WorkerPool],
) -> None:
    pool = make_pool(workers=1)
    first = (await invert(pool, "before"))["pid"]
    with pytest.raises(RenderFailed) as refused:
        await pool.run("plain", f"{DUMMY}:render_refuse", b"", {}, timeout_s=LONG)
    assert refused.value.message == "that picture is too plain to colour in"
    assert (await invert(pool, "again"))["pid"] == first
    with pytest.raises(RenderFailed, match="not an image"):
        await pool.run("junk", f"{DUMMY}:render_invert", b"not a picture", {}, timeout_s=LONG)
    with pytest.raises(RendererBug, match="cannot load renderer"):
        await pool.run("nowhere", f"{DUMMY}:no_such_renderer", b"", {}, timeout_s=LONG)
    with pytest.raises(RendererBug) as bug:
        await pool.run("bug", f"{DUMMY}:render_bug", b"", {"missing": "key"}, timeout_s=LONG)
    assert "KeyError" in str(bug.value) and "render_bug" in str(bug.value)
    assert pool.started_workers == 1  # refusals and a missing renderer leave the worker fit to serve
    await invert(pool, "after the bug")
    assert pool.started_workers == 2  # but after a bug, the worker's state is not trusted


async def test_close_kills_everything_and_leaves_no_child(make_pool: Callable[..., WorkerPool], tmp_path: Path) -> None:
    before = children()
    pool = WorkerPool(workers=2, memory_mb=512)
    params = {"seconds": 600}
    running = [
        asyncio.create_task(
            pool.run(tag, f"{DUMMY}:render_wait", b"", {**params, "started": str(tmp_path / tag)}, timeout_s=LONG)
        )
        for tag in ("a", "b")
    ]
    # Both started before either could finish: two jobs render side by side, in two processes.
    await until(lambda: (tmp_path / "a").exists() and (tmp_path / "b").exists())
    assert (tmp_path / "a").read_text() != (tmp_path / "b").read_text()
    queued = asyncio.create_task(pool.run("c", f"{DUMMY}:render_invert", png(), {}, timeout_s=LONG))
    await until(lambda: pool.queued == 1)
    assert len(children() - before) == 2
    await pool.close()
    assert children() - before == set()
    for task in running:
        with pytest.raises(PoolClosed):
            await task
    with pytest.raises(PoolClosed):
        await queued
    with pytest.raises(PoolClosed):
        await pool.run("late", f"{DUMMY}:render_invert", png(), {}, timeout_s=LONG)


async def test_closing_while_a_worker_starts_leaves_no_child(make_pool: Callable[..., WorkerPool]) -> None:
    before = children()
    pool = WorkerPool(workers=1, memory_mb=512)
    job = asyncio.create_task(pool.run("early", f"{DUMMY}:render_invert", png(), {}, timeout_s=LONG))
    await until(lambda: bool(pool.worker_pids()))  # spawned, probably still importing numpy
    await pool.close()
    with pytest.raises((Cancelled, PoolClosed)):
        await job
    assert children() - before == set()


async def test_idle_workers_retire_and_come_back_on_demand(make_pool: Callable[..., WorkerPool]) -> None:
    pool = make_pool(workers=1, idle_s=0.2)
    first = (await invert(pool, "one"))["pid"]
    await until(lambda: not pool.worker_pids())
    assert not exists(first)
    assert (await invert(pool, "two"))["pid"] != first


def test_default_workers_leaves_a_core_for_the_bot() -> None:
    assert default_workers() == max(1, len(os.sched_getaffinity(0)) - 1)
    with pytest.raises(ValueError, match="at least one"):
        WorkerPool(workers=0)


async def test_workers_die_with_the_bot_even_when_it_is_sigkilled(tmp_path: Path) -> None:
    started = tmp_path / "started"
    script = f"""
import asyncio
from bot.providers.local.pool import WorkerPool
pool = WorkerPool(workers=1)
params = {{"started": {str(started)!r}, "seconds": 600}}
asyncio.run(pool.run("held", "{DUMMY}:render_wait", b"", params, timeout_s=600))
"""
    bot = await asyncio.create_subprocess_exec(sys.executable, "-c", script, cwd=Path(__file__).parent.parent)
    try:
        await until(started.exists)
        worker = int(started.read_text())
        assert exists(worker)
    finally:
        bot.kill()
        await bot.wait()
    await until(lambda: not exists(worker))  # SIGKILLed with its parent, and reaped by init
