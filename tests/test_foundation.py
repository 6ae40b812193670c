"""The bot shell end to end: login, command sync policy, /about, errors, health, metrics."""

from __future__ import annotations

import logging

import httpx
import pytest

from bot.providers.registry import ADAPTER_CLASSES
from tests.conftest import EaselFactory
from tests.emulator import DiscordEmulator
from tests.harness import Easel


async def test_login_syncs_commands_once_and_not_again_on_unchanged_restart(
    emulator: DiscordEmulator, easel: Easel
) -> None:
    names = {c["name"] for c in emulator.commands}
    assert {"about", "jobs", "cancel"} <= names
    first = emulator.sync_count
    assert first == 1
    await easel.restart()
    assert emulator.sync_count == first, "an unchanged command tree must not be synced again"
    assert not easel.bot.commands_synced


async def test_changed_tree_is_synced_and_always_policy_syncs(emulator: DiscordEmulator, easel: Easel) -> None:
    await easel.restart(command_sync="always")
    assert emulator.sync_count == 2
    easel.bot_options["extra_extensions"] = ("tests.ext.boom",)
    await easel.restart(command_sync="auto")
    assert emulator.sync_count == 3
    assert "boom" in {c["name"] for c in emulator.commands}
    await easel.restart(command_sync="never")
    assert emulator.sync_count == 3


async def test_dev_guild_sync_goes_to_the_guild(emulator: DiscordEmulator, easel_factory: EaselFactory) -> None:
    await easel_factory(dev_guild_id=emulator.guild_id)
    assert "about" in {c["name"] for c in emulator.guild_commands[emulator.guild_id]}


async def test_about_lists_studios_ephemerally(emulator: DiscordEmulator, easel: Easel) -> None:
    member = emulator.add_member("alice")
    ix = await emulator.invoke("about", user=member)
    body = await ix.response()
    assert body["type"] == 4
    assert ix.ephemeral
    embed = body["data"]["embeds"][0]
    assert embed["title"].startswith("Easel ")
    studios = next(f for f in embed["fields"] if f["name"] == "Studios")["value"]
    assert "Mimi Panda" in studios and "off" in studios


async def test_about_shows_a_provider_as_on_when_its_key_is_set(
    emulator: DiscordEmulator, easel_factory: EaselFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An Easel whose Imagine adapter is missing (as before it was written): its key must not turn it on.
    monkeypatch.setitem(ADAPTER_CLASSES, "imagine", "bot.providers.not_written_yet:Adapter")
    # Real provider hosts are unreachable here (no DNS): starting must not depend on them.
    await easel_factory(mimipanda_api_token="mp-key", imagine_api_key="vk-test")
    ix = await emulator.invoke("about", user=emulator.add_member("bob"))
    studios = next(f for f in (await ix.response())["data"]["embeds"][0]["fields"] if f["name"] == "Studios")
    assert "✅ Mimi Panda" in studios["value"]
    assert "⛔ Imagine" in studios["value"], "a key without an adapter must not advertise the studio"
    assert "coloring" in {c["name"] for c in emulator.commands}


async def test_unexpected_error_becomes_a_polite_message_with_an_id(
    emulator: DiscordEmulator, easel_factory: EaselFactory, caplog: pytest.LogCaptureFixture
) -> None:
    easel = await easel_factory(extra_extensions=("tests.ext.boom",))
    easel.expect_errors = True
    caplog.set_level(logging.ERROR, logger="bot.tree")
    ix = await emulator.invoke("boom", user=emulator.add_member("carol"))
    body = await ix.response()
    text = body["data"]["content"]
    assert ix.ephemeral
    assert "Sorry" in text and "error id" in text
    error_id = text.split("`")[1]
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)
    assert len(easel.bot.unexpected_errors) == 1


async def test_healthz_and_metrics(emulator: DiscordEmulator, easel: Easel) -> None:
    await (await emulator.invoke("about", user=emulator.add_member("dave"))).response()
    async with httpx.AsyncClient() as client:
        health = await client.get(f"{easel.web_url}/healthz")
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "ok"
        metrics = (await client.get(f"{easel.web_url}/metrics")).text
    assert 'easel_commands_total{command="about"} 1.0' in metrics
    assert "easel_first_response_seconds_count 1.0" in metrics


async def test_healthz_reports_a_closed_gateway(emulator: DiscordEmulator, easel: Easel) -> None:
    assert easel.runtime is not None
    await easel.bot.close()
    async with httpx.AsyncClient() as client:
        health = await client.get(f"{easel.web_url}/healthz")
    assert health.status_code == 503
    assert "bot not running" in health.json()["problems"]
