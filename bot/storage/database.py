"""The SQLite database: one aiosqlite connection, WAL, numbered migrations, group-committed writes.

Reads and writes are plain synchronous functions over a `sqlite3.Connection` that run on aiosqlite's
database thread, so a repository call costs one hop off the event loop however many statements it runs.

Writes are *group-committed*: every `write(fn)` waiting at the same moment runs inside one
`BEGIN IMMEDIATE ... COMMIT`, each in its own SAVEPOINT, so one failing operation rolls back alone while the
batch shares one commit. That is what keeps atomic balance updates fast under a burst of commands.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

log = logging.getLogger(__name__)

T = TypeVar("T")
Fn = Callable[[sqlite3.Connection], Any]

BUSY_TIMEOUT_MS = 5000
_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class DatabaseError(Exception):
    pass


class DatabaseTooNew(DatabaseError):
    """The database was migrated by a newer Easel: running older code on it could corrupt it."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("bot.storage.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise DatabaseError(f"migrations must be numbered 001, 002, ... without gaps; found {versions}")
    return found


class Database:
    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._pending: list[tuple[Fn, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path, migrations: list[Migration] | None = None) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: sqlite3 never opens transactions behind our back; we issue BEGIN ourselves.
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        db = cls(conn, path)
        try:
            await db.read(_configure)
            await db.migrate(bundled_migrations() if migrations is None else migrations)
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        await self._conn.close()

    # Running code on the database thread

    async def _on_db_thread(self, fn: Callable[..., T], *args: Any) -> T:
        # aiosqlite runs every call through Connection._execute on its own thread; we use the same door
        # so that several statements cost one hop.
        return await self._conn._execute(fn, *args)  # type: ignore[no-untyped-call,no-any-return]

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the database thread outside any explicit transaction (reads)."""
        return await self._on_db_thread(lambda: fn(self._conn._conn))

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` atomically: all of it or nothing. Returns fn's result or raises its exception.

        The operation is committed even if the awaiting task is cancelled after queueing it.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    outcomes = await self._on_db_thread(self._run_batch, [fn for fn, _ in batch])
                except Exception as exc:  # noqa: BLE001 - the COMMIT failed: nothing in the batch happened
                    outcomes = [(False, exc)] * len(batch)
                except BaseException:
                    for _, future in batch:
                        future.cancel()
                    raise
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._flusher = None

    def _run_batch(self, fns: list[Fn]) -> list[tuple[bool, Any]]:
        conn = self._conn._conn
        outcomes: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for fn in fns:
                conn.execute("SAVEPOINT op")
                try:
                    result = fn(conn)
                except Exception as exc:  # noqa: BLE001 - handed back to the caller that queued fn
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((False, exc))
                else:
                    conn.execute("RELEASE op")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    # Conveniences for one statement

    async def fetchone(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Row | None:
        return await self.read(lambda c: c.execute(sql, params).fetchone())

    async def fetchall(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return await self.read(lambda c: c.execute(sql, params).fetchall())

    async def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> int:
        """One write statement; returns the number of rows changed."""
        return await self.write(lambda c: c.execute(sql, params).rowcount)

    async def ping(self) -> bool:
        row = await self.fetchone("SELECT 1")
        return row is not None

    # Migrations

    async def schema_version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def migrate(self, migrations: list[Migration]) -> None:
        current = await self.schema_version()
        latest = migrations[-1].version if migrations else 0
        if current > latest:
            raise DatabaseTooNew(
                f"the database {self.path} is at schema version {current}, but this Easel knows only up to "
                f"{latest}: it was used by a newer version. Upgrade Easel, or restore a backup."
            )
        for migration in migrations:
            if migration.version <= current:
                continue
            log.info("Applying database migration %03d_%s", migration.version, migration.name)
            await self._on_db_thread(self._apply, migration)

    def _apply(self, migration: Migration) -> None:
        conn = self._conn._conn
        try:
            # executescript() cannot take parameters; the version is our own integer.
            conn.executescript(
                "BEGIN IMMEDIATE;\n"
                f"{migration.sql}\n;"
                "INSERT INTO schema_migrations (version, name) "
                f"VALUES ({migration.version:d}, '{migration.name}');\n"
                f"PRAGMA user_version = {migration.version:d};\n"
                "COMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
    conn.execute("PRAGMA foreign_keys = ON")
    # WAL + NORMAL: durable across application crashes; a power cut may lose the last commits only.
    conn.execute("PRAGMA synchronous = NORMAL")
    # schema_migrations must exist before the first migration records itself.
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))"
    )
