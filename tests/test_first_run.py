"""The first run: the shipped .env.example works, the invite URL, who may use the bot, command sync scopes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import discord
import httpx
import pytest

from bot.settings import Settings, load_settings
from tests.emulator import DiscordEmulator
from tests.harness import free_port

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
