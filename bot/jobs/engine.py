"""The job engine: creates jobs, runs one step per job at a time, and takes members' requests.

Every step reads the job from the database, acts, and writes the outcome before anything depends on it
(see steps.py). The scheduler only decides *when* a step runs. Three guards keep a job from being lost:
- a step that crashes is retried with backoff (then failed and refunded);
- a periodic sweep from the database re-schedules any job the scheduler does not hold;
- every wait is clamped to the job's deadline, which the step enforces.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import discord

from bot.delivery import Deliverer
from bot.jobs.access import Actor
from bot.jobs.creation import (
    AdmissionCheck,
    Alternative,
    JobCreator,
    NewInput,
    new_job_id,
)
from bot.jobs.files import FileStore
from bot.jobs.model import Job, JobStatus
from bot.jobs.partlog import PartLog as _PartLog
from bot.jobs.requests import MemberRequests
from bot.jobs.scheduler import Scheduler
from bot.jobs.slots import ProviderLimits, RateGate
from bot.jobs.status import StatusMessages
from bot.jobs.steps import COALESCE_MIN_DELAY_S, Steps
from bot.jobs.store import JobStore
from bot.providers.base import Adapter, ErrorKind
from bot.providers.http import backoff

if TYPE_CHECKING:
    from bot.app import EaselBot

__all__ = [
    "AdmissionCheck",
    "Alternative",
    "FreeLedger",
    "JobEngine",
    "Ledger",
    "NewInput",
    "ProviderLimits",
    "_PartLog",
    "new_job_id",
]

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 30.0
MAX_STEP_ERRORS = 8  # crashed steps in a row before the job is failed and refunded


class Ledger(Protocol):
    """What the engine needs of the quota ledger; each runs inside the engine's own transaction."""

    def commit_in(self, conn: sqlite3.Connection, job_id: str) -> bool: ...

    def refund_in(self, conn: sqlite3.Connection, job_id: str, reason: str) -> bool: ...

    def reserve_and_left_in(
        self,
        conn: sqlite3.Connection,
        *,
        guild_id: int | None,
        user_id: int,
        role_ids: Sequence[int],
        feature: str,
        units: int,
        job_id: str,
    ) -> tuple[int, int | None, Any]:
        """Take the job's credits; returns them, what the member has left afterwards and its period (None, None:
        not counted)."""


class FreeLedger:
    """Charges nothing: for deployments (and tests) without quotas."""

    def commit_in(self, conn: sqlite3.Connection, job_id: str) -> bool:
        return True

    def refund_in(self, conn: sqlite3.Connection, job_id: str, reason: str) -> bool:
        return False

    def reserve_and_left_in(self, conn: sqlite3.Connection, **_: Any) -> tuple[int, int | None, Any]:
        return 0, None, None


class JobEngine:
    def __init__(
        self,
        *,
        bot: EaselBot,
        store: JobStore,
        files: FileStore,
        adapters: dict[str, Adapter],
        ledger: Ledger,
        limits_by_provider: dict[str, ProviderLimits] | None = None,
        public_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot = bot
        self.store = store
        self.db = store.db
        self.files = files
        self.adapters = adapters
        self.ledger = ledger
        self.limits = limits_by_provider or {}
        self.public_url = public_url.rstrip("/") if public_url else None
        self.clock = clock
        self.deliverer = Deliverer(bot, files, clock=clock)
        self.status = StatusMessages(self.db, store, self.deliverer, clock)
        self.scheduler = Scheduler(self._step, clock=clock)
        self.scheduler.on_crash = lambda job_id, exc: bot.unexpected_errors.append((f"job {job_id}", exc))
        self.gates = {name: RateGate(self.provider_limits(name).requests_per_minute) for name in adapters}
        self.parallel = {name: asyncio.Semaphore(self.provider_limits(name).parallel_requests) for name in adapters}
        # Jobs whose last poll changed nothing, as read then: the next poll skips re-reading the row. Only
        # steps write a job's state, and every write of one drops its entry.
        self.idle: dict[str, Job] = {}
        self.steps = Steps(self)
        self.creator = JobCreator(self)
        self.requests = MemberRequests(self)
        self.sweep_interval_s = SWEEP_INTERVAL_S
        self._sweeper: asyncio.Task[None] | None = None
        self._crashes: dict[str, int] = {}
        self._ended: dict[str, list[asyncio.Future[None]]] = {}
        # Checks every new job passes before anything is stored or spent (content rules, channel and DM
        # policies, per-member limits): each raises a UserFacingError to refuse, with its reason.
        self.admission_checks: list[AdmissionCheck] = []
        self.started = False

    def provider_limits(self, provider: str) -> ProviderLimits:
        return self.limits.get(provider, self.limits.get("*", ProviderLimits()))

    # Life cycle

    async def start(self) -> None:
        """Resume every unfinished job and every undelivered result, then run the scheduler and the sweep."""
        active = await self.store.active()
        now = self.clock()
        for job in active:
            if job.status in (JobStatus.SUBMITTING, JobStatus.QUEUED, JobStatus.FETCHING) or job.request:
                self.scheduler.schedule(job.id, now)  # SUBMITTING is resolved by recover_submission
            else:
                # Spread the first checks over each job's own poll interval: after a restart with thousands
                # of long jobs in flight, the provider sees the usual rate, not a stampede.
                delay = min(random.uniform(0, self.steps.poll_delay(job, None)), max(0.0, job.deadline_at - now))
                self.scheduler.schedule(job.id, now + delay, coalesce=delay >= COALESCE_MIN_DELAY_S)
                self.idle[job.id] = job  # just read: the first poll needs no second read
        for job in await self.store.awaiting_delivery():
            self.scheduler.schedule(job.id, now)
        if active:
            log.info("Resuming %d unfinished jobs", len(active))
        self.scheduler.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="easel-sweep")
        self.started = True

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.scheduler.stop()
        self.started = False

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            try:
                await self.sweep()
            except Exception:
                log.exception("The job sweep failed; trying again in %.0f s", self.sweep_interval_s)

    async def sweep(self) -> int:
        """Re-schedule from the database every job that needs a step and that the scheduler does not hold,
        and bring forward any held past its deadline; returns how many were touched."""
        now = self.clock()
        touched = 0
        for job_id, next_at, deadline in await self.store.due_for_sweep():
            due = self.scheduler.due(job_id)
            if not self.scheduler.is_scheduled(job_id):
                log.warning("Job %s was not scheduled; the sweep picks it up", job_id)
                self.scheduler.schedule(job_id, min(max(next_at or now, now), deadline))
                touched += 1
            elif due is not None and due > deadline:
                self.scheduler.schedule(job_id, deadline)
                touched += 1
        return touched

    # One step at a time per job (the scheduler guarantees it); a crash is retried, never stranded

    async def _step(self, job_id: str) -> None:
        try:
            await self.steps.run(job_id)
        except Exception as exc:  # noqa: BLE001 - a step must never strand its job
            await self._step_crashed(job_id, exc)
            return
        if self._crashes.pop(job_id, None):
            with contextlib.suppress(Exception):
                await self.db.write(lambda c: JobStore.update(c, job_id, step_errors=0))

    async def _step_crashed(self, job_id: str, exc: Exception) -> None:
        self.idle.pop(job_id, None)
        errors = self._crashes.get(job_id, 0) + 1
        self._crashes[job_id] = errors
        log.error("Job %s: step crashed (%d in a row); trying again later", job_id, errors, exc_info=exc)
        self.bot.unexpected_errors.append((f"job {job_id}", exc))
        delay = backoff(errors, base=1.0, cap=300.0) + 0.5
        with contextlib.suppress(Exception):  # the database itself may be what failed: the sweep catches up
            await self.db.write(lambda c: JobStore.update(c, job_id, step_errors=errors))
        job = None
        with contextlib.suppress(Exception):
            job = await self.store.get(job_id)
        if job is not None and not job.status.final and errors > MAX_STEP_ERRORS:
            self._crashes.pop(job_id, None)
            with contextlib.suppress(Exception):
                await self.steps.fail(job, ErrorKind.FAILED, "an internal error stopped this job")
                return
        at = self.clock() + delay
        if job is not None and not job.status.final:
            at = min(at, job.deadline_at)
        self.scheduler.schedule(job_id, at)

    def job_ended(self, job_id: str) -> None:
        self._crashes.pop(job_id, None)
        for waiter in self._ended.pop(job_id, []):
            if not waiter.done():
                waiter.set_result(None)

    async def wait_ended(self, job_id: str, within: float) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._ended.setdefault(job_id, []).append(waiter)
        job = await self.store.get(job_id)
        if job is not None and job.status.final:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, within)

    # Shared by the steps

    def callback_url(self, job_id: str, provider: str, secret: str) -> str | None:
        if self.public_url is None:
            return None
        return f"{self.public_url}/callbacks/{provider}/{job_id}/{secret}"

    async def wake_queue(self, provider: str, slot_group: str | None) -> None:
        """A slot may be free: step the oldest queued jobs of that group (they claim in order), and refresh
        the others' queue positions."""
        if slot_group is None:
            return
        limit = self.provider_limits(provider).slot_limit(slot_group) or 1
        for index, job_id in enumerate(await self.store.queued_in_group(provider, slot_group, 25)):
            if index < limit:
                self.scheduler.schedule(job_id)
            elif (queued := await self.store.get(job_id)) is not None:
                await self.status.show(queued)

    async def release_inputs(self, job_id: str) -> None:
        for record in await self.store.inputs(job_id):
            async with self.files.holding([record.sha256]):
                if not await self.store.sha_in_use(record.sha256):
                    await self.files.remove_input(record.sha256)

    async def erase_job_data(self, job: Job) -> None:
        """The end of an erased member's job: files gone, row anonymised (kept for the server's totals)."""
        await self.files.remove_results(job.id)
        await self.release_inputs(job.id)

        def anonymise(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM job_inputs WHERE job_id = ?", (job.id,))
            conn.execute("DELETE FROM job_results WHERE job_id = ?", (job.id,))
            conn.execute(
                "UPDATE jobs SET user_id = NULL, params = '{}', meta = '{}', result_text = NULL, outcome = NULL, "
                "interaction_token = NULL WHERE id = ?",
                (job.id,),
            )

        await self.db.write(anonymise)

    # Creating jobs (called by cogs)

    async def create(
        self,
        interaction: discord.Interaction[Any],
        *,
        feature: str,
        provider: str,
        params: dict[str, Any],
        inputs: Sequence[NewInput] = (),
        units: int = 1,
        parent_job: str | None = None,
        alternatives: Sequence[Alternative] = (),
    ) -> Job:
        """Reserve credits and persist the job in one transaction, schedule it, then tell the member (see
        creation.py). Raises the quota's and the admission checks' UserFacingErrors: nothing is kept then."""
        return await self.creator.create(
            interaction,
            feature=feature,
            provider=provider,
            params=params,
            inputs=inputs,
            units=units,
            parent_job=parent_job,
            alternatives=alternatives,
        )

    async def fall_over(self, job: Job, reason: str) -> Job | None:
        return await self.creator.fall_over(job, reason)

    # Callbacks from providers

    async def handle_callback(
        self, provider: str, job_id: str, secret: str, body: bytes
    ) -> tuple[int, dict[str, object]]:
        job = await self.store.get(job_id)
        if job is None or job.provider != provider:
            return 404, {"status": "unknown job"}
        if not hmac.compare_digest(secret.encode(), job.callback_secret.encode()):
            log.warning("Callback for job %s with a wrong secret rejected", job_id)
            return 403, {"status": "forbidden"}
        if job.status.final:
            return 200, {"status": "already finished"}
        adapter = self.adapters.get(provider)
        hint = adapter.parse_callback(body) if adapter is not None else {}
        log.info("Callback for job %s (%s): checking its status now", job_id, hint or "no details")
        # A callback is a signal: confirm the state with the provider's status GET.
        self.scheduler.schedule(job_id)
        return 202, {"status": "accepted"}

    # Member requests: written down, then acted on by the job's own step

    async def cancel(self, job_id: str, *, actor: Actor) -> Job:
        return await self.requests.cancel(job_id, actor=actor)

    async def erase_member(self, guild_id: int | None, user_id: int) -> tuple[int, int]:
        return await self.requests.erase_member(guild_id, user_id)
