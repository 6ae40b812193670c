"""Creating jobs: admission checks, inputs under their file locks, credits reserved with the row in one
transaction, scheduling before the member is answered; and the fall-over to another studio when the chosen
one refuses a job before accepting it."""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import discord

from bot import limits
from bot.components import SPEND_NOTE_KEY
from bot.errors import NotAllowed, UserFacingError
from bot.jobs.files import safe_filename
from bot.jobs.model import Delivery, InputRecord, Job, JobStatus
from bot.jobs.progress import price_text, status_line
from bot.jobs.status import best_effort
from bot.jobs.store import JobStore
from bot.media import MediaInfo
from bot.providers.base import ErrorKind
from bot.tree import record_first_response

if TYPE_CHECKING:
    from bot.jobs.engine import JobEngine

log = logging.getLogger(__name__)

JOB_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o/1/l/i: ids are read and typed by people
ALTERNATIVES_KEY = "_alternatives"  # in a job's params: the studios to fall over to, in order
ROLES_KEY = "_role_ids"  # kept with alternatives: the member's roles decide their allowance there too

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
    """8 characters of the alphabet from one call to the OS's randomness (secrets.choice would make ~9)."""
    value = int.from_bytes(secrets.token_bytes(8))  # 2**64 values over 31**8: the bias is below 1e-7
    chars = []
    for _ in range(8):
        value, digit = divmod(value, len(JOB_ID_ALPHABET))
        chars.append(JOB_ID_ALPHABET[digit])
    return "".join(chars)


class AdmissionCheck(Protocol):
    async def __call__(
        self, interaction: discord.Interaction[Any], *, feature: str, provider: str, params: dict[str, Any]
    ) -> None: ...


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


class JobCreator:
    def __init__(self, engine: JobEngine) -> None:
        self.e = engine

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
        adapter = self.e.adapters.get(provider)
        if adapter is None:
            raise NotAllowed("That image service is not switched on in this Easel.")
        for check in self.e.admission_checks:
            await check(interaction, feature=feature, provider=provider, params=params)
        shas = [self.e.files.sha256(item.data) for item in inputs]
        stored = [
            InputRecord(
                item.name, item.position, sha, safe_filename(item.filename, "input"), item.info.mime, len(item.data)
            )
            for item, sha in zip(inputs, shas, strict=True)
        ]
        now = self.e.clock()
        job_id = new_job_id()
        provider_limits = self.e.provider_limits(provider)
        per_member = provider_limits.max_per_member
        # A place in a queue only where jobs wait for a slot: with no limit, every job goes straight on.
        has_queue = provider_limits.slot_limit(adapter.slot_group(feature)) is not None
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

        def write(conn: sqlite3.Connection) -> tuple[Job, int | None, str]:
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
            credits, left, period = self.e.ledger.reserve_and_left_in(
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
            position = JobStore.queue_position_in(conn, job) if has_queue else None
            return job, position, price_text(credits, left, period)

        # The files' locks are held until the row references them: a finishing job's clean-up cannot delete
        # a file this job is about to use. A refused reservation leaves no file behind.
        async with self.e.files.holding(shas):
            try:
                for item, sha in zip(inputs, shas, strict=True):
                    await self.e.files.put_input(item.data, sha)
                # One hop to the database for all of it, then answer at once: the 3 s deadline is the member's.
                job, position, price = await self.e.db.write(write)
            except BaseException:
                for sha in shas:
                    with contextlib.suppress(Exception):
                        if not await self.e.store.sha_in_use(sha):
                            await self.e.files.remove_input(sha)
                raise
        # Scheduled before the member is answered: a failed answer must not leave a paid job unscheduled. The
        # row just written is its first step's copy (whoever changes the job before then drops it from idle).
        self.e.idle[job_id] = job
        self.e.scheduler.schedule(job_id)
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
        adapter = self.e.adapters[str(alt["provider"])]
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
        self.e.ledger.refund_in(conn, job.id, f"failed over to {alt['provider']}")
        if job.user_id is not None:
            credits, _left, _period = self.e.ledger.reserve_and_left_in(
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
            adapter = self.e.adapters.get(str(alt["provider"]))
            if adapter is None:
                continue
            new_id, now = new_job_id(), self.e.clock()
            params = {
                **alt["params"],
                **({ALTERNATIVES_KEY: pending, ROLES_KEY: job.params.get(ROLES_KEY)} if pending else {}),
            }
            write = functools.partial(self._fall_over_in, job=job, alt=alt, params=params, new_id=new_id, now=now)
            try:
                new = await self.e.db.write(write)
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
            self.e.idle.pop(job.id, None)
            self.e.scheduler.unschedule(job.id)
            self.e.job_ended(job.id)
            self.e.scheduler.schedule(new.id)
            await best_effort("waking queued jobs", job.id, lambda: self.e.wake_queue(job.provider, job.slot_group))
            name = PROVIDER_NAMES.get(new.provider, new.provider)
            await self.e.status.say(
                new,
                f"{PROVIDER_NAMES.get(job.provider, job.provider)} could not take this ({reason}), so {name} is "
                f"making it: job `{new.id}` · {new.credits} credit{'s' if new.credits != 1 else ''}.",
            )
            return new
        return None
