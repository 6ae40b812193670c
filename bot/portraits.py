"""Portrait models (mimpi): training sets, their photos, and the models trained from them.

The training job's row is the model record: its owner (guild, user), status, the mimpi model id
(`provider_ref.model_id`) and expiry (`meta.expires_at`) already live there, written by the engine in the
same transactions that charge and refund. Keeping them in a second table would mean two truths that a crash
between two writes could set apart. The tables of migration 004 add only what the job row cannot hold.
"""

from __future__ import annotations

import asyncio
import io
import re
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

from bot.errors import BadInput
from bot.jobs.files import FileStore
from bot.jobs.model import Job, JobStatus
from bot.media import MediaInfo
from bot.providers.mimpi import MODEL_RETENTION_S, TRAINING
from bot.storage.database import Database

TOKEN_WORD = "sks"  # the rare word mimpi's examples bind the subject to ("sks man")
SUBJECTS = ("man", "woman", "person", "boy", "girl", "baby", "dog", "cat", "puppy", "kitten")
SUBJECT_PATTERN = re.compile(r"^[a-z][a-z ]{1,29}$")
NAME_MAX = 40
PROMPT_MAX = 1000  # what mimpi accepts, token included
PHOTO_MAX_BYTES = 20 * 1024 * 1024  # per attachment, before normalising
PHOTO_MIN_SIDE = 256  # smaller photos teach a model nothing
PHOTO_MAX_SIDE = 2048  # stored (and uploaded) photos are scaled down to this
PHOTO_QUALITY = 90


@dataclass(frozen=True)
class TrainingSet:
    id: int
    guild_id: int
    user_id: int
    subject: str
    name: str
    status: str
    job_id: str | None

    @property
    def token(self) -> str:
        return subject_token(self.subject)


@dataclass(frozen=True)
class Photo:
    number: int  # 1-based, in the order added
    sha256: str
    filename: str
    format: str
    size: int
    width: int
    height: int


@dataclass(frozen=True)
class NewPhoto:
    sha256: str
    filename: str
    format: str
    size: int
    width: int
    height: int


@dataclass
class AddResult:
    added: list[str]
    duplicates: list[str]
    over_limit: list[str]
    total: int


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


def parse_numbers(text: str, count: int) -> set[int]:
    """'2, 5-7' -> {2, 5, 6, 7}, every number within 1..count; BadInput otherwise."""
    numbers: set[int] = set()
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        match = re.fullmatch(r"(\d{1,3})(?:-(\d{1,3}))?", part)
        if match is None:
            raise BadInput(f"`{part[:20]}` is not a photo number; use numbers like `2, 5-7`.")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if low > high:
            low, high = high, low
        if low < 1 or high > count:
            raise BadInput(f"Your set has photos 1 to {count}; `{part}` is outside that.")
        numbers.update(range(low, high + 1))
    if not numbers:
        raise BadInput("Give the numbers of the photos to remove, e.g. `2, 5-7` (see `/portrait review`).")
    return numbers


def normalise_photo(data: bytes) -> tuple[bytes, int, int]:
    """Upright, RGB, at most PHOTO_MAX_SIDE px, JPEG, no metadata (GPS and all): what is stored and
    uploaded. CPU work: call in a thread."""
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened) or opened
        if image.mode in ("RGBA", "LA", "P"):
            rgba = image.convert("RGBA")
            image = Image.new("RGB", rgba.size, (255, 255, 255))
            image.paste(rgba, mask=rgba.split()[-1])
        else:
            image = image.convert("RGB")
        image.thumbnail((PHOTO_MAX_SIDE, PHOTO_MAX_SIDE), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=PHOTO_QUALITY)
        return out.getvalue(), image.width, image.height


async def normalise_photo_async(data: bytes) -> tuple[bytes, int, int]:
    return await asyncio.to_thread(normalise_photo, data)


def photo_info(photo: Photo) -> MediaInfo:
    return MediaInfo("image", photo.format, photo.width, photo.height)


class PortraitRepository:
    """Training sets, photos, model deletions, and the mimpi adapter's upload log (its `UploadLog`)."""

    def __init__(self, db: Database, files: FileStore, *, clock: Any = time.time) -> None:
        self.db = db
        self.files = files
        self.clock = clock

    # Training sets

    @staticmethod
    def _set(row: sqlite3.Row) -> TrainingSet:
        return TrainingSet(
            row["id"], row["guild_id"], row["user_id"], row["subject"], row["name"], row["status"], row["job_id"]
        )

    async def open_set(self, guild_id: int, user_id: int) -> TrainingSet | None:
        row = await self.db.fetchone(
            "SELECT * FROM portrait_sets WHERE guild_id = ? AND user_id = ? AND status = 'open'", (guild_id, user_id)
        )
        return self._set(row) if row else None

    async def get_set(self, set_id: int) -> TrainingSet | None:
        row = await self.db.fetchone("SELECT * FROM portrait_sets WHERE id = ?", (set_id,))
        return self._set(row) if row else None

    async def create_set(self, guild_id: int, user_id: int, subject: str, name: str) -> TrainingSet | None:
        """The new set, or None if the member already has one open here."""
        now = self.clock()

        def write(conn: sqlite3.Connection) -> int | None:
            try:
                cursor = conn.execute(
                    "INSERT INTO portrait_sets (guild_id, user_id, subject, name, status, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, 'open', ?, ?)",
                    (guild_id, user_id, subject, name, now, now),
                )
            except sqlite3.IntegrityError:
                return None
            return cursor.lastrowid

        set_id = await self.db.write(write)
        return None if set_id is None else await self.get_set(set_id)

    async def photos(self, set_id: int) -> list[Photo]:
        rows = await self.db.fetchall(
            "SELECT sha256, filename, format, size, width, height FROM portrait_photos WHERE set_id = ? ORDER BY seq",
            (set_id,),
        )
        return [Photo(n + 1, *tuple(r)) for n, r in enumerate(rows)]

    async def add_photos(self, set_id: int, photos: list[NewPhoto], max_images: int) -> AddResult:
        """Add in one transaction, so two adds at once can never pass the limit together."""
        now = self.clock()

        def write(conn: sqlite3.Connection) -> AddResult:
            status = conn.execute("SELECT status FROM portrait_sets WHERE id = ?", (set_id,)).fetchone()
            if status is None or status["status"] != "open":
                raise BadInput("That training set is no longer open; start a new one with `/portrait new`.")
            have = {r[0] for r in conn.execute("SELECT sha256 FROM portrait_photos WHERE set_id = ?", (set_id,))}
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM portrait_photos WHERE set_id = ?", (set_id,))
            next_seq = int(seq.fetchone()[0]) + 1
            result = AddResult([], [], [], len(have))
            for photo in photos:
                if photo.sha256 in have:
                    result.duplicates.append(photo.filename)
                    continue
                if result.total >= max_images:
                    result.over_limit.append(photo.filename)
                    continue
                conn.execute(
                    "INSERT INTO portrait_photos (set_id, seq, sha256, filename, format, size, width, height, "
                    "added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (set_id, next_seq, photo.sha256, photo.filename, photo.format, photo.size, photo.width,
                     photo.height, now),
                )  # fmt: skip
                have.add(photo.sha256)
                next_seq += 1
                result.total += 1
                result.added.append(photo.filename)
            conn.execute("UPDATE portrait_sets SET updated_at = ? WHERE id = ?", (now, set_id))
            return result

        return await self.db.write(write)

    async def remove_photos(self, set_id: int, shas: list[str]) -> int:
        def write(conn: sqlite3.Connection) -> int:
            return conn.executemany(
                "DELETE FROM portrait_photos WHERE set_id = ? AND sha256 = ?", [(set_id, s) for s in shas]
            ).rowcount

        removed = await self.db.write(write)
        await self.forget_files(shas)
        return removed

    async def discard(self, set_id: int) -> None:
        shas = [p.sha256 for p in await self.photos(set_id)]
        await self.db.execute("DELETE FROM portrait_sets WHERE id = ? AND status = 'open'", (set_id,))
        await self.forget_files(shas)

    async def mark_training(self, set_id: int, job_id: str) -> None:
        await self.db.execute(
            "UPDATE portrait_sets SET status = 'training', job_id = ?, updated_at = ? WHERE id = ?",
            (job_id, self.clock(), set_id),
        )

    async def job_for_set(self, set_id: int) -> str | None:
        """A training job already made from this set (found by its params, so a crash between creating the
        job and marking the set still cannot train it twice)."""
        row = await self.db.fetchone(
            "SELECT id FROM jobs WHERE feature = ? AND json_extract(params, '$._set_id') = ? "
            "AND status NOT IN ('failed', 'cancelled', 'expired') ORDER BY created_at DESC LIMIT 1",
            (TRAINING, set_id),
        )
        return str(row["id"]) if row else None

    async def forget_files(self, shas: list[str]) -> None:
        """Delete stored photos nothing needs any more (no open set, no unfinished job: a training job holds
        its own photos until it ends)."""
        for sha in shas:
            row = await self.db.fetchone(
                "SELECT 1 FROM portrait_photos p JOIN portrait_sets s ON s.id = p.set_id "
                "WHERE p.sha256 = ? AND s.status = 'open' LIMIT 1",
                (sha,),
            )
            in_job = await self.db.fetchone(
                "SELECT 1 FROM job_inputs JOIN jobs ON jobs.id = job_inputs.job_id WHERE sha256 = ? "
                "AND jobs.status IN ('queued', 'submitting', 'submitted', 'running') LIMIT 1",
                (sha,),
            )
            if row is None and in_job is None:
                await self.files.remove_input(sha)

    async def erase_member(self, guild_id: int | None, user_id: int) -> int:
        """Forget a member's training sets and their photos here (their models are jobs: the job engine's
        erase covers them). Returns how many sets were removed."""
        if guild_id is None:
            return 0  # portraits are per server; there are no sets in DMs
        rows = await self.db.fetchall(
            "SELECT p.sha256 FROM portrait_photos p JOIN portrait_sets s ON s.id = p.set_id "
            "WHERE s.guild_id = ? AND s.user_id = ?",
            (guild_id, user_id),
        )
        removed = await self.db.execute(
            "DELETE FROM portrait_sets WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        await self.forget_files(sorted({str(r[0]) for r in rows}))
        return removed

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
