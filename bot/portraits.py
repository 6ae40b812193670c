"""Portrait models (mimpi): training sets, their photos, and the models trained from them.

The training job's row is the model record: its owner (guild, user), status, the mimpi model id
(`provider_ref.model_id`) and expiry (`meta.expires_at`) already live there, written by the engine in the
same transactions that charge and refund. Keeping them in a second table would mean two truths that a crash
between two writes could set apart. The tables of migration 004 add only what the job row cannot hold;
training sets live in the shared training-set store (bot/training), with the portrait studio's rules.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.errors import BadInput
from bot.jobs.files import FileStore
from bot.jobs.model import Job, JobStatus
from bot.providers.mimpi import MODEL_RETENTION_S, TRAINING
from bot.storage.database import Database
from bot.training import Rules, SetImage, TrainingSet, TrainingSetStore, as_jpeg, member_key

if TYPE_CHECKING:
    from bot.settings import Settings

TOKEN_WORD = "sks"  # the rare word mimpi's examples bind the subject to ("sks man")
SUBJECTS = ("man", "woman", "person", "boy", "girl", "baby", "dog", "cat", "puppy", "kitten")
SUBJECT_PATTERN = re.compile(r"^[a-z][a-z ]{1,29}$")
NAME_MAX = 40
PROMPT_MAX = 1000  # what mimpi accepts, token included
PHOTO_MAX_BYTES = 20 * 1024 * 1024  # per attachment, before normalising
PHOTO_MIN_SIDE = 256  # smaller photos teach a model nothing
STUDIO = "portrait"


@dataclass
class PortraitModel:
    """A training job seen as a model."""

    job: Job
    deleted: bool = False

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def name(self) -> str:
        return str(self.job.params.get("name") or self.subject)

    @property
    def subject(self) -> str:
        return str(self.job.params.get("subject") or "person")

    @property
    def token(self) -> str:
        return str(self.job.params.get("token") or subject_token(self.subject))

    @property
    def provider_model_id(self) -> str | None:
        value = self.job.ref.get("model_id")
        return str(value) if value else None

    @property
    def is_test(self) -> bool:
        return bool(self.job.meta.get("is_test") or self.job.ref.get("is_test"))

    @property
    def expires_at(self) -> float | None:
        if self.job.status is not JobStatus.SUCCEEDED:
            return None
        expires = self.job.meta.get("expires_at")
        if isinstance(expires, int | float):
            return float(expires)
        return (self.job.finished_at or self.job.created_at) + MODEL_RETENTION_S

    def expired(self, now: float) -> bool:
        expires = self.expires_at
        return expires is not None and now >= expires

    def usable(self, now: float) -> bool:
        return (
            self.job.status is JobStatus.SUCCEEDED
            and not self.deleted
            and not self.expired(now)
            and self.provider_model_id is not None
        )

    def state(self, now: float) -> str:
        status = self.job.status
        if self.deleted:
            return "deleted"
        if status is JobStatus.SUCCEEDED:
            return "expired" if self.expired(now) else "ready"
        if status in (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.SUBMITTED):
            return "queued" if status is JobStatus.QUEUED else "starting"
        if status is JobStatus.RUNNING:
            return "training"
        return {JobStatus.EXPIRED: "timed out"}.get(status, status.value)


def subject_token(subject: str) -> str:
    return f"{TOKEN_WORD} {subject}"


def clean_subject(raw: str) -> str:
    subject = " ".join(raw.lower().split())
    if not SUBJECT_PATTERN.match(subject):
        raise BadInput(
            "The subject is what the photos show, in a word or two of plain letters: " + ", ".join(SUBJECTS[:6]) + ", …"
        )
    return subject


def with_token(prompt: str, token: str) -> str:
    """The prompt, with the model's subject token put in front when the member left it out."""
    text = " ".join(prompt.split())
    if not text:
        raise BadInput("Describe the picture you want, e.g. “in soft light, portrait, in the style of Van Gogh”.")
    if re.search(rf"\b{TOKEN_WORD}\b", text, re.IGNORECASE):
        return text
    return f"{token} {text}"


def rules(settings: Settings) -> Rules:
    """mimpi's training-set rules: JPEG photos (its signed-URL uploads), counts from the settings."""
    return Rules(
        studio=STUDIO,
        noun="photo",
        command="/portrait",
        min_images=settings.portrait_min_images,
        recommended_images=settings.portrait_recommended_images,
        max_images=settings.portrait_max_images,
        max_bytes=PHOTO_MAX_BYTES,
        min_side=PHOTO_MIN_SIDE,
        prepare=as_jpeg,
    )


class PortraitRepository:
    """Portrait training sets (in the shared store), model deletions, and the mimpi adapter's upload log (its
    `UploadLog`)."""

    def __init__(self, db: Database, files: FileStore, *, clock: Any = time.time) -> None:
        self.db = db
        self.files = files
        self.clock = clock
        self.sets = TrainingSetStore(db, files, clock=clock)

    # Training sets: the shared store, with the portrait studio's keys

    async def open_set(self, guild_id: int, user_id: int) -> TrainingSet | None:
        return await self.sets.open_set(STUDIO, guild_id, member_key(user_id))

    async def create_set(self, guild_id: int, user_id: int, subject: str, name: str) -> TrainingSet | None:
        """The new set, or None if the member already has one open here."""
        return await self.sets.create_set(STUDIO, guild_id, member_key(user_id), user_id, name=name, subject=subject)

    async def photos(self, set_id: int) -> list[SetImage]:
        return await self.sets.images(set_id)

    async def erase_member(self, guild_id: int | None, user_id: int) -> int:
        """Forget a member's training sets and their photos here (their models are jobs: the job engine's
        erase covers them). Returns how many sets were removed."""
        return await self.sets.erase_member(STUDIO, guild_id, user_id)

    # Models: training jobs, minus deleted ones

    _MODELS = (
        "SELECT jobs.*, d.deleted_at AS deleted_at FROM jobs "
        "LEFT JOIN portrait_model_deletions d ON d.job_id = jobs.id WHERE jobs.feature = '" + TRAINING + "'"
    )

    async def models(self, guild_id: int, user_id: int | None = None, *, limit: int = 100) -> list[PortraitModel]:
        """Models in a server (one member's, or everyone's), newest first; deleted ones left out."""
        sql = self._MODELS + " AND jobs.guild_id = ? AND d.job_id IS NULL"
        params: list[Any] = [guild_id]
        if user_id is not None:
            sql += " AND jobs.user_id = ?"
            params.append(user_id)
        rows = await self.db.fetchall(sql + " ORDER BY jobs.created_at DESC LIMIT ?", (*params, limit))
        return [PortraitModel(Job.from_row(r)) for r in rows]

    async def model(self, job_id: str) -> PortraitModel | None:
        row = await self.db.fetchone(self._MODELS + " AND jobs.id = ?", (job_id,))
        if row is None:
            return None
        return PortraitModel(Job.from_row(row), deleted=row["deleted_at"] is not None)

    async def delete_model(self, job_id: str, by: int) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO portrait_model_deletions (job_id, deleted_by, deleted_at) VALUES (?, ?, ?)",
            (job_id, by, self.clock()),
        )

    # The mimpi adapter's UploadLog: a training's unpaid steps, durable across restarts

    async def uploaded(self, job_id: str) -> dict[str, str]:
        rows = await self.db.fetchall("SELECT input_key, image_id FROM portrait_uploads WHERE job_id = ?", (job_id,))
        return {str(r["input_key"]): str(r["image_id"]) for r in rows}

    async def record_upload(self, job_id: str, key: str, image_id: str) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO portrait_uploads (job_id, input_key, image_id, uploaded_at) VALUES (?, ?, ?, ?)",
            (job_id, key, image_id, self.clock()),
        )

    async def create_state(self, job_id: str) -> tuple[bool, str | None]:
        row = await self.db.fetchone("SELECT sent, model_id FROM portrait_creates WHERE job_id = ?", (job_id,))
        if row is None:
            return False, None
        return bool(row["sent"]), row["model_id"]

    async def set_create_sent(self, job_id: str, sent: bool) -> None:
        await self.db.execute(
            "INSERT INTO portrait_creates (job_id, sent, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET sent = excluded.sent, updated_at = excluded.updated_at",
            (job_id, int(sent), self.clock()),
        )

    async def record_model(self, job_id: str, model_id: str) -> None:
        await self.db.execute(
            "INSERT INTO portrait_creates (job_id, sent, model_id, updated_at) VALUES (?, 1, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET sent = 1, model_id = excluded.model_id, "
            "updated_at = excluded.updated_at",
            (job_id, model_id, self.clock()),
        )
