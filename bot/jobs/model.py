"""Job states, the transitions between them, and the Job record as the engine reads it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for a provider slot
    SUBMITTING = "submitting"  # a create request may be on its way: never send it again
    SUBMITTED = "submitted"  # the provider has it
    RUNNING = "running"  # the provider says it is working on it
    FETCHING = "fetching"  # the provider finished; its answer is saved, its files are being fetched
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # stopped by its deadline

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED})
ACTIVE = (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.FETCHING)
# At the provider: these hold one of its concurrency slots.
OCCUPYING = (JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.RUNNING)


class Request(StrEnum):
    """What a member asked for; the job's next step acts on it (nothing else changes a job's state)."""

    CANCEL = "cancel"
    ERASE = "erase"  # /forget-me: stop if possible, never deliver, anonymise when it ends


# Allowed moves. Anything else is refused, which makes every transition idempotent: repeating one that
# already happened (a duplicate callback, a replayed recovery) changes nothing.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.SUBMITTING, JobStatus.CANCELLED, JobStatus.EXPIRED, JobStatus.FAILED}),
    JobStatus.SUBMITTING: frozenset(
        {
            JobStatus.SUBMITTED,
            JobStatus.FETCHING,
            JobStatus.QUEUED,
            JobStatus.FAILED,
            JobStatus.EXPIRED,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.SUBMITTED: frozenset(
        {JobStatus.RUNNING, JobStatus.FETCHING, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED}
    ),
    JobStatus.RUNNING: frozenset({JobStatus.FETCHING, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED}),
    JobStatus.FETCHING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.EXPIRED}),
}


class Delivery(StrEnum):
    NONE = "none"  # nothing to deliver yet
    PENDING = "pending"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"  # channel, then DM failed: /jobs still shows it


@dataclass
class Job:
    id: str
    guild_id: int | None
    channel_id: int
    user_id: int | None
    feature: str
    provider: str
    params: dict[str, Any]
    status: JobStatus
    credits: int
    slot_group: str | None
    ref: dict[str, Any]
    progress: float | None
    attempts: int
    check_errors: int
    next_check_at: float | None
    deadline_at: float
    error_kind: str | None
    error: str | None
    meta: dict[str, Any]
    result_text: str | None
    delivery: Delivery
    delivery_attempts: int
    delivery_parts_sent: int
    delivery_inflight: str | None
    delivery_inflight_at: float | None
    result_channel_id: int | None
    result_message_id: int | None
    application_id: int | None
    interaction_token: str | None
    token_expires_at: float | None
    attachment_limit: int
    status_edited_at: float | None
    callback_secret: str
    parent_job: str | None
    created_at: float
    started_at: float | None
    updated_at: float
    finished_at: float | None
    request: Request | None = None
    outcome: dict[str, Any] | None = None
    step_errors: int = 0

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        return cls(
            id=row["id"],
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
            user_id=row["user_id"],
            feature=row["feature"],
            provider=row["provider"],
            params=json.loads(row["params"]),
            status=JobStatus(row["status"]),
            credits=row["credits"],
            slot_group=row["slot_group"],
            ref=json.loads(row["provider_ref"]),
            progress=row["progress"],
            attempts=row["attempts"],
            check_errors=row["check_errors"],
            next_check_at=row["next_check_at"],
            deadline_at=row["deadline_at"],
            error_kind=row["error_kind"],
            error=row["error"],
            meta=json.loads(row["meta"]),
            result_text=row["result_text"],
            delivery=Delivery(row["delivery"]),
            delivery_attempts=row["delivery_attempts"],
            delivery_parts_sent=row["delivery_parts_sent"],
            delivery_inflight=row["delivery_inflight"],
            delivery_inflight_at=row["delivery_inflight_at"],
            result_channel_id=row["result_channel_id"],
            result_message_id=row["result_message_id"],
            application_id=row["application_id"],
            interaction_token=row["interaction_token"],
            token_expires_at=row["token_expires_at"],
            attachment_limit=row["attachment_limit"],
            status_edited_at=row["status_edited_at"],
            callback_secret=row["callback_secret"],
            parent_job=row["parent_job"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
            request=Request(row["request"]) if row["request"] else None,
            outcome=json.loads(row["outcome"]) if row["outcome"] else None,
            step_errors=row["step_errors"],
        )

    def token_usable(self, now: float, margin: float) -> bool:
        return (
            bool(self.interaction_token) and self.token_expires_at is not None and now < self.token_expires_at - margin
        )


@dataclass(frozen=True)
class InputRecord:
    name: str
    position: int
    sha256: str
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class ResultRecord:
    position: int
    filename: str
    kind: str
    content_type: str
    size: int
    path: str
    label: str | None
    send: bool
