"""Settings validation, the entry point without a token, migrations, group commit, log redaction."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bot.logs import RedactingFilter, redactor
from bot.settings import SettingsError, load_settings
from bot.storage.database import Database, DatabaseTooNew, Migration, bundled_migrations
from tests.emulator import DiscordEmulator
from tests.harness import free_port

ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "MIMPI_", "FLAIR_", "MIMIPANDA_", "IMAGINE_", "HTTP_", "LOG_", "SHARD_"))
    }
    env.update(extra)
    return env


def test_run_without_token_explains_itself(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=clean_env(PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "DISCORD_TOKEN is not set" in result.stderr
    assert "discord.com/developers/applications" in result.stderr
    assert ".env" in result.stderr


def test_invalid_settings_refuse_to_start_with_one_line_per_problem(tmp_path: Path) -> None:
    env = clean_env(
        PYTHONPATH=str(ROOT),
        DISCORD_TOKEN="secret-token-value",
        HTTP_PORT="eighty",
        LOG_FORMAT="xml",
        COMMAND_SYNC="sometimes",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3
    assert any(p.startswith("  - HTTP_PORT:") for p in problems)
    assert any(p.startswith("  - LOG_FORMAT:") for p in problems)
    assert any(p.startswith("  - COMMAND_SYNC:") for p in problems)
    assert "secret-token-value" not in result.stderr


def test_settings_defaults_and_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("DISCORD_", "MIMIPANDA_", "SHARD_", "PUBLIC_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SHARD_COUNT", "4")
    monkeypatch.setenv("SHARD_IDS", "0, 2")
    monkeypatch.setenv("MIMIPANDA_API_TOKEN", "")
    settings = load_settings(_env_file=None)
    assert settings.shard_ids == [0, 2]
    assert settings.database_path == Path("data/easel.db")
    assert settings.http_port == 8080 and settings.http_host == "127.0.0.1"
    assert settings.command_sync == "auto"
    assert settings.provider_enabled()["mimipanda"] is False  # blank means off
    monkeypatch.setenv("SHARD_IDS", "0,7")
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    assert "out of range" in str(caught.value)


async def test_migrations_on_a_fresh_database(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "new" / "easel.db")
    try:
        assert await db.schema_version() == len(bundled_migrations())
        mode = await db.fetchone("PRAGMA journal_mode")
        assert mode is not None and mode[0] == "wal"
        fk = await db.fetchone("PRAGMA foreign_keys")
        assert fk is not None and fk[0] == 1
        applied = await db.fetchall("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in applied] == list(range(1, len(bundled_migrations()) + 1))
    finally:
        await db.close()


async def test_migrations_on_an_existing_database_keep_its_data(tmp_path: Path) -> None:
    path = tmp_path / "easel.db"
    first = bundled_migrations()[:1]
    db = await Database.open(path, migrations=first)
    await db.execute("INSERT INTO guild_settings (guild_id, config) VALUES (1, '{\"results_as_spoilers\": true}')")
    assert await db.schema_version() == 1
    await db.close()
    db = await Database.open(path)
    try:
        assert await db.schema_version() == len(bundled_migrations())
        row = await db.fetchone("SELECT config FROM guild_settings WHERE guild_id = 1")
        assert row is not None and "spoilers" in row["config"]
    finally:
        await db.close()


async def test_refuses_a_database_newer_than_the_code(tmp_path: Path) -> None:
    path = tmp_path / "easel.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(DatabaseTooNew, match="newer version"):
        await Database.open(path)


async def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "easel.db"
    broken = [*bundled_migrations()[:1], Migration(2, "broken", "CREATE TABLE half (x INTEGER); SELECT * FROM nope;")]
    with pytest.raises(sqlite3.OperationalError):
        await Database.open(path, migrations=broken)
    db = await Database.open(path, migrations=bundled_migrations()[:1])
    try:
        assert await db.schema_version() == 1
        assert await db.fetchone("SELECT name FROM sqlite_master WHERE name = 'half'") is None
    finally:
        await db.close()


async def test_group_commit_keeps_each_operation_atomic(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "easel.db")
    try:

        def insert_twice(i: int):  # type: ignore[no-untyped-def]
            def op(conn: sqlite3.Connection) -> int:
                conn.execute("INSERT INTO command_sync (scope, tree_hash) VALUES (?, 'a')", (f"s{i}",))
                if i % 3 == 0:
                    raise ValueError("fails after its first statement")
                return i

            return op

        results = await asyncio.gather(*(db.write(insert_twice(i)) for i in range(60)), return_exceptions=True)
        failed = [r for r in results if isinstance(r, ValueError)]
        assert len(failed) == 20
        rows = await db.fetchall("SELECT scope FROM command_sync")
        assert len(rows) == 40, "a failing operation must roll back alone, not its batch"
    finally:
        await db.close()


def test_secrets_are_redacted_from_logs(caplog: pytest.LogCaptureFixture) -> None:
    redactor.add("super-secret-token-123")
    logger = logging.getLogger("tests.redaction")
    handler_filter = RedactingFilter()
    record = logger.makeRecord(
        "tests.redaction",
        logging.INFO,
        __file__,
        1,
        "token %s header Authorization: Bearer vk-abcdef url %s",
        ("super-secret-token-123", "https://discord.com/api/v10/webhooks/123/aW50ZXJhY3Rpb246dG9rZW4/messages"),
        None,
    )
    handler_filter.filter(record)
    text = record.getMessage()
    assert "super-secret-token-123" not in text
    assert "vk-abcdef" not in text
    assert "aW50ZXJhY3Rpb246dG9rZW4" not in text
    assert text.count("[redacted]") == 3


async def test_python_m_bot_serves_commands_and_stops_cleanly_on_sigterm(
    emulator: DiscordEmulator, tmp_path: Path
) -> None:
    """The real entry point, as a deployment runs it: a separate process against the emulator."""
    port = free_port()
    env = clean_env(
        PYTHONPATH=str(ROOT),
        DISCORD_TOKEN=emulator.bot_token,
        DISCORD_API_BASE_URL=emulator.api_base,
        DISCORD_GATEWAY_URL=emulator.gateway_url,
        DATABASE_PATH=str(tmp_path / "data" / "easel.db"),
        HTTP_PORT=str(port),
        LOG_LEVEL="INFO",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the bot process never became healthy")
        ix = await emulator.invoke("about", user=emulator.add_member("zed"))
        assert (await ix.response())["data"]["embeds"][0]["title"].startswith("Easel")
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    log = (await process.stderr.read()).decode()
    assert code == 0, log
    assert "Shutting down" in log
    assert emulator.bot_token not in log
    assert (tmp_path / "data" / "easel.db").exists()
