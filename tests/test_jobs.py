"""The job engine end to end: every execution style, faults, restarts, deadlines, delivery routes, buttons."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.jobs.engine import ProviderLimits, _PartLog
from bot.jobs.model import Delivery, Job, JobStatus
from bot.providers.base import Adapter
from bot.providers.registry import build_adapters
from bot.settings import Settings
from tests.conftest import EaselFactory
from tests.emulator import DiscordEmulator, Member
from tests.emulator import permissions as perms
from tests.fakes.studio import FakeStudio
from tests.fakes.studio_adapters import CallbackStudio, PollStudio, SyncStudio
from tests.harness import Easel, eventually, free_port

FAST = ProviderLimits(min_poll_s=0.02, max_poll_s=0.2, retry_base_s=0.01)


@pytest.fixture
async def studio() -> AsyncIterator[FakeStudio]:
    fake = await FakeStudio().start()
    yield fake
    await fake.stop()


def studio_factory(studio: FakeStudio, **kwargs: Any):  # type: ignore[no-untyped-def]
    def build(settings: Settings, client: httpx.AsyncClient) -> dict[str, Adapter]:
        # The studios beside whatever real providers the settings turn on, as in production.
        return build_adapters(settings, client) | {
            cls.name: cls(client, studio.base_url, studio.token, **kwargs)
            for cls in (SyncStudio, PollStudio, CallbackStudio)
        }

    return build


async def start(
    easel_factory: EaselFactory,
    studio: FakeStudio,
    *,
    limits: ProviderLimits = FAST,
    adapter_kwargs: dict[str, Any] | None = None,
    **settings: Any,
) -> Easel:
    return await easel_factory(
        adapter_factory=studio_factory(studio, **(adapter_kwargs or {})),
        extra_extensions=("tests.ext.studio",),
        provider_limits_override=dict.fromkeys(("studio_sync", "studio_poll", "studio_cb"), limits),
        **settings,
    )


def job_id_of(ix_body_or_message: dict[str, Any]) -> str:
    text = ix_body_or_message.get("content") or ix_body_or_message.get("data", {}).get("content", "")
    return text.split("job `")[1].split("`")[0]


def result_footer(message: dict[str, Any]) -> str:
    return message["embeds"][0]["footer"]["text"] if message.get("embeds") else ""


async def run_job(emulator: DiscordEmulator, member: Member, **options: Any) -> tuple[Any, str]:
    ix = await emulator.invoke("studio", {"prompt": "a red fox", **options}, user=member)
    body = await ix.response()
    assert ix.ephemeral, "the status message is for the requester only"
    return ix, job_id_of(body)


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("style", ["sync", "poll"])
async def test_each_style_delivers_real_images(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio, style: str
) -> None:
    easel = await start(easel_factory, studio)
    member = emulator.add_member("alice")
    ix, job_id = await run_job(emulator, member, style=style, size=96, count=2 if style == "poll" else 1)
    result = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    assert f"<@{member.id}>" in result["content"]
    assert result_footer(result).startswith(f"Job {job_id}")
    expected = 2 if style == "poll" else 1
    assert len(result["attachments"]) == expected
    for attachment in result["attachments"]:
        assert open_image(emulator.file_bytes(attachment)).size == (96, 96)
    custom_ids = [c["custom_id"] for row in result["components"] for c in row["components"]]
    assert custom_ids == [f"ej:again:{job_id}", f"ej:info:{job_id}", f"ej:del:{job_id}"]
    # The status message ends saying it is done.
    await ix.wait_original(lambda m: "Done" in m["content"])
    job = await eventually(lambda: _delivered(easel, job_id))
    assert job.status is JobStatus.SUCCEEDED
    assert job.interaction_token is None, "a delivered job forgets its interaction token"
    assert studio.count("POST", "/render" if style == "sync" else "/jobs") == 1


async def test_callback_style_uses_the_callback_then_confirms_with_a_status_get(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    port = free_port()
    easel = await start(easel_factory, studio, http_port=port, public_url=f"http://127.0.0.1:{port}")
    ix, job_id = await run_job(emulator, emulator.add_member("bob"), style="callback")
    studio_job = await emulator.wait_for(lambda: next(iter(studio.jobs.values()), None))
    assert studio_job.callback_url is not None
    assert studio_job.callback_url.startswith(f"{easel.web_url}/callbacks/studio_cb/{job_id}/")
    polls_before = studio_job.polls
    await studio.finish(studio_job.id)
    assert studio.callbacks[-1][1] == 202
    result = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=5)
    assert result_footer(result).startswith(f"Job {job_id}")
    assert studio_job.polls == polls_before + 1, "the callback is confirmed with exactly one status GET"


async def test_callbacks_with_a_wrong_secret_or_unknown_job_are_rejected(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    easel = await start(easel_factory, studio)
    _ix, job_id = await run_job(emulator, emulator.add_member("eve"), style="poll")
    job = await easel.bot.jobs.store.get(job_id)
    assert job is not None
    async with httpx.AsyncClient() as client:
        wrong = await client.post(f"{easel.web_url}/callbacks/studio_poll/{job_id}/not-the-secret", json={})
        unknown = await client.post(f"{easel.web_url}/callbacks/studio_poll/nosuchjob/{job.callback_secret}", json={})
        other_provider = await client.post(f"{easel.web_url}/callbacks/studio_cb/{job_id}/{job.callback_secret}")
        huge = await client.post(
            f"{easel.web_url}/callbacks/studio_poll/{job_id}/{job.callback_secret}", content=b"x" * 200_000
        )
        right = await client.post(f"{easel.web_url}/callbacks/studio_poll/{job_id}/{job.callback_secret}", json={})
    assert wrong.status_code == 403
    assert unknown.status_code == 404
    assert other_provider.status_code == 404
    assert huge.status_code == 413
    assert right.status_code == 202


async def test_restart_mid_job_delivers_exactly_once(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    easel = await start(easel_factory, studio)
    ix, job_id = await run_job(emulator, emulator.add_member("frank"), style="poll")
    await emulator.wait_for(lambda: studio.jobs.get("1") and studio.jobs["1"].polls >= 1)
    await easel.restart()
    await studio.finish("1")
    await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=5)
    await easel.restart()
    await easel.restart()
    deliveries = [m for m in ix.followups if result_footer(m).startswith(f"Job {job_id}")]
    deliveries += [m for m in emulator.messages(emulator.channel_id) if result_footer(m).startswith(f"Job {job_id}")]
    assert len(deliveries) == 1
    assert studio.count("POST", "/jobs") == 1, "never submitted twice"


class CrashAfterDiscordTook:
    """The bot "dies" right after Discord accepted part `at_part` of a result, before the engine wrote that
    down: the part's confirmation never comes; the test then cuts the scheduler as a crash would."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, at_part: int) -> None:
        self.reached = asyncio.Event()
        self._monkeypatch = monkeypatch
        self._real = _PartLog.sent

        async def sent(log: _PartLog, index: int, message: Any) -> None:
            if index == at_part:
                self.reached.set()
                await asyncio.Event().wait()  # never returns: the process is gone
            await self._real(log, index, message)

        monkeypatch.setattr(_PartLog, "sent", sent)

    async def crash(self, easel: Easel) -> None:
        await asyncio.wait_for(self.reached.wait(), 10)
        await easel.bot.jobs.scheduler.stop(grace=0)
        self._monkeypatch.setattr(_PartLog, "sent", self._real)


def posted_parts(emulator: DiscordEmulator, job_id: str) -> list[dict[str, Any]]:
    """Every non-ephemeral message of this job's result anywhere in the channel (followups included)."""
    return [
        m
        for m in emulator.history(emulator.channel_id, limit=100)
        if job_id in m["content"] or result_footer(m).startswith(f"Job {job_id}")
    ]


async def test_a_crash_after_discord_took_the_result_does_not_post_it_again(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    studio.auto_finish = False
    easel = await start(easel_factory, studio)
    ix, job_id = await run_job(emulator, emulator.add_member("nell"), style="poll")
    await emulator.wait_for(lambda: "1" in studio.jobs)
    crash = CrashAfterDiscordTook(monkeypatch, at_part=0)
    await studio.finish("1")
    await crash.crash(easel)
    assert len(posted_parts(emulator, job_id)) == 1  # Discord has it; our database does not know yet
    await easel.restart()
    job = await eventually(lambda: _delivered(easel, job_id))
    assert len(posted_parts(emulator, job_id)) == 1, "found in the channel's history, not posted again"
    assert [m["id"] for m in ix.followups if m["attachments"]] == [str(job.result_message_id)]


async def test_a_crash_between_parts_posts_each_part_once_even_without_history_access(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    studio.auto_finish = False
    easel = await start(easel_factory, studio)
    _ix, job_id = await run_job(emulator, emulator.add_member("otto"), style="poll", count=12)
    await emulator.wait_for(lambda: "1" in studio.jobs)
    emulator.advance_time(16 * 60)  # the token is dead: the result goes to the channel, with nonces
    crash = CrashAfterDiscordTook(monkeypatch, at_part=1)
    await studio.finish("1")
    await crash.crash(easel)
    # The bot may not read the channel's history, so it cannot look for the part: it posts it again with the
    # same nonce, and Discord answers with the message it already has.
    emulator.forbid_channel(emulator.channel_id, deny=perms.READ_MESSAGE_HISTORY)
    await easel.restart()
    await eventually(lambda: _delivered(easel, job_id))
    parts = emulator.messages(emulator.channel_id)
    assert [len(m["attachments"]) for m in parts] == [10, 2]
    assert [m["content"].rsplit("· ", 1)[1] for m in parts] == ["part 1 of 2", "part 2 of 2"]
    assert result_footer(parts[1]).startswith(f"Job {job_id}")


async def test_a_channel_closed_between_parts_sends_the_rest_by_dm(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    studio.auto_finish = False
    easel = await start(easel_factory, studio)
    member = emulator.add_member("pia")
    _ix, job_id = await run_job(emulator, member, style="poll", count=12)
    await emulator.wait_for(lambda: "1" in studio.jobs)
    emulator.advance_time(16 * 60)
    real = _PartLog.sent

    async def sent(log: _PartLog, index: int, message: Any) -> None:
        await real(log, index, message)
        if index == 0:
            emulator.forbid_channel(emulator.channel_id)  # an admin locks the channel mid-delivery

    monkeypatch.setattr(_PartLog, "sent", sent)
    await studio.finish("1")
    await eventually(lambda: _delivered(easel, job_id))
    in_channel = emulator.messages(emulator.channel_id)
    by_dm = emulator.dm_messages(member.id)
    assert [len(m["attachments"]) for m in in_channel] == [10]
    assert [len(m["attachments"]) for m in by_dm] == [2]
    assert by_dm[0]["content"].startswith(f"I could not post in <#{emulator.channel_id}>, so here is the rest.")
    assert result_footer(by_dm[0]).startswith(f"Job {job_id}")


async def test_crash_while_submitting_is_never_resubmitted(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    member = emulator.add_member("gina")
    studio.slow_next(2, route="jobs")  # the create hangs: the bot dies while it is in flight
    ix = await emulator.invoke("studio", {"prompt": "slow", "style": "poll"}, user=member)
    job_id = job_id_of(await ix.response())
    await emulator.wait_for(lambda: studio.count("POST", "/jobs") == 1)
    job = await easel.bot.jobs.store.get(job_id)
    assert job is not None
    assert job.status is JobStatus.SUBMITTING
    await easel.bot.jobs.scheduler.stop(grace=0)  # a crash: the step is cut wherever it was
    await easel.restart()
    notice = await ix.wait_followup(lambda m: job_id in m["content"], timeout=5)
    assert "restarted while sending" in notice["content"]
    job = await easel.bot.jobs.store.get(job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert studio.count("POST", "/jobs") == 1


async def test_token_expired_results_go_to_the_channel_with_a_mention(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    await start(easel_factory, studio)
    member = emulator.add_member("hana")
    ix, job_id = await run_job(emulator, member, style="poll")
    await emulator.wait_for(lambda: studio.jobs.get("1") and studio.jobs["1"].polls >= 1)
    emulator.advance_time(16 * 60)
    await studio.finish("1")
    message = await emulator.wait_for_message(emulator.channel_id, lambda m: bool(m["attachments"]), timeout=5)
    assert message["content"].startswith(f"<@{member.id}>")
    assert result_footer(message).startswith(f"Job {job_id}")
    assert not [m for m in ix.followups if m["attachments"]]


async def test_forbidden_channel_falls_back_to_a_dm_then_to_jobs(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    easel = await start(easel_factory, studio)
    member, other = emulator.add_member("ivan"), emulator.add_member("jo")
    await run_job(emulator, member, style="poll")
    _ix2, job_id2 = await run_job(emulator, other, style="poll", prompt="second")
    await emulator.wait_for(lambda: len(studio.jobs) == 2)
    emulator.advance_time(16 * 60)
    emulator.forbid_channel(emulator.channel_id)
    emulator.close_dms(other.id)
    await studio.finish("1")
    await studio.finish("2")
    dm = await emulator.wait_for(lambda: next(iter(emulator.dm_messages(member.id)), None))
    assert "could not post" in dm["content"]
    assert dm["attachments"]
    await eventually(lambda: _undeliverable(easel, job_id2))
    # /jobs still hands the result over.
    ix = await emulator.invoke("jobs", {"job": job_id2}, user=other)
    await ix.response()
    shown = await ix.wait_original(lambda m: bool(m.get("attachments")))
    assert shown["embeds"][0]["title"].endswith(job_id2)


async def _delivered(easel: Easel, job_id: str) -> Job | None:
    job = await easel.bot.jobs.store.get(job_id)
    return job if job is not None and job.delivery is Delivery.DELIVERED else None


async def _undeliverable(easel: Easel, job_id: str) -> bool:
    job = await easel.bot.jobs.store.get(job_id)
    return job is not None and job.delivery is Delivery.UNDELIVERABLE


async def test_oversized_results_are_reencoded_to_fit(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.noisy_results = True
    emulator.attachment_size_limit = 300 * 1024
    await start(easel_factory, studio)
    ix, _job_id = await run_job(emulator, emulator.add_member("kim"), style="poll", size=600)
    result = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    data = emulator.file_bytes(result["attachments"][0])
    assert len(data) <= 300 * 1024
    assert open_image(data).format == "JPEG"


async def test_provider_faults(emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio) -> None:
    await start(easel_factory, studio)
    member = emulator.add_member("lee")
    # 429 with Retry-After on create: refused before it was taken, so retried, and it succeeds.
    studio.fail_next(429, route="jobs", retry_after=0.05, count=3)
    ix, _ = await run_job(emulator, member, style="poll")
    await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    assert studio.count("POST", "/jobs") == 4
    # 500 / malformed / slow on status checks: retried, and it succeeds.
    studio.fail_next(500, route="jobs", count=1)
    ix, _ = await run_job(emulator, member, style="poll", prompt="second")
    assert "failed" in (await ix.wait_followup(timeout=10))["content"], "500 on a create is not retried blindly"
    creates = studio.count("POST", "/jobs")
    ix, job_id = await run_job(emulator, member, style="poll", prompt="third")
    await emulator.wait_for(lambda: studio.count("POST", "/jobs") == creates + 1)
    studio.malformed_next(route="jobs")
    studio.fail_next(503, route="jobs")
    studio.slow_next(6, route="jobs")  # beyond the adapter's 5 s timeout
    result = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=20)
    assert result_footer(result).startswith(f"Job {job_id}")


async def test_persistent_check_failures_fail_the_job_with_a_clear_message(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    ix, job_id = await run_job(emulator, emulator.add_member("max"), style="poll")
    await emulator.wait_for(lambda: studio.count("POST", "/jobs") == 1)
    studio.fail_next(502, route="jobs", count=50)
    notice = await ix.wait_followup(timeout=15)
    assert "having trouble" in notice["content"]
    job = await easel.bot.jobs.store.get(job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED


async def test_content_policy_and_provider_failures_are_explained(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    await start(easel_factory, studio)
    member = emulator.add_member("nia")
    ix, _ = await run_job(emulator, member, style="sync", prompt="something forbidden")
    assert "content policy" in (await ix.wait_followup(timeout=5))["content"]
    ix, _ = await run_job(emulator, member, style="poll", prompt="FAILME please")
    assert "could not render this" in (await ix.wait_followup(timeout=5))["content"]


async def test_stuck_job_is_expired_cancelled_and_the_requester_told(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    easel = await start(easel_factory, studio, adapter_kwargs={"deadline_s": 0.4})
    ix, job_id = await run_job(emulator, emulator.add_member("oli"), style="poll")
    notice = await ix.wait_followup(timeout=5)
    assert "took far longer" in notice["content"]
    job = await easel.bot.jobs.store.get(job_id)
    assert job is not None
    assert job.status is JobStatus.EXPIRED
    assert studio.jobs["1"].cancelled, "cancelled at the provider too"


async def test_buttons_work_after_a_restart(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    owner, stranger = emulator.add_member("pat"), emulator.add_member("quinn")
    ix, job_id = await run_job(emulator, owner, style="sync")
    result = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=5)
    await easel.restart()
    details = await emulator.press_button(result, f"ej:info:{job_id}", user=stranger)
    body = await details.response()
    assert body["data"]["embeds"][0]["title"].endswith(job_id)
    refused = await emulator.press_button(result, f"ej:del:{job_id}", user=stranger)
    assert "Only the member who asked" in (await refused.response())["data"]["content"]
    assert int(result["id"]) not in emulator.deleted_message_ids
    deleted = await emulator.press_button(result, f"ej:del:{job_id}", user=owner)
    await deleted.response()
    await emulator.wait_for(lambda: int(result["id"]) in emulator.deleted_message_ids)


async def test_jobs_lists_and_cancel_stops_a_running_job(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    easel = await start(easel_factory, studio)
    member, other = emulator.add_member("rae"), emulator.add_member("sam")
    _ix, job_id = await run_job(emulator, member, style="poll")
    await emulator.wait_for(lambda: "1" in studio.jobs)
    listing = await emulator.invoke("jobs", user=member)
    assert job_id in (await listing.response())["data"]["embeds"][0]["description"]
    refused = await emulator.invoke("cancel", {"job": job_id}, user=other)
    await refused.response()
    assert "no job" in (await refused.wait_original(lambda m: bool(m["content"])))["content"].lower()
    done = await emulator.invoke("cancel", {"job": job_id}, user=member)
    await done.response()
    assert "Cancelled" in (await done.wait_original(lambda m: "Cancelled" in m["content"]))["content"]
    job = await easel.bot.jobs.store.get(job_id)
    assert job is not None
    assert job.status is JobStatus.CANCELLED
    assert studio.jobs["1"].cancelled


async def test_a_full_provider_queues_jobs_and_shows_their_position(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    studio.auto_finish = False
    limits = ProviderLimits(min_poll_s=0.02, max_poll_s=0.2, retry_base_s=0.01, max_active={"gpu": 1})
    await start(easel_factory, studio, limits=limits, adapter_kwargs={"slot": "gpu"})
    member = emulator.add_member("tia")
    await run_job(emulator, member, style="poll")
    await emulator.wait_for(lambda: "1" in studio.jobs)
    second = await emulator.invoke("studio", {"prompt": "waits", "style": "poll"}, user=member)
    assert "position 1 in the queue" in (await second.response())["data"]["content"]
    assert "2" not in studio.jobs
    await studio.finish("1")
    await emulator.wait_for(lambda: "2" in studio.jobs, timeout=5)
    await studio.finish("2")
    await second.wait_followup(lambda m: bool(m["attachments"]), timeout=5)


async def test_quota_is_committed_on_success_and_refunded_once_on_failure(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    member = emulator.add_member("uma")

    async def available() -> int:
        return (await easel.bot.ledger.balance(emulator.guild_id, member.id, [])).available  # type: ignore[attr-defined]

    start_credits = await available()
    ix, _ = await run_job(emulator, member, style="poll", count=3)
    await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=5)
    assert await available() == start_credits - 3
    ix, job_id = await run_job(emulator, member, style="poll", prompt="FAILME", count=2)
    notice = await ix.wait_followup(timeout=5)
    assert "2 credits went back to you" in notice["content"]
    assert await available() == start_credits - 3
    # A duplicate signal for the finished job changes nothing.
    job = await easel.bot.jobs.store.get(job_id)
    assert job is not None
    async with httpx.AsyncClient() as client:
        again = await client.post(f"{easel.web_url}/callbacks/studio_poll/{job_id}/{job.callback_secret}")
    assert again.status_code == 200
    assert await available() == start_credits - 3


async def test_not_enough_credits_is_refused_before_any_job_exists(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio, quota_server_allowance=2)
    member = emulator.add_member("vic")
    ix = await emulator.invoke("studio", {"prompt": "too many", "count": 3}, user=member)
    body = await ix.response()
    assert ix.ephemeral
    assert "needs **3** and you have **2** left" in body["data"]["content"]
    assert await easel.bot.jobs.store.for_member(emulator.guild_id, member.id) == []
    assert studio.requests == []
