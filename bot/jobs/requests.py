"""Members' requests on their jobs (cancel, /forget-me): written down, then acted on by the job's own step,
so they never race a status check (see steps.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.errors import NotAllowed, NotFound
from bot.jobs.access import Actor, can_act
from bot.jobs.model import ACTIVE, Job, JobStatus, Request
from bot.jobs.status import best_effort
from bot.jobs.store import JobStore

if TYPE_CHECKING:
    from bot.jobs.engine import JobEngine

CANCEL_WAIT_S = 10.0  # how long /cancel waits for the job's step to act on the request


class MemberRequests:
    def __init__(self, engine: JobEngine) -> None:
        self.e = engine

    def _stoppable(self, job: Job) -> tuple[JobStatus, ...]:
        adapter = self.e.adapters.get(job.provider)
        if adapter is not None and adapter.cancellable(job.feature):
            return (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.RUNNING)
        return (JobStatus.QUEUED,)

    async def cancel(self, job_id: str, *, actor: Actor) -> Job:
        """Cancel a job (refunded). One the studio already has and cannot stop is refused: the studio runs
        and bills it anyway, so it is delivered rather than thrown away at the server's cost."""
        job = await self.e.store.get(job_id)
        if job is None or not can_act(job, actor):
            raise NotFound(f"You have no job `{job_id}` here.")
        if job.status.final:
            raise NotAllowed(f"Job `{job_id}` has already {job.status.value}.")
        allowed = self._stoppable(job)
        moved = await self.e.db.write(lambda c: JobStore.update(c, job.id, when=allowed, request=Request.CANCEL))
        if not moved:
            current = await self.e.store.get(job_id)
            if current is not None and current.status.final:
                raise NotAllowed(f"Job `{job_id}` has already {current.status.value}.")
            raise NotAllowed(
                f"Job `{job_id}` is already at the image service, which cannot stop it: it will be delivered "
                "when it is ready, and its credits stay spent."
            )
        self.e.idle.pop(job.id, None)
        adapter = self.e.adapters.get(job.provider)
        if job.status is JobStatus.SUBMITTING and adapter is not None:
            # A local render or a slow create is running in the job's step right now: stop it there.
            ctx = self.e.steps.context(job, with_inputs=False)
            await best_effort("stopping it at the provider", job.id, lambda: adapter.cancel(ctx))
        self.e.scheduler.schedule(job.id)
        await self.e.wait_ended(job.id, CANCEL_WAIT_S)
        refreshed = await self.e.store.get(job_id)
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
        everything = await self.e.store.for_member(guild_id, user_id, limit=1_000_000)
        active = [job for job in everything if not job.status.final]
        for job in active:
            await self.e.db.write(self._request_erase(job.id))
            self.e.idle.pop(job.id, None)
            self.e.scheduler.schedule(job.id)
        for job in active:
            await self.e.wait_ended(job.id, CANCEL_WAIT_S)
        stopped = 0
        for job in active:
            ended = await self.e.store.get(job.id)
            stopped += ended is not None and ended.status is JobStatus.CANCELLED
        # Ended jobs (those that ended meanwhile too): their step erased them, or this does.
        for job in await self.e.store.for_member(guild_id, user_id, limit=1_000_000):
            if job.status.final:
                await self.e.erase_job_data(job)
        # Jobs still running keep what their step needs; their step erases them when they end.
        return len(everything), stopped
