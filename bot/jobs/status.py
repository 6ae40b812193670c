"""The member's status message: best effort, never a reason for a step to fail.

A status edit is a courtesy: a dead token, a Discord error or no answer at all must never escape into
the step that asked for it (a job would be left half-way). Everything here logs and carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bot import limits
from bot.jobs.model import Job, JobStatus
from bot.jobs.progress import status_line
from bot.jobs.store import JobStore

if TYPE_CHECKING:
    from bot.delivery import Deliverer
    from bot.storage.database import Database

log = logging.getLogger(__name__)


async def best_effort(what: str, job_id: str, action: Callable[[], Awaitable[object]]) -> None:
    try:
        await action()
    except Exception as exc:  # noqa: BLE001 - a side effect must not fail the step that asked for it
        log.warning("Job %s: %s failed (%s: %s); carrying on", job_id, what, type(exc).__name__, exc)


class StatusMessages:
    def __init__(self, db: Database, store: JobStore, deliverer: Deliverer, clock: Callable[[], float]) -> None:
        self._db, self._store, self._deliverer, self._clock = db, store, deliverer, clock

    async def show(self, job: Job, *, force: bool = False) -> None:
        """Edit the member's status message, at most every few seconds, never with a dead token."""
        await best_effort("editing the status message", job.id, lambda: self._show(job, force))

    async def say(self, job: Job, text: str) -> None:
        await best_effort("editing the status message", job.id, lambda: self._deliverer.edit_status(job, text))

    async def _show(self, job: Job, force: bool) -> None:
        now = self._clock()
        if not job.token_usable(now, limits.INTERACTION_TOKEN_SAFETY_S):
            return
        if not force and job.status_edited_at and now - job.status_edited_at < limits.PROGRESS_EDIT_INTERVAL_S:
            return
        position = await self._store.queue_position(job) if job.status is JobStatus.QUEUED else None
        if await self._deliverer.edit_status(job, status_line(job, now, position=position)):
            job.status_edited_at = now
            await self._db.write(lambda c: JobStore.update(c, job.id, status_edited_at=now))
