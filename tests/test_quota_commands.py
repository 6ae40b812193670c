"""/quota, /quota-admin and /forget-me end to end: the real bot, the emulator, the real SQLite ledger.

Jobs come from the test extension's /studio command (feature ai_image, 1 credit per image by default)
against the fake studio, as in tests/test_jobs.py.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.quotas import QuotaLedger
from bot.storage.database import Database
from cogs.quota import feature_name
from tests.conftest import EaselFactory
from tests.emulator import DiscordEmulator, EmulatorUsageError, Member
from tests.emulator import permissions as perms
from tests.fakes.studio import FakeStudio
from tests.harness import Easel, make_settings
from tests.test_jobs import run_job, start


@pytest.fixture
async def studio() -> AsyncIterator[FakeStudio]:
    fake = await FakeStudio().start()
    yield fake
    await fake.stop()


# What the member sees


def embed_of(body_or_message: dict[str, Any]) -> dict[str, Any]:
    message = body_or_message.get("data", body_or_message)
    embeds: list[dict[str, Any]] = message["embeds"]
    assert len(embeds) == 1
    return embeds[0]


def bold_number(text: str) -> int:
    match = re.search(r"\*\*(\d+)\*\*", text)
    assert match is not None, text
    return int(match.group(1))


def parse_balance(embed: dict[str, Any]) -> dict[str, Any]:
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    used = next(v for k, v in fields.items() if k.startswith("Used "))
    budget = next((v for k, v in fields.items() if "budget left" in k), None)
    resets = re.search(r"<t:(\d+):R>", fields["Resets"])
    assert resets is not None
    return {
        "title": embed["title"],
        "available": bold_number(embed["description"]),
        "allowance": bold_number(fields["Allowance"]),
        "allowance_text": fields["Allowance"],
        "used": bold_number(used),
        "held": bold_number(fields["Held by running jobs"]),
        "bonus": bold_number(fields["Bonus credits"]),
        "budget": None if budget is None else bold_number(budget),
        "resets": int(resets.group(1)),
        "costs": next(v for k, v in fields.items() if k.startswith("Costs")),
        "status": fields.get("Status"),
    }


async def quota(emulator: DiscordEmulator, member: Member, *, guild: bool = True) -> dict[str, Any]:
    ix = await emulator.invoke("quota", user=member, guild=guild)
    body = await ix.response()
    assert ix.ephemeral, "/quota is for the member only"
    return parse_balance(embed_of(body))


async def admin(
    emulator: DiscordEmulator, command: str, options: dict[str, Any] | None = None, *, user: Member | None = None
) -> str:
    """Run `/quota-admin <command>` (as the server owner unless told) and return the ephemeral answer."""
    ix = await emulator.invoke(
        f"quota-admin {command}", options or {}, user=user or emulator.owner, override_permissions=user is not None
    )
    body = await ix.response()
    assert ix.ephemeral, f"/quota-admin {command} answers ephemerally"
    content: str = body["data"]["content"]
    return content


async def report(emulator: DiscordEmulator, *, user: Member | None = None) -> tuple[dict[str, Any], list[list[str]]]:
    """The usage report's embed and its CSV attachment, parsed."""
    ix = await emulator.invoke("quota-admin report", user=user or emulator.owner)
    await ix.response()
    assert ix.ephemeral
    message = await ix.wait_original(lambda m: bool(m.get("attachments")))
    attachment = message["attachments"][0]
    assert attachment["filename"].endswith(".csv")
    rows = list(csv.reader(io.StringIO(emulator.file_bytes(attachment).decode("utf-8"))))
    return embed_of(message), rows


def csv_by_user(rows: list[list[str]]) -> dict[str, dict[str, int]]:
    header, *lines = rows
    assert header == ["user_id", "spent", "reserved", "refunded", "granted", "jobs"]
    return {line[0]: dict(zip(header[1:], map(int, line[1:]), strict=True)) for line in lines}


async def spend(emulator: DiscordEmulator, member: Member, count: int, prompt: str = "a red fox") -> str:
    """A job that finishes and is delivered (its credits committed); returns its id."""
    ix, job_id = await run_job(emulator, member, style="sync", count=count, prompt=prompt)
    await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    return job_id


async def refused_job(emulator: DiscordEmulator, easel: Easel, member: Member, count: int) -> str:
    """A /studio the ledger refuses: returns the message, after checking no job was created."""
    before = await easel.bot.jobs.store.for_member(emulator.guild_id, member.id)
    ix = await emulator.invoke("studio", {"prompt": "refused", "style": "sync", "count": count}, user=member)
    body = await ix.response()
    assert ix.ephemeral
    assert await easel.bot.jobs.store.for_member(emulator.guild_id, member.id) == before, "no job was created"
    content: str = body["data"]["content"]
    return content


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


# Tests


async def test_quota_for_a_fresh_member_then_after_spending_and_while_a_job_runs(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    await start(easel_factory, studio, quota_server_allowance=12, quota_server_period="weekly")
    member = emulator.add_member("ada")
    fresh = await quota(emulator, member)
    assert fresh["title"] == "Your credits in this server"
    assert (fresh["available"], fresh["allowance"], fresh["used"], fresh["held"], fresh["bonus"]) == (12, 12, 0, 0, 0)
    assert "per week" in fresh["allowance_text"]
    assert fresh["budget"] is None, "no server budget set: none shown"
    assert fresh["status"] is None
    reset = datetime.fromtimestamp(fresh["resets"], UTC)
    assert (reset.weekday(), reset.hour, reset.minute) == (0, 0, 0), "weekly allowances reset on Mondays 00:00 UTC"
    # No paid studio is on: only Easel's own studio, free by default, is in the cost table.
    assert "Coloring page (Easel's studio): **0 credits** per image" in fresh["costs"]
    assert "Mimi Panda" not in fresh["costs"] and "Imagine" not in fresh["costs"]

    await spend(emulator, member, 3)
    after = await quota(emulator, member)
    assert (after["available"], after["used"], after["held"]) == (9, 3, 0)

    studio.auto_finish = False
    await run_job(emulator, member, style="poll", count=2, prompt="still rendering")
    await emulator.wait_for(lambda: studio.jobs)
    running = await quota(emulator, member)
    assert (running["available"], running["used"], running["held"]) == (7, 3, 2)


async def test_cost_table_follows_the_providers_that_are_on_and_cost_overrides_change_the_charge(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    await start(easel_factory, studio, mimipanda_api_token="panda-test-token")
    member = emulator.add_member("bea")
    costs = (await quota(emulator, member))["costs"]
    assert f"{feature_name('ai_image')}: **1 credit** per image" in costs
    assert f"{feature_name('pbn')}: **3 credits** per image" in costs
    for other in ("portrait", "style_image", "imagine_video"):
        assert feature_name(other) not in costs, f"{other}'s provider is off: not listed"

    answer = await admin(emulator, "cost", {"feature": "ai_image", "credits": 3})
    assert f"{feature_name('ai_image')} now costs **3 credits** per image here (default 1)" in answer
    assert f"{feature_name('ai_image')}: **3 credits** per image" in (await quota(emulator, member))["costs"]
    await spend(emulator, member, 2)
    assert (await quota(emulator, member))["used"] == 6, "2 images at 3 credits"

    answer = await admin(emulator, "cost", {"feature": "ai_image", "clear": True})
    assert "**1 credit** per image here (the default)" in answer
    await spend(emulator, member, 1, prompt="one more")
    assert (await quota(emulator, member))["used"] == 7


async def test_best_role_wins_and_a_member_allowance_wins_over_roles(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    helpers, patrons = emulator.add_role("Helpers"), emulator.add_role("Patrons")
    both = emulator.add_member("cy", roles=[helpers, patrons])
    one = emulator.add_member("di", roles=[helpers])
    nobody = emulator.add_member("ed")

    answer = await admin(emulator, "allowance role", {"role": helpers, "credits": 4})
    assert f"<@&{helpers}>" in answer
    assert "**4 credits** per day" in answer
    await admin(emulator, "allowance role", {"role": patrons, "credits": 10})
    assert (await quota(emulator, both))["allowance"] == 10
    assert (await quota(emulator, one))["allowance"] == 4, "a role's allowance replaces the server's, even lower"
    assert (await quota(emulator, nobody))["allowance"] == 20

    # The charge resolves the same way: 8 images are more than Helpers' 4 but within Patrons' 10.
    await spend(emulator, both, 8)
    assert (await quota(emulator, both))["available"] == 2
    assert "needs **8** and you have **4** left" in await refused_job(emulator, easel, one, 8)

    answer = await admin(emulator, "allowance member", {"member": both, "credits": 9})
    assert f"<@{both.id}> gets **9 credits** per day, whatever their roles" in answer
    assert (await quota(emulator, both))["allowance"] == 9
    answer = await admin(emulator, "allowance member", {"member": both, "clear": True})
    assert "back to their roles'" in answer
    assert (await quota(emulator, both))["allowance"] == 10

    await admin(emulator, "allowance role", {"role": patrons, "clear": True})
    assert (await quota(emulator, both))["allowance"] == 4


async def test_grant_then_spend_allowance_first_then_bonus(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    member = emulator.add_member("flo")
    await admin(emulator, "allowance member", {"member": member, "credits": 2})
    answer = await admin(emulator, "grant", {"member": member, "credits": 5, "note": "won the contest"})
    assert f"Granted **5 credits** to <@{member.id}> (won the contest)" in answer
    assert "now have **5** bonus credits" in answer
    granted = await quota(emulator, member)
    assert (granted["available"], granted["allowance"], granted["bonus"]) == (7, 2, 5)

    await spend(emulator, member, 4)
    spent = await quota(emulator, member)
    assert (spent["available"], spent["used"], spent["bonus"]) == (3, 4, 3), "allowance first, then 2 of the bonus"

    message = await refused_job(emulator, easel, member, 4)
    assert "needs **4** and you have **3** left" in message
    assert "more than your allowance of **2** per day; a server admin can grant you extra credits" in message

    # What the admin sees of the member, and giving back the allowance used this period.
    ix = await emulator.invoke("quota-admin view", {"member": member})
    seen = parse_balance(embed_of(await ix.response()))
    assert ix.ephemeral
    assert (seen["title"], seen["available"], seen["bonus"]) == ("Credits of flo", 3, 3)
    answer = await admin(emulator, "refill", {"member": member, "note": "sorry, bad prompt filter"})
    assert f"Gave <@{member.id}> back **2 credits** of their allowance" in answer
    assert (await quota(emulator, member))["available"] == 5
    assert "has used none" in await admin(emulator, "refill", {"member": member})


async def test_blocked_member_is_refused_with_the_block_message_and_no_job(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    member = emulator.add_member("gus")
    answer = await admin(emulator, "block", {"member": member, "reason": "spamming the channel"})
    assert f"<@{member.id}> is blocked" in answer
    assert "spamming the channel" in answer

    message = await refused_job(emulator, easel, member, 1)
    assert message == "You have been blocked from using Easel's paid features in this server."
    assert studio.requests == [], "nothing reached the provider"
    blocked = await quota(emulator, member)
    assert blocked["status"] is not None
    assert "Blocked" in blocked["status"]
    assert blocked["available"] == 0

    assert "is unblocked" in await admin(emulator, "unblock", {"member": member})
    assert "was not blocked" in await admin(emulator, "unblock", {"member": member})
    await spend(emulator, member, 1)
    assert (await quota(emulator, member))["used"] == 1


async def test_server_budget_running_out_is_explained(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    first, second = emulator.add_member("hal"), emulator.add_member("ida")
    answer = await admin(emulator, "budget", {"credits": 4})
    assert "at most **4 credits** per day" in answer
    assert "**4** left today" in answer
    assert (await quota(emulator, second))["budget"] == 4

    await spend(emulator, first, 3)
    seen = await quota(emulator, second)
    assert (seen["budget"], seen["available"]) == (1, 1), "what the server has left caps what a member can spend"
    message = await refused_job(emulator, easel, second, 2)
    assert "This server's shared budget for this day is used up" in message
    assert "this needs **2** credits and only **1** of **4** are left for everyone" in message
    assert f"It refills <t:{seen['resets']}:R>" in message

    assert "No server budget" in await admin(emulator, "budget", {"clear": True})
    assert (await quota(emulator, second))["budget"] is None
    await spend(emulator, second, 2)


async def test_not_enough_credits_says_needed_left_and_when_it_resets(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio, quota_server_allowance=3)
    member = emulator.add_member("jay")
    await spend(emulator, member, 2)
    resets = (await quota(emulator, member))["resets"]
    message = await refused_job(emulator, easel, member, 2)
    assert (
        message == f"Not enough credits: this needs **2** and you have **1** left. Your credits reset <t:{resets}:R>."
    )


async def test_admin_commands_are_refused_to_non_admins_even_when_discord_shows_them(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    await start(easel_factory, studio)
    member = emulator.add_member("kit")
    schema = next(c for c in emulator.commands if c["name"] == "quota-admin")
    assert int(schema["default_member_permissions"]) == perms.MANAGE_GUILD
    with pytest.raises(EmulatorUsageError, match="hides"):
        await emulator.invoke("quota-admin grant", {"member": member, "credits": 5}, user=member)
    with pytest.raises(EmulatorUsageError, match="not offered"):
        await emulator.invoke("quota-admin report", user=member, guild=False)

    # A server that loosened the command's permissions: the bot still says no, and nothing changes.
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("grant", {"member": member, "credits": 5}),
        ("allowance member", {"member": member, "credits": 500}),
        ("allowance server", {"credits": 500}),
        ("block", {"member": emulator.owner}),
        ("unblock", {"member": member}),
        ("refill", {"member": member}),
        ("cost", {"feature": "ai_image", "credits": 0}),
        ("budget", {"credits": 1}),
        ("view", {"member": emulator.owner}),
        ("report", {}),
    ]
    for command, options in attempts:
        answer = await admin(emulator, command, options, user=member)
        assert "Only server admins" in answer, command
    after = await quota(emulator, member)
    assert (after["allowance"], after["bonus"], after["budget"]) == (20, 0, None)
    await spend(emulator, member, 1)
    assert (await quota(emulator, member))["used"] == 1, "the cost was not set to 0"

    # Manage Server is enough, without Administrator.
    managers = emulator.add_role("Managers", perms.MANAGE_GUILD)
    manager = emulator.add_member("lou", roles=[managers])
    assert "Granted **5 credits**" in await admin(emulator, "grant", {"member": member, "credits": 5}, user=manager)


async def test_bad_values_get_clear_messages(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    await start(easel_factory, studio)
    member = emulator.add_member("mo")
    # Discord's client enforces the option ranges and choices the bot declared.
    with pytest.raises(EmulatorUsageError, match="must be in"):
        await emulator.invoke("quota-admin grant", {"member": member, "credits": -3})
    with pytest.raises(EmulatorUsageError, match="must be in"):
        await emulator.invoke("quota-admin grant", {"member": member, "credits": 0})
    with pytest.raises(EmulatorUsageError, match="must be in"):
        await emulator.invoke("quota-admin allowance server", {"reset_hour": 24})
    with pytest.raises(EmulatorUsageError, match="must be in"):
        await emulator.invoke("quota-admin budget", {"credits": -1})
    with pytest.raises(EmulatorUsageError, match="not a choice"):
        await emulator.invoke("quota-admin cost", {"feature": "teleport", "credits": 1})
    with pytest.raises(EmulatorUsageError, match="not a choice"):
        await emulator.invoke("quota-admin allowance server", {"period": "hourly"})
    # What option schemas cannot say, the bot does.
    assert "Say what to change" in await admin(emulator, "allowance server")
    assert "Give `credits`, or `clear: True`" in await admin(emulator, "allowance member", {"member": member})
    assert "not both" in await admin(emulator, "budget", {"credits": 5, "clear": True})
    assert "is a bot" in await admin(emulator, "grant", {"member": emulator.bot_member, "credits": 5})
    assert (await quota(emulator, member))["bonus"] == 0


async def test_usage_report_lists_top_members_and_attaches_the_full_csv(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    await start(easel_factory, studio)
    big, small, gifted = emulator.add_member("nel"), emulator.add_member("oz"), emulator.add_member("pia")
    await admin(emulator, "budget", {"credits": 10})
    await spend(emulator, big, 3)
    await spend(emulator, small, 1)
    failing, _ = await run_job(emulator, small, style="poll", prompt="FAILME please", count=2)
    assert "2 credits went back" in (await failing.wait_followup(timeout=10))["content"]
    await admin(emulator, "grant", {"member": gifted, "credits": 2, "note": "welcome"})
    embed, rows = await report(emulator)
    lines = embed["description"].split("\n")
    assert lines[0].startswith(f"1. <@{big.id}>: **3** spent")
    assert lines[1].startswith(f"2. <@{small.id}>: **1** spent, 2 refunded")
    assert f"<@{gifted.id}>: **0** spent, 2 granted" in lines[2]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert "**4** spent" in fields["Total"]
    assert fields["Server budget left"] == "**6** of 10"

    by_user = csv_by_user(rows)
    assert by_user[str(big.id)] == {"spent": 3, "reserved": 0, "refunded": 0, "granted": 0, "jobs": 1}
    assert by_user[str(small.id)] == {"spent": 1, "reserved": 0, "refunded": 2, "granted": 0, "jobs": 2}
    assert by_user[str(gifted.id)] == {"spent": 0, "reserved": 0, "refunded": 0, "granted": 2, "jobs": 0}
    assert by_user["total"] == {"spent": 4, "reserved": 0, "refunded": 2, "granted": 2, "jobs": 3}
    assert rows[-1][0] == "total"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_allowances_roll_over_at_the_configured_reset_hour(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio, tmp_path: Path
) -> None:
    # The ledger's own clock, injected: the bot's database file, opened the way the runtime opens it.
    settings = make_settings(emulator, tmp_path / "data", quota_server_reset_hour=5)
    db = await Database.open(settings.database_path)
    clock = FakeClock(utc("2025-03-10T04:30:00"))  # a Monday
    try:
        easel = await start(
            easel_factory,
            studio,
            quota_server_reset_hour=5,
            ledger=QuotaLedger(db, settings.quota_policy(), clock=clock),
        )
        member = emulator.add_member("quin")
        await spend(emulator, member, 3)
        before = await quota(emulator, member)
        assert (before["used"], before["available"], before["resets"]) == (3, 17, utc("2025-03-10T05:00:00"))

        clock.now = utc("2025-03-10T05:00:01")
        after = await quota(emulator, member)
        assert (after["used"], after["available"], after["resets"]) == (0, 20, utc("2025-03-11T05:00:00"))

        answer = await admin(emulator, "allowance server", {"period": "weekly", "reset_hour": 6})
        assert "reset every Monday at 06:00 UTC" in answer
        assert f"<t:{utc('2025-03-10T06:00:00')}:R>" in answer
        assert "A new period starts now" in answer
        weekly = await quota(emulator, member)
        assert "per week" in weekly["allowance_text"]
        assert weekly["resets"] == utc("2025-03-10T06:00:00")
        await easel.stop()
    finally:
        await db.close()


async def test_forget_me_erases_jobs_files_and_ledger_but_keeps_the_totals(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    member, other = emulator.add_member("rio"), emulator.add_member("sal")
    done_id = await spend(emulator, member, 2)
    await spend(emulator, other, 1)
    result_dir = easel.bot.jobs.files.result_dir(done_id)
    assert any(result_dir.iterdir()), "the result files exist before"
    studio.auto_finish = False
    _ix, running_id = await run_job(emulator, member, style="poll", prompt="still going")
    studio_job = await emulator.wait_for(lambda: next(iter(studio.jobs.values()), None))
    assert studio_job is not None
    await admin(emulator, "block", {"member": member, "reason": "a moderation record outlives erasure"})
    _embed, rows = await report(emulator)
    totals_before = csv_by_user(rows)["total"]
    assert totals_before == {"spent": 3, "reserved": 1, "refunded": 0, "granted": 0, "jobs": 3}

    # Changing one's mind erases nothing.
    ix = await emulator.invoke("forget-me", user=member)
    await ix.response()
    kept = await emulator.press_button(ix.original or {}, f"eq:keep:{member.id}", user=member)
    await kept.response()
    assert (await kept.wait_original(lambda m: "Nothing was erased" in m["content"]))["components"] == []
    assert len(await easel.bot.jobs.store.for_member(emulator.guild_id, member.id)) == 2

    ix = await emulator.invoke("forget-me", user=member)
    body = await ix.response()
    assert ix.ephemeral
    assert "**2 jobs** (**1** still running" in body["data"]["content"]
    question = await ix.wait_original()
    buttons = [c["custom_id"] for row in question["components"] for c in row["components"]]
    assert buttons == [f"eq:forget:{member.id}", f"eq:keep:{member.id}"]
    await easel.restart()  # the confirmation survives a restart
    pressed = await emulator.press_button(question, f"eq:forget:{member.id}", user=member)
    await pressed.response()
    answer = await pressed.wait_original(lambda m: "Erased" in m["content"], timeout=10)
    assert "Erased **2 jobs** (**1** running ones cancelled and refunded first)" in answer["content"]
    assert "block stays in place" in answer["content"]
    assert answer["components"] == [], "the question's buttons are gone"

    assert await easel.bot.jobs.store.for_member(emulator.guild_id, member.id) == []
    for job_id in (done_id, running_id):
        job = await easel.bot.jobs.store.get(job_id)
        assert job is not None
        assert (job.user_id, job.params) == (None, {}), "the job row stays, anonymised"
    assert not result_dir.exists() or not any(result_dir.iterdir()), "the result files are gone"
    assert studio_job.cancelled, "the running job was cancelled at the provider"
    left = await easel.bot.db.fetchall("SELECT kind, note, job_id FROM quota_ledger WHERE user_id = ?", (member.id,))
    # Only the carried-forward balance names the member: no job, no note, no history.
    assert [(r["kind"], r["note"], r["job_id"]) for r in left] == [("adjust", None, None)]

    _embed, rows = await report(emulator)
    after = csv_by_user(rows)
    assert str(member.id) not in after
    assert after["erased"] == {"spent": 2, "reserved": 0, "refunded": 1, "granted": 0, "jobs": 2}
    assert after["total"]["spent"] == totals_before["spent"], "the server's spending is unchanged"
    assert after["total"]["jobs"] == totals_before["jobs"]
    fresh = await quota(emulator, member)
    assert (fresh["held"], fresh["bonus"]) == (0, 0)
    row = await easel.bot.db.fetchone(
        "SELECT period_used FROM quota_members WHERE guild_key = ? AND user_id = ?", (emulator.guild_id, member.id)
    )
    assert row is not None
    assert row[0] == 2, "erasing is not a refill: the 2 credits spent today stay spent"
    assert fresh["status"] is not None, "erasing one's data does not lift a block"


async def test_quota_in_dms_shows_the_dm_policy(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    await start(
        easel_factory,
        studio,
        quota_dm_allowance=7,
        quota_dm_period="monthly",
        quota_dm_budget=50,
        mimipanda_api_token="panda-test-token",
        dm_paid_features=True,
    )
    member = emulator.add_member("tam")
    dm = await quota(emulator, member, guild=False)
    assert dm["title"] == "Your credits in DMs with Easel"
    assert (dm["available"], dm["allowance"], dm["used"], dm["budget"]) == (7, 7, 0, 50)
    assert "per month" in dm["allowance_text"]
    reset = datetime.fromtimestamp(dm["resets"], UTC)
    assert (reset.day, reset.hour) == (1, 0)
    assert f"{feature_name('ai_image')}: **1 credit** per image" in dm["costs"]

    ix = await emulator.invoke("studio", {"prompt": "in a dm", "style": "sync", "count": 2}, user=member, guild=False)
    await ix.response()
    await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    dm = await quota(emulator, member, guild=False)
    assert (dm["used"], dm["available"], dm["budget"]) == (2, 5, 48)
    here = await quota(emulator, member)
    assert (here["used"], here["available"]) == (0, 20), "DM spending is not this server's"
