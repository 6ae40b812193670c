"""Retention: files older than RETENTION_DAYS are removed, and training photos once their model is trained;
the data folder's disk use is measured for /metrics.

What open jobs and open training sets still need is never removed: a job's results stay until it is
finished and delivered, an input file stays while any active job or open set uses it (the job store's
`sha_in_use`, which every feature keeping input files extends). Removing a job's results leaves its row
(history, the server's totals) and notes when in its meta (`files_removed_at`), so /jobs can say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.jobs.files import FileStore
from bot.jobs.model import FINAL
from bot.jobs.store import JobStore
from bot.metrics import Metrics
from bot.storage.database import Database

log = logging.getLogger(__name__)

DAY_S = 86_400.0
RUN_INTERVAL_S = 3600.0  # how often files are checked for removal
FIRST_RUN_DELAY_S = 120.0  # after start: the engine resumes its jobs first
MEASURE_INTERVAL_S = 300.0  # how often the data folder's size is measured (walking it costs disk reads)
REMOVED_KEY = "files_removed_at"  # in a job's meta: when retention removed its result files
_FINAL_SQL = ",".join(f"'{s.value}'" for s in FINAL)


@dataclass
class RetentionReport:
    results: int = 0  # jobs whose result files were removed
    inputs: int = 0  # input files (photos, uploads) removed for age
    trained_photos: int = 0  # training photos removed because their model was trained
    bytes_freed: int = 0


def disk_usage(root: Path) -> int:
    """Bytes of every file under `root` (symlinks not followed). Walks the disk: call in a thread."""
    total = 0
    stack = [root]
    while stack:
        folder = stack.pop()
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, PermissionError), os.scandir(folder) as it:
            for entry in it:
                with contextlib.suppress(FileNotFoundError):
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
    return total


def _old_files(folder: Path, cutoff: float) -> list[tuple[Path, int]]:
    """Files under `folder` last written before `cutoff`, with their sizes. Call in a thread."""
    found: list[tuple[Path, int]] = []
    if not folder.is_dir():
        return found
    for path in folder.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            if path.is_file() and stat.st_mtime < cutoff:
                found.append((path, stat.st_size))
    return found


def _size_or_missing(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def _remove_tree(path: Path) -> int:
    size = disk_usage(path)
    shutil.rmtree(path, ignore_errors=True)
    return size


def trained_photos_referrer(days: float | None) -> str:
    """For JobStore.add_input_referrer when trained photos are kept: a trained set's photos stay (until
    they are older than the retention period, when one is set)."""
    sql = (
        "SELECT 1 FROM training_images p JOIN training_sets s ON s.id = p.set_id "
        "WHERE p.sha256 = ? AND s.status = 'training'"
    )
    if days is not None:
        # SQLite's own clock: the referrer runs inside JobStore.sha_in_use, which has no `now` to give.
        sql += f" AND p.added_at >= (julianday('now') - 2440587.5) * 86400.0 - {float(days) * DAY_S!r}"
    return sql + " LIMIT 1"


class Retention:
    def __init__(
        self,
        *,
        db: Database,
        store: JobStore,
        files: FileStore,
        days: float | None,
        remove_trained_photos: bool = True,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.store = store
        self.files = files
        self.days = days
        self.remove_trained_photos = remove_trained_photos
        self.metrics = metrics
        self.clock = clock
        self.last_disk_bytes: int | None = None
        self._lock = asyncio.Lock()  # one run at a time (the periodic task, a test, an admin)

    async def run(self, now: float | None = None) -> RetentionReport:
        """One pass; safe while jobs run. Returns what it removed."""
        async with self._lock:
            report = RetentionReport()
            now = self.clock() if now is None else now
            if self.days is not None:
                cutoff = now - self.days * DAY_S
                await self._old_results(cutoff, now, report)
                await self._old_inputs(cutoff, report)
            if self.remove_trained_photos:
                await self._trained_photos(report)
            if report.results or report.inputs or report.trained_photos:
                log.info(
                    "Retention removed the results of %d jobs, %d old input files and %d trained photos (%d bytes)",
                    report.results,
                    report.inputs,
                    report.trained_photos,
                    report.bytes_freed,
                )
            return report

    async def _old_results(self, cutoff: float, now: float, report: RetentionReport) -> None:
        # Finished, delivered (or given up on) jobs only: a result still to be posted is still needed.
        rows = await self.db.fetchall(
            f"SELECT id FROM jobs WHERE status IN ({_FINAL_SQL}) AND delivery != 'pending' "
            "AND COALESCE(finished_at, updated_at) < ? AND json_extract(meta, '$." + REMOVED_KEY + "') IS NULL "
            "AND EXISTS (SELECT 1 FROM job_results r WHERE r.job_id = jobs.id)",
            (cutoff,),
        )
        for row in rows:
            job_id = str(row["id"])
            report.bytes_freed += await asyncio.to_thread(_remove_tree, self.files.result_dir(job_id))
            await self.db.execute(
                "UPDATE jobs SET meta = json_set(meta, '$." + REMOVED_KEY + "', ?) WHERE id = ?", (now, job_id)
            )
            report.results += 1
        # Folders of jobs the database no longer knows (a crash between writing files and the row).
        for folder in await self._orphan_result_dirs(cutoff):
            report.bytes_freed += await asyncio.to_thread(_remove_tree, folder)

    async def _orphan_result_dirs(self, cutoff: float) -> list[Path]:
        root = self.files.results

        def old_dirs() -> list[Path]:
            if not root.is_dir():
                return []
            return [p for p in root.iterdir() if p.is_dir() and p.stat().st_mtime < cutoff]

        candidates = await asyncio.to_thread(old_dirs)
        if not candidates:
            return []

        def unknown(conn: sqlite3.Connection) -> list[Path]:
            return [
                p for p in candidates if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (p.name,)).fetchone() is None
            ]

        return await self.db.read(unknown)

    async def _remove_unused_input(self, sha: str, path: Path, size: int) -> bool:
        # Under the file's lock: a job being created with this file right now either referenced it already
        # (in use: kept) or will write it again after us.
        async with self.files.holding([sha]):
            if await self.store.sha_in_use(sha):
                return False
            await asyncio.to_thread(path.unlink, True)
            return True

    async def _old_inputs(self, cutoff: float, report: RetentionReport) -> None:
        for path, size in await asyncio.to_thread(_old_files, self.files.inputs, cutoff):
            if await self._remove_unused_input(path.name, path, size):
                report.inputs += 1
                report.bytes_freed += size

    async def _trained_photos(self, report: RetentionReport) -> None:
        # Sets whose training job has ended (or whose job is gone): their photos taught the model already.
        rows = await self.db.fetchall(
            "SELECT DISTINCT p.sha256 FROM training_images p JOIN training_sets s ON s.id = p.set_id "
            "LEFT JOIN jobs j ON j.id = s.job_id WHERE s.status = 'training' "
            f"AND (j.id IS NULL OR j.status IN ({_FINAL_SQL}))"
        )
        for row in rows:
            sha = str(row["sha256"])
            path = self.files.input_path(sha)
            size = await asyncio.to_thread(_size_or_missing, path)
            if size >= 0 and await self._remove_unused_input(sha, path, size):
                report.trained_photos += 1
                report.bytes_freed += size

    async def measure(self) -> int:
        """The data folder's size, off the event loop; kept for /metrics (which never walks the disk)."""
        size = await asyncio.to_thread(disk_usage, self.files.root)
        self.last_disk_bytes = size
        if self.metrics is not None:
            self.metrics.data_dir_bytes.set(size)
        return size

    async def run_forever(self) -> None:
        """Measure every few minutes; remove old files every hour (first a while after start)."""
        next_run = self.clock() + FIRST_RUN_DELAY_S
        while True:
            if self.clock() >= next_run:
                try:
                    await self.run()
                except Exception:
                    log.exception("Retention failed; trying again in %.0f s", RUN_INTERVAL_S)
                next_run = self.clock() + RUN_INTERVAL_S
            try:
                await self.measure()
            except Exception:
                log.exception("Measuring the data folder failed")
            await asyncio.sleep(min(MEASURE_INTERVAL_S, max(1.0, next_run - self.clock())))
