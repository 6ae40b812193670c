"""The chaos bench in small (bench/chaos.py): its fault switches do what they say, its checks catch what they
claim to, and a short scenario (15 jobs, a SIGKILL, a few faults) keeps every invariant."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import chaos_checks as checks
from bench.chaos_scenario import ChaosConfig, run_chaos
from bot.quotas import QuotaLedger
from bot.storage.database import Database
from tests.emulator import DiscordEmulator
from tests.emulator.faults import RestFaults
from tests.fakes.studio import Accepted, FakeStudio, RandomFaults
from tests.harness import eventually

# The emulator, with every REST request faulted in one way


@pytest.fixture
async def faulty_emulator() -> AsyncIterator[tuple[DiscordEmulator, RestFaults]]:
    emu = DiscordEmulator()
    faults = RestFaults(1.0, random.Random(7), kinds=("500",))
    emu.middlewares.append(faults.middleware)
    await emu.start()
    yield emu, faults
    await emu.stop()


async def post_message(emu: DiscordEmulator, content: str) -> httpx.Response:
    async with httpx.AsyncClient(headers={"Authorization": f"Bot {emu.bot_token}"}) as client:
        return await client.post(f"{emu.api_base}/channels/{emu.channel_id}/messages", json={"content": content})


def posted(emu: DiscordEmulator, content: str) -> int:
    return sum(1 for m in emu.messages(emu.channel_id) if m["content"] == content)


async def test_discord_faults_500_drop_and_lost(faulty_emulator: tuple[DiscordEmulator, RestFaults]) -> None:
    emu, faults = faulty_emulator
    answer = await post_message(emu, "five hundred")
    assert answer.status_code == 500
    assert posted(emu, "five hundred") == 0
    faults.kinds = ("drop",)
    with pytest.raises(httpx.RemoteProtocolError):
        await post_message(emu, "dropped")
    assert posted(emu, "dropped") == 0, "a dropped request never reached Discord"
    faults.kinds = ("lost",)
    with pytest.raises(httpx.RemoteProtocolError):
        await post_message(emu, "lost")
    assert posted(emu, "lost") == 1, "a lost answer: Discord did post it"
    assert faults.injected == {"message 500": 1, "message drop": 1, "message lost": 1}


async def test_discord_faults_spare_the_login_handshake(faulty_emulator: tuple[DiscordEmulator, RestFaults]) -> None:
    emu, faults = faulty_emulator
    async with httpx.AsyncClient(headers={"Authorization": f"Bot {emu.bot_token}"}) as client:
        for path in ("/users/@me", "/gateway/bot", "/oauth2/applications/@me"):
            assert (await client.get(emu.api_base + path)).status_code == 200
    assert not faults.injected


# The studio, with every request faulted in one way


@pytest.fixture
async def faulty_studio() -> AsyncIterator[FakeStudio]:
    studio = await FakeStudio(chaos=RandomFaults(1.0, random.Random(3), kinds=("drop",), slow_s=0.5)).start()
    yield studio
    await studio.stop()


async def create(studio: FakeStudio, prompt: str, read_timeout: float = 5.0) -> httpx.Response:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {studio.token}"}, timeout=read_timeout) as client:
        return await client.post(f"{studio.base_url}/jobs", json={"prompt": prompt})


async def test_studio_faults_drop_slow_429_and_garbage(faulty_studio: FakeStudio) -> None:
    studio = faulty_studio
    assert studio.chaos is not None
    with pytest.raises(httpx.RemoteProtocolError):
        await create(studio, "chaos-1 dropped")
    assert studio.accepted == [], "a dropped create was never taken"
    studio.chaos.kinds = ("slow",)
    with pytest.raises(httpx.ReadTimeout):
        await create(studio, "chaos-2 slow", read_timeout=0.2)

    async def taken() -> list[Accepted]:
        return studio.accepted

    # Answered too late for the client, but the studio took it (and bills it): the case "submitted twice" is about.
    assert [a.prompt for a in await eventually(taken)] == ["chaos-2 slow"]
    studio.chaos.kinds = ("429",)
    answer = await create(studio, "chaos-3 limited")
    assert answer.status_code == 429
    assert float(answer.headers["Retry-After"]) > 0
    studio.chaos.kinds = ("garbage",)
    answer = await create(studio, "chaos-4 garbled")
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()
    assert studio.chaos.injected == {"create drop": 1, "create slow": 1, "create 429": 1, "create garbage": 1}


# The checks catch what they claim to


def job(
    job_id: str, tag: int, status: str = "succeeded", credits: int = 1, delivery: str = "delivered"
) -> checks.JobRow:
    return checks.JobRow(job_id, status, credits, "studio_poll", tag, delivery, 100.0)


def bot_message(content: str = "", footer: str | None = None) -> dict[str, Any]:
    embeds = [{"footer": {"text": footer}}] if footer else []
    return {"content": content, "embeds": embeds}


def test_delivered_twice_counts_per_job_and_part() -> None:
    jobs = [job("aaaa2222", 1), job("bbbb3333", 2), job("cccc4444", 3)]
    messages = [
        bot_message("<@1> your ai image is ready.", footer="Job aaaa2222 · studio_poll"),
        bot_message("<@1> your ai image is ready.", footer="Job aaaa2222 · studio_poll"),  # again
        bot_message("-# job `bbbb3333` · part 1 of 2"),
        bot_message("-# job `bbbb3333` · part 2 of 2", footer="Job bbbb3333 · studio_poll"),  # parts: once each
        bot_message("<@1> ❌ Your ai image (job `cccc4444`) failed: no"),
    ]
    found = checks.check_delivered_twice(jobs, messages)
    assert (found.count, found.examples) == (1, ["aaaa2222 result x2"])


def test_stuck_and_undelivered_read_the_final_state() -> None:
    jobs = [job("run", 1, "running", delivery="none"), job("quiet", 2, "failed", delivery="pending"), job("ok", 3)]
    assert checks.check_stuck(jobs).examples == ["run studio_poll running"]
    assert checks.check_undelivered(jobs).examples == ["quiet studio_poll failed"]


def test_submitted_twice_counts_accepted_creates_per_job() -> None:
    jobs = [job("aaaa2222", 1), job("bbbb3333", 2)]
    accepted = [Accepted("jobs", "1", "chaos-1 x", 1.0), Accepted("jobs", "2", "chaos-1 x", 2.0)]
    accepted.append(Accepted("render", "", "chaos-2 y", 3.0))
    found = checks.check_submitted_twice(jobs, accepted)
    assert (found.count, found.examples) == (1, ["aaaa2222 studio_poll x2"])


def test_slot_overlap_counts_jobs_at_the_studio_at_once() -> None:
    assert checks.max_overlap([(0, 2), (1, 3), (2, 4)]) == 2, "one ending as another starts is not an overlap"
    assert checks.max_overlap([(0, 5), (1, 2), (1.5, 3), (4, 4)]) == 3


async def test_settlement_and_balance_checks_on_a_real_ledger(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "easel.db")
    ledger = QuotaLedger(db)
    common: dict[str, Any] = {"guild_id": 10, "user_id": 20, "role_ids": [], "feature": "ai_image", "units": 1}
    for job_id in ("paid", "refunded", "open", "both"):
        await ledger.reserve(job_id=job_id, **common)
    await ledger.commit("paid")
    await ledger.refund("refunded", "failed: failed")
    await ledger.commit("both")
    await db.close()
    path = tmp_path / "easel.db"
    jobs = [job("paid", 1), job("refunded", 2, "failed"), job("open", 3, "cancelled"), job("both", 4, "failed")]
    both, neither, wrong = checks.check_settlements(path, jobs)
    assert (both.count, neither.examples, wrong.examples) == (0, ["open cancelled"], ["both failed commit"])
    assert checks.check_balances(path).count == 0
    with checks.reading(path) as conn:
        assert conn.execute("SELECT period_used FROM quota_members").fetchone()[0] == 3
    with sqlite3.connect(path) as conn:  # a running balance the entries do not explain
        conn.execute("UPDATE quota_members SET period_used = period_used + 1")
    assert checks.check_balances(path).count == 1


# The scenario, small


async def test_chaos_smoke_keeps_every_invariant(tmp_path: Path) -> None:
    config = ChaosConfig(
        jobs=15,
        restarts=1,
        seed=5,
        fault_rate=0.05,
        members=6,
        spread_s=4.0,
        deadline_s=12.0,
        final_wait_s=15.0,
        keep_dir=tmp_path / "chaos",
    )
    report = await run_chaos(config)
    assert report.restarts == 1
    assert report.jobs >= 12, f"only {report.jobs} of 15 commands made jobs"
    assert report.statuses["succeeded"] > 0
    assert report.violations == {}, "\n".join(f"{i.name}: {i.count} {i.examples}" for i in report.invariants)
