"""One step of a job: whatever its state calls for. The only code that changes a job's state.

queued -> submitting (a slot claimed in one statement) -> submitted/running (polled or called back)
       -> fetching (the studio's answer saved first, then its files fetched) -> succeeded
and failed/cancelled/expired from any active state, refunded exactly once. A member's request (cancel,
erase) is read here, in the job's own step, so it can never race a status check.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.jobs.model import ACTIVE, OCCUPYING, Delivery, InputRecord, Job, JobStatus, Request
from bot.jobs.partlog import PartLog
from bot.jobs.results import ResultSteps
from bot.jobs.status import best_effort
from bot.jobs.store import JobStore
from bot.providers.base import (
    USER_MESSAGES,
    Adapter,
    AuthenticationFailed,
    ErrorKind,
    Failed,
    Finished,
    InputFile,
    JobContext,
    OutOfCredits,
    Pending,
    ProviderError,
    RateLimited,
    Submitted,
    Transient,
)
from bot.providers.http import backoff

if TYPE_CHECKING:
    from bot.jobs.engine import JobEngine

log = logging.getLogger(__name__)

MAX_SUBMIT_ATTEMPTS = 5  # creates refused before reaching the provider (connect errors, 429)
MAX_CHECK_ERRORS = 8  # consecutive failed status checks or lookups before giving up (downloads: results.py)
MAX_DELIVERY_ATTEMPTS = 8
# Polls this far apart may run in the scheduler's 0.5 s batches (at most a tenth of their interval late).
COALESCE_MIN_DELAY_S = 5.0
# Details shown to the member for these kinds (the provider's words help them fix the request).
_DETAILED = (
    ErrorKind.INVALID_INPUT,
    ErrorKind.CONTENT_POLICY,
    ErrorKind.FAILED,
    ErrorKind.NOT_FOUND,
    ErrorKind.OUT_OF_CREDITS,  # e.g. mimpi: "add a payment card" tells the admin what to do
)


class Steps:
    def __init__(self, engine: JobEngine) -> None:
        self.e = engine
        self.db = engine.db
        self.store = engine.store
        self.files = engine.files
        self.clock: Callable[[], float] = engine.clock
        self.results = ResultSteps(self)

    # Dispatch

    async def run(self, job_id: str) -> None:
        job = self.e.idle.pop(job_id, None) or await self.store.get(job_id)
        if job is None:
            return
        if job.status.final:
            if job.delivery is Delivery.PENDING:
                await self.deliver(job)
            return
        adapter = self.e.adapters.get(job.provider)
        if adapter is None:
            await self.fail(job, ErrorKind.FAILED, f"the {job.provider} service is switched off in this Easel")
            return
        if job.request is not None and await self._act_on_request(job, adapter):
            return
        if self.clock() >= job.deadline_at:
            await self.expire(job, adapter)
        elif job.status is JobStatus.QUEUED:
            await self.submit(job, adapter)
        elif job.status is JobStatus.SUBMITTING:
            await self.recover_submission(job, adapter)
        elif job.status is JobStatus.FETCHING:
            await self.fetch_results(job)
        else:
            await self.check(job, adapter)

    async def _act_on_request(self, job: Job, adapter: Adapter) -> bool:
        """Cancel (or, for an erase, stop) the job if it can be; True when the job ended here."""
        stopped = job.status is JobStatus.QUEUED
        if job.status in (JobStatus.SUBMITTED, JobStatus.RUNNING) and adapter.cancellable(job.feature):
            try:
                stopped = await self.call(job, lambda: adapter.cancel(self.context(job, with_inputs=False)))
            except ProviderError as exc:
                log.info("Job %s: cancel at %s failed: %s", job.id, job.provider, exc)
        if stopped:
            await self.fail(job, ErrorKind.CANCELLED, "", status=JobStatus.CANCELLED, notify=False)
            return True
        if job.request is Request.CANCEL and job.status is not JobStatus.SUBMITTING:
            # Too late at the provider: the job goes on and is delivered; the member was told.
            log.info("Job %s: the cancel came too late at %s; delivering it instead", job.id, job.provider)
            await self.db.write(lambda c: JobStore.update(c, job.id, request=None))
            job.request = None
        return False

    # Provider calls

    def context(self, job: Job, *, with_inputs: bool = True, inputs: list[InputFile] | None = None) -> JobContext:
        return JobContext(
            job.id,
            job.feature,
            job.params,
            job.ref,
            inputs or [],
            self.e.callback_url(job.id, job.provider, job.callback_secret),
            job.attempts,
        )

    async def full_context(self, job: Job, records: list[InputRecord] | None = None) -> JobContext:
        if records is None:
            records = await self.store.inputs(job.id)
        inputs = [
            InputFile(r.name, self.files.input_path(r.sha256), r.filename, r.content_type, r.size) for r in records
        ]
        return self.context(job, inputs=inputs)

    async def call(self, job: Job, fn: Callable[[], Any]) -> Any:
        """A provider call under that provider's parallelism and request-rate limits."""
        async with self.e.parallel[job.provider]:
            await self.e.gates[job.provider].wait()
            return await fn()

    def backoff(self, job: Job, attempt: int) -> float:
        return backoff(attempt, base=self.e.provider_limits(job.provider).retry_base_s)

    def poll_delay(self, job: Job, pending: Pending | None) -> float:
        lim = self.e.provider_limits(job.provider)
        if pending is not None and pending.next_check is not None:
            return max(0.5, pending.next_check)
        age = self.clock() - job.created_at
        # Proportional to age: a 40 s job is polled every few seconds, a 3 h training every minute or so.
        return min(lim.max_poll_s, max(lim.min_poll_s, age * 0.1))

    def again_in(self, job: Job, delay: float, *, coalesce: bool = False) -> float:
        """Schedule the job's next step, never past its deadline (a huge Retry-After cannot park it)."""
        at = min(self.clock() + delay, job.deadline_at)
        self.e.scheduler.schedule(job.id, at, coalesce=coalesce and at - self.clock() >= COALESCE_MIN_DELAY_S)
        return at

    # Submitting

    async def submit(self, job: Job, adapter: Adapter) -> None:
        limit = self.e.provider_limits(job.provider).slot_limit(job.slot_group)

        def claim(c: sqlite3.Connection) -> list[InputRecord] | None:
            # The inputs are read in the same hop: a first step costs two trips to the database, not three.
            return JobStore.inputs_in(c, job.id) if JobStore.claim_slot_in(c, job, limit) else None

        records = await self.db.write(claim)
        if records is None:
            # No slot for it yet (or a request came in): it stays queued; a finishing job wakes it.
            await self.e.status.show(job)
            return
        job.status, job.attempts = JobStatus.SUBMITTING, job.attempts + 1
        context = await self.full_context(job, records)
        try:
            outcome = await self.call(job, lambda: adapter.submit(context))
        except (RateLimited, Transient) as exc:
            never_arrived = isinstance(exc, RateLimited) or not getattr(exc, "reached", True)
            if never_arrived and job.attempts < MAX_SUBMIT_ATTEMPTS:
                delay = exc.retry_after if exc.retry_after is not None else self.backoff(job, job.attempts)
                log.info("Job %s: %s before the provider took it; retrying in %.1fs", job.id, exc.message, delay)
                at = min(self.clock() + delay, job.deadline_at)
                await self.db.write(
                    lambda c: JobStore.update(
                        c, job.id, when=[JobStatus.SUBMITTING], status=JobStatus.QUEUED, next_check_at=at
                    )
                )
                self.again_in(job, delay)
                await self.e.wake_queue(job.provider, job.slot_group)  # its slot is free again meanwhile
                return
            # It may have reached the provider: sending it again could bill twice. Stop and refund.
            await self.fail(job, exc.kind, exc.message)
            return
        except (AuthenticationFailed, OutOfCredits) as exc:
            # Refused before it was accepted: another studio that can make it may take it.
            if await self.e.fall_over(job, USER_MESSAGES[exc.kind].split(";")[0].lower()) is None:
                await self.fail(job, exc.kind, exc.message)
            return
        except ProviderError as exc:
            status = JobStatus.CANCELLED if exc.kind is ErrorKind.CANCELLED else JobStatus.FAILED
            await self.fail(job, exc.kind, exc.message, status=status, notify=status is not JobStatus.CANCELLED)
            return
        except Exception as exc:  # noqa: BLE001 - a bug in an adapter must not kill the engine
            await self.adapter_crashed(job, "submitting", exc)
            return
        if isinstance(outcome, Finished):
            await self.finished(job, outcome)
        else:
            await self.submitted(job, outcome)

    async def adapter_crashed(self, job: Job, phase: str, exc: Exception) -> None:
        """A bug, not a provider error: logged with its traceback, kept for the operator, job refunded."""
        log.error("Job %s: the %s adapter crashed while %s", job.id, job.provider, phase, exc_info=exc)
        self.e.bot.unexpected_errors.append((f"job {job.id} ({phase})", exc))
        await self.fail(job, ErrorKind.FAILED, "an internal error stopped this job")

    async def submitted(self, job: Job, outcome: Submitted) -> None:
        next_at = min(self.clock() + outcome.next_check, job.deadline_at)
        await self.db.write(
            lambda c: JobStore.update(
                c,
                job.id,
                when=[JobStatus.SUBMITTING],
                status=JobStatus.SUBMITTED,
                provider_ref=outcome.ref,
                progress=outcome.progress,
                next_check_at=next_at,
                check_errors=0,
            )
        )
        job.status, job.ref, job.progress, job.check_errors = JobStatus.SUBMITTED, outcome.ref, outcome.progress, 0
        self.e.scheduler.schedule(job.id, next_at)
        await self.e.status.show(job)

    async def recover_submission(self, job: Job, adapter: Adapter) -> None:
        """A crash left a create request in flight: find it at the provider, or stop without resending."""
        context = await self.full_context(job)
        try:
            found = await self.call(job, lambda: adapter.recover(context))
        except (RateLimited, Transient) as exc:  # the lookup itself failed: ask again later, still unresolved
            errors = job.check_errors + 1
            if errors <= MAX_CHECK_ERRORS:
                delay = exc.retry_after if exc.retry_after is not None else self.backoff(job, errors)
                log.info("Job %s: lookup after a restart failed (%s); again in %.1fs", job.id, exc.message, delay)
                await self.db.write(lambda c: JobStore.update(c, job.id, check_errors=errors))
                self.again_in(job, delay)
                return
            log.warning("Job %s: could not look it up at %s after a restart: %s", job.id, job.provider, exc)
            found = None
        except ProviderError as exc:
            log.warning("Job %s: could not look it up at %s after a restart: %s", job.id, job.provider, exc)
            found = None
        if found is None:
            await self.fail(job, ErrorKind.LOST, USER_MESSAGES[ErrorKind.LOST])
            return
        log.info("Job %s: found at %s after a restart", job.id, job.provider)
        await self.submitted(job, found)

    # Checking

    async def check(self, job: Job, adapter: Adapter) -> None:
        try:
            outcome = await self.call(job, lambda: adapter.check(self.context(job, with_inputs=False)))
        except (RateLimited, Transient) as exc:
            errors = job.check_errors + 1
            if errors > MAX_CHECK_ERRORS:
                await self.fail(job, exc.kind, exc.message)
                return
            delay = (
                exc.retry_after
                if exc.retry_after is not None
                else self.poll_delay(job, None) + self.backoff(job, errors)
            )
            log.info("Job %s: status check failed (%s); again in %.1fs", job.id, exc.message, delay)
            at = min(self.clock() + delay, job.deadline_at)
            await self.db.write(lambda c: JobStore.update(c, job.id, check_errors=errors, next_check_at=at))
            self.again_in(job, delay)
            return
        except ProviderError as exc:
            await self.fail(job, exc.kind, exc.message)
            return
        except Exception as exc:  # noqa: BLE001 - a bug in an adapter must not kill the engine
            await self.adapter_crashed(job, "checking", exc)
            return
        if isinstance(outcome, Finished):
            await self.finished(job, outcome)
        elif isinstance(outcome, Failed):
            # Stopped at the studio (e.g. a training cancelled there): that is a cancellation, not a failure.
            status = JobStatus.CANCELLED if outcome.kind is ErrorKind.CANCELLED else JobStatus.FAILED
            await self.fail(job, outcome.kind, outcome.message, status=status)
        else:
            await self.pending(job, outcome)

    async def pending(self, job: Job, pending: Pending) -> None:
        delay = self.poll_delay(job, pending)
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
            changes["next_check_at"] = min(self.clock() + delay, job.deadline_at)
            moved = await self.db.write(
                lambda c: JobStore.update(c, job.id, when=[JobStatus.SUBMITTED, JobStatus.RUNNING], **changes)
            )
            if not moved:
                return  # no longer active: whoever ended it scheduled what follows
            for key, value in changes.items():
                setattr(job, {"provider_ref": "ref"}.get(key, key), value)
            await self.e.status.show(job)
        else:
            self.e.idle[job.id] = job
        self.again_in(job, delay, coalesce=True)

    # Results (see results.py): the answer is saved first, then its files fetched and checked

    async def finished(self, job: Job, finished: Finished) -> None:
        await self.results.finished(job, finished)

    async def fetch_results(self, job: Job) -> None:
        await self.results.fetch_results(job)

    # Ending

    async def fail(
        self, job: Job, kind: ErrorKind, detail: str, status: JobStatus = JobStatus.FAILED, *, notify: bool = True
    ) -> None:
        self.e.idle.pop(job.id, None)
        message = USER_MESSAGES.get(kind, USER_MESSAGES[ErrorKind.FAILED])
        if detail and detail != message and kind in _DETAILED:
            message = f"{message}: {detail}"
        now = self.clock()
        notify = notify and job.request is not Request.ERASE

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
                outcome=None,
            )
            if moved:
                self.e.ledger.refund_in(conn, job.id, f"{status.value}: {kind.value}")
            return moved

        if await self.db.write(write):
            log.info("Job %s %s (%s): %s", job.id, status.value, kind.value, detail)
            self.e.bot.metrics.jobs.labels(job.provider, job.feature, status.value).inc()
            await self.after_final(job)

    async def expire(self, job: Job, adapter: Adapter) -> None:
        if job.status in (JobStatus.SUBMITTED, JobStatus.RUNNING):
            try:
                await self.call(job, lambda: adapter.cancel(self.context(job, with_inputs=False)))
            except ProviderError as exc:
                log.info("Job %s: cancel at the provider failed: %s", job.id, exc)
        await self.fail(job, ErrorKind.TIMED_OUT, "", status=JobStatus.EXPIRED)

    async def after_final(self, job: Job) -> None:
        """What follows a job's end; each part best effort, so one failing never skips the others."""
        self.e.scheduler.unschedule(job.id)
        self.e.job_ended(job.id)
        await best_effort("releasing its input files", job.id, lambda: self.e.release_inputs(job.id))
        if job.status in OCCUPYING or job.slot_group is not None:
            await best_effort("waking queued jobs", job.id, lambda: self.e.wake_queue(job.provider, job.slot_group))
        refreshed = await self.store.get(job.id)
        if refreshed is None:
            return
        if refreshed.request is Request.ERASE:
            await best_effort("erasing its data", job.id, lambda: self.e.erase_job_data(refreshed))
        elif refreshed.delivery is Delivery.PENDING:
            await self.deliver(refreshed)
        else:
            await self.e.status.say(refreshed, f"Job `{job.id}` {refreshed.status.value}.")

    async def deliver(self, job: Job) -> None:
        results = await self.store.results(job.id) if job.status is JobStatus.SUCCEEDED else []
        refunded = job.credits if job.status is not JobStatus.SUCCEEDED else None
        outcome = await self.e.deliverer.deliver(job, results, refunded=refunded, log=PartLog(self.db, job, self.clock))
        attempts = job.delivery_attempts + 1
        if outcome.delivered:
            await self.db.write(
                lambda c: JobStore.update(
                    c, job.id, delivery=Delivery.DELIVERED, delivery_attempts=attempts, interaction_token=None
                )
            )
            return
        if outcome.retry and attempts < MAX_DELIVERY_ATTEMPTS:
            at = self.clock() + backoff(attempts, base=5.0, cap=300.0)
            await self.db.write(lambda c: JobStore.update(c, job.id, delivery_attempts=attempts, next_check_at=at))
            self.e.scheduler.schedule(job.id, at)
            return
        log.warning("Job %s: could not deliver to the channel or by DM; kept for /jobs", job.id)
        await self.db.write(
            lambda c: JobStore.update(
                c, job.id, delivery=Delivery.UNDELIVERABLE, delivery_attempts=attempts, interaction_token=None
            )
        )
