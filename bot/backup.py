"""`python -m bot backup PATH`: a consistent copy of the data folder while the bot runs.

The database is copied with SQLite's online backup API in one step: one read transaction, so the copy is a
single moment of the database however much the bot writes meanwhile (in WAL mode readers never block it).
The job files (inputs/, results/) are copied after it: files are written before the rows that name them
and never changed afterwards, so every file the copied database refers to already exists (a job erased
during the backup may lose its files in the copy; its row is in the copy still, which /jobs shows as gone).

The backup is built under PATH.partial and renamed to PATH at the end: a PATH that exists is complete.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from bot.jobs.files import FileStore

BUSY_TIMEOUT_MS = 10_000
MANIFEST = "easel-backup.json"


class BackupError(Exception):
    """The backup could not be made; the message says why (nothing is left at PATH)."""


@dataclass(frozen=True)
class BackupReport:
    destination: Path
    database: Path  # the copy
    database_bytes: int
    schema_version: int
    files: int
    file_bytes: int


def _copy_database(source: Path, target: Path) -> int:
    """Online backup of `source` into a new single-file database at `target`; returns its schema version."""
    src = sqlite3.connect(source, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        src.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # pages=-1: everything in one step, one consistent snapshot
            # A self-contained file (no -wal beside it); Easel turns WAL back on when it opens it.
            dst.execute("PRAGMA journal_mode = DELETE")
            problem = dst.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise BackupError(f"the copy of the database failed its integrity check: {problem}")
            version = int(dst.execute("PRAGMA user_version").fetchone()[0])
        finally:
            dst.close()
    finally:
        src.close()
    return version


def _copy_files(data_dir: Path, target_dir: Path) -> tuple[int, int]:
    store = FileStore(data_dir)
    count = size = 0
    for folder in (store.inputs, store.results):
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name.endswith(".tmp"):  # .tmp: a write in progress, not a file yet
                continue
            destination = target_dir / path.relative_to(data_dir)
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(path, destination)
            except FileNotFoundError:
                continue  # erased since we listed it
            count += 1
            size += destination.stat().st_size
    return count, size


def backup(database_path: Path, destination: Path) -> BackupReport:
    """Copy the database and its job files into the new folder `destination`."""
    if not database_path.is_file():
        raise BackupError(f"there is no database at {database_path} (see DATABASE_PATH)")
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise BackupError(f"{destination} already exists and is not an empty folder: choose a new path")
    partial = destination.with_name(destination.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)  # left by a backup that was interrupted
    partial.mkdir(parents=True)
    try:
        copy = partial / database_path.name
        version = _copy_database(database_path, copy)
        files, file_bytes = _copy_files(database_path.parent, partial)
        report = BackupReport(
            destination=destination,
            database=destination / database_path.name,
            database_bytes=copy.stat().st_size,
            schema_version=version,
            files=files,
            file_bytes=file_bytes,
        )
        manifest = {
            "made_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "database": database_path.name,
            "schema_version": version,
            "files": files,
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if destination.exists():
            destination.rmdir()  # empty, checked above
        partial.rename(destination)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return report


def describe(report: BackupReport) -> str:
    mib = 1024 * 1024
    return (
        f"Backed up the database ({report.database_bytes / mib:.1f} MiB, schema version {report.schema_version}) "
        f"and {report.files} job files ({report.file_bytes / mib:.1f} MiB) to {report.destination}"
    )
