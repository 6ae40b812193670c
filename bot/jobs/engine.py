"""The job engine: create, submit (at most once), check, finish or fail, refund, deliver, recover.

Every step reads the job from the database, acts, and writes the outcome before anything depends on it.
The scheduler only decides *when* a step runs; which step runs is derived from the job's state.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import discord

from bot import limits
from bot.delivery import Deliverer, Route
from bot.downloads import fetch, host_is_private
from bot.errors import NotAllowed, NotFound
from bot.jobs.files import FileStore, safe_filename
from bot.jobs.model import ACTIVE, Delivery, InputRecord, Job, JobStatus, ResultRecord
from bot.jobs.progress import status_line
from bot.jobs.scheduler import Scheduler
from bot.jobs.store import JobStore
from bot.media import MediaError, MediaInfo, identify_async
from bot.providers.base import (
    USER_MESSAGES,
    Adapter,
    ErrorKind,
    Failed,
    Finished,
    InputFile,
    JobContext,
    Pending,
    ProviderError,
    RateLimited,
    ResultFile,
    Submitted,
    Transient,
)
from bot.providers.http import backoff
from bot.tree import record_first_response

if TYPE_CHECKING:
    from bot.app import EaselBot
    from bot.storage.database import Database

log = logging.getLogger(__name__)

MAX_SUBMIT_ATTEMPTS = 5  # creates refused before reaching the provider (connect errors, 429)
MAX_CHECK_ERRORS = 8  # consecutive failed status checks before giving up
MAX_DELIVERY_ATTEMPTS = 8
# Polls this far apart may run in the scheduler's 0.5 s batches (at most a tenth of their interval late).
COALESCE_MIN_DELAY_S = 5.0
RESULT_MAX_BYTES = 100 * 1024 * 1024
JOB_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o/1/l/i: ids are read and typed by people


def new_job_id() -> str:
    return "".join(secrets.choice(JOB_ID_ALPHABET) for _ in range(8))


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


class FreeLedger:
    """Charges nothing: for deployments (and tests) without quotas."""

    def reserve_in(self, conn: sqlite3.Connection, **_: Any) -> int:
        return 0

    def commit_in(self, conn: sqlite3.Connection, job_id: str) -> bool:
        return True

    def refund_in(self, conn: sqlite3.Connection, job_id: str, reason: str) -> bool:
        return False


@dataclass(frozen=True)
class ProviderLimits:
    max_active: dict[str, int] = field(default_factory=dict)  # slot group -> jobs at the provider at once
    requests_per_minute: int | None = None
    min_poll_s: float = 3.0
    max_poll_s: float = 300.0
    parallel_requests: int = 20
    retry_base_s: float = 2.0  # first backoff step after a failed request (doubles, with jitter)


@dataclass(frozen=True)
class NewInput:
    name: str
    filename: str
    data: bytes
    info: MediaInfo
    position: int = 0


class RateGate:
    """A token bucket: at most `per_minute` requests, spread out, shared by all jobs of one provider."""

    def __init__(self, per_minute: int | None) -> None:
        self._interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self._interval:
            return
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            await asyncio.sleep(delay)


class _PartLog:
    """A job's delivery progress, written to its row before and after each part is posted (see delivery.py)."""

    def __init__(self, db: Database, job: Job, clock: Callable[[], float]) -> None:
        self._db, self._job, self._clock = db, job, clock

    async def sending(self, index: int, route: Route) -> None:
        job, at = self._job, self._clock()
        await self._db.write(
            lambda c: JobStore.update(c, job.id, delivery_inflight=route.value, delivery_inflight_at=at)
        )
        job.delivery_inflight, job.delivery_inflight_at = route.value, at

    async def sent(self, index: int, message: discord.Message | None) -> None:
        job = self._job
        fields: dict[str, Any] = {
            "delivery_parts_sent": index + 1,
            "delivery_inflight": None,
            "delivery_inflight_at": None,
        }
        if index == 0 and message is not None:  # /jobs links to the first part
            fields.update(result_channel_id=message.channel.id, result_message_id=message.id)
        await self._db.write(lambda c: JobStore.update(c, job.id, **fields))
        job.delivery_parts_sent, job.delivery_inflight, job.delivery_inflight_at = index + 1, None, None


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
        self.scheduler = Scheduler(self._step, clock=clock)
        self.scheduler.on_crash = lambda job_id, exc: bot.unexpected_errors.append((f"job {job_id}", exc))
        self._gates = {name: RateGate(self._limits(name).requests_per_minute) for name in adapters}
        self._parallel = {name: asyncio.Semaphore(self._limits(name).parallel_requests) for name in adapters}
        self._private_ok: dict[str, bool] = {}
        # Jobs whose last poll changed nothing, as read then: the next poll skips re-reading the row. Only the
        # engine writes jobs, and every engine write about a job drops its entry (see _forget_idle).
        self._idle: dict[str, Job] = {}
        self.started = False

    def _limits(self, provider: str) -> ProviderLimits:
        return self.limits.get(provider, self.limits.get("*", ProviderLimits()))

    # Life cycle

    async def start(self) -> None:
        """Resume every unfinished job and every undelivered result, then run the scheduler."""
        active = await self.store.active()
        now = self.clock()
        for job in active:
            if job.status in (JobStatus.SUBMITTING, JobStatus.QUEUED):
                self.scheduler.schedule(job.id, now)  # SUBMITTING is resolved by _recover_submission
            else:
                # Spread the first checks over each job's own poll interval: after a restart with thousands
                # of long jobs in flight, the provider sees the usual rate, not a stampede.
                delay = random.uniform(0, self._poll_delay(job, None))
                self.scheduler.schedule(job.id, now + delay, coalesce=delay >= COALESCE_MIN_DELAY_S)
                self._idle[job.id] = job  # just read: the first poll needs no second read
        for job in await self.store.awaiting_delivery():
            self.scheduler.schedule(job.id, now)
        if active:
            log.info("Resuming %d unfinished jobs", len(active))
        self.scheduler.start()
        self.started = True

    async def stop(self) -> None:
        await self.scheduler.stop()
        self.started = False

    # Creating jobs (called by cogs)

    def callback_url(self, job_id: str, provider: str, secret: str) -> str | None:
        if self.public_url is None:
            return None
        return f"{self.public_url}/callbacks/{provider}/{job_id}/{secret}"

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
    ) -> Job:
        """Reserve credits and persist the job in one transaction, then tell the member it is queued.

        Raises the quota's UserFacingErrors (nothing is written then)."""
        adapter = self.adapters.get(provider)
        if adapter is None:
            raise NotAllowed("That image service is not switched on in this Easel.")
        stored: list[InputRecord] = []
        for item in inputs:
            sha = await self.files.put_input(item.data)
            stored.append(
                InputRecord(
                    item.name, item.position, sha, safe_filename(item.filename, "input"), item.info.mime, len(item.data)
                )
            )
        now = self.clock()
        job_id = new_job_id()
        user = interaction.user
        role_ids = [r.id for r in user.roles] if isinstance(user, discord.Member) else []
        channel_id = interaction.channel_id or 0
        row = {
            "id": job_id,
            "guild_id": interaction.guild_id,
            "channel_id": channel_id,
            "user_id": user.id,
            "feature": feature,
            "provider": provider,
            "params": params,
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

        def write(conn: sqlite3.Connection) -> tuple[Job, int]:
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
            return job, JobStore.queue_position_in(conn, job)

        # One hop to the database for all of it, then answer at once: the 3 s deadline is the member's.
        job, position = await self.db.write(write)
        text = status_line(job, now, position=position)
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            record_first_response(interaction)
        else:
            await interaction.edit_original_response(content=text)
        self.scheduler.schedule(job_id)
        return job

    # One step: whatever the job's state calls for

    async def _step(self, job_id: str) -> None:
        job = self._idle.pop(job_id, None) or await self.store.get(job_id)
        if job is None:
            return
        if job.status.final:
            if job.delivery is Delivery.PENDING:
                await self._deliver(job)
            return
        adapter = self.adapters.get(job.provider)
        if adapter is None:
            await self._fail(job, ErrorKind.FAILED, f"the {job.provider} service is switched off in this Easel")
            return
        if self.clock() >= job.deadline_at:
            await self._expire(job, adapter)
            return
        if job.status is JobStatus.QUEUED:
            await self._submit(job, adapter)
        elif job.status is JobStatus.SUBMITTING:
            await self._recover_submission(job, adapter)
        else:
            await self._check(job, adapter)

    async def _context(self, job: Job, *, with_inputs: bool = True) -> JobContext:
        # Status checks never need the input files: skipping their lookup saves a database hop per poll.
        records = await self.store.inputs(job.id) if with_inputs else []
        inputs = [
            InputFile(r.name, self.files.input_path(r.sha256), r.filename, r.content_type, r.size) for r in records
        ]
        return JobContext(
            job.id,
            job.feature,
            job.params,
            job.ref,
            inputs,
            self.callback_url(job.id, job.provider, job.callback_secret),
            job.attempts,
        )

    async def _call(self, job: Job, fn: Callable[[], Any]) -> Any:
        """A provider call under that provider's parallelism and request-rate limits."""
        async with self._parallel[job.provider]:
            await self._gates[job.provider].wait()
            return await fn()

    async def _submit(self, job: Job, adapter: Adapter) -> None:
        limit = self._limits(job.provider).max_active.get(job.slot_group or "")
        if (
            job.slot_group
            and limit is not None
            and await self.store.count_occupying(job.provider, job.slot_group) >= limit
        ):
            # Stays queued; a finishing job in the same group wakes it (see _release_slot).
            await self._show_status(job)
            return
        moved = await self.db.write(
            lambda c: JobStore.update(
                c, job.id, when=[JobStatus.QUEUED], status=JobStatus.SUBMITTING, attempts=job.attempts + 1
            )
        )
        if not moved:
            return
        job.attempts += 1
        context = await self._context(job)
        try:
            outcome = await self._call(job, lambda: adapter.submit(context))
        except (RateLimited, Transient) as exc:
            never_arrived = isinstance(exc, RateLimited) or not getattr(exc, "reached", True)
            if never_arrived and job.attempts < MAX_SUBMIT_ATTEMPTS:
                delay = exc.retry_after if exc.retry_after is not None else self._backoff(job, job.attempts)
                log.info("Job %s: %s before the provider took it; retrying in %.1fs", job.id, exc.message, delay)
                await self.db.write(
                    lambda c: JobStore.update(
                        c,
                        job.id,
                        when=[JobStatus.SUBMITTING],
                        status=JobStatus.QUEUED,
                        next_check_at=self.clock() + delay,
                    )
                )
                self.scheduler.schedule(job.id, self.clock() + delay)
                return
            # It may have reached the provider: sending it again could bill twice. Stop and refund.
            await self._fail(job, exc.kind, exc.message)
            return
        except ProviderError as exc:
            await self._fail(job, exc.kind, exc.message)
            return
        except Exception as exc:  # noqa: BLE001 - a bug in an adapter must not kill the engine
            await self._adapter_crashed(job, "submitting", exc)
            return
        if isinstance(outcome, Finished):
            await self._finish(job, adapter, outcome)
            return
        await self._submitted(job, outcome)

    async def _adapter_crashed(self, job: Job, phase: str, exc: Exception) -> None:
        """A bug, not a provider error: logged with its traceback, kept for the operator, job refunded."""
        log.error("Job %s: the %s adapter crashed while %s", job.id, job.provider, phase, exc_info=exc)
        self.bot.unexpected_errors.append((f"job {job.id} ({phase})", exc))
        await self._fail(job, ErrorKind.FAILED, "an internal error stopped this job")

    async def _submitted(self, job: Job, outcome: Submitted) -> None:
        next_at = self.clock() + outcome.next_check
        await self.db.write(
            lambda c: JobStore.update(
                c,
                job.id,
                when=[JobStatus.SUBMITTING],
                status=JobStatus.SUBMITTED,
                provider_ref=outcome.ref,
                progress=outcome.progress,
                next_check_at=next_at,
            )
        )
        self.scheduler.schedule(job.id, next_at)
        refreshed = await self.store.get(job.id)
        if refreshed is not None:
            await self._show_status(refreshed)

    async def _recover_submission(self, job: Job, adapter: Adapter) -> None:
        """A crash left a create request in flight: find it at the provider, or stop without resending."""
        context = await self._context(job)
        try:
            found = await self._call(job, lambda: adapter.recover(context))
        except RateLimited as exc:  # the lookup itself was refused: ask again later, still unresolved
            self.scheduler.schedule(job.id, self.clock() + (exc.retry_after or self._backoff(job, job.attempts)))
            return
        except ProviderError as exc:
            log.warning("Job %s: could not look it up at %s after a restart: %s", job.id, job.provider, exc)
            found = None
        if found is None:
            await self._fail(job, ErrorKind.LOST, USER_MESSAGES[ErrorKind.LOST])
            return
        log.info("Job %s: found at %s after a restart", job.id, job.provider)
        await self._submitted(job, found)

    def _backoff(self, job: Job, attempt: int) -> float:
        return backoff(attempt, base=self._limits(job.provider).retry_base_s)

    def _poll_delay(self, job: Job, pending: Pending | None) -> float:
        lim = self._limits(job.provider)
        if pending is not None and pending.next_check is not None:
            return max(0.5, pending.next_check)
        age = self.clock() - job.created_at
        # Proportional to age: a 40 s job is polled every few seconds, a 3 h training every minute or so.
        return min(lim.max_poll_s, max(lim.min_poll_s, age * 0.1))

    async def _check(self, job: Job, adapter: Adapter) -> None:
        context = await self._context(job, with_inputs=False)
        try:
            outcome = await self._call(job, lambda: adapter.check(context))
        except (RateLimited, Transient) as exc:
            errors = job.check_errors + 1
            if errors > MAX_CHECK_ERRORS:
                await self._fail(job, exc.kind, exc.message)
                return
            delay = (
                exc.retry_after
                if exc.retry_after is not None
                else self._poll_delay(job, None) + self._backoff(job, errors)
            )
            log.info("Job %s: status check failed (%s); again in %.1fs", job.id, exc.message, delay)
            await self.db.write(
                lambda c: JobStore.update(c, job.id, check_errors=errors, next_check_at=self.clock() + delay)
            )
            self.scheduler.schedule(job.id, self.clock() + delay)
            return
        except ProviderError as exc:
            await self._fail(job, exc.kind, exc.message)
            return
        except Exception as exc:  # noqa: BLE001 - a bug in an adapter must not kill the engine
            await self._adapter_crashed(job, "checking", exc)
            return
        if isinstance(outcome, Finished):
            await self._finish(job, adapter, outcome)
        elif isinstance(outcome, Failed):
            await self._fail(job, outcome.kind, outcome.message)
        else:
            await self._pending(job, outcome)

    async def _pending(self, job: Job, pending: Pending) -> None:
        delay = self._poll_delay(job, pending)
        changes: dict[str, Any] = {}
        if pending.running and job.status is not JobStatus.RUNNING:
            changes["status"] = JobStatus.RUNNING
            changes["started_at"] = self.clock()
        if pending.progress is not None and pending.progress != job.progress:
            changes["progress"] = pending.progress
        if pending.ref is not None and pending.ref != job.ref:
            changes["provider_ref"] = pending.ref
        if job.check_errors:
            changes["check_errors"] = 0
        if changes:
            # Writes only when something changed: 10,000 idle polls must not mean 10,000 commits.
            changes["next_check_at"] = self.clock() + delay
            await self.db.write(
                lambda c: JobStore.update(c, job.id, when=[JobStatus.SUBMITTED, JobStatus.RUNNING], **changes)
            )
            for key, value in changes.items():
                setattr(job, {"provider_ref": "ref"}.get(key, key), value)
            await self._show_status(job)
        else:
            self._idle[job.id] = job
        self.scheduler.schedule(job.id, self.clock() + delay, coalesce=delay >= COALESCE_MIN_DELAY_S)

    async def _show_status(self, job: Job, *, force: bool = False) -> None:
        """Edit the member's status message, at most every few seconds, never with a dead token."""
        now = self.clock()
        if not job.token_usable(now, limits.INTERACTION_TOKEN_SAFETY_S):
            return
        if not force and job.status_edited_at and now - job.status_edited_at < limits.PROGRESS_EDIT_INTERVAL_S:
            return
        position = await self.store.queue_position(job) if job.status is JobStatus.QUEUED else None
        if await self.deliverer.edit_status(job, status_line(job, now, position=position)):
            await self.db.write(lambda c: JobStore.update(c, job.id, status_edited_at=now))

    async def _provider_is_private(self, provider: str) -> bool:
        """Whether the provider itself lives on a private/loopback address (then its result URLs may too).
        Resolved on first use, not at start-up: a DNS hiccup must not stop the bot from starting."""
        if provider not in self._private_ok:
            adapter = self.adapters.get(provider)
            try:
                private = adapter is not None and bool(adapter.base_url) and await host_is_private(adapter.base_url)
            except ProviderError:
                return False  # unknown for now: refuse private targets this time, ask again next time
            self._private_ok[provider] = private
        return self._private_ok[provider]

    async def _download(self, job: Job, result: ResultFile) -> tuple[bytes, str, str]:
        """Bytes, kind and content type of one result, verified by content."""
        if result.data is not None:
            data = result.data
        else:
            assert result.url is not None
            data = await fetch(
                self.bot.http_client,
                result.url,
                max_bytes=RESULT_MAX_BYTES,
                allow_private=await self._provider_is_private(job.provider),
            )
        if result.kind == "file":
            return data, "file", "application/octet-stream"
        try:
            info = await identify_async(data)
        except MediaError as exc:
            raise Transient(f"the provider sent a result that is not an image or video ({exc})") from exc
        return data, info.kind, info.mime

    async def _finish(self, job: Job, adapter: Adapter, finished: Finished) -> None:
        self._forget_idle(job.id)
        records: list[ResultRecord] = []
        try:
            for position, result in enumerate(finished.files):
                data, kind, mime = await self._download(job, result)
                path = await self.files.put_result(job.id, position, result.filename, data)
                records.append(
                    ResultRecord(
                        position, safe_filename(result.filename), kind, mime, len(data), path, result.label, result.send
                    )
                )
        except ProviderError as exc:
            errors = job.check_errors + 1
            if errors > MAX_CHECK_ERRORS or not isinstance(exc, Transient | RateLimited):
                await self._fail(job, exc.kind, f"the results could not be downloaded: {exc.message}")
                return
            delay = self._backoff(job, errors)
            await self.db.write(lambda c: JobStore.update(c, job.id, check_errors=errors))
            self.scheduler.schedule(job.id, self.clock() + delay)
            return
        if not records and not finished.text:
            await self._fail(job, ErrorKind.FAILED, "the image service finished but sent no images")
            return
        now = self.clock()

        def write(conn: sqlite3.Connection) -> bool:
            moved = JobStore.update(
                conn,
                job.id,
                when=[JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.RUNNING],
                status=JobStatus.SUCCEEDED,
                progress=100.0,
                meta=finished.meta,
                result_text=finished.text,
                delivery=Delivery.PENDING,
                finished_at=now,
                next_check_at=None,
            )
            if moved:
                JobStore.add_results(conn, job.id, records)
                self.ledger.commit_in(conn, job.id)
            return moved

        if await self.db.write(write):
            self.bot.metrics.jobs.labels(job.provider, job.feature, "succeeded").inc()
            await self._after_final(job)

    def _forget_idle(self, job_id: str) -> None:
        self._idle.pop(job_id, None)

    async def _fail(
        self, job: Job, kind: ErrorKind, detail: str, status: JobStatus = JobStatus.FAILED, *, notify: bool = True
    ) -> None:
        self._forget_idle(job.id)
        message = USER_MESSAGES.get(kind, USER_MESSAGES[ErrorKind.FAILED])
        if (
            detail
            and detail != message
            and kind
            in (
                ErrorKind.INVALID_INPUT,
                ErrorKind.CONTENT_POLICY,
                ErrorKind.FAILED,
                ErrorKind.NOT_FOUND,
                ErrorKind.OUT_OF_CREDITS,  # e.g. mimpi: "add a payment card" tells the admin what to do
            )
        ):
            message = f"{message}: {detail}"
        now = self.clock()

        def write(conn: sqlite3.Connection) -> bool:
            moved = JobStore.update(
                conn,
                job.id,
                when=ACTIVE,
                status=status,
                error_kind=kind.value,
                error=message[:500],
                finished_at=now,
                delivery=Delivery.PENDING if notify else Delivery.DELIVERED,
                next_check_at=None,
            )
            if moved:
                self.ledger.refund_in(conn, job.id, f"{status.value}: {kind.value}")
            return moved

        if await self.db.write(write):
            log.info("Job %s %s (%s): %s", job.id, status.value, kind.value, detail)
            self.bot.metrics.jobs.labels(job.provider, job.feature, status.value).inc()
            await self._after_final(job)

    async def _expire(self, job: Job, adapter: Adapter) -> None:
        if job.status in (JobStatus.SUBMITTED, JobStatus.RUNNING):
            try:
                await self._call(job, lambda: self._cancel_at_provider(job, adapter))
            except ProviderError as exc:
                log.info("Job %s: cancel at the provider failed: %s", job.id, exc)
        await self._fail(job, ErrorKind.TIMED_OUT, "", status=JobStatus.EXPIRED)

    async def _cancel_at_provider(self, job: Job, adapter: Adapter) -> bool:
        return await adapter.cancel(await self._context(job, with_inputs=False))

    async def _after_final(self, job: Job) -> None:
        self.scheduler.unschedule(job.id)
        await self._release_inputs(job.id)
        if job.slot_group:
            await self._release_slot(job.provider, job.slot_group)
        refreshed = await self.store.get(job.id)
        if refreshed is None:
            return
        if refreshed.delivery is Delivery.PENDING:
            await self._deliver(refreshed)
        else:
            await self.deliverer.edit_status(refreshed, f"Job `{job.id}` {refreshed.status.value}.")

    async def _release_inputs(self, job_id: str) -> None:
        for record in await self.store.inputs(job_id):
            if not await self.store.sha_in_use(record.sha256):
                await self.files.remove_input(record.sha256)

    async def _release_slot(self, provider: str, slot_group: str) -> None:
        """A slot freed up: wake the oldest queued jobs of that group, and refresh queue positions."""
        rows = await self.db.fetchall(
            "SELECT id FROM jobs WHERE status = 'queued' AND provider = ? AND slot_group = ? "
            "ORDER BY created_at LIMIT 25",
            (provider, slot_group),
        )
        for index, row in enumerate(rows):
            job_id = str(row["id"])
            if index == 0:
                self.scheduler.schedule(job_id)
            else:
                queued = await self.store.get(job_id)
                if queued is not None:
                    await self._show_status(queued)

    async def _deliver(self, job: Job) -> None:
        results = await self.store.results(job.id) if job.status is JobStatus.SUCCEEDED else []
        refunded = job.credits if job.status is not JobStatus.SUCCEEDED else None
        outcome = await self.deliverer.deliver(job, results, refunded=refunded, log=_PartLog(self.db, job, self.clock))
        attempts = job.delivery_attempts + 1
        if outcome.delivered:
            await self.db.write(
                lambda c: JobStore.update(
                    c, job.id, delivery=Delivery.DELIVERED, delivery_attempts=attempts, interaction_token=None
                )
            )
            return
        if outcome.retry and attempts < MAX_DELIVERY_ATTEMPTS:
            await self.db.write(lambda c: JobStore.update(c, job.id, delivery_attempts=attempts))
            self.scheduler.schedule(job.id, self.clock() + backoff(attempts, base=5.0, cap=300.0))
            return
        log.warning("Job %s: could not deliver to the channel or by DM; kept for /jobs", job.id)
        await self.db.write(
            lambda c: JobStore.update(
                c, job.id, delivery=Delivery.UNDELIVERABLE, delivery_attempts=attempts, interaction_token=None
            )
        )

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

    # Member actions

    async def cancel(self, job_id: str, *, user_id: int, is_admin: bool = False) -> Job:
        job = await self.store.get(job_id)
        if job is None or (job.user_id != user_id and not is_admin):
            raise NotFound(f"You have no job `{job_id}`.")
        if job.status.final:
            raise NotAllowed(f"Job `{job_id}` has already {job.status.value}.")
        adapter = self.adapters.get(job.provider)
        if adapter is not None and job.status in (JobStatus.SUBMITTED, JobStatus.RUNNING):
            try:
                stopped = await self._call(job, lambda: self._cancel_at_provider(job, adapter))
            except ProviderError as exc:
                log.info("Job %s: provider cancel failed: %s", job.id, exc)
                stopped = False
            if not stopped:
                log.info("Job %s: the provider cannot cancel it; it will be ignored and refunded", job.id)
        await self._fail(job, ErrorKind.CANCELLED, "", status=JobStatus.CANCELLED, notify=False)
        refreshed = await self.store.get(job_id)
        assert refreshed is not None
        return refreshed

    async def erase_member(self, guild_id: int | None, user_id: int) -> int:
        """Forget a member's jobs here: running ones are cancelled (refunded), files deleted, prompts and
        options wiped, and the rows anonymised so the server's history and totals stay right."""
        for job in await self.store.active_for_member(guild_id, user_id):
            await self.cancel(job.id, user_id=user_id)
        jobs = await self.store.for_member(guild_id, user_id, limit=1_000_000)
        for job in jobs:
            await self.files.remove_results(job.id)
            await self._release_inputs(job.id)

        def anonymise(conn: sqlite3.Connection) -> int:
            ids = [(job.id,) for job in jobs]
            conn.executemany("DELETE FROM job_inputs WHERE job_id = ?", ids)
            conn.executemany("DELETE FROM job_results WHERE job_id = ?", ids)
            return conn.execute(
                "UPDATE jobs SET user_id = NULL, params = '{}', meta = '{}', result_text = NULL, "
                "interaction_token = NULL WHERE guild_id IS ? AND user_id = ?",
                (guild_id, user_id),
            ).rowcount

        return await self.db.write(anonymise)
