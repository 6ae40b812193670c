"""/owner: only the application's owner or team; servers, leave, studios and spend through the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from bot.providers.registry import ADAPTER_CLASSES
from bot.quotas import QuotaLedger
from cogs.owner import NOT_OWNER
from tests.conftest import EaselFactory
from tests.emulator import DiscordEmulator, EmulatorUsageError, Interaction, Member
from tests.harness import Easel


async def answer(ix: Interaction) -> dict[str, Any]:
    """The message the member finally sees: the first response, or the followup after a defer."""
    body = await ix.response()
    if body["type"] == 5:
        return await ix.wait_followup()
    data: dict[str, Any] = body["data"]
    return data


def ledger_of(easel: Easel) -> QuotaLedger:
    assert isinstance(easel.bot.ledger, QuotaLedger)
    return easel.bot.ledger


async def spend(easel: Easel, guild_id: int | None, user: Member, feature: str, job_id: str, outcome: str) -> int:
    """A job's credits as the engine moves them: reserved, then committed, refunded or still held."""
    ledger = ledger_of(easel)
    credits = await ledger.reserve(
        guild_id=guild_id, user_id=user.id, role_ids=[], feature=feature, units=1, job_id=job_id
    )
    if outcome == "commit":
        await ledger.commit(job_id)
    elif outcome == "refund":
        await ledger.refund(job_id, "failed")
    return credits


async def test_the_owner_sees_servers_with_members_and_credits_this_period(
    emulator: DiscordEmulator, easel: Easel
) -> None:
    alice, bob = emulator.add_member("alice"), emulator.add_member("bob")
    spent = await spend(easel, emulator.guild_id, alice, "coloring", "j1", "commit")
    held = await spend(easel, emulator.guild_id, bob, "pbn", "j2", "held")
    await spend(easel, emulator.guild_id, bob, "ai_image", "j3", "refund")  # refunded: costs nothing
    dm = await spend(easel, None, alice, "upscale", "j4", "commit")
    assert spent and held and dm

    ix = await emulator.invoke("owner servers", user=emulator.owner)
    message = await answer(ix)
    assert ix.ephemeral
    assert "embeds" in message, message
    embed = message["embeds"][0]
    assert embed["title"] == "Easel is in 1 server"
    line = next(line for line in embed["description"].splitlines() if str(emulator.guild_id) in line)
    assert f"{len(emulator.guild.members)} members" in line
    assert f"{spent + held} credits" in line
    assert f"**DMs**: {dm} credits" in embed["description"]


async def test_server_admins_who_are_not_the_owner_are_refused(emulator: DiscordEmulator, easel: Easel) -> None:
    admin = emulator.add_member("admin", admin=True)
    for command, options in (
        ("owner servers", {}),
        ("owner spend", {}),
        ("owner studios", {}),
        ("owner leave", {"server_id": str(emulator.guild_id)}),
    ):
        ix = await emulator.invoke(command, options, user=admin)
        body = await ix.response()
        assert ix.ephemeral
        assert body["data"]["content"] == NOT_OWNER, command
    assert emulator.guild.bot_present, "an admin who is not the owner cannot make Easel leave"

    # Members don't even see it; where a server loosened that, the bot still refuses.
    member = emulator.add_member("member")
    with pytest.raises(EmulatorUsageError, match="hides"):
        await emulator.invoke("owner spend", user=member)
    ix = await emulator.invoke("owner spend", user=member, override_permissions=True)
    assert (await ix.response())["data"]["content"] == NOT_OWNER


async def test_team_members_are_owners_and_nobody_else_is(
    emulator: DiscordEmulator, easel_factory: EaselFactory
) -> None:
    developer = emulator.add_member("dev", admin=True)
    emulator.team_members = [developer]
    await easel_factory()
    ix = await emulator.invoke("owner studios", user=developer)
    assert (await answer(ix))["embeds"][0]["title"] == "Studios"
    # The server's owner is an admin everywhere here, but the application belongs to the team.
    refused = await emulator.invoke("owner studios", user=emulator.owner)
    assert (await refused.response())["data"]["content"] == NOT_OWNER


async def test_the_owner_makes_easel_leave_a_server(emulator: DiscordEmulator, easel: Easel) -> None:
    bad = await answer(await emulator.invoke("owner leave", {"server_id": "12ab"}, user=emulator.owner))
    assert "is not a server id" in bad["content"]
    unknown = await answer(await emulator.invoke("owner leave", {"server_id": "42"}, user=emulator.owner))
    assert "not in a server with id `42`" in unknown["content"]
    assert emulator.guild.bot_present

    ix = await emulator.invoke("owner leave", {"server_id": str(emulator.guild_id)}, user=emulator.owner)
    message = await answer(ix)
    assert f"Easel left **Emulated Guild** (`{emulator.guild_id}`)" in message["content"]
    assert not emulator.guild.bot_present
    await emulator.wait_for(lambda: easel.bot.get_guild(emulator.guild_id) is None)


async def test_studios_show_what_is_on_keys_and_recent_errors(
    emulator: DiscordEmulator, easel_factory: EaselFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ADAPTER_CLASSES, "imagine", "bot.providers.not_written_yet:Adapter")
    easel = await easel_factory(mimipanda_api_token="mp-key", imagine_api_key="vk-test")
    # What the job engine counts when jobs end.
    easel.bot.metrics.jobs.labels("mimipanda", "coloring", "succeeded").inc(3)
    easel.bot.metrics.jobs.labels("mimipanda", "pbn", "failed").inc()
    easel.bot.metrics.jobs.labels("mimipanda", "coloring", "expired").inc()
    ix = await emulator.invoke("owner studios", user=emulator.owner)
    fields = {f["name"].split(" (")[0]: f["value"] for f in (await answer(ix))["embeds"][0]["fields"]}
    assert fields["Mimi Panda"].startswith("✅ on")
    assert "3 jobs succeeded, 2 failed or expired" in fields["Mimi Panda"]
    assert "key set, but this version has no adapter" in fields["Imagine by Vyro"]
    assert "no key (set MIMPI_API_KEY)" in fields["mimpi.ai"]
    assert "mp-key" not in str(fields) and "vk-test" not in str(fields)


async def test_spend_per_studio_this_period(emulator: DiscordEmulator, easel: Easel) -> None:
    nothing = await answer(await emulator.invoke("owner spend", user=emulator.owner))
    assert nothing["embeds"][0]["description"] == "Nothing spent yet this period."

    alice = emulator.add_member("alice")
    coloring = await spend(easel, emulator.guild_id, alice, "coloring", "a1", "commit")
    pbn = await spend(easel, None, alice, "pbn", "a2", "held")
    await spend(easel, emulator.guild_id, alice, "upscale", "a3", "refund")
    portrait = await spend(easel, emulator.guild_id, alice, "portrait", "a4", "commit")

    embed = (await answer(await emulator.invoke("owner spend", user=emulator.owner)))["embeds"][0]
    assert embed["title"] == f"Credits spent this period: {coloring + pbn + portrait}"
    lines = embed["description"].splitlines()
    mimi = next(line for line in lines if line.startswith("**Mimi Panda**"))
    assert f"{coloring + pbn} credits" in mimi and "Upscale" not in mimi
    assert any(line.startswith(f"**mimpi.ai**: {portrait} credits") for line in lines)
