"""A job's delivery progress, written to its row before and after each part is posted (see delivery.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.delivery import Route
from bot.jobs.model import Job
from bot.jobs.store import JobStore

if TYPE_CHECKING:
    from bot.storage.database import Database


class PartLog:
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

        def write(conn: sqlite3.Connection) -> None:
            JobStore.update(conn, job.id, **fields)
            if message is not None:  # Delete removes every part
                JobStore.record_message_in(conn, job.id, index, message.channel.id, message.id)

        await self._db.write(write)
        job.delivery_parts_sent, job.delivery_inflight, job.delivery_inflight_at = index + 1, None, None
