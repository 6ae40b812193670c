"""The job engine under load: 10,000 in-flight jobs polled against a provider on loopback.

The real bot (through the Discord emulator) resumes 10,000 submitted jobs from its SQLite database, as after
a restart, and polls them against a provider running in another process. After a warm-up it measures, for
`--seconds`: CPU seconds the bot process used per minute, its peak RSS, and the lag between each job's due
time and its actual poll (p50, p99). Targets: under 5% of one core (3 CPU-s per minute), under 300 MB RSS,
p99 lag under 1 s.

    .venv/bin/python bench/jobs.py [--jobs 10000] [--seconds 60] [--age 3600]

Jobs are created `--age` seconds in the past (long-running work such as trainings), so each is polled
about every POLL_MAX_SECONDS (300 s by default): ~33 polls a second, the polling the engine does in
production. Those polls are coalesced into 0.5 s batches (see bot/jobs/scheduler.py), so the lag printed
includes up to half a second of deliberate batching.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bot.jobs.store import JobStore  # noqa: E402
from bot.providers.base import Adapter, JobContext, Pending, Submitted  # noqa: E402
from bot.providers.http import ProviderHTTP  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.storage.database import Database  # noqa: E402
from tests.emulator import DiscordEmulator  # noqa: E402
from tests.harness import Easel, free_port, make_settings  # noqa: E402


class BenchAdapter(Adapter):
    name = "bench"

    def __init__(self, client: httpx.AsyncClient, base_url: str, *, offline: bool = False) -> None:
        self.base_url = base_url
        self.offline = offline
        self.http = ProviderHTTP(client, provider="bench", base_url=base_url, auth_headers={})

    async def submit(self, job: JobContext) -> Submitted:
        raise NotImplementedError  # the bench starts from jobs already submitted

    async def check(self, job: JobContext) -> Pending:
        if self.offline:  # measures the engine alone: what a poll costs besides the HTTP request
            return Pending(progress=42)
        answer = await self.http.json("GET", f"/jobs/{job.ref['id']}", safe=True)
        return Pending(progress=answer.get("progress"))  # the engine's polling policy decides when next

    def deadline(self, feature: str) -> float:
        return 24 * 3600


async def seed(path: Path, count: int, age: float) -> None:
    db = await Database.open(path)
    now = time.time()

    def insert(conn: sqlite3.Connection) -> None:
        for i in range(count):
            created = now - age - i * 0.01
            JobStore.insert(
                conn,
                {
                    "id": f"b{i:07d}",
                    "guild_id": 1,
                    "channel_id": 1,
                    "user_id": 1 + i % 500,
                    "feature": "ai_image",
                    "provider": "bench",
                    "params": {"prompt": "bench"},
                    "status": "running",
                    "credits": 0,
                    "provider_ref": {"id": i},
                    "progress": 42.0,
                    "next_check_at": now,
                    "deadline_at": now + 86400,
                    "callback_secret": secrets.token_urlsafe(8),
                    "created_at": created,
                    "started_at": created,
                    "updated_at": created,
                    "delivery": "none",
                },
                [],
            )

    await db.write(insert)
    await db.close()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(jobs: int, seconds: float, age: float, warmup: float, offline: bool = False) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "poll_server.py"), str(port)])  # noqa: ASYNC220, S603
    emulator = DiscordEmulator()
    await emulator.start()
    try:
        await asyncio.sleep(1.0)  # let the provider process bind
        with tempfile.TemporaryDirectory() as tmp:
            settings: Settings = make_settings(emulator, Path(tmp), log_level="WARNING")
            await seed(settings.database_path, jobs, age)
            base = f"http://127.0.0.1:{port}"
            easel = await Easel(
                emulator,
                settings,
                {
                    "adapter_factory": lambda s, client: {"bench": BenchAdapter(client, base, offline=offline)},
                },
            ).start()
            lags: list[float] = []
            polls = 0
            scheduler = easel.bot.jobs.scheduler
            measuring = False

            def observe(lag: float) -> None:
                nonlocal polls
                if measuring:
                    lags.append(lag)
                    polls += 1

            scheduler.lag_observer = observe
            await asyncio.sleep(warmup)  # recovery spreads the first polls; then steady state
            measuring = True
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            measuring = False
            in_flight = len(scheduler)
            await easel.stop()
    finally:
        await emulator.stop()
        server.terminate()
        server.wait(timeout=10)
    return {"cpu": cpu, "wall": wall, "lags": lags, "polls": polls, "in_flight": in_flight, "rss": rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument(
        "--warmup", type=float, default=310.0, help="seconds before measuring: one poll cycle, to reach steady state"
    )
    parser.add_argument("--age", type=float, default=3600.0, help="how old the in-flight jobs are (s)")
    parser.add_argument("--offline", action="store_true", help="no HTTP: measure the engine's own cost per poll")
    ns = parser.parse_args()
    r = asyncio.run(run(ns.jobs, ns.seconds, ns.age, ns.warmup, ns.offline))
    cpu_per_min = r["cpu"] / r["wall"] * 60
    lags = sorted(r["lags"])
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else float("nan")
    print(f"jobs engine: {ns.jobs} in-flight jobs, measured {r['wall']:.0f} s after {ns.warmup:.0f} s warm-up")
    print(f"  polls {r['polls']} ({r['polls'] / r['wall']:.0f}/s); jobs still scheduled {r['in_flight']}")
    print(
        f"  CPU per poll {r['cpu'] / max(1, r['polls']) * 1000:.2f} ms{' (engine only, no HTTP)' if ns.offline else ''}"
    )
    print(f"  CPU {cpu_per_min:.2f} s per minute = {cpu_per_min / 60 * 100:.1f}% of one core   (target < 5%)")
    print(f"  peak RSS {r['rss']:.0f} MB   (target < 300 MB)")
    if lags:
        print(
            f"  poll lag p50 {statistics.median(lags) * 1000:.0f} ms   p99 {p99 * 1000:.0f} ms   "
            f"max {lags[-1] * 1000:.0f} ms   (target p99 < 1 s)"
        )


if __name__ == "__main__":
    main()
