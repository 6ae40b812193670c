"""The first run: the shipped .env.example works, the invite URL, who may use the bot, command sync scopes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import discord
import httpx
import pytest
from discord import app_commands
from discord.ext import commands

from bot.__main__ import container_warnings
from bot.access import DM_PAID_OFF, GUILD_NOT_ALLOWED, paid_feature_allowed, require_paid_feature
from bot.quotas import QuotaLedger
from bot.settings import Settings, SettingsError, load_settings
from bot.storage.database import Database, bundled_migrations
from tests.conftest import EaselFactory
from tests.emulator import DiscordEmulator, Member
from tests.harness import Easel, eventually, free_port, make_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / ".env.example"


def env_without_settings(**extra: str) -> dict[str, str]:
    """The process environment minus anything that could be an Easel setting: only the .env file speaks."""
    names = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names and not k.startswith("EASEL_")}
    env.update(extra)
    return env


def env_file_from_example(directory: Path, **values: str) -> Path:
    """`.env.example` exactly as shipped, with a few lines appended (the last value of a name wins)."""
    path = directory / ".env"
    extra = "".join(f"{name}={value}\n" for name, value in values.items())
    path.write_text(EXAMPLE.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    return path


def test_every_blank_value_means_not_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower() in Settings.model_fields or name.startswith("EASEL_"):
            monkeypatch.delenv(name)
    blank = tmp_path / "blank.env"
    blank.write_text("".join(f"{name.upper()}=\n" for name in Settings.model_fields), encoding="utf-8")
    spaces = tmp_path / "spaces.env"
    spaces.write_text("".join(f"{name.upper()}=   \n" for name in Settings.model_fields), encoding="utf-8")
    defaults = Settings(_env_file=None)
    assert load_settings(_env_file=blank) == defaults
    assert load_settings(_env_file=spaces) == defaults
    # The same through the environment, and through code.
    for name in Settings.model_fields:
        monkeypatch.setenv(name.upper(), "")
    assert load_settings(_env_file=None) == defaults
    assert Settings(_env_file=None, quota_dm_budget="", http_port=" ") == defaults


def test_the_example_documents_every_setting_and_the_readme_the_new_ones() -> None:
    example = EXAMPLE.read_text(encoding="utf-8")
    names = {line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")}
    assert names == {name.upper() for name in Settings.model_fields}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("ALLOWED_GUILD_IDS", "DM_PAID_FEATURES", "EASEL_DEFAULT_DATABASE_PATH", "python -m bot backup"):
        assert name in readme, name


def test_the_shipped_example_loads_with_only_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower() in Settings.model_fields or name.startswith("EASEL_"):
            monkeypatch.delenv(name)
    settings = load_settings(_env_file=env_file_from_example(tmp_path, DISCORD_TOKEN="a-token"))
    assert settings.discord_token is not None
    assert settings.quota_dm_budget is None
    assert settings.database_path == Path("./data/easel.db")
    assert settings.http_host == "127.0.0.1"
    assert settings.allowed_guild_ids is None
    assert settings.dm_paid_features is False


def test_allowed_guild_ids_are_checked_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALLOWED_GUILD_IDS", raising=False)
    path = env_file_from_example(tmp_path, DISCORD_TOKEN="t", ALLOWED_GUILD_IDS="123, 456,")
    assert load_settings(_env_file=path).allowed_guild_ids == [123, 456]
    path = env_file_from_example(tmp_path, DISCORD_TOKEN="t", ALLOWED_GUILD_IDS="my server")
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=path)
    assert caught.value.problems == [
        "ALLOWED_GUILD_IDS: must be a comma-separated list of server ids, e.g. 1234,5678 (got 'my server')"
    ]


def test_container_defaults_win_over_blank_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the Docker image does: `--env-file .env` sets DATABASE_PATH= and HTTP_HOST= (blank) in the
    # container, and the image's EASEL_DEFAULT_* give the values that work there.
    monkeypatch.setenv("DATABASE_PATH", "")
    monkeypatch.setenv("HTTP_HOST", "")
    monkeypatch.setenv("EASEL_DEFAULT_DATABASE_PATH", "/data/easel.db")
    monkeypatch.setenv("EASEL_DEFAULT_HTTP_HOST", "0.0.0.0")
    settings = load_settings(_env_file=env_file_from_example(tmp_path, DISCORD_TOKEN="a-token"))
    assert settings.database_path == Path("/data/easel.db")
    assert settings.http_host == "0.0.0.0"
    monkeypatch.setenv("HTTP_HOST", "10.0.0.5")
    assert load_settings(_env_file=None).http_host == "10.0.0.5", "a value someone set still wins"


async def run_quick_start(emulator: DiscordEmulator, tmp_path: Path, **appended: str) -> tuple[int, str]:
    """`python -m bot` in a folder whose .env is the example plus a token and the emulator's URLs; ask
    /about once it is healthy, then SIGTERM. Returns the exit code and the log."""
    port = free_port()
    env_file_from_example(
        tmp_path,
        DISCORD_TOKEN=emulator.bot_token,
        DISCORD_API_BASE_URL=emulator.api_base,
        DISCORD_GATEWAY_URL=emulator.gateway_url,
        HTTP_PORT=str(port),  # 8080 may be taken on a shared machine
        **appended,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=env_without_settings(PYTHONPATH=str(ROOT)),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(400):
                if process.returncode is not None:
                    break
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        if process.returncode is None:
            ix = await emulator.invoke("about", user=emulator.add_member("first"))
            assert (await ix.response())["data"]["embeds"][0]["title"].startswith("Easel")
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    return code, (await process.stderr.read()).decode()


async def test_quick_start_runs_on_the_example_as_shipped(emulator: DiscordEmulator, tmp_path: Path) -> None:
    code, log = await run_quick_start(emulator, tmp_path)
    assert code == 0, log
    assert "Shutting down" in log
    assert (tmp_path / "data" / "easel.db").exists(), "the blank DATABASE_PATH means ./data/easel.db"
    assert emulator.bot_token not in log
    assert "anyone can add the bot to any server" in log, "the emulator's application is public"
    # The invite link, ready to open: this application, both scopes, exactly Easel's permissions.
    url = re.search(r"Invite Easel to a server with: (\S+)", log)
    assert url is not None, log
    query = parse_qs(urlsplit(url.group(1)).query)
    assert query["client_id"] == [str(emulator.application_id)]
    assert query["scope"] == ["bot applications.commands"]
    expected = discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
    )
    assert int(query["permissions"][0]) == expected.value


# --- Who may use it -------------------------------------------------------------------------------------


async def test_a_server_not_allowed_is_left_at_start(
    emulator: DiscordEmulator, easel_factory: EaselFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    other = emulator.guild_id + 1
    await easel_factory(allowed_guild_ids=[other])
    await emulator.wait_for(lambda: not emulator.guild.bot_present)
    assert any(r.method == "DELETE" and r.path == f"/users/@me/guilds/{emulator.guild_id}" for r in emulator.requests)
    assert any(f"Leaving server Emulated Guild ({emulator.guild_id}" in r.getMessage() for r in caplog.records)


async def test_an_allowed_server_is_kept_and_blank_means_any(
    emulator: DiscordEmulator, easel_factory: EaselFactory
) -> None:
    easel = await easel_factory(allowed_guild_ids=f"{emulator.guild_id + 1}, {emulator.guild_id}")
    assert easel.settings.allowed_guild_ids == [emulator.guild_id + 1, emulator.guild_id]
    await easel.restart(allowed_guild_ids="")
    # /about answered: the bot is past on_ready (where it would have left) and still in the server.
    assert (await (await emulator.invoke("about", user=emulator.add_member("a"))).response())["type"] == 4
    assert emulator.guild.bot_present
    assert not any(r.method == "DELETE" and r.path.startswith("/users/@me/guilds/") for r in emulator.requests)


async def test_a_server_that_adds_the_bot_is_left_unless_allowed(
    emulator: DiscordEmulator, easel_factory: EaselFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    emulator.guild.bot_present = False  # not in any server yet
    easel = await easel_factory(allowed_guild_ids=[emulator.guild_id + 1])
    assert list(easel.bot.guilds) == []
    emulator.add_bot_to_guild()
    await emulator.wait_for(lambda: not emulator.guild.bot_present)
    assert any("it just added the bot" in r.getMessage() for r in caplog.records)

    await easel.restart(allowed_guild_ids=[emulator.guild_id])
    emulator.add_bot_to_guild()
    assert await eventually(lambda: _in_guild(easel, emulator.guild_id))
    assert (await (await emulator.invoke("about", user=emulator.add_member("b"))).response())["type"] == 4
    assert emulator.guild.bot_present


async def test_a_server_unavailable_at_start_is_left_too(
    emulator: DiscordEmulator, easel_factory: EaselFactory
) -> None:
    # An outage on Discord's side: READY lists the server as unavailable and no GUILD_CREATE follows.
    # Leaving needs only its id, so it is not kept until it comes back.
    emulator.guild.outage = True
    await easel_factory(allowed_guild_ids=[emulator.guild_id + 1])
    await emulator.wait_for(lambda: not emulator.guild.bot_present)


async def _in_guild(easel: Easel, guild_id: int) -> bool:
    return easel.bot.get_guild(guild_id) is not None


async def test_a_public_bot_open_to_any_server_warns_at_start(
    emulator: DiscordEmulator, easel_factory: EaselFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    easel = await easel_factory()
    await eventually(lambda: _said(caplog, "Invite Easel"))
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "spends your studio credits" in r.getMessage()
    ]
    assert len(warnings) == 1 and "ALLOWED_GUILD_IDS" in warnings[0].getMessage()

    caplog.clear()
    await easel.restart(allowed_guild_ids=[emulator.guild_id])
    await eventually(lambda: _said(caplog, "Invite Easel"))
    assert not _said_now(caplog, "spends your studio credits"), "a server list answers the warning"

    caplog.clear()
    emulator.bot_public = False
    await easel.restart(allowed_guild_ids="")
    await eventually(lambda: _said(caplog, "Invite Easel"))
    assert not _said_now(caplog, "spends your studio credits"), "only the owner can add a private bot"


def _said_now(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in r.getMessage() for r in caplog.records)


async def _said(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return _said_now(caplog, text)


# --- Command sync remembers the application and the scope -------------------------------------------------


async def test_a_new_application_on_the_same_data_folder_registers_its_commands(
    emulator: DiscordEmulator, tmp_path: Path
) -> None:
    first = Easel(emulator, make_settings(emulator, tmp_path / "data"))
    await first.start()
    await first.stop()
    assert emulator.sync_count == 1
    async with DiscordEmulator(bot_token="another-token") as other:
        assert other.application_id != emulator.application_id
        second = Easel(other, make_settings(other, tmp_path / "data"))
        await second.start()
        try:
            assert other.sync_count == 1, "the same tree, but this application has never registered it"
            assert "about" in {c["name"] for c in other.commands}
        finally:
            await second.stop()
    # Back to the first token: its own record still says synced.
    again = Easel(emulator, make_settings(emulator, tmp_path / "data"))
    await again.start()
    await again.stop()
    assert emulator.sync_count == 1


async def test_leaving_the_dev_guild_removes_its_copies_once(
    emulator: DiscordEmulator, easel_factory: EaselFactory
) -> None:
    easel = await easel_factory(dev_guild_id=emulator.guild_id)
    assert "about" in {c["name"] for c in emulator.guild_commands[emulator.guild_id]}
    assert emulator.commands == []
    await easel.restart(dev_guild_id=None)
    assert emulator.guild_commands[emulator.guild_id] == [], "members would see every command twice"
    assert "about" in {c["name"] for c in emulator.commands}
    syncs = emulator.sync_count
    await easel.restart()
    assert emulator.sync_count == syncs, "cleared once, then nothing to do"


async def test_commands_synced_before_the_upgrade_are_synced_again_and_dev_copies_cleared(
    emulator: DiscordEmulator, tmp_path: Path
) -> None:
    # A database from before migration 007: it knew scopes, not applications.
    path = tmp_path / "data" / "easel.db"
    db = await Database.open(path, migrations=bundled_migrations()[:5])
    await db.execute("INSERT INTO command_sync (scope, tree_hash) VALUES ('global', 'old')")
    await db.execute("INSERT INTO command_sync (scope, tree_hash) VALUES (?, 'old')", (f"guild:{emulator.guild_id}",))
    await db.close()
    emulator.registry.overwrite(emulator.guild_id, [{"name": "about", "description": "old copy"}])
    easel = Easel(emulator, make_settings(emulator, tmp_path / "data"))
    await easel.start()
    try:
        assert emulator.guild_commands[emulator.guild_id] == []
        assert "about" in {c["name"] for c in emulator.commands}
    finally:
        await easel.stop()


# --- /help ------------------------------------------------------------------------------------------------


class Priced(commands.Cog):
    """A command that declares its charged feature, as the studio cogs do (loaded as tests.test_first_run)."""

    @app_commands.command(name="priced", description="Makes a numbered template", extras={"feature": "pbn"})
    async def priced(self, interaction: discord.Interaction[Any]) -> None:
        require_paid_feature(interaction)  # where the job engine will call it, before reserving credits
        await interaction.response.send_message("started", ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Priced())


async def help_text(emulator: DiscordEmulator, user: Member, *, guild: bool = True) -> str:
    ix = await emulator.invoke("help", user=user, guild=guild)
    body = await ix.response()
    assert ix.ephemeral
    text: str = body["data"]["embeds"][0]["description"]
    return text


async def test_help_lists_what_a_member_can_use_with_this_servers_costs(
    emulator: DiscordEmulator, easel_factory: EaselFactory
) -> None:
    easel = await easel_factory(extra_extensions=(__name__,))
    member = emulator.add_member("m")
    text = await help_text(emulator, member)
    lines = text.splitlines()
    # Every command Discord offers this member is there (read from the tree, so it stays true), one line each.
    offered = [c["name"] for c in emulator.commands if c["default_member_permissions"] is None]
    for name in offered:
        assert any(line.startswith(f"`/{name}") for line in lines), name
    ledger = easel.bot.ledger
    assert isinstance(ledger, QuotaLedger)
    default = (await ledger.costs(emulator.guild_id))["pbn"]
    assert f"`/priced` Makes a numbered template · {default} credits per image" in lines
    assert "`/about` What Easel is and which image studios are on here" in lines, "no feature: no cost"
    assert "quota-admin" not in text and "/owner" not in text and "For server admins" not in text

    await ledger.set_cost(emulator.guild_id, "pbn", 7)
    assert "`/priced` Makes a numbered template · 7 credits per image" in (await help_text(emulator, member))
    await ledger.set_cost(emulator.guild_id, "pbn", 0)
    assert "`/priced` Makes a numbered template · free here" in (await help_text(emulator, member))


async def test_help_shows_admins_their_commands_and_the_owner_theirs(
    emulator: DiscordEmulator, easel_factory: EaselFactory
) -> None:
    await easel_factory()
    admin = emulator.add_member("admin", admin=True)
    text = await help_text(emulator, admin)
    admin_part = text.split("**For server admins**")[1]
    assert "`/quota-admin grant`" in admin_part and "`/quota-admin allowance server`" in admin_part
    assert "/owner" not in text, "an admin is not the owner"

    owner_text = await help_text(emulator, emulator.owner)
    assert "`/owner servers`" in owner_text.split("**For the owner of this Easel**")[1]

    dm_text = await help_text(emulator, emulator.add_member("dm"), guild=False)
    assert "quota-admin" not in dm_text, "server-only commands are not offered in DMs"
    assert "`/help`" in dm_text


# --- Paid features in DMs -----------------------------------------------------------------------------------


async def priced_answer(emulator: DiscordEmulator, user: Member, *, guild: bool) -> str:
    ix = await emulator.invoke("priced", user=user, guild=guild)
    body = await ix.response()
    assert ix.ephemeral
    text: str = body["data"]["content"]
    return text


async def test_paid_features_in_dms_are_off_unless_the_owner_turns_them_on(
    emulator: DiscordEmulator, easel_factory: EaselFactory
) -> None:
    easel = await easel_factory(extra_extensions=(__name__,))
    assert easel.settings.dm_paid_features is False
    member = emulator.add_member("dm-user")
    assert await priced_answer(emulator, member, guild=True) == "started"
    assert await priced_answer(emulator, member, guild=False) == DM_PAID_OFF

    await easel.restart(dm_paid_features="true")
    assert await priced_answer(emulator, member, guild=False) == "started"


async def test_paid_features_are_refused_in_a_server_not_allowed(
    emulator: DiscordEmulator, easel_factory: EaselFactory
) -> None:
    # A server that added only the commands (no bot user to leave with) still sends interactions.
    await easel_factory(extra_extensions=(__name__,), allowed_guild_ids=[emulator.guild_id + 1])
    await emulator.wait_for(lambda: not emulator.guild.bot_present)
    assert await priced_answer(emulator, emulator.add_member("x"), guild=True) == GUILD_NOT_ALLOWED


def test_paid_feature_allowed_reads_the_settings_of_the_bot_answering() -> None:
    class Client:
        def __init__(self, **values: Any) -> None:
            self.settings = Settings(_env_file=None, **values)

    class FakeInteraction:  # only what the helper reads
        def __init__(self, guild_id: int | None, **values: Any) -> None:
            self.guild_id = guild_id
            self.client = Client(**values)

    def check(guild_id: int | None, **values: Any) -> str | None:
        return paid_feature_allowed(FakeInteraction(guild_id, **values))  # type: ignore[arg-type]

    assert check(None) == DM_PAID_OFF
    assert check(None, dm_paid_features=True) is None
    assert check(5) is None
    assert check(5, allowed_guild_ids="5,6") is None
    assert check(7, allowed_guild_ids="5,6") == GUILD_NOT_ALLOWED
    assert check(None, dm_paid_features=True, allowed_guild_ids="5") is None, "the list is about servers"


# --- Docker -------------------------------------------------------------------------------------------------


def dockerfile_healthcheck() -> list[str]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    command = re.search(r"HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])", text)
    assert command is not None
    parsed: list[str] = json.loads(command.group(1))
    return parsed


def compose_text() -> str:
    return (ROOT / "compose.yaml").read_text(encoding="utf-8")


async def run_healthcheck(port: str) -> int:
    argv = dockerfile_healthcheck()
    assert argv[0] == "python"
    env = env_without_settings(HTTP_PORT=port)
    process = await asyncio.create_subprocess_exec(
        sys.executable, *argv[1:], env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(process.wait(), timeout=30)


async def test_the_images_healthcheck_passes_on_a_healthy_bot_and_fails_otherwise(easel: Easel) -> None:
    assert easel.runtime is not None
    port = str(easel.runtime.web.port)
    assert await run_healthcheck(port) == 0
    await easel.bot.close()  # the gateway is gone: /healthz answers 503
    assert await run_healthcheck(port) != 0


def test_compose_runs_the_image_safely() -> None:
    text = compose_text()
    assert "restart: unless-stopped" in text
    assert re.search(r"^\s+- easel-data:/data$", text, re.M), "the data lives in a named volume"
    assert re.search(r"^volumes:\n  easel-data:", text, re.M)
    ports = re.findall(r'^\s+- "([^"]*:\$\{HTTP_PORT[^"]*)"$', text, re.M)
    assert ports and all(p.startswith("127.0.0.1:") for p in ports), "/metrics is not published to the world"
    code = dockerfile_healthcheck()[-1]
    assert f'- "{code}"' in text, "compose checks health the way the image does"
    assert "env_file: .env" in text


def test_the_image_defaults_and_warnings_for_settings_that_cannot_work_there(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "EASEL_DEFAULT_DATABASE_PATH=/data/easel.db" in dockerfile
    assert "EASEL_DEFAULT_HTTP_HOST=0.0.0.0" in dockerfile
    assert not re.search(r"^\s+(DATABASE_PATH|HTTP_HOST)=", dockerfile, re.M), "a blank .env line would hide them"
    image = {"EASEL_DEFAULT_DATABASE_PATH": "/data/easel.db", "EASEL_DEFAULT_HTTP_HOST": "0.0.0.0"}
    # An older .env (the example used to set these): Easel says what to change.
    old = Settings(_env_file=None, http_host="127.0.0.1", database_path=Path("./data/easel.db"))
    warnings = container_warnings(old, image)
    assert len(warnings) == 2
    assert "HTTP_HOST=127.0.0.1 inside a container" in warnings[0]
    assert "Leave DATABASE_PATH blank" in warnings[1]
    good = Settings(_env_file=None, http_host="0.0.0.0", database_path=Path("/data/easel.db"))
    assert container_warnings(good, image) == []
    assert container_warnings(old, {}) == [], "outside the image 127.0.0.1 and relative paths are the defaults"
