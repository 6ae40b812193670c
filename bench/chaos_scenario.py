"""The chaos scenario: members start jobs at random while the studio and Discord fail at random and the
bot is SIGKILLed mid-flight; then the invariants (see chaos_checks.py).

The bot runs in a subprocess (bench/chaos_worker.py) and is killed with SIGKILL: no task is cancelled, no
transaction finished, no socket closed politely, which is what a crash, an OOM kill or a lost host does. An
in-process "stop the scheduler with grace=0" would still let finally-blocks and pending writes run, and would
share the event loop with the emulator. The emulator and the studio live in this process, so they outlive
every restart and see everything the bot ever sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import chaos_checks as checks  # noqa: E402
from bench.chaos_process import READY_TIMEOUT_S, BotProcess  # noqa: E402
from bench.chaos_worker import WorkerConfig  # noqa: E402
from tests.emulator import DiscordEmulator  # noqa: E402
from tests.emulator.faults import KINDS as DISCORD_KINDS  # noqa: E402
from tests.emulator.faults import RestFaults  # noqa: E402
from tests.emulator.interaction import Interaction  # noqa: E402
from tests.fakes.studio import EXTRA_KINDS as STUDIO_EXTRA_KINDS  # noqa: E402
from tests.fakes.studio import FAULT_KINDS as STUDIO_KINDS  # noqa: E402
from tests.fakes.studio import FakeStudio, RandomFaults  # noqa: E402
from tests.harness import free_port  # noqa: E402

MIN_UP_S = 2.0  # between a restart and the next crash
COMMANDS_WAIT_S = 15.0  # for the bot to take the last commands (it answers in well under 3 s when alive)
STYLES = ("sync", "poll", "callback")


class ChaosConfig(BaseModel):
    """One run. `seed` fixes the plan (who starts what and when, when the crashes come) and the fault draws'
    random streams; which request meets which fault still depends on timing, so two runs with one seed are
    alike, not identical."""

    jobs: int = Field(default=200, ge=1, le=5000)
    restarts: int = Field(default=5, ge=0, le=100)
    seed: int = 1
    fault_rate: float = Field(default=0.15, ge=0.0, le=1.0)
    members: int = Field(default=30, ge=1, le=500)
    spread_s: float | None = None  # jobs start over this many seconds; default 0.25 s a job, at least 8 s
    cancel_share: float = Field(default=0.1, ge=0.0, le=1.0)  # per job started: a member also presses /cancel
    fail_share: float = Field(default=0.05, ge=0.0, le=1.0)  # prompts the studio fails (refund path)
    multi_part_share: float = Field(default=0.05, ge=0.0, le=1.0)  # 12 images: a result in two messages
    deadline_s: float = 40.0  # the adapters' job deadline: a job the engine still tracks ends by then
    adapter_timeout_s: float = 1.0
    slow_s: float = 1.6  # slow studio answers: beyond the adapter timeout
    slot_limit: int = 4  # the poll studio's concurrent jobs
    callback_finish_s: float = 1.0  # callback-style jobs finish (and call back) this long after their create
    final_wait_s: float = 60.0  # after the last start and restart: how long jobs get to reach an end
    studio_kinds: tuple[str, ...] = STUDIO_KINDS
    discord_kinds: tuple[str, ...] = DISCORD_KINDS
    log_level: str = "WARNING"
    keep_dir: Path | None = None  # keep the data folder and worker logs here (else a temporary folder)

    @field_validator("studio_kinds")
    @classmethod
    def _studio_kinds(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        return _known(kinds, STUDIO_KINDS + STUDIO_EXTRA_KINDS)

    @field_validator("discord_kinds")
    @classmethod
    def _discord_kinds(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        return _known(kinds, DISCORD_KINDS)

    @model_validator(mode="after")
    def _slow_is_too_slow(self) -> ChaosConfig:
        if self.slow_s <= self.adapter_timeout_s:
            raise ValueError("slow_s must exceed adapter_timeout_s: a slow answer is one the adapter gives up on")
        return self

    def spread(self) -> float:
        return self.spread_s if self.spread_s is not None else max(8.0, self.jobs * 0.25)

    def time_budget(self) -> float:
        """An upper bound for a whole run, however badly the bot behaves: starts, load, settling, checks."""
        return self.spread() + (self.restarts + 1) * (READY_TIMEOUT_S + MIN_UP_S + 1) + self.final_wait_s + 120


def _known(kinds: tuple[str, ...], allowed: tuple[str, ...]) -> tuple[str, ...]:
    unknown = set(kinds) - set(allowed)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(allowed)}")
    return kinds


@dataclass(frozen=True)
class JobPlan:
    index: int  # the tag in the prompt ("chaos-<index>"), by which studio and database are matched
    at: float  # seconds into the load
    member: Any
    options: dict[str, Any]
    cancel_after: float | None  # the member then presses /cancel on a random job of theirs


@dataclass
class ChaosReport:
    config: ChaosConfig
    jobs: int = 0
    invoked: int = 0
    not_dispatched: int = 0
    unanswered: int = 0  # commands whose interaction was never acknowledged (a Discord fault or a crash)
    lost_commands: int = 0  # commands that made no job: never reached the bot, or died with it
    cancels: int = 0
    restarts: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    deliveries: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    invariants: list[checks.Invariant] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    slot_peak: int = 0
    bot_stall_s: float = 0.0  # the longest the bot's event loop was blocked (over 1 s only)
    bench_stall_s: float = 0.0  # the same for this process (emulator, studio): it skews everything if large
    settle_s: float = 0.0
    wall_s: float = 0.0
    data_dir: Path | None = None

    @property
    def violations(self) -> dict[str, int]:
        return {inv.name: inv.count for inv in self.invariants if inv.count}


class Chaos:
    def __init__(self, config: ChaosConfig, data_dir: Path) -> None:
        self.cfg = config
        self.data_dir = data_dir
        self.rng = random.Random(config.seed)  # the plan: jobs, members, options, crash times
        self.live_rng = random.Random(config.seed * 3)  # choices made as things happen (downtime, whom to cancel)
        self.studio_faults = RandomFaults(
            config.fault_rate, random.Random(config.seed * 3 + 1), kinds=config.studio_kinds, slow_s=config.slow_s
        )
        self.discord_faults = RestFaults(
            config.fault_rate, random.Random(config.seed * 3 + 2), kinds=config.discord_kinds
        )
        self.studio = FakeStudio(chaos=self.studio_faults)
        self.emu = DiscordEmulator()
        self.emu.middlewares.append(self.discord_faults.middleware)
        self.report = ChaosReport(config, data_dir=data_dir)
        self.up = asyncio.Event()
        self.db_path = data_dir / "easel.db"
        self._finishing: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._commands: dict[int, Interaction] = {}  # tag -> the /studio interaction that carried it

    # Reading the bot's database from outside (read-only; the bot is the only writer)

    def _member_jobs(self, user_id: int) -> list[str]:
        try:
            with checks.reading(self.db_path) as conn:
                return [r[0] for r in conn.execute("SELECT id FROM jobs WHERE user_id = ?", (user_id,))]
        except sqlite3.Error:
            return []

    def _unsettled(self) -> int:
        """Jobs not final, or final with a notice or result still to post."""
        try:
            with checks.reading(self.db_path) as conn:
                row = conn.execute(
                    "SELECT COUNT(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed', 'cancelled', 'expired') "
                    "OR delivery = 'pending'"
                ).fetchone()
                return int(row[0])
        except sqlite3.Error:
            return -1

    def _unseen_commands(self) -> list[int]:
        """Tags of /studio commands the bot has neither answered nor made a job of (yet)."""
        with contextlib.suppress(sqlite3.Error), checks.reading(self.db_path) as conn:
            made = {job.tag for job in checks.read_jobs_in(conn)}
            return [tag for tag, ix in self._commands.items() if ix.callback is None and tag not in made]
        return list(self._commands)

    # Members

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wait_up(self) -> bool:
        try:
            await asyncio.wait_for(self.up.wait(), READY_TIMEOUT_S)
        except TimeoutError:
            return False
        return True

    def _plan(self, members: list[Any]) -> list[JobPlan]:
        """Every job's start, member, options and cancel, drawn up front: the seed alone decides them."""
        rng, cfg = self.rng, self.cfg
        plans = []
        for index, at in enumerate(sorted(rng.uniform(0, cfg.spread()) for _ in range(cfg.jobs))):
            style = rng.choice(STYLES)
            prompt = f"chaos-{index} a lighthouse"
            if style != "sync" and rng.random() < cfg.fail_share:
                prompt += " FAILME"
            options: dict[str, Any] = {"prompt": prompt, "style": style, "size": 48}
            if style != "sync":
                options["count"] = 12 if rng.random() < cfg.multi_part_share else rng.choice((1, 1, 2))
            cancel_after = rng.uniform(0.2, 4.0) if rng.random() < cfg.cancel_share else None
            plans.append(JobPlan(index, at, rng.choice(members), options, cancel_after))
        return plans

    async def _start_job(self, plan: JobPlan) -> None:
        if not await self._wait_up():
            self.report.not_dispatched += 1
            return
        try:
            self._commands[plan.index] = await self.emu.invoke("studio", plan.options, user=plan.member)
            self.report.invoked += 1
        except Exception:  # the bot went down between the check and the dispatch
            self.report.not_dispatched += 1
            return
        if plan.cancel_after is not None:
            self._spawn(self._cancel_later(plan.member, plan.cancel_after))

    async def _cancel_later(self, member: Any, delay: float) -> None:
        await asyncio.sleep(delay)
        jobs = await asyncio.to_thread(self._member_jobs, member.id)
        if not jobs or not await self._wait_up():
            return
        with contextlib.suppress(Exception):
            await self.emu.invoke("cancel", {"job": self.live_rng.choice(jobs)}, user=member)
            self.report.cancels += 1

    async def _load(self, plans: list[JobPlan]) -> None:
        started = time.monotonic()
        for plan in plans:
            await asyncio.sleep(max(0.0, started + plan.at - time.monotonic()))
            self._spawn(self._start_job(plan))

    async def _crashes(self, worker: BotProcess, times: list[float]) -> None:
        """SIGKILL the bot at `times` (seconds into the load), and start it again each time."""
        started = up_since = time.monotonic()
        for at in times:
            # Up for a little while at least: commands held back while it was down reach it, and become jobs.
            await asyncio.sleep(max(0.0, started + at - time.monotonic(), up_since + MIN_UP_S - time.monotonic()))
            self.up.clear()
            await worker.kill()
            self.report.restarts += 1
            await asyncio.sleep(self.live_rng.uniform(0.0, 1.0))  # down for a moment, as a supervisor would restart it
            await worker.start()
            self.up.set()
            up_since = time.monotonic()

    # The studio's side of callback-style jobs: they finish on their own, then call Easel back

    async def _finish_callbacks(self) -> None:
        while True:
            now = time.time()
            created = {a.studio_id: a.at for a in self.studio.accepted if a.route == "jobs"}
            for job in list(self.studio.jobs.values()):
                if (
                    job.callback_url
                    and job.status in ("queued", "running")
                    and job.id not in self._finishing
                    and now - created.get(job.id, now) >= self.cfg.callback_finish_s
                ):
                    self._finishing.add(job.id)
                    outcome = "failed" if "FAILME" in job.prompt else "done"
                    self._spawn(self.studio.fail(job.id) if outcome == "failed" else self.studio.finish(job.id))
            await asyncio.sleep(0.2)

    async def _watch_stalls(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.1)
            self.report.bench_stall_s = max(self.report.bench_stall_s, loop.time() - before - 0.1)

    # The run

    async def run(self) -> ChaosReport:
        started = time.monotonic()
        await self.studio.start()
        await self.emu.start()
        members = [self.emu.add_member(f"member{i}") for i in range(self.cfg.members)]
        plans = self._plan(members)
        # One crash in each of `restarts` equal slices of the load after its first 15%, in the slice's middle:
        # random, but never two back to back.
        n = self.cfg.restarts
        crash_times = [self.cfg.spread() * (0.15 + 0.85 * (i + self.rng.uniform(0.2, 0.8)) / n) for i in range(n)]
        config = WorkerConfig(
            bot_token=self.emu.bot_token,
            api_base=self.emu.api_base,
            gateway_url=self.emu.gateway_url,
            data_dir=self.data_dir,
            http_port=free_port(),
            studio_url=self.studio.base_url,
            studio_token=self.studio.token,
            adapter_timeout_s=self.cfg.adapter_timeout_s,
            deadline_s=self.cfg.deadline_s,
            slot_limit=self.cfg.slot_limit,
            log_level=self.cfg.log_level,
        )
        finisher = asyncio.create_task(self._finish_callbacks())
        watcher = asyncio.create_task(self._watch_stalls())
        with (self.data_dir / "bot.log").open("ab") as log:
            worker = BotProcess(config, log)
            try:
                await worker.start()
                self.up.set()
                await asyncio.gather(self._load(plans), self._crashes(worker, crash_times))
                await self._settle()
                await worker.stop()
            finally:
                await worker.kill()
                self.report.unexpected, self.report.bot_stall_s = worker.unexpected, worker.stall_s
                finisher.cancel()
                watcher.cancel()
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(finisher, watcher, *self._tasks, return_exceptions=True)
        self.studio_faults.enabled = self.discord_faults.enabled = False
        await self._check(members)
        await self.emu.stop()
        await self.studio.stop()
        self.report.wall_s = time.monotonic() - started
        return self.report

    async def _settle(self) -> None:
        """Wait (bounded) until the bot has seen every command, and every job has ended with its notice or
        result out."""
        # Commands still in flight (a cancel pressed late) get their few seconds first.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 10)
        began = time.monotonic()
        # A command dispatched just before a SIGKILL is lost with the process (Discord would show "the
        # application did not respond"); the others become jobs within moments.
        while time.monotonic() - began < COMMANDS_WAIT_S:
            if not await asyncio.to_thread(self._unseen_commands):
                break
            await asyncio.sleep(0.2)
        while time.monotonic() - began < self.cfg.final_wait_s:
            if await asyncio.to_thread(self._unsettled) == 0:
                break
            await asyncio.sleep(0.5)
        self.report.settle_s = time.monotonic() - began

    def _dump(self, messages: list[dict[str, Any]]) -> None:
        """For the post-mortem: what the bot posted, and every message-making request it sent to Discord (a
        faulted one included when it got past the fault: a "lost" one did)."""
        posts = [
            {"id": m["id"], "channel": m["channel_id"], "keys": checks.result_keys(m), "content": m["content"][:150]}
            for m in messages
        ]
        sent = [
            {
                "at": round(r.at, 3),
                "method": r.method,
                "path": r.path[:70],
                "content": str((r.json or {}).get("content"))[:150],
            }
            for r in self.emu.requests
            if r.method in ("POST", "PATCH") and ("/messages" in r.path or "/webhooks/" in r.path)
        ]
        commands = [
            {
                "tag": tag,
                "dispatched": ix.dispatched_at,
                "answered": ix.callback_at,
                "errors": [e.get("code") for e in ix.callback_errors],
            }
            for tag, ix in self._commands.items()
        ]
        dump = {"posted": posts, "requests": sent, "commands": commands}
        (self.data_dir / "messages.json").write_text(json.dumps(dump, indent=1))

    async def _check(self, members: list[Any]) -> None:
        jobs = await asyncio.to_thread(checks.read_jobs, self.db_path)
        report = self.report
        report.jobs = len(jobs)
        made = {job.tag for job in jobs}
        report.unanswered = sum(1 for ix in self._commands.values() if ix.callback is None)
        report.lost_commands = sum(1 for tag in self._commands if tag not in made)
        report.statuses = Counter(
            f"{job.status} ({job.error_kind})" if job.error_kind and job.status != "cancelled" else job.status
            for job in jobs
        )
        report.deliveries = Counter(job.delivery for job in jobs)
        report.faults = Counter(
            {f"studio {k}": v for k, v in self.studio_faults.injected.items()}
            | {f"discord {k}": v for k, v in self.discord_faults.injected.items()}
        )
        messages = checks.posted_messages(self.emu, [m.id for m in members])
        slots, report.slot_peak = checks.check_slots(
            jobs, self.studio.accepted, self.studio.finished_seen, "studio_poll", self.cfg.slot_limit
        )
        if self.cfg.keep_dir is not None:
            await asyncio.to_thread(self._dump, messages)
        report.invariants = [
            checks.check_stuck(jobs),
            checks.check_undelivered(jobs),
            checks.check_submitted_twice(jobs, self.studio.accepted),
            checks.check_delivered_twice(jobs, messages),
            *await asyncio.to_thread(checks.check_settlements, self.db_path, jobs),
            await asyncio.to_thread(checks.check_balances, self.db_path),
            slots,
        ]


async def run_chaos(config: ChaosConfig) -> ChaosReport:
    if config.keep_dir is not None:
        config.keep_dir.mkdir(parents=True, exist_ok=True)
        return await Chaos(config, config.keep_dir).run()
    with tempfile.TemporaryDirectory(prefix="easel-chaos-") as tmp:
        return await Chaos(config, Path(tmp)).run()
