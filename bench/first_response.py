"""First-response latency under a burst: the real bot, through the Discord emulator, on this machine.

A burst of N slash commands (default 500) from 100 members, spread evenly over 1 s; prints p50, p99 and
max time from dispatch (the emulator sending INTERACTION_CREATE) to the bot's first response arriving at the
emulator, and how many missed Discord's 3 s deadline. Target on a 2-core machine: p99 < 100 ms, none missed.

    .venv/bin/python bench/first_response.py [--count 500] [--members 100] [--command about|studio]
        [--bot-process | --in-process] [--compare] [--slot-limit N]
        [--py-spy PATH [--keep-samples DIR]] [--profile FILE.prof]
        [--gc-freeze] [--discord-connections N] [--hold-steps N]      (experiments, bot process only)

`about` answers at once; `studio` creates a real job first (quota reservation + job row in SQLite, in one
transaction), answers with its queued status, and the job's first step submits it to the fake studio.

--bot-process (the default) runs the bot in its own process, as a deployment does (bench/
first_response_worker.py: the real Runtime, its own core), with the emulator and the fake studio in this
one. --in-process runs all three in this process's one event loop: then the emulator's and the fake's CPU
delay the bot's answers. --compare runs both modes for both commands and prints them side by side, with the
CPU seconds of each process. --profile FILE profiles the bot process during the (bot-process) burst with
cProfile and prints where its time goes per command; --py-spy PATH does it with py-spy (install it apart,
e.g. `python3 -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy`): no overhead in the bot, and the
database thread too (bench/first_response_profile.py). Each row also shows how long each process's loop
thread waited for a core (the machine is shared: read the load average) and the bot's garbage collections.

The experiments change the bot process only, without touching the bot's code: --gc-freeze calls
gc.freeze() once it is ready; --discord-connections N caps discord.py's connections (discord.Client's
`connector` option); --hold-steps N starts up to N due job steps per 10 ms round while first responses are
pending (the bot's default is 1; a large N releases every due step at once, as before the throttle).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import BaseModel

from bench.first_response_process import BurstBot, InProcessBot, SamplerOptions, WorkerBot, process_cpu
from bench.first_response_profile import breakdown, sampled_breakdown
from tests.emulator import DiscordEmulator
from tests.fakes.studio import FakeStudio

FIRST_STEP_WAIT_S = 30.0  # bound on the wait for every job's first step (submit to the studio) after the burst


class BurstResult(BaseModel):
    mode: str
    command: str
    count: int
    latencies_ms: list[float]
    missed: int
    wall_s: float
    bench_cpu_s: float  # this process: the emulator and the fake studio (and the bot, in-process)
    bench_wait_s: float  # this process's loop thread ready to run but waiting for a core
    bot_cpu_s: float | None = None  # the bot's process, all threads (bot-process mode)
    bot_main_cpu_s: float | None = None  # its event loop's thread
    bot_wait_s: float | None = None  # its loop thread ready to run but waiting for a core
    gc_counts: list[int] = []  # garbage collections by generation (the bot's; in-process: the whole process's)
    gc_seconds: list[float] = []
    submitted: int = 0  # jobs the studio received by the end (studio command)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


async def run(
    count: int,
    members: int,
    command: str,
    spread: float,
    *,
    bot_process: bool,
    slot_limit: int | None = None,
    profile: Path | None = None,
    sampler: SamplerOptions | None = None,
    discord_connections: int | None = None,
    gc_freeze: bool = False,
    hold_steps: int | None = None,
) -> BurstResult:
    studio = await FakeStudio(auto_finish=False).start()
    emulator = DiscordEmulator()
    await emulator.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp)
            bot: BurstBot = (
                WorkerBot(
                    emulator,
                    studio,
                    data,
                    slot_limit,
                    profile=profile,
                    sampler=sampler,
                    discord_connections=discord_connections,
                    gc_freeze=gc_freeze,
                    hold_steps=hold_steps,
                )
                if bot_process
                else InProcessBot(emulator, studio, data, slot_limit)
            )
            await bot.start()
            try:
                return await burst(emulator, studio, bot, count, members, command, spread)
            finally:
                await bot.stop()
    finally:
        await emulator.stop()
        await studio.stop()


async def burst(
    emulator: DiscordEmulator, studio: FakeStudio, bot: BurstBot, count: int, members: int, command: str, spread: float
) -> BurstResult:
    users = [emulator.add_member(f"user{i}") for i in range(members)]
    args = {"prompt": "a lighthouse at dusk", "style": "poll"} if command == "studio" else None

    async def one(i: int) -> Any:
        await asyncio.sleep(spread * i / count)
        return await emulator.invoke(command, args, user=users[i % members])

    # Warm-up: first-call costs (imports, caches) are not what a running bot pays.
    warm_up_jobs = len(studio.jobs) + 1 if command == "studio" else 0
    await (await emulator.invoke(command, args, user=users[0])).response(timeout=10)
    await wait_for(lambda: len(studio.jobs) >= warm_up_jobs, 10.0)  # the warm-up's job is submitted
    expected_jobs = warm_up_jobs + count if command == "studio" else 0
    # This process stands in for Discord and the studio: a full collection of its heap (the emulator, the
    # fake, every module the tests import) stalls its loop for 100-150 ms, and every answer arriving meanwhile
    # would be timed late. Its start-up heap is frozen, as the bot freezes its own once ready.
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    bench_before, bot_before = process_cpu(os.getpid()), bot.cpu()
    await bot.profile_start()
    interactions = await asyncio.gather(*(one(i) for i in range(count)))
    missed = 0
    for ix in interactions:
        try:
            await ix.response(timeout=10)
        except TimeoutError:
            missed += 1
    wall = time.perf_counter() - started
    # The jobs' first steps (claim, submit, status edit) run after the answers: their CPU belongs to the burst.
    await wait_for(lambda: len(studio.jobs) >= expected_jobs, FIRST_STEP_WAIT_S)
    await bot.profile_stop()
    bench_after, bot_after = process_cpu(os.getpid()), bot.cpu()
    latencies = [ix.response_latency * 1000 for ix in interactions if ix.response_latency is not None]
    missed += sum(1 for lat in latencies if lat > 3000)
    return BurstResult(
        mode=bot.mode,
        command=command,
        count=count,
        latencies_ms=latencies,
        missed=missed,
        wall_s=wall,
        bench_cpu_s=bench_after.total_s - bench_before.total_s,
        bench_wait_s=bench_after.loop_wait_s - bench_before.loop_wait_s,
        bot_cpu_s=None if bot_after is None or bot_before is None else bot_after.total_s - bot_before.total_s,
        bot_main_cpu_s=None if bot_after is None or bot_before is None else bot_after.loop_s - bot_before.loop_s,
        bot_wait_s=None if bot_after is None or bot_before is None else bot_after.loop_wait_s - bot_before.loop_wait_s,
        submitted=len(studio.jobs),
        gc_counts=bot.gc()[0],
        gc_seconds=bot.gc()[1],
    )


async def wait_for(condition: Callable[[], bool], within: float) -> None:
    for _ in range(int(within / 0.02)):  # polled: the studio's job table has no event to wait on
        if condition():
            return
        await asyncio.sleep(0.02)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def format_row(r: BurstResult) -> str:
    lat = r.latencies_ms
    p = (
        f"p50 {statistics.median(lat):7.1f}  p99 {percentile(lat, 99):7.1f}  max {max(lat):7.1f}"
        if lat
        else "no answers"
    )
    bot = "bot (shared)"
    if r.bot_cpu_s is not None:
        bot = f"bot {r.bot_cpu_s:4.2f} s (loop {r.bot_main_cpu_s:4.2f}, waited for a core {r.bot_wait_s:4.2f})"
    return (
        f"  {r.mode:<12} /{r.command:<7} {p} ms  answered {len(lat)}/{r.count}  missed {r.missed}  "
        f"GC gen0/1/2 {'/'.join(map(str, r.gc_counts))} in {'/'.join(f'{x:.2f}' for x in r.gc_seconds)} s  "
        f"CPU: bench {r.bench_cpu_s:4.2f} s (waited {r.bench_wait_s:4.2f}), {bot}  burst {r.wall_s:.2f} s"
    )


def verdict(r: BurstResult) -> str:
    met = bool(r.latencies_ms) and percentile(r.latencies_ms, 99) < 100 and r.missed == 0
    return "met" if met else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--spread", type=float, default=1.0, help="seconds over which the burst is spread")
    parser.add_argument("--command", choices=["about", "studio"], default="about")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--bot-process", dest="bot_process", action="store_true", default=True)
    mode.add_argument("--in-process", dest="bot_process", action="store_false")
    parser.add_argument("--compare", action="store_true", help="both modes, both commands, side by side")
    parser.add_argument(
        "--slot-limit", type=int, default=None, help="the poll studio's jobs share this many slots (default: no limit)"
    )
    parser.add_argument(
        "--discord-connections",
        type=int,
        default=None,
        help="bot process: cap discord.py's connections to Discord at this many (an experiment; default none)",
    )
    parser.add_argument("--gc-freeze", action="store_true", help="bot process: gc.freeze() once started")
    parser.add_argument(
        "--hold-steps", type=int, default=None, help="bot process: job steps started per 10 ms round while members wait"
    )
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the bot process into this file")
    parser.add_argument(
        "--py-spy", type=Path, default=None, help="sample the bot process with this py-spy executable (installed apart)"
    )
    parser.add_argument("--keep-samples", type=Path, default=None, help="keep py-spy's raw samples in this folder")
    parser.add_argument("--py-spy-rate", type=int, default=250, help="py-spy samples per second")
    ns = parser.parse_args()
    # Clients that go away at the end of a run are the bench's doing, not news.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    logging.getLogger("tests.emulator.gateway").setLevel(logging.ERROR)

    runs: list[tuple[str, bool]] = (
        [(c, m) for c in ("about", "studio") for m in (True, False)] if ns.compare else [(ns.command, ns.bot_process)]
    )
    print(f"first response: {ns.count} commands from {ns.members} members over {ns.spread:.1f} s")
    print(f"  load average before: {load_average()}")
    results: list[BurstResult] = []
    for command, bot_process in runs:
        profiled = bot_process
        profile = ns.profile if profiled else None
        with tempfile.TemporaryDirectory() as samples_dir:
            sampler = None
            if ns.py_spy is not None and profiled:
                where = ns.keep_samples or Path(samples_dir)
                where.mkdir(parents=True, exist_ok=True)
                sampler = SamplerOptions(ns.py_spy, where / f"{command}.txt", ns.py_spy_rate)
            job: Coroutine[Any, Any, BurstResult] = run(
                ns.count,
                ns.members,
                command,
                ns.spread,
                bot_process=bot_process,
                slot_limit=ns.slot_limit,
                profile=profile,
                sampler=sampler,
                discord_connections=ns.discord_connections,
                gc_freeze=ns.gc_freeze,
                hold_steps=ns.hold_steps,
            )
            result = asyncio.run(job)
            results.append(result)
            print(format_row(result) + f"  target p99 < 100 ms, none missed: {verdict(result)}", flush=True)
            if profile is not None:
                print(breakdown(profile, ns.count))
            if sampler is not None:
                loop_cpu = result.bot_main_cpu_s or 0.0
                print(sampled_breakdown(sampler.output, ns.count, loop_cpu, (result.bot_cpu_s or 0.0) - loop_cpu))
    print(f"  load average after: {load_average()}")


if __name__ == "__main__":
    main()
