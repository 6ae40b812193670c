"""Repository for jobs, their input files and their results. Sync functions run inside Database.write."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from bot.jobs.model import ACTIVE, OCCUPYING, Delivery, InputRecord, Job, JobStatus, Request, ResultRecord
from bot.storage.database import Database

_ACTIVE_SQL = ",".join(f"'{s.value}'" for s in ACTIVE)
_OCCUPYING_SQL = ",".join(f"'{s.value}'" for s in OCCUPYING)

# Columns that may be set through update(); anything else is a programming error.
_UPDATABLE = frozenset(
    {
        "status",
        "provider_ref",
        "progress",
        "attempts",
        "check_errors",
        "next_check_at",
        "error_kind",
        "error",
        "meta",
        "result_text",
        "delivery",
        "delivery_attempts",
        "delivery_parts_sent",
        "delivery_inflight",
        "delivery_inflight_at",
        "result_channel_id",
        "result_message_id",
        "interaction_token",
        "token_expires_at",
        "status_edited_at",
        "finished_at",
        "started_at",
        "user_id",
        "params",
        "request",
        "outcome",
        "credits",
        "step_errors",
    }
)


def _encode(key: str, value: Any) -> Any:
    if key in ("provider_ref", "meta", "params") or (key == "outcome" and value is not None):
        return json.dumps(value)
    if isinstance(value, JobStatus | Delivery | Request):
        return value.value
    return value


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._referrers: list[str] = []

    # Writes (compose inside Database.write)

    @staticmethod
    def insert(conn: sqlite3.Connection, job: dict[str, Any], inputs: Sequence[InputRecord]) -> None:
        row = {k: _encode(k, v) for k, v in job.items()}
        columns = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        conn.execute(f"INSERT INTO jobs ({columns}) VALUES ({marks})", row)
        conn.executemany(
            "INSERT INTO job_inputs (job_id, name, position, sha256, filename, content_type, size) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(job["id"], i.name, i.position, i.sha256, i.filename, i.content_type, i.size) for i in inputs],
        )

    @staticmethod
    def update(
        conn: sqlite3.Connection, job_id: str, *, when: Iterable[JobStatus] | None = None, **fields: Any
    ) -> bool:
        """Set fields; with `when`, only if the job is in one of those states (idempotent transitions)."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{k} = :{k}" for k in fields)
        params = {k: _encode(k, v) for k, v in fields.items()}
        params["_id"] = job_id
        sql = f"UPDATE jobs SET {assignments} WHERE id = :_id"
        if when is not None:
            allowed = list(when)
            sql += f" AND status IN ({', '.join(f':_s{i}' for i in range(len(allowed)))})"
            params.update({f"_s{i}": s.value for i, s in enumerate(allowed)})
        return conn.execute(sql, params).rowcount == 1

    @staticmethod
    def copy_for_fall_over(
        conn: sqlite3.Connection,
        old_id: str,
        new_id: str,
        *,
        provider: str,
        feature: str,
        params: dict[str, Any],
        slot_group: str | None,
        deadline_at: float,
        callback_secret: str,
        now: float,
    ) -> None:
        """A new queued job for another studio, with the old one's member, channel, token and input files."""
        conn.execute(
            "INSERT INTO jobs (id, guild_id, channel_id, user_id, feature, provider, params, status, credits, "
            "slot_group, next_check_at, deadline_at, application_id, interaction_token, token_expires_at, "
            "attachment_limit, status_edited_at, callback_secret, parent_job, created_at, updated_at, delivery) "
            "SELECT ?, guild_id, channel_id, user_id, ?, ?, ?, 'queued', 0, ?, ?, ?, application_id, "
            "interaction_token, token_expires_at, attachment_limit, status_edited_at, ?, parent_job, created_at, ?, "
            "'none' FROM jobs WHERE id = ?",
            (new_id, feature, provider, json.dumps(params), slot_group, now, deadline_at, callback_secret, now, old_id),
        )
        conn.execute(
            "INSERT INTO job_inputs (job_id, name, position, sha256, filename, content_type, size) "
            "SELECT ?, name, position, sha256, filename, content_type, size FROM job_inputs WHERE job_id = ?",
            (new_id, old_id),
        )

    @staticmethod
    def add_results(conn: sqlite3.Connection, job_id: str, results: Sequence[ResultRecord]) -> None:
        conn.execute("DELETE FROM job_results WHERE job_id = ?", (job_id,))
        conn.executemany(
            "INSERT INTO job_results (job_id, position, filename, kind, content_type, size, path, label, send) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (job_id, r.position, r.filename, r.kind, r.content_type, r.size, r.path, r.label, int(r.send))
                for r in results
            ],
        )

    # Reads

    async def get(self, job_id: str) -> Job | None:
        row = await self.db.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job.from_row(row) if row else None

    @staticmethod
    def get_in(conn: sqlite3.Connection, job_id: str) -> Job | None:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    async def active(self) -> list[Job]:
        rows = await self.db.fetchall(f"SELECT * FROM jobs WHERE status IN ({_ACTIVE_SQL})")
        return [Job.from_row(r) for r in rows]

    async def awaiting_delivery(self) -> list[Job]:
        rows = await self.db.fetchall("SELECT * FROM jobs WHERE delivery = 'pending'")
        return [Job.from_row(r) for r in rows]

    async def for_member(self, guild_id: int | None, user_id: int, limit: int = 10) -> list[Job]:
        rows = await self.db.fetchall(
            "SELECT * FROM jobs WHERE guild_id IS ? AND user_id = ? ORDER BY created_at DESC LIMIT ?",
            (guild_id, user_id, limit),
        )
        return [Job.from_row(r) for r in rows]

    async def active_for_member(self, guild_id: int | None, user_id: int) -> list[Job]:
        rows = await self.db.fetchall(
            f"SELECT * FROM jobs WHERE guild_id IS ? AND user_id = ? AND status IN ({_ACTIVE_SQL}) ORDER BY created_at",
            (guild_id, user_id),
        )
        return [Job.from_row(r) for r in rows]

    async def inputs(self, job_id: str) -> list[InputRecord]:
        return await self.db.read(lambda c: JobStore.inputs_in(c, job_id))

    @staticmethod
    def inputs_in(conn: sqlite3.Connection, job_id: str) -> list[InputRecord]:
        rows = conn.execute(
            "SELECT name, position, sha256, filename, content_type, size FROM job_inputs "
            "WHERE job_id = ? ORDER BY name, position",
            (job_id,),
        ).fetchall()
        return [InputRecord(**dict(r)) for r in rows]

    async def results(self, job_id: str) -> list[ResultRecord]:
        rows = await self.db.fetchall(
            "SELECT position, filename, kind, content_type, size, path, label, send FROM job_results "
            "WHERE job_id = ? ORDER BY position",
            (job_id,),
        )
        return [ResultRecord(**{**dict(r), "send": bool(r["send"])}) for r in rows]

    def add_input_referrer(self, sql: str) -> None:
        """Another table also keeps files of the input store (e.g. training sets): `sql` selects a row when
        it still needs the file whose sha256 is its one parameter, so finished jobs do not delete it."""
        self._referrers.append(sql)

    async def sha_in_use(self, sha256: str) -> bool:
        queries = [
            f"SELECT 1 FROM job_inputs JOIN jobs ON jobs.id = job_inputs.job_id "
            f"WHERE sha256 = ? AND jobs.status IN ({_ACTIVE_SQL}) LIMIT 1",
            *self._referrers,
        ]

        def used(conn: sqlite3.Connection) -> bool:
            return any(conn.execute(sql, (sha256,)).fetchone() is not None for sql in queries)

        return await self.db.read(used)

    async def queue_position(self, job: Job) -> int:
        return await self.db.read(lambda c: JobStore.queue_position_in(c, job))

    @staticmethod
    def queue_position_in(conn: sqlite3.Connection, job: Job) -> int:
        """1 for the next job to go, among queued jobs of the same provider and slot group."""
        row = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND provider = ? AND slot_group IS ? "
            "AND created_at <= ?",
            (job.provider, job.slot_group, job.created_at),
        ).fetchone()
        return int(row[0]) if row else 1

    @staticmethod
    def claim_slot_in(conn: sqlite3.Connection, job: Job, limit: int | None) -> bool:
        """Move a queued job to SUBMITTING if a slot of its group is free for it, in one statement.

        Queued jobs start in order: a job may go only when the jobs at the provider plus the queued jobs
        ahead of it leave a slot; two steps running at once can never both take the last one."""
        params: dict[str, Any] = {
            "id": job.id,
            "provider": job.provider,
            "group": job.slot_group,
            "created": job.created_at,
            "limit": limit,
            "now": time.time(),
        }
        gate = ""
        if limit is not None and job.slot_group is not None:
            gate = (
                " AND (SELECT COUNT(*) FROM jobs o WHERE o.provider = :provider AND o.slot_group = :group AND "
                f"(o.status IN ({_OCCUPYING_SQL}) OR (o.status = 'queued' AND "
                "(o.created_at < :created OR (o.created_at = :created AND o.id < :id))))) < :limit"
            )
        sql = (
            "UPDATE jobs SET status = 'submitting', attempts = attempts + 1, updated_at = :now "
            f"WHERE id = :id AND status = 'queued' AND request IS NULL{gate}"
        )
        return conn.execute(sql, params).rowcount == 1

    async def queued_in_group(self, provider: str, slot_group: str | None, limit: int) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT id FROM jobs WHERE status = 'queued' AND provider = ? AND slot_group IS ? "
            "ORDER BY created_at, id LIMIT ?",
            (provider, slot_group, limit),
        )
        return [str(r["id"]) for r in rows]

    async def due_for_sweep(self) -> list[tuple[str, float | None, float]]:
        """Every job that needs a step: active ones, and finished ones still to be delivered."""
        rows = await self.db.fetchall(
            f"SELECT id, next_check_at, deadline_at FROM jobs WHERE status IN ({_ACTIVE_SQL}) "
            "UNION ALL SELECT id, next_check_at, deadline_at FROM jobs WHERE delivery = 'pending'"
        )
        return [(str(r["id"]), r["next_check_at"], float(r["deadline_at"])) for r in rows]

    @staticmethod
    def record_message_in(conn: sqlite3.Connection, job_id: str, part: int, channel_id: int, message_id: int) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO job_messages (job_id, part, channel_id, message_id) VALUES (?, ?, ?, ?)",
            (job_id, part, channel_id, message_id),
        )

    async def messages(self, job_id: str) -> list[tuple[int, int]]:
        """(channel id, message id) of every part of the job's result, in order."""
        rows = await self.db.fetchall(
            "SELECT channel_id, message_id FROM job_messages WHERE job_id = ? ORDER BY part", (job_id,)
        )
        return [(int(r["channel_id"]), int(r["message_id"])) for r in rows]
