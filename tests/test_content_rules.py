"""Content rules end to end: the real bot, the emulator, the fake studio and the real SQLite ledger.

Every refusal is checked the same way: the member is told privately, the studio saw no request, and no
job row nor ledger entry exists for the member. Jobs come from the test extension's /studio command
(feature ai_image, in the "ai-images" group), as in tests/test_jobs.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.content import FEATURE_GROUPS, Rule, group_of, prompt_texts
from bot.content.matching import RuleSet, pattern_regex
from bot.errors import BadInput
from bot.quotas.policy import DEFAULT_COSTS
from tests.conftest import EaselFactory
from tests.emulator import DiscordEmulator, Member
from tests.emulator import permissions as perms
from tests.fakes.studio import FakeStudio
from tests.harness import Easel
from tests.test_jobs import run_job, start


@pytest.fixture
async def studio() -> AsyncIterator[FakeStudio]:
    fake = await FakeStudio().start()
    yield fake
    await fake.stop()


async def rules_admin(
    emulator: DiscordEmulator, command: str, options: dict[str, Any] | None = None, *, user: Member | None = None
) -> str:
    """Run `/rules-admin <command>` (as the server owner unless told) and return the private answer."""
    ix = await emulator.invoke(
        f"rules-admin {command}", options or {}, user=user or emulator.owner, override_permissions=user is not None
    )
    body = await ix.response()
    assert ix.ephemeral, f"/rules-admin {command} answers privately"
    content: str = body["data"]["content"]
    return content


async def ledger_rows(easel: Easel, member: Member) -> int:
    row = await easel.bot.db.fetchone("SELECT COUNT(*) FROM quota_ledger WHERE user_id = ?", (member.id,))
    assert row is not None
    return int(row[0])


async def refused(
    emulator: DiscordEmulator,
    easel: Easel,
    studio: FakeStudio,
    member: Member,
    prompt: str,
    *,
    channel_id: int | None = None,
    guild: bool = True,
) -> str:
    """A /studio the content rules refuse: checks nothing was asked of the studio, stored or charged."""
    asked_before = len(studio.requests)
    ix = await emulator.invoke(
        "studio", {"prompt": prompt, "style": "sync"}, user=member, channel_id=channel_id, guild=guild
    )
    body = await ix.response()
    assert ix.ephemeral, "the refusal is for the member only"
    assert len(studio.requests) == asked_before, "refused before any studio request"
    assert await easel.bot.jobs.store.for_member(emulator.guild_id if guild else None, member.id) == []
    assert await ledger_rows(easel, member) == 0, "nothing reserved, nothing spent"
    content: str = body["data"]["content"]
    return content


async def made(emulator: DiscordEmulator, member: Member, prompt: str, *, channel_id: int | None = None) -> str:
    ix = await emulator.invoke("studio", {"prompt": prompt, "style": "sync"}, user=member, channel_id=channel_id)
    body = await ix.response()
    assert "job `" in body["data"]["content"], body["data"]["content"]
    await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    return str(body["data"]["content"].split("job `")[1].split("`")[0])


# Matching, without the bot


def test_words_match_whole_words_across_simple_obfuscation() -> None:
    rules = RuleSet([Rule.build("word", "Cat")])
    for text in ("a cat here", "CAT!", "caaat", "c a t", "c.a.t", "c@t", "ç4t", "c\u200bat"):
        assert rules.first_match([text]) is not None, text
    for text in ("cats", "concat", "scatter", "educate", "a dog"):
        assert rules.first_match([text]) is None, text
    double = RuleSet([Rule.build("word", "ass")])
    assert double.first_match(["a$$"]) is not None
    for text in ("glass", "as", "class session", "a sassy hat"):
        assert double.first_match([text]) is None, text


def test_patterns_are_checked_when_added() -> None:
    assert pattern_regex(r"\bgore\w*").search("GOREFEST") is not None
    for bad, reason in (("[", "not a valid"), ("(a+)+", "repeats"), (r"(?:\w+\s?)+$", "repeats"), ("a?", "empty")):
        with pytest.raises(BadInput, match=reason):
            pattern_regex(bad)
    with pytest.raises(BadInput, match="at most"):
        pattern_regex("x" * 201)


def test_prompt_texts_are_the_free_text_options() -> None:
    params = {"prompt": "p", "negative_prompt": "n", "name": "m", "style": "anime", "_set_id": "x", "count": 2}
    assert sorted(prompt_texts(params)) == ["m", "n", "p"]


def test_every_charged_feature_has_exactly_one_switch() -> None:
    grouped = [f for group in FEATURE_GROUPS.values() for f in group.features]
    assert len(grouped) == len(set(grouped))
    assert set(DEFAULT_COSTS) <= set(grouped)
    assert group_of("portrait") == group_of("portrait_training") == "portraits"


# End to end


async def test_a_blocked_word_refuses_before_anything_is_spent_and_unblock_lifts_it(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    member = emulator.add_member("ada")
    assert "refused here" in await rules_admin(emulator, "block", {"word": "Fox"})
    answer = await refused(emulator, easel, studio, member, "a red f o o x in the snow")
    assert "Your prompt matches this server's blocked word “fox”" in answer
    listed = await rules_admin(emulator, "list")
    assert "`fox`" in listed
    assert "blocked word “fox”" in await rules_admin(emulator, "test", {"prompt": "FOX"})
    # Other prompts are not touched, and unblocking lets the word through again.
    await made(emulator, member, "a red dog")
    assert "Removed the blocked word “fox”" in await rules_admin(emulator, "unblock", {"entry": "fox"})
    await made(emulator, member, "a red fox")


async def test_a_blocked_pattern_refuses_and_bad_patterns_are_refused_to_admins(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    member = emulator.add_member("bea")
    assert "is not a valid regular expression" in await rules_admin(emulator, "block-pattern", {"pattern": "[x"})
    assert "repeats something" in await rules_admin(emulator, "block-pattern", {"pattern": "(a+)+b"})
    assert "refused here" in await rules_admin(emulator, "block-pattern", {"pattern": r"\bgore\w*"})
    answer = await refused(emulator, easel, studio, member, "A GOREFEST at night")
    assert "blocked pattern “\\bgore\\w*”" in answer


async def test_age_restricted_only_refuses_elsewhere_and_allows_nsfw_channels(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    member = emulator.add_member("cy")
    adults = emulator.add_channel("adults", nsfw=True)
    assert "only in age-restricted channels" in await rules_admin(emulator, "nsfw", {"only_age_restricted": "on"})
    answer = await refused(emulator, easel, studio, member, "a red fox")
    assert "only in age-restricted channels" in answer
    await made(emulator, member, "a red fox", channel_id=adults)
    assert "any channel" in await rules_admin(emulator, "nsfw", {"only_age_restricted": "off"})
    await made(emulator, member, "a red fox")


async def test_the_owner_can_keep_generation_out_of_dms(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio, content_age_restricted_only_dms=True)
    member = emulator.add_member("dee")
    answer = await refused(emulator, easel, studio, member, "a red fox", guild=False)
    assert "not in DMs" in answer
    await made(emulator, member, "a red fox")  # servers are not affected


async def test_a_feature_off_in_a_channel_is_refused_there_only(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    member = emulator.add_member("eli")
    quiet = emulator.add_channel("quiet")
    answer = await rules_admin(emulator, "feature", {"feature": "ai-images", "state": "off", "channel": quiet})
    assert f"is **off** in <#{quiet}>" in answer
    refusal = await refused(emulator, easel, studio, member, "a red fox", channel_id=quiet)
    assert "AI images from a prompt is switched off in this channel" in refusal
    await made(emulator, member, "a red fox")  # the default channel keeps it


async def test_a_feature_off_in_the_server_is_refused_unless_a_channel_turns_it_on(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    member = emulator.add_member("fay")
    art = emulator.add_channel("art")
    await rules_admin(emulator, "feature", {"feature": "ai-images", "state": "off"})
    refusal = await refused(emulator, easel, studio, member, "a red fox")
    assert "switched off in this server" in refusal
    await rules_admin(emulator, "feature", {"feature": "ai-images", "state": "on", "channel": art})
    await made(emulator, member, "a red fox", channel_id=art)
    listed = await rules_admin(emulator, "list")
    assert "AI images from a prompt: **off** in the whole server" in listed
    assert f"AI images from a prompt: **on** in <#{art}>" in listed
    await rules_admin(emulator, "feature", {"feature": "ai-images", "state": "default"})
    await made(emulator, member, "a red fox")


async def test_only_admins_change_or_see_the_rules(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    mods = emulator.add_role("Mods", perms.MANAGE_MESSAGES)
    moderator = emulator.add_member("mod", roles=[mods])
    member = emulator.add_member("gus")
    for who in (member, moderator):
        for command, options in (
            ("block", {"word": "fox"}),
            ("list", {}),
            ("nsfw", {"only_age_restricted": "on"}),
            ("feature", {"feature": "ai-images", "state": "off"}),
        ):
            answer = await rules_admin(emulator, command, options, user=who)
            assert "Only server admins" in answer
    await made(emulator, member, "a red fox")  # nothing changed
    admin = emulator.add_member("ivy", admin=True)
    assert "refused here" in await rules_admin(emulator, "block", {"word": "fox"}, user=admin)
    await refused(emulator, easel, studio, emulator.add_member("jo"), "fox")


# The prompt log


async def prompt_log(emulator: DiscordEmulator, target: Member, *, user: Member) -> dict[str, Any]:
    ix = await emulator.invoke("prompt-log", {"member": target}, user=user, override_permissions=True)
    body = await ix.response()
    assert ix.ephemeral, "the prompt log is for the moderator only"
    data: dict[str, Any] = body["data"]
    return data


async def test_the_prompt_log_shows_moderators_a_members_prompts_here_only(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio)
    mods = emulator.add_role("Mods", perms.MANAGE_MESSAGES)
    moderator = emulator.add_member("mod", roles=[mods])
    member, other = emulator.add_member("kim"), emulator.add_member("lou")
    first = await made(emulator, member, "a red fox")
    second = await made(emulator, member, "a *blue* whale")
    ix, third = await run_job(emulator, member, style="sync", prompt="a green owl")
    await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    await made(emulator, other, "someone else's prompt")
    # A job of the same member in another server (as it would be stored) must not show either.
    await easel.bot.db.execute(
        "INSERT INTO jobs (id, guild_id, channel_id, user_id, feature, provider, params, status, deadline_at, "
        "callback_secret, created_at, updated_at) VALUES ('othersrv', 1, 1, ?, 'ai_image', 'studio_sync', "
        "'{\"prompt\": \"another server\"}', 'succeeded', 0, 's', 0, 0)",
        (member.id,),
    )

    shown = await prompt_log(emulator, member, user=moderator)
    text = shown["embeds"][0]["description"]
    assert f"`{first}`" in text and "a red fox" in text
    assert f"`{second}`" in text and "a \\*blue\\* whale" in text, "markdown in prompts is shown as typed"
    assert text.index(second) < text.index(first), "newest first"
    for hidden in ("someone else", "another server", "othersrv"):
        assert hidden not in text
    assert f"`{third}`" in text and "a green owl" in text

    for who in (member, other):
        refusal = await prompt_log(emulator, member, user=who)
        assert "Only this server's moderators" in refusal["content"]
    assert (await prompt_log(emulator, member, user=emulator.owner))["embeds"], "admins are moderators too"


async def test_the_prompt_log_leaves_out_dm_jobs_and_forgets_with_the_jobs(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio
) -> None:
    easel = await start(easel_factory, studio, dm_paid_features=True)
    member = emulator.add_member("max")
    ix = await emulator.invoke("studio", {"prompt": "said in a dm", "style": "sync"}, user=member, guild=False)
    await ix.response()
    await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    job_id = await made(emulator, member, "said in the server")
    text = (await prompt_log(emulator, member, user=emulator.owner))["embeds"][0]["description"]
    assert job_id in text and "said in the server" in text
    assert "said in a dm" not in text
    # /forget-me anonymises the member's jobs here: their prompts are gone from the log with them.
    await easel.bot.jobs.erase_member(emulator.guild_id, member.id)
    gone = await prompt_log(emulator, member, user=emulator.owner)
    assert "has no jobs in this server" in gone["content"]
