"""The job engine under concurrency and faults: each test here failed on the engine before this rework.

Real parts: the real bot through the Discord emulator, the fake studio over HTTP, the real SQLite file.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import discord
import httpx
import pytest

from bot.errors import NotFound
from bot.jobs.access import Actor
from bot.jobs.engine import ProviderLimits
from bot.jobs.files import FileStore
from bot.jobs.model import Delivery, JobStatus
from bot.providers.base import Adapter, Finished, JobContext, ResultFile, Submitted, Transient
from bot.providers.http import parse_retry_after
from bot.settings import Settings
from tests.conftest import EaselFactory
from tests.emulator import Attachment, DiscordEmulator
from tests.fakes import images
from tests.fakes.studio import FakeStudio
from tests.fakes.studio_adapters import CallbackStudio, PollStudio, SyncStudio
from tests.harness import Easel, eventually
from tests.test_jobs import FAST, run_job, start


@pytest.fixture
async def studio() -> Any:
    fake = await FakeStudio().start()
    yield fake
    await fake.stop()


async def final(easel: Easel, job_id: str, within: float = 10.0) -> Any:
    async def ended() -> Any:
        job = await easel.bot.jobs.store.get(job_id)
        return job if job is not None and job.status.final and job.delivery is not Delivery.PENDING else None

    return await eventually(ended, within=within)


async def ledger_kinds(easel: Easel, job_id: str) -> list[str]:
    rows = await easel.bot.db.fetchall("SELECT kind FROM quota_ledger WHERE job_id = ? ORDER BY id", (job_id,))
    return [r["kind"] for r in rows]


def at_studio(studio: FakeStudio) -> int:
    return sum(1 for j in studio.jobs.values() if j.status in ("queued", "running"))


async def start_with(
    easel_factory: EaselFactory,
    studio: FakeStudio,
    *,
    sync: type[Adapter] = SyncStudio,
    poll: type[Adapter] = PollStudio,
) -> Easel:
    """Easel with the test studio's three styles, one or two of them replaced by a variant under test."""

    def build(settings: Settings, client: httpx.AsyncClient) -> dict[str, Adapter]:
        return {
            "studio_sync": sync(client, studio.base_url, studio.token),
            "studio_poll": poll(client, studio.base_url, studio.token),
            "studio_cb": CallbackStudio(client, studio.base_url, studio.token),
        }

    return await easel_factory(
        adapter_factory=build,
        extra_extensions=("tests.ext.studio",),
        provider_limits_override=dict.fromkeys(("studio_sync", "studio_poll", "studio_cb"), FAST),
    )


# Slots: one atomic claim, in order


async def test_a_burst_never_exceeds_the_slot_limit_and_starts_jobs_in_order(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    limits = ProviderLimits(min_poll_s=0.02, max_poll_s=0.2, retry_base_s=0.01, max_active={"gpu": 1})
    await start(easel_factory, studio, limits=limits, adapter_kwargs={"slot": "gpu"})
    members = [emulator.add_member(f"burst{n}") for n in range(5)]
    interactions = await asyncio.gather(
        *(emulator.invoke("studio", {"prompt": f"p{n}", "style": "poll"}, user=m) for n, m in enumerate(members))
    )
    await asyncio.gather(*(ix.response() for ix in interactions))
    order: list[str] = []
    for _ in range(5):
        job = await emulator.wait_for(
            lambda: next((j for j in studio.jobs.values() if j.status in ("queued", "running")), None), timeout=10
        )
        await asyncio.sleep(0.3)  # give any extra submit the time to show itself
        assert at_studio(studio) == 1, "a provider with one slot never has two jobs"
        order.append(job.prompt)
        await studio.finish(job.id)
    created = sorted(interactions, key=lambda ix: ix.created_at)
    assert order == [f"p{members.index(ix.user)}" for ix in created], "queued jobs start in the order they came"


async def test_a_restart_with_many_queued_jobs_holds_the_limit(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    limits = ProviderLimits(min_poll_s=0.02, max_poll_s=0.2, retry_base_s=0.01, max_active={"gpu": 2})
    easel = await start(easel_factory, studio, limits=limits, adapter_kwargs={"slot": "gpu"})
    member = emulator.add_member("queue")
    await easel.bot.jobs.scheduler.stop()  # as if Easel died right after these jobs were queued
    for n in range(6):
        await run_job(emulator, member, style="poll", prompt=f"q{n}")
    assert studio.jobs == {}
    await easel.restart()
    await emulator.wait_for(lambda: len(studio.jobs) >= 2)
    await asyncio.sleep(0.5)
    assert len(studio.jobs) == 2, "after a restart, queued jobs still wait for a slot"
    await studio.finish("1")
    await emulator.wait_for(lambda: len(studio.jobs) == 3, timeout=10)
    await asyncio.sleep(0.3)
    assert at_studio(studio) == 2


# A step can never strand a job


async def test_a_connection_error_while_editing_the_status_does_not_strand_the_job(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_answer(*_: Any, **__: Any) -> Any:
        raise aiohttp.ClientOSError(104, "Connection reset by peer")

    monkeypatch.setattr(discord.Webhook, "edit_message", no_answer)
    easel = await start(easel_factory, studio)
    studio.polls_to_finish = 4
    ix, job_id = await run_job(emulator, emulator.add_member("edits"), style="poll")
    result = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    assert job_id in result["embeds"][0]["footer"]["text"]
    job = await final(easel, job_id)
    assert (job.status, job.delivery) == (JobStatus.SUCCEEDED, Delivery.DELIVERED)
    assert await ledger_kinds(easel, job_id) == ["reserve", "commit"]


async def test_a_crashing_step_is_retried_and_the_sweep_finds_lost_jobs(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    easel = await start(easel_factory, studio)
    easel.expect_errors = True
    real = FileStore.put_result
    failures = {"left": 2}

    async def disk_full(self: FileStore, *args: Any, **kwargs: Any) -> str:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(28, "No space left on device")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(FileStore, "put_result", disk_full)
    ix, job_id = await run_job(emulator, emulator.add_member("disk"), style="poll")
    await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=15)
    assert (await final(easel, job_id)).status is JobStatus.SUCCEEDED

    # A job the scheduler lost (as a bug would) is found by the sweep from the database.
    studio.auto_finish = False
    _ix, lost_id = await run_job(emulator, emulator.add_member("lost"), style="poll")
    await emulator.wait_for(lambda: len(studio.jobs) == 2)
    scheduler = easel.bot.jobs.scheduler
    await emulator.wait_for(lambda: not scheduler.is_running(lost_id))
    scheduler.unschedule(lost_id)  # between two steps, as a bug would
    await asyncio.sleep(0.2)
    assert not scheduler.is_scheduled(lost_id)
    studio.auto_finish = True
    assert await easel.bot.jobs.sweep() >= 1
    assert (await final(easel, lost_id)).status is JobStatus.SUCCEEDED


async def test_a_failed_queued_reply_still_runs_the_paid_job(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    easel = await start(easel_factory, studio)
    real = discord.InteractionResponse.send_message

    async def lost_reply(self: discord.InteractionResponse[Any], *args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(discord.InteractionResponse, "send_message", real)
        raise aiohttp.ServerDisconnectedError()

    monkeypatch.setattr(discord.InteractionResponse, "send_message", lost_reply)
    member = emulator.add_member("reply")
    await emulator.invoke("studio", {"prompt": "lost reply", "style": "poll"}, user=member)
    message = await emulator.wait_for_message(
        emulator.channel_id, lambda m: bool(m["attachments"]) and f"<@{member.id}>" in m["content"], timeout=10
    )
    job_id = message["embeds"][0]["footer"]["text"].split()[1]
    assert (await final(easel, job_id)).status is JobStatus.SUCCEEDED
    assert studio.count("POST", "/jobs") == 1


# Cancel goes through the job's own step


async def test_a_cancel_during_a_status_check_wins_and_polling_stops(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    easel = await start(easel_factory, studio)
    member = emulator.add_member("racer")
    ix, job_id = await run_job(emulator, member, style="poll")
    await emulator.wait_for(lambda: "1" in studio.jobs and studio.jobs["1"].polls >= 1)
    studio.jobs["1"].status = "running"
    studio.jobs["1"].progress = 20
    studio.slow_next(0.6, route="jobs")  # the next status check is in flight while the member cancels
    await emulator.wait_for(lambda: studio.faults == [], timeout=5)
    cancel = await emulator.invoke("cancel", {"job": job_id}, user=member)
    await cancel.response()
    await cancel.wait_original(lambda m: "Cancelled" in m["content"], timeout=10)
    job = await final(easel, job_id)
    assert job.status is JobStatus.CANCELLED
    assert await ledger_kinds(easel, job_id) == ["reserve", "refund"]
    polls = studio.jobs["1"].polls
    await asyncio.sleep(0.8)
    assert studio.jobs["1"].polls == polls, "a cancelled job is not polled any more"
    last = (ix.original or {}).get("content", "")
    assert "Working" not in last and "%" not in last, f"the status does not go back to working: {last!r}"


class StubbornStudio(PollStudio):
    """A studio that cannot cancel a job it has (like Mimi Panda and mimpi)."""

    def cancellable(self, feature: str) -> bool:
        return False


async def test_cancel_is_refused_once_a_studio_that_cannot_cancel_has_the_job(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False

    easel = await start_with(easel_factory, studio, poll=StubbornStudio)
    member = emulator.add_member("stubborn")
    ix, job_id = await run_job(emulator, member, style="poll")
    await emulator.wait_for(lambda: "1" in studio.jobs)
    cancel = await emulator.invoke("cancel", {"job": job_id}, user=member)
    await cancel.response()
    answer = await cancel.wait_original(lambda m: bool(m["content"]), timeout=5)
    assert "cannot stop it" in answer["content"]
    await studio.finish("1")
    await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    assert (await final(easel, job_id)).status is JobStatus.SUCCEEDED
    assert await ledger_kinds(easel, job_id) == ["reserve", "commit"], "billed by the studio: charged, not refunded"


async def test_nobody_acts_on_a_job_of_another_server(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    easel = await start(easel_factory, studio)
    _ix, job_id = await run_job(emulator, emulator.add_member("home"), style="poll")
    elsewhere = Actor(user_id=999, guild_id=emulator.guild_id + 1, is_admin=True, is_moderator=True)
    with pytest.raises(NotFound):
        await easel.bot.jobs.cancel(job_id, actor=elsewhere)
    job = await easel.bot.jobs.store.get(job_id)
    assert job is not None
    assert not job.status.final


# Results the studio billed for are never dropped


class SyncLinkStudio(PollStudio):
    """Synchronous from the engine's view, but its answer holds URLs to download."""

    name = "studio_sync"

    async def submit(self, job: JobContext) -> Finished | Submitted:
        created = await self.http.json("POST", "/jobs", safe=False, json=self._body(job))
        for _ in range(50):
            answer = await self.http.json("GET", f"/jobs/{created['id']}", safe=True)
            if answer["status"] == "done":
                return Finished([ResultFile(f"link-{i}.png", url=u) for i, u in enumerate(answer["images"])])
            await asyncio.sleep(0.02)
        raise Transient("never finished")


async def test_a_synchronous_result_whose_download_fails_once_is_still_delivered(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start_with(easel_factory, studio, sync=SyncLinkStudio)
    studio.fail_next(503, route="files", count=3)  # the download (retried in-call too) fails once for the engine
    ix, job_id = await run_job(emulator, emulator.add_member("sync"), style="sync")
    result = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=15)
    assert job_id in result["embeds"][0]["footer"]["text"]
    assert (await final(easel, job_id)).status is JobStatus.SUCCEEDED
    assert studio.count("POST", "/jobs") == 1, "never sent twice"


class RecoveringStudio(PollStudio):
    lookups = 0

    async def recover(self, job: JobContext) -> Submitted | None:
        RecoveringStudio.lookups += 1
        if RecoveringStudio.lookups == 1:
            raise Transient("the lookup timed out")
        return Submitted({"id": "1"}, next_check=0.05)


async def test_a_transient_error_during_recovery_is_retried_not_lost(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False

    easel = await start_with(easel_factory, studio, poll=RecoveringStudio)
    _ix, job_id = await run_job(emulator, emulator.add_member("recover"), style="poll")
    await emulator.wait_for(lambda: "1" in studio.jobs)
    await easel.stop()
    # As if Easel died between sending the create and saving its answer.
    await easel.start()
    await easel.bot.db.write(
        lambda c: c.execute("UPDATE jobs SET status = 'submitting', provider_ref = '{}' WHERE id = ?", (job_id,))
    )
    await easel.restart()
    await emulator.wait_for(lambda: RecoveringStudio.lookups >= 2, timeout=10)
    await studio.finish("1")
    job = await final(easel, job_id, within=15)
    assert job.status is JobStatus.SUCCEEDED
    assert studio.count("POST", "/jobs") == 1


# Waiting is bounded by the deadline


async def test_a_huge_retry_after_cannot_park_a_job_past_its_deadline(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    easel = await start(easel_factory, studio, adapter_kwargs={"deadline_s": 1.5})
    studio.fail_next(429, route="jobs", count=1, retry_after=86400 * 30)
    ix, job_id = await run_job(emulator, emulator.add_member("parked"), style="poll")
    notice = await ix.wait_followup(timeout=10)
    assert "took far longer" in notice["content"]
    job = await final(easel, job_id)
    assert job.status is JobStatus.EXPIRED
    assert await ledger_kinds(easel, job_id) == ["reserve", "refund"]


def test_retry_after_that_is_not_a_number_is_ignored() -> None:
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 99 Foo 2025") is None
    assert parse_retry_after("1e12") == 3600.0
    assert parse_retry_after("2") == 2.0


# Files


async def test_concurrent_stores_of_the_same_bytes_all_succeed(tmp_path: Any) -> None:
    store = FileStore(tmp_path)
    data = b"x" * 16_000_000
    shas = await asyncio.gather(*(store.put_input(data) for _ in range(12)))
    assert len(set(shas)) == 1
    assert store.input_path(shas[0]).read_bytes() == data
    assert not list(store.input_path(shas[0]).parent.glob("*.tmp")), "no temporary file is left behind"


async def test_a_refused_job_leaves_no_input_file(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await easel_factory(mimipanda_api_token="panda-token", mimipanda_base_url=studio.base_url)
    blocked = emulator.add_member("blocked")
    await easel.bot.ledger.block(emulator.guild_id, blocked.id, by=emulator.owner.id)  # type: ignore[attr-defined]
    photo = Attachment(images.png(64, 64, label="mine"), "mine.png", "image/png")
    refused = await emulator.invoke("upscale", user=blocked, attachments={"image": photo})
    await refused.response()
    await refused.wait_original(lambda m: "blocked" in m["content"].lower(), timeout=5)
    inputs = easel.settings.data_dir / "inputs"
    assert not inputs.exists() or not any(p.is_file() for p in inputs.rglob("*")), "a refused job keeps no file"


# Delete takes every part


async def test_delete_removes_every_part_of_a_result(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    member = emulator.add_member("parts")
    ix, job_id = await run_job(emulator, member, style="poll", count=12, size=32)
    last = await ix.wait_followup(lambda m: bool(m.get("components")), timeout=15)
    await final(easel, job_id)
    parts = await easel.bot.jobs.store.messages(job_id)
    assert len(parts) == 2, "12 images go out in two messages"
    deleted = await emulator.press_button(last, f"ej:del:{job_id}", user=member)
    await deleted.response()
    await emulator.wait_for(lambda: all(m in emulator.deleted_message_ids for _c, m in parts), timeout=5)


# /forget-me


async def test_forget_me_with_a_job_ending_meanwhile_erases_everything(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    easel = await start(easel_factory, studio)
    member = emulator.add_member("leaver")
    _a, first = await run_job(emulator, member, style="poll", prompt="one")
    _b, second = await run_job(emulator, member, style="poll", prompt="two")
    await emulator.wait_for(lambda: len(studio.jobs) == 2)
    studio.slow_next(0.5, route="jobs", count=4)  # cancels at the studio are slow; the second job ends meanwhile

    async def finish_second() -> None:
        await asyncio.sleep(0.1)
        await studio.finish("2")

    finishing = asyncio.create_task(finish_second())
    jobs, _stopped = await easel.bot.jobs.erase_member(emulator.guild_id, member.id)
    await finishing
    assert jobs >= 1
    for job_id in (first, second):
        job = await eventually(lambda j=job_id: _ended_and_anonymised(easel, j), within=10)
        assert job.params == {}
    assert await easel.bot.jobs.store.for_member(emulator.guild_id, member.id) == []


async def _ended_and_anonymised(easel: Easel, job_id: str) -> Any:
    job = await easel.bot.jobs.store.get(job_id)
    return job if job is not None and job.status.final and job.user_id is None else None


async def test_forget_me_does_not_give_credits_back(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio, quota_server_allowance=3)
    member = emulator.add_member("refill")
    for n in range(3):
        ix, _ = await run_job(emulator, member, style="sync", prompt=f"spend {n}")
        await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    ix = await emulator.invoke("forget-me", user=member)
    await ix.response()
    question = await ix.wait_original()
    pressed = await emulator.press_button(question, f"eq:forget:{member.id}", user=member)
    await pressed.response()
    await pressed.wait_original(lambda m: "Erased" in m["content"], timeout=10)
    again = await emulator.invoke("studio", {"prompt": "free again?", "style": "sync"}, user=member)
    body = await again.response()
    text = body["data"]["content"] if "data" in body else ""
    text = text or (await again.wait_original(lambda m: bool(m["content"]), timeout=5))["content"]
    assert "job `" not in text, "no new job: the period's credits are still spent"
    row = await easel.bot.db.fetchone("SELECT COUNT(*) FROM jobs WHERE params LIKE '%free again%'")
    assert row is not None
    assert row[0] == 0


# Fall-over: only before a studio accepted the job


async def test_a_studio_out_of_credits_hands_the_job_to_the_next_studio(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    studio.fail_next(402, route="jobs")  # the poll studio's account is empty: it refuses the create
    member = emulator.add_member("fallover")
    ix, job_id = await run_job(emulator, member, style="poll", fallback="sync")
    result = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    new_id = result["embeds"][0]["footer"]["text"].split()[1]
    assert new_id != job_id
    told = await ix.wait_original(lambda m: "making it" in m["content"] or "Done" in m["content"], timeout=5)
    assert told is not None
    assert any("could not take this" in v["content"] for v in emulator.message_versions(int(told["id"])))
    old, new = await final(easel, job_id), await final(easel, new_id)
    assert (old.status, new.status, new.provider) == (JobStatus.FAILED, JobStatus.SUCCEEDED, "studio_sync")
    assert await ledger_kinds(easel, job_id) == ["reserve", "refund"]
    assert await ledger_kinds(easel, new_id) == ["reserve", "commit"]
    assert studio.count("POST", "/render") == 1


async def test_no_fall_over_once_a_studio_accepted_the_job(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    studio.auto_finish = False
    member = emulator.add_member("accepted")
    ix, job_id = await run_job(emulator, member, style="poll", fallback="sync")
    await emulator.wait_for(lambda: "1" in studio.jobs)
    studio.fail_next(402, route="jobs", count=20)  # out of credits after it accepted: too late to hand it over
    notice = await ix.wait_followup(timeout=10)
    assert "failed" in notice["content"]
    assert (await final(easel, job_id)).status is JobStatus.FAILED
    assert studio.count("POST", "/render") == 0


async def test_a_double_click_on_a_result_button_starts_one_job(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    member = emulator.add_member("clicker")
    ix, job_id = await run_job(emulator, member, style="sync")
    result = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    presses = await asyncio.gather(
        *(emulator.press_button(result, f"ej:again:{job_id}", user=member) for _ in range(2))
    )
    answers = [await p.response() for p in presses]
    texts = [a["data"]["content"] for a in answers]
    assert sum("just pressed that" in t for t in texts) == 1, texts
    children = await easel.bot.db.fetchall("SELECT id FROM jobs WHERE parent_job = ?", (job_id,))
    assert len(children) == 1, "one job, charged once"
    assert await ledger_kinds(easel, str(children[0]["id"])) in (["reserve"], ["reserve", "commit"])


async def test_a_burst_from_one_member_is_held_to_their_cap_at_a_studio(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    limits = ProviderLimits(min_poll_s=0.02, max_poll_s=0.2, retry_base_s=0.01, max_per_member=2)
    easel = await start(easel_factory, studio, limits=limits)
    member, other = emulator.add_member("hog"), emulator.add_member("fair")
    burst = await asyncio.gather(
        *(emulator.invoke("studio", {"prompt": f"h{n}", "style": "poll"}, user=member) for n in range(5))
    )
    texts = [(await ix.response())["data"]["content"] for ix in burst]
    assert sum("the most one member may have" in t for t in texts) == 3, texts
    rows = await easel.bot.db.fetchall("SELECT COUNT(*) FROM jobs WHERE user_id = ?", (member.id,))
    assert rows[0][0] == 2
    _ix, _job = await run_job(emulator, other, style="poll")  # another member is not held back


# Who may see or act: one place (bot/jobs/access.py)


async def test_details_hide_internal_keys_and_delete_without_a_job_is_for_moderators(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    member, stranger = emulator.add_member("owner"), emulator.add_member("stranger")
    ix, job_id = await run_job(emulator, member, style="sync", fallback="poll")  # params carry fall-over keys
    result = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    details = await emulator.press_button(result, f"ej:info:{job_id}", user=stranger)
    embed = (await details.response())["data"]["embeds"][0]
    shown = str(embed)
    assert "_alternatives" not in shown and "role" not in shown.lower(), "no internal keys in Details"
    assert "a red fox" in shown
    await easel.bot.db.write(lambda c: c.execute("DELETE FROM jobs WHERE id = ?", (job_id,)))
    refused = await emulator.press_button(result, f"ej:del:{job_id}", user=member)
    assert "Only the member who asked" in (await refused.response())["data"]["content"]
    assert int(result["id"]) not in emulator.deleted_message_ids, "with its job gone, only moderators may delete"
    deleted = await emulator.press_button(result, f"ej:del:{job_id}", user=emulator.owner)
    await deleted.response()
    await emulator.wait_for(lambda: int(result["id"]) in emulator.deleted_message_ids)
