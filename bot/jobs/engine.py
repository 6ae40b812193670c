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
import functools
import hmac
import logging
import random
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import discord

from bot import limits
from bot.components import SPEND_NOTE_KEY
from bot.delivery import Deliverer
from bot.errors import NotAllowed, NotFound, UserFacingError
from bot.jobs.access import Actor, can_act
from bot.jobs.files import FileStore, safe_filename
from bot.jobs.model import ACTIVE, Delivery, InputRecord, Job, JobStatus, Request
from bot.jobs.partlog import PartLog as _PartLog
from bot.jobs.progress import price_text, status_line
from bot.jobs.scheduler import Scheduler
from bot.jobs.slots import ProviderLimits, RateGate
from bot.jobs.status import StatusMessages, best_effort
from bot.jobs.steps import COALESCE_MIN_DELAY_S, Steps
from bot.jobs.store import JobStore
from bot.media import MediaInfo
from bot.providers.base import Adapter, ErrorKind
from bot.providers.http import backoff
from bot.tree import record_first_response

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
ALTERNATIVES_KEY = "_alternatives"  # in a job's params: the studios to fall over to, in order
ROLES_KEY = "_role_ids"  # kept with alternatives: the member's roles decide their allowance there too

log = logging.getLogger(__name__)

JOB_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o/1/l/i: ids are read and typed by people
SWEEP_INTERVAL_S = 30.0
MAX_STEP_ERRORS = 8  # crashed steps in a row before the job is failed and refunded
CANCEL_WAIT_S = 10.0  # how long /cancel waits for the job's step to act on the request


PROVIDER_NAMES = {
    "mimipanda": "Mimi Panda",
    "mimpi": "mimpi.ai",
    "imagine": "Imagine",
    "flair": "Flair",
    "local": "Easel's own studio",
}


class _NotMoved(Exception):
    """The job was no longer where a fall-over could take it from."""


def new_job_id() -> str:
    return "".join(secrets.choice(JOB_ID_ALPHABET) for _ in range(8))


class AdmissionCheck(Protocol):
    async def __call__(
        self, interaction: discord.Interaction[Any], *, feature: str, provider: str, params: dict[str, Any]
    ) -> None: ...


class Ledger(Protocol):
    """What the engine needs of the quota ledger; each runs inside the engine's own transaction."""

    def reserve_in(
        self,
        conn: sqlite3.Connection,
        *,
        guild_id: int | None,
        user_id: int,
        role_ids: Sequence[int],
        feature: str,
        units: int,
        job_id: str,
    ) -> int: ...

    def commit_in(self, conn: sqlite3.Connection, job_id: str) -> bool: ...

    def refund_in(self, conn: sqlite3.Connection, job_id: str, reason: str) -> bool: ...

    def left_in(
        self, conn: sqlite3.Connection, *, guild_id: int | None, user_id: int, role_ids: Sequence[int]
    ) -> tuple[int, Any] | None: ...


class FreeLedger:
    """Charges nothing: for deployments (and tests) without quotas."""

    def reserve_in(self, conn: sqlite3.Connection, **_: Any) -> int:
        return 0

    def commit_in(self, conn: sqlite3.Connection, job_id: str) -> bool:
        return True

    def refund_in(self, conn: sqlite3.Connection, job_id: str, reason: str) -> bool:
        return False

    def left_in(self, conn: sqlite3.Connection, **_: Any) -> tuple[int, Any] | None:
        return None


@dataclass(frozen=True)
class Alternative:
    """Another studio that can make the same thing: tried, in order, when the chosen studio refuses the
    job before accepting it (its key refused, its account out of credits). Never after it accepted it."""

    provider: str
    feature: str
    params: dict[str, Any]
    units: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "feature": self.feature, "params": self.params, "units": self.units}


@dataclass(frozen=True)
class NewInput:
    name: str
    filename: str
    data: bytes
    info: MediaInfo
    position: int = 0


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
        """Reserve credits and persist the job in one transaction, schedule it, then tell the member.

        Raises the quota's UserFacingErrors (nothing is kept then: no row, no credits, no files)."""
        adapter = self.adapters.get(provider)
        if adapter is None:
            raise NotAllowed("That image service is not switched on in this Easel.")
        for check in self.admission_checks:
            await check(interaction, feature=feature, provider=provider, params=params)
        shas = [self.files.sha256(item.data) for item in inputs]
        stored = [
            InputRecord(
                item.name, item.position, sha, safe_filename(item.filename, "input"), item.info.mime, len(item.data)
            )
            for item, sha in zip(inputs, shas, strict=True)
        ]
        now = self.clock()
        job_id = new_job_id()
        per_member = self.provider_limits(provider).max_per_member
        user = interaction.user
        role_ids = [r.id for r in user.roles] if isinstance(user, discord.Member) else []
        row = {
            "id": job_id,
            "guild_id": interaction.guild_id,
            "channel_id": interaction.channel_id or 0,
            "user_id": user.id,
            "feature": feature,
            "provider": provider,
            "params": (
                {**params, ALTERNATIVES_KEY: [a.as_dict() for a in alternatives], ROLES_KEY: role_ids}
                if alternatives
                else params
            ),
            "status": JobStatus.QUEUED.value,
            "slot_group": adapter.slot_group(feature),
            "next_check_at": now,
            "deadline_at": now + adapter.deadline(feature),
            "application_id": interaction.application_id,
            "interaction_token": interaction.token,
            "token_expires_at": now + limits.INTERACTION_TOKEN_LIFETIME_S - 5,
            "attachment_limit": interaction.filesize_limit or limits.DEFAULT_ATTACHMENT_LIMIT,
            "callback_secret": secrets.token_urlsafe(24),
            "parent_job": parent_job,
            "created_at": now,
            "updated_at": now,
            "status_edited_at": now,  # the queued message below is the first status
            "delivery": Delivery.NONE.value,
        }

        def write(conn: sqlite3.Connection) -> tuple[Job, int, str]:
            if per_member is not None:
                # Counted in the same serialised write as the insert: a burst cannot slip past the cap.
                (mine,) = conn.execute(
                    "SELECT COUNT(*) FROM jobs WHERE provider = ? AND user_id = ? AND guild_id IS ? AND status IN "
                    "('queued', 'submitting', 'submitted', 'running')",
                    (provider, user.id, interaction.guild_id),
                ).fetchone()
                if mine >= per_member:
                    raise NotAllowed(
                        f"You already have {mine} job{'s' if mine != 1 else ''} waiting or running in "
                        f"{PROVIDER_NAMES.get(provider, provider)}, the most one member may have there at once. "
                        "Try again when one is done."
                    )
            credits = self.ledger.reserve_in(
                conn,
                guild_id=interaction.guild_id,
                user_id=user.id,
                role_ids=role_ids,
                feature=feature,
                units=units,
                job_id=job_id,
            )
            JobStore.insert(conn, {**row, "credits": credits}, stored)
            job = JobStore.get_in(conn, job_id)
            assert job is not None
            left = self.ledger.left_in(conn, guild_id=interaction.guild_id, user_id=user.id, role_ids=role_ids)
            price = price_text(credits, *(left if left is not None else (None, None)))
            return job, JobStore.queue_position_in(conn, job), price

        # The files' locks are held until the row references them: a finishing job's clean-up cannot delete
        # a file this job is about to use. A refused reservation leaves no file behind.
        async with self.files.holding(shas):
            try:
                for item, sha in zip(inputs, shas, strict=True):
                    await self.files.put_input(item.data, sha)
                # One hop to the database for all of it, then answer at once: the 3 s deadline is the member's.
                job, position, price = await self.db.write(write)
            except BaseException:
                for sha in shas:
                    with contextlib.suppress(Exception):
                        if not await self.store.sha_in_use(sha):
                            await self.files.remove_input(sha)
                raise
        # Scheduled before the member is answered: a failed answer must not leave a paid job unscheduled.
        self.scheduler.schedule(job_id)
        note = interaction.extras.get(SPEND_NOTE_KEY)
        text = status_line(job, now, position=position, price=price) + (f"\n{note}" if note else "")
        await self._tell_queued(interaction, text)
        return job

    async def _tell_queued(self, interaction: discord.Interaction[Any], text: str) -> None:
        try:
            if not interaction.response.is_done():
                await interaction.response.send_message(text, ephemeral=True)
                record_first_response(interaction)
            else:
                await interaction.edit_original_response(content=text)
        except Exception as exc:  # noqa: BLE001 - the job is made and will be delivered by the channel
            log.warning("Could not tell the member their job is queued (%s: %s)", type(exc).__name__, exc)

    def _fall_over_in(
        self,
        conn: sqlite3.Connection,
        *,
        job: Job,
        alt: dict[str, Any],
        params: dict[str, Any],
        new_id: str,
        now: float,
    ) -> Job:
        adapter = self.adapters[str(alt["provider"])]
        # Copied first: the new job takes over the member's message (the old row's token is cleared below).
        JobStore.copy_for_fall_over(
            conn,
            job.id,
            new_id,
            provider=str(alt["provider"]),
            feature=str(alt["feature"]),
            params=params,
            slot_group=adapter.slot_group(str(alt["feature"])),
            deadline_at=now + adapter.deadline(str(alt["feature"])),
            callback_secret=secrets.token_urlsafe(24),
            now=now,
        )
        moved = JobStore.update(
            conn,
            job.id,
            when=[JobStatus.SUBMITTING],
            status=JobStatus.FAILED,
            error_kind=ErrorKind.FAILED.value,
            error=f"handed to {alt['provider']}"[:500],
            finished_at=now,
            delivery=Delivery.DELIVERED,
            next_check_at=None,
            interaction_token=None,
        )
        if not moved:
            raise _NotMoved  # rolls the copy back too
        self.ledger.refund_in(conn, job.id, f"failed over to {alt['provider']}")
        if job.user_id is not None:
            credits = self.ledger.reserve_in(
                conn,
                guild_id=job.guild_id,
                user_id=job.user_id,
                role_ids=[int(r) for r in job.params.get(ROLES_KEY) or []],
                feature=str(alt["feature"]),
                units=int(alt.get("units", 1)),
                job_id=new_id,
            )
            JobStore.update(conn, new_id, credits=credits)
        new = JobStore.get_in(conn, new_id)
        assert new is not None
        return new

    async def fall_over(self, job: Job, reason: str) -> Job | None:
        """Hand a job the studio refused before accepting it to the next studio that can make it: the refused
        job ends unseen and refunded, a new job (same member, inputs and message) takes its place in the same
        transaction. None when no alternative is left, or the member cannot pay for it."""
        pending = list(job.params.get(ALTERNATIVES_KEY) or [])
        while pending:
            alt = pending.pop(0)
            adapter = self.adapters.get(str(alt["provider"]))
            if adapter is None:
                continue
            new_id, now = new_job_id(), self.clock()
            params = {
                **alt["params"],
                **({ALTERNATIVES_KEY: pending, ROLES_KEY: job.params.get(ROLES_KEY)} if pending else {}),
            }
            write = functools.partial(self._fall_over_in, job=job, alt=alt, params=params, new_id=new_id, now=now)
            try:
                new = await self.db.write(write)
            except _NotMoved:
                return None
            except UserFacingError as exc:  # e.g. the other studio costs more than the member has left
                log.info("Job %s: no fall-over to %s (%s)", job.id, alt["provider"], exc.message)
                continue
            log.info(
                "Job %s: %s refused it (%s); job %s at %s takes over",
                job.id,
                job.provider,
                reason,
                new.id,
                new.provider,
            )
            self.idle.pop(job.id, None)
            self.scheduler.unschedule(job.id)
            self.job_ended(job.id)
            self.scheduler.schedule(new.id)
            await best_effort("waking queued jobs", job.id, lambda: self.wake_queue(job.provider, job.slot_group))
            name = PROVIDER_NAMES.get(new.provider, new.provider)
            await self.status.say(
                new,
                f"{PROVIDER_NAMES.get(job.provider, job.provider)} could not take this ({reason}), so {name} is "
                f"making it: job `{new.id}` · {new.credits} credit{'s' if new.credits != 1 else ''}.",
            )
            return new
        return None

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

    def _stoppable(self, job: Job) -> tuple[JobStatus, ...]:
        adapter = self.adapters.get(job.provider)
        if adapter is not None and adapter.cancellable(job.feature):
            return (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.RUNNING)
        return (JobStatus.QUEUED,)

    async def cancel(self, job_id: str, *, actor: Actor) -> Job:
        """Cancel a job (refunded). One the studio already has and cannot stop is refused: the studio runs
        and bills it anyway, so it is delivered rather than thrown away at the server's cost."""
        job = await self.store.get(job_id)
        if job is None or not can_act(job, actor):
            raise NotFound(f"You have no job `{job_id}` here.")
        if job.status.final:
            raise NotAllowed(f"Job `{job_id}` has already {job.status.value}.")
        allowed = self._stoppable(job)
        moved = await self.db.write(lambda c: JobStore.update(c, job.id, when=allowed, request=Request.CANCEL))
        if not moved:
            current = await self.store.get(job_id)
            if current is not None and current.status.final:
                raise NotAllowed(f"Job `{job_id}` has already {current.status.value}.")
            raise NotAllowed(
                f"Job `{job_id}` is already at the image service, which cannot stop it: it will be delivered "
                "when it is ready, and its credits stay spent."
            )
        self.idle.pop(job.id, None)
        adapter = self.adapters.get(job.provider)
        if job.status is JobStatus.SUBMITTING and adapter is not None:
            # A local render or a slow create is running in the job's step right now: stop it there.
            ctx = self.steps.context(job, with_inputs=False)
            await best_effort("stopping it at the provider", job.id, lambda: adapter.cancel(ctx))
        self.scheduler.schedule(job.id)
        await self.wait_ended(job.id, CANCEL_WAIT_S)
        refreshed = await self.store.get(job_id)
        assert refreshed is not None
        if not refreshed.status.final:
            raise NotAllowed(
                f"Job `{job_id}` could not be stopped in time at the image service; it will be delivered instead."
            )
        return refreshed

    @staticmethod
    def _request_erase(job_id: str) -> Callable[[sqlite3.Connection], bool]:
        return lambda c: JobStore.update(c, job_id, when=ACTIVE, request=Request.ERASE)

    async def erase_member(self, guild_id: int | None, user_id: int) -> tuple[int, int]:
        """Forget a member's jobs here: running ones are stopped (refunded) where the studio can stop them,
        the others end unseen and are erased when they end; files deleted; rows anonymised so the server's
        history and totals stay right. Returns (jobs erased, running jobs stopped)."""
        everything = await self.store.for_member(guild_id, user_id, limit=1_000_000)
        active = [job for job in everything if not job.status.final]
        for job in active:
            await self.db.write(self._request_erase(job.id))
            self.idle.pop(job.id, None)
            self.scheduler.schedule(job.id)
        for job in active:
            await self.wait_ended(job.id, CANCEL_WAIT_S)
        stopped = 0
        for job in active:
            ended = await self.store.get(job.id)
            stopped += ended is not None and ended.status is JobStatus.CANCELLED
        # Ended jobs (those that ended meanwhile too): their step erased them, or this does.
        for job in await self.store.for_member(guild_id, user_id, limit=1_000_000):
            if job.status.final:
                await self.erase_job_data(job)
        # Jobs still running keep what their step needs; their step erases them when they end.
        return len(everything), stopped
