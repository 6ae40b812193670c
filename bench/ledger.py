"""Benchmark the quota ledger: reserve + commit from 100 concurrent tasks, against raw sqlite3.

    .venv/bin/python bench/ledger.py [--ops 20000] [--tasks 100] [--dir DIR]

One operation is one reserve or one commit (a job is two operations). On a fresh SQLite file in WAL mode:
1. QuotaLedger.reserve/commit from --tasks concurrent asyncio tasks (the Database group-commits them);
2. on the same file, the same logical operations hand-written with the sqlite3 module, synchronously, one
   transaction per operation: reserve = read the balance row + insert the entry + update the balance row,
   commit = insert the settlement entry. This is the reference;
3. for information: the ledger's own reserve_in/commit_in, sequential, one transaction per operation.
Targets: at least 5,000 ops/s, and at least 50% of the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from bot.quotas import QuotaLedger
from bot.storage.database import Database, DatabaseError, Migration, bundled_migrations

GUILD = 4242
USERS = 1000
FIRST_USER = 10_000
ROLE = 77
TARGET_OPS = 5000
TARGET_RATIO = 0.5


def migrations() -> list[Migration]:
    try:
        return bundled_migrations()
    except DatabaseError:  # another feature's migration number is still missing: ours alone will do
        found = []
        for entry in resources.files("bot.storage.migrations").iterdir():
            if entry.name[:3] in ("001", "003") and entry.name.endswith(".sql"):
                found.append(Migration(int(entry.name[:3]), entry.name[4:-4], entry.read_text("utf-8")))
        return sorted(found, key=lambda m: m.version)


def user_of(n: int) -> int:
    return FIRST_USER + n % USERS


async def bench_ledger(ledger: QuotaLedger, jobs: int, tasks: int) -> float:
    numbers: Iterator[int] = iter(range(jobs))  # shared: each task takes the next job

    async def worker() -> None:
        for n in numbers:
            job_id = f"async-{n}"
            await ledger.reserve(
                guild_id=GUILD, user_id=user_of(n), role_ids=(ROLE,), feature="ai_image", units=1, job_id=job_id
            )
            await ledger.commit(job_id)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return 2 * jobs / (time.perf_counter() - started)


def raw_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def bench_raw(path: Path, jobs: int) -> float:
    """The reference: the same logical operations, lean hand-written SQL, one transaction each."""
    conn = raw_connection(path)
    allowance, period_start = 1_000_000, 0
    started = time.perf_counter()
    for n in range(jobs):
        job_id, user = f"raw-{n}", user_of(n)
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(
            "SELECT period_used FROM quota_members WHERE guild_key = ? AND user_id = ?", (GUILD, user)
        ).fetchone()
        used = row[0] if row else 0
        if used + 1 > allowance:
            raise RuntimeError("the reference ran out of credits")
        conn.execute(
            "INSERT INTO quota_ledger (at, guild_key, user_id, kind, period_start, allowance_delta, job_id, "
            "feature, units) VALUES (?, ?, ?, 'reserve', ?, -1, ?, 'ai_image', 1)",
            (int(time.time()), GUILD, user, period_start, job_id),
        )
        conn.execute(
            "INSERT INTO quota_members (guild_key, user_id, period_used) VALUES (?, ?, 1) "
            "ON CONFLICT (guild_key, user_id) DO UPDATE SET period_used = period_used + 1",
            (GUILD, user),
        )
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT OR IGNORE INTO quota_ledger (at, guild_key, user_id, kind, period_start, job_id) "
            "SELECT ?, guild_key, user_id, 'commit', period_start, job_id FROM quota_ledger "
            "WHERE job_id = ? AND kind = 'reserve'",
            (int(time.time()), job_id),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return 2 * jobs / elapsed


def bench_ledger_sync(path: Path, ledger: QuotaLedger, jobs: int) -> float:
    """Informative: the ledger's own SQL, sequential, one transaction per operation (no batching)."""
    conn = raw_connection(path)
    started = time.perf_counter()
    for n in range(jobs):
        job_id = f"sync-{n}"
        conn.execute("BEGIN IMMEDIATE")
        ledger.reserve_in(
            conn, guild_id=GUILD, user_id=user_of(n), role_ids=(ROLE,), feature="ai_image", units=1, job_id=job_id
        )
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        ledger.commit_in(conn, job_id)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return 2 * jobs / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=20_000, help="operations per measurement (2 per job)")
    parser.add_argument("--tasks", type=int, default=100, help="concurrent tasks for the ledger")
    parser.add_argument("--dir", type=Path, default=None, help="where to create the database file")
    args = parser.parse_args()
    jobs = args.ops // 2

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "ledger-bench.db"
        db = await Database.open(path, migrations=migrations())
        ledger = QuotaLedger(db)
        await ledger.set_default_allowance(GUILD, 1_000_000)  # nobody runs out: we measure the happy path
        ledger_ops = await bench_ledger(ledger, jobs, args.tasks)
        await db.close()
        raw_ops = bench_raw(path, jobs)
        sync_ops = bench_ledger_sync(path, ledger, jobs)  # its *_in methods need no Database

    ratio = ledger_ops / raw_ops
    print(f"database file: {path} (WAL, synchronous=NORMAL), {jobs:,} jobs = {2 * jobs:,} operations each")
    rows = [
        (f"QuotaLedger, {args.tasks} concurrent tasks", f"{ledger_ops:,.0f} ops/s", ""),
        ("raw sqlite3, sequential, 1 transaction per op", f"{raw_ops:,.0f} ops/s", "(reference)"),
        ("ledger SQL, sequential, 1 transaction per op", f"{sync_ops:,.0f} ops/s", "(for information)"),
        ("ratio QuotaLedger / raw sqlite3", f"{ratio:.0%}", ""),
    ]
    for label, value, note in rows:
        print(f"{label + ':':50}{value:>14}  {note}".rstrip())
    ok = ledger_ops >= TARGET_OPS and ratio >= TARGET_RATIO
    print(f"targets (>= {TARGET_OPS:,} ops/s and >= {TARGET_RATIO:.0%} of raw): {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    asyncio.run(main())
