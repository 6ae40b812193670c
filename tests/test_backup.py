"""`python -m bot backup PATH` while the bot runs and writes; restoring it into a new data folder."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.jobs.engine import ProviderLimits
from bot.providers.base import Adapter
from bot.providers.registry import build_adapters
from bot.quotas import QuotaLedger
from bot.settings import Settings
from tests.conftest import EaselFactory
from tests.emulator import DiscordEmulator
from tests.fakes.studio import FakeStudio
from tests.fakes.studio_adapters import PollStudio, SyncStudio
from tests.harness import Easel, eventually, make_settings

ROOT = Path(__file__).resolve().parent.parent
FAST = ProviderLimits(min_poll_s=0.02, max_poll_s=0.2, retry_base_s=0.01)


@pytest.fixture
async def studio() -> AsyncIterator[FakeStudio]:
    fake = await FakeStudio(auto_finish=False).start()
    yield fake
    await fake.stop()


def with_studio(studio: FakeStudio) -> dict[str, Any]:
    def build(settings: Settings, client: httpx.AsyncClient) -> dict[str, Adapter]:
        return build_adapters(settings, client) | {
            cls.name: cls(client, studio.base_url, studio.token) for cls in (SyncStudio, PollStudio)
        }

    return {
        "adapter_factory": build,
        "extra_extensions": ("tests.ext.studio",),
        "provider_limits_override": dict.fromkeys(("studio_sync", "studio_poll"), FAST),
    }


async def run_backup(database: Path, destination: Path) -> tuple[int, str, str]:
    """The real command, in its own process, as an operator (or cron) runs it."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env.update(PYTHONPATH=str(ROOT), DATABASE_PATH=str(database))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "backup",
        str(destination),
        cwd=destination.parent,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def job_ids(easel: Easel) -> set[str]:
    rows = await easel.bot.db.fetchall("SELECT id FROM jobs")
    return {row[0] for row in rows}


async def test_backup_while_running_then_restore_into_a_new_data_folder(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio, tmp_path: Path
) -> None:
    easel = await easel_factory(**with_studio(studio))
    member = emulator.add_member("alice")
    done = await emulator.invoke("studio", {"prompt": "a fox", "style": "sync"}, user=member)
    await done.response()
    running = await emulator.invoke("studio", {"prompt": "a slow owl", "style": "poll"}, user=member)
    await running.response()
    await eventually(lambda: _delivered(easel))
    jobs_before = await job_ids(easel)
    assert len(jobs_before) == 2
    data_dir = easel.settings.data_dir
    results = sorted(p.relative_to(data_dir) for p in (data_dir / "results").rglob("*") if p.is_file())
    assert results, "the finished job's images are kept under results/"
    (data_dir / "inputs" / "ab").mkdir(parents=True)
    (data_dir / "inputs" / "ab" / "abcdef").write_bytes(b"an input photo")
    (data_dir / "inputs" / "ab" / "abcdef.tmp").write_bytes(b"half written")

    # The bot keeps writing while the backup runs: the copy is one moment of the database, never a mix.
    ledger = easel.bot.ledger
    assert isinstance(ledger, QuotaLedger)
    stop = asyncio.Event()

    async def keep_granting() -> int:
        grants = 0
        while not stop.is_set():
            await ledger.grant(emulator.guild_id, member.id, 1, by=emulator.owner.id, note=f"g{grants}")
            grants += 1
            await asyncio.sleep(0)
        return grants

    writer = asyncio.create_task(keep_granting())
    destination = tmp_path / "backups" / "monday"
    destination.parent.mkdir()
    try:
        code, out, err = await run_backup(easel.settings.database_path, destination)
    finally:
        stop.set()
        grants = await writer
    assert code == 0, err
    assert "Backed up the database" in out and str(destination) in out
    assert grants > 0
    assert not destination.with_name("monday.partial").exists()
    copy = sqlite3.connect(destination / "easel.db")
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "one self-contained file"
        notes = [row[0] for row in copy.execute("SELECT note FROM quota_ledger WHERE kind = 'grant' ORDER BY id")]
    finally:
        copy.close()
    assert notes == [f"g{i}" for i in range(len(notes))], "a prefix of the writes, in order: one consistent moment"
    assert (destination / "inputs" / "ab" / "abcdef").read_bytes() == b"an input photo"
    assert not (destination / "inputs" / "ab" / "abcdef.tmp").exists(), "a file being written is not a file yet"
    for relative in results:
        assert (destination / relative).read_bytes() == (data_dir / relative).read_bytes()

    # Restore, as the README says: stop, copy back (here into a new data folder), start.
    await easel.stop()
    restored = tmp_path / "restored"
    shutil.copytree(destination, restored)
    again = Easel(emulator, make_settings(emulator, restored), with_studio(studio))
    await again.start()
    try:
        assert await job_ids(again) == jobs_before
        ix = await emulator.invoke("jobs", user=member)
        listing = (await ix.response())["data"]["embeds"][0]["description"]
        assert all(job_id in listing for job_id in jobs_before)
        # The job that was running when the backup was made carries on from the restored folder.
        running_id = await _running_job(again)
        [studio_job] = studio.jobs  # the poll job; the sync one rendered at once
        await studio.finish(studio_job)
        await eventually(lambda: _finished(again, running_id), within=10)
    finally:
        await again.stop()


async def _delivered(easel: Easel) -> bool:
    row = await easel.bot.db.fetchone("SELECT COUNT(*) FROM jobs WHERE status = 'succeeded' AND delivery = 'delivered'")
    return bool(row and row[0] == 1)


async def _running_job(easel: Easel) -> str:
    row = await easel.bot.db.fetchone("SELECT id FROM jobs WHERE status NOT IN ('succeeded', 'failed')")
    assert row is not None
    return str(row[0])


async def _finished(easel: Easel, job_id: str) -> bool:
    row = await easel.bot.db.fetchone("SELECT status FROM jobs WHERE id = ?", (job_id,))
    return bool(row and row[0] == "succeeded")


async def test_backup_refuses_to_overwrite_and_explains_a_missing_database(tmp_path: Path) -> None:
    database = tmp_path / "data" / "easel.db"
    code, _out, err = await run_backup(database, tmp_path / "b1")
    assert code == 1 and "there is no database" in err
    database.parent.mkdir()
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    code, _out, err = await run_backup(database, taken)
    assert code == 1 and "not an empty folder" in err
    assert (taken / "keep.txt").read_text() == "mine"
    code, _out, err = await run_backup(database, tmp_path / "fresh")
    assert code == 0, err
    assert (tmp_path / "fresh" / "easel.db").exists()
