"""Style models (Flair): a member's, or the server's when an admin creates one.

The Flair model exists from creation (free); its training images are a training set in the shared store
(bot/training, owner "s:<style id>", open for the model's whole life: the set is what the model learns
from); each training is a job (feature `style_training`, params `style_id`), so the model's history, its
current training and the credits charged live where the engine writes them. A model is usable once one of
its trainings succeeded: that job's meta holds the Flair training id and the trigger word.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.errors import BadInput
from bot.jobs.access import Actor, can_act, owns, same_scope
from bot.jobs.files import FileStore
from bot.jobs.model import ACTIVE, Job, JobStatus
from bot.providers.flair import IMAGE, TRAINING
from bot.providers.flair.models import UPLOAD_MAX_BYTES
from bot.providers.flair.upload_log import StartState
from bot.storage.database import Database
from bot.training import Prepared, Rules, TrainingSet, TrainingSetStore, keep_format

if TYPE_CHECKING:
    from bot.settings import Settings

STUDIO = "style"
NAME_MAX = 40
ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
IMAGE_MAX_BYTES = 25 * 1024 * 1024  # per attachment, before preparing (stored ones fit Flair's 10 MB)
IMAGE_MIN_SIDE = 256
_UNSAFE_NAME = re.compile(r"[`*_~|<>@#\\\n\r\t]+")


def owner_key(style_id: str) -> str:
    return f"s:{style_id}"


def clean_name(raw: str) -> str:
    name = " ".join(_UNSAFE_NAME.sub(" ", raw).split())[:NAME_MAX]
    if not name:
        raise BadInput("Give the style a name of plain letters and numbers, e.g. `Watercolour`.")
    return name


def _prepare(data: bytes) -> Prepared:
    return keep_format(data, UPLOAD_MAX_BYTES)


def rules(settings: Settings) -> Rules:
    """Flair's training-set rules: raw uploads in their own format (PNG, WebP, JPEG), at most 10 MB each."""
    return Rules(
        studio=STUDIO,
        noun="image",
        command="/style",
        min_images=settings.style_min_images,
        recommended_images=settings.style_recommended_images,
        max_images=settings.style_max_images,
        max_bytes=IMAGE_MAX_BYTES,
        min_side=IMAGE_MIN_SIDE,
        prepare=_prepare,
    )


@dataclass(frozen=True)
class StyleModel:
    id: str
    guild_id: int
    user_id: int | None  # None: the server's
    name: str
    flair_model_id: str
    created_by: int | None
    created_at: float

    @property
    def server_owned(self) -> bool:
        return self.user_id is None


def can_use(style: StyleModel, who: Actor) -> bool:
    """Make images with it: its owner, or anyone in the server for a server style."""
    return owns(style, who) or (style.server_owned and same_scope(style, who))


def can_change(style: StyleModel, who: Actor) -> bool:
    """Add images, train, rename, delete: its owner, or the server's admins (the only ones for server styles)."""
    return can_act(style, who)


@dataclass(frozen=True)
class Trained:
    """A style model's usable training: the latest one that succeeded."""

    training_id: str
    trigger_word: str | None
    job_id: str | None = None


class StyleRepository:
    def __init__(self, db: Database, files: FileStore, *, clock: Any = time.time) -> None:
        self.db = db
        self.clock = clock
        self.sets = TrainingSetStore(db, files, clock=clock)

    @staticmethod
    def _model(row: sqlite3.Row) -> StyleModel:
        return StyleModel(
            row["id"], row["guild_id"], row["user_id"], row["name"], row["flair_model_id"], row["created_by"],
            row["created_at"],
        )  # fmt: skip

    async def create(
        self, guild_id: int, user_id: int | None, name: str, flair_model_id: str, *, created_by: int
    ) -> StyleModel | None:
        """The new model with its (empty, open) training set; None if the owner already has one of that name."""
        now = self.clock()
        style_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(8))

        def write(conn: sqlite3.Connection) -> bool:
            try:
                conn.execute(
                    "INSERT INTO style_models (id, guild_id, user_id, name, flair_model_id, created_by, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (style_id, guild_id, user_id, name, flair_model_id, created_by, now, now),
                )
            except sqlite3.IntegrityError:
                return False
            conn.execute(
                "INSERT INTO training_sets (studio, guild_id, owner_key, user_id, subject, name, status, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, '', ?, 'open', ?, ?)",
                (STUDIO, guild_id, owner_key(style_id), user_id, name, now, now),
            )
            return True

        return await self.get(style_id) if await self.db.write(write) else None

    async def get(self, style_id: str) -> StyleModel | None:
        row = await self.db.fetchone("SELECT * FROM style_models WHERE id = ?", (style_id,))
        return self._model(row) if row else None

    async def visible(self, guild_id: int, user_id: int) -> list[StyleModel]:
        """The member's models and the server's, server's first, by name."""
        rows = await self.db.fetchall(
            "SELECT * FROM style_models WHERE guild_id = ? AND (user_id = ? OR user_id IS NULL) "
            "ORDER BY user_id IS NOT NULL, name COLLATE NOCASE",
            (guild_id, user_id),
        )
        return [self._model(r) for r in rows]

    async def of_member(self, guild_id: int, user_id: int) -> list[StyleModel]:
        rows = await self.db.fetchall(
            "SELECT * FROM style_models WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        return [self._model(r) for r in rows]

    async def rename(self, style: StyleModel, name: str) -> bool:
        """False when the owner already has a model of that name."""
        try:
            await self.db.execute(
                "UPDATE style_models SET name = ?, updated_at = ? WHERE id = ?", (name, self.clock(), style.id)
            )
        except sqlite3.IntegrityError:
            return False
        training_set = await self.training_set(style)
        if training_set is not None:
            await self.sets.rename_set(training_set.id, name)
        return True

    async def delete(self, style: StyleModel) -> None:
        await self.db.execute("DELETE FROM style_models WHERE id = ?", (style.id,))
        await self.db.execute("DELETE FROM flair_uploads WHERE flair_model_id = ?", (style.flair_model_id,))
        await self.sets.erase_owner(STUDIO, style.guild_id, owner_key(style.id))

    async def training_set(self, style: StyleModel) -> TrainingSet | None:
        return await self.sets.open_set(STUDIO, style.guild_id, owner_key(style.id))

    # Trainings: jobs. Found by the Flair model in their provider ref as well as by the style id in their
    # params: a member's erase empties a job's params, and a server style must keep its history.

    _TRAININGS = (
        "SELECT * FROM jobs WHERE feature = ? AND (json_extract(params, '$.style_id') = ? "
        "OR json_extract(provider_ref, '$.model_id') = ?)"
    )

    async def trainings(self, style: StyleModel, *, limit: int = 10) -> list[Job]:
        rows = await self.db.fetchall(
            self._TRAININGS + " ORDER BY created_at DESC LIMIT ?", (TRAINING, style.id, style.flair_model_id, limit)
        )
        return [Job.from_row(r) for r in rows]

    async def active_training(self, style: StyleModel) -> Job | None:
        return next((j for j in await self.trainings(style, limit=5) if j.status in ACTIVE), None)

    async def trained(self, style: StyleModel) -> Trained | None:
        """The latest successful training; remembered on the model, so it outlives the job's details."""
        row = await self.db.fetchone(
            self._TRAININGS + " AND status = ? ORDER BY finished_at DESC LIMIT 1",
            (TRAINING, style.id, style.flair_model_id, JobStatus.SUCCEEDED.value),
        )
        job = Job.from_row(row) if row else None
        training_id = job.ref.get("training_id") if job else None
        cached = await self.db.fetchone("SELECT training_id, trigger_word FROM style_models WHERE id = ?", (style.id,))
        if not training_id:
            if cached is None or not cached["training_id"]:
                return None
            return Trained(str(cached["training_id"]), cached["trigger_word"])
        assert job is not None
        word = job.meta.get("trigger_word")
        if not word and cached is not None and cached["training_id"] == training_id:
            word = cached["trigger_word"]
        found = Trained(str(training_id), str(word) if word else None, job.id)
        if cached is None or (cached["training_id"], cached["trigger_word"]) != (found.training_id, found.trigger_word):
            await self.remember(style, found)
        return found

    async def remember(self, style: StyleModel, trained: Trained) -> None:
        await self.db.execute(
            "UPDATE style_models SET training_id = ?, trigger_word = ? WHERE id = ?",
            (trained.training_id, trained.trigger_word, style.id),
        )

    # Style image jobs: who asked (kept past a member's erase, for deleting their predictions at Flair)

    async def record_image_job(self, job: Job, style_ids: list[str]) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO style_jobs (job_id, guild_id, user_id, style_id) VALUES (?, ?, ?, ?)",
            (job.id, job.guild_id, job.user_id, ",".join(style_ids)),
        )

    async def member_predictions(self, guild_id: int | None, user_id: int) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT json_extract(jobs.provider_ref, '$.prediction_id') AS pid FROM style_jobs "
            "JOIN jobs ON jobs.id = style_jobs.job_id WHERE style_jobs.guild_id IS ? AND style_jobs.user_id = ? "
            "AND jobs.feature = ?",
            (guild_id, user_id, IMAGE),
        )
        return [str(r["pid"]) for r in rows if r["pid"]]

    async def forget_member_jobs(self, guild_id: int | None, user_id: int) -> None:
        await self.db.execute("DELETE FROM style_jobs WHERE guild_id IS ? AND user_id = ?", (guild_id, user_id))

    # Deletions owed at Flair (/forget-me)

    async def owe_erasure(self, kind: str, item_id: str) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO flair_erasures (kind, item_id, added_at) VALUES (?, ?, ?)",
            (kind, item_id, self.clock()),
        )

    async def owed_erasures(self) -> list[tuple[str, str]]:
        rows = await self.db.fetchall("SELECT kind, item_id FROM flair_erasures ORDER BY added_at")
        return [(str(r["kind"]), str(r["item_id"])) for r in rows]

    async def erased(self, kind: str, item_id: str, *, done: bool) -> None:
        if done:
            await self.db.execute("DELETE FROM flair_erasures WHERE kind = ? AND item_id = ?", (kind, item_id))
        else:
            await self.db.execute(
                "UPDATE flair_erasures SET tries = tries + 1 WHERE kind = ? AND item_id = ?", (kind, item_id)
            )

    # Uploads per Flair model

    async def uploads(self, flair_model_id: str) -> dict[str, str]:
        rows = await self.db.fetchall(
            "SELECT input_key, data_id FROM flair_uploads WHERE flair_model_id = ?", (flair_model_id,)
        )
        return {str(r["input_key"]): str(r["data_id"]) for r in rows}

    async def forget_upload(self, flair_model_id: str, key: str) -> None:
        await self.db.execute(
            "DELETE FROM flair_uploads WHERE flair_model_id = ? AND input_key = ?", (flair_model_id, key)
        )


class SqliteUploadLog:
    """Flair's `UploadLog` in the database: a restart mid-training never uploads an image twice nor sends the
    paid start twice. Uploads are kept per Flair model, so a retraining sends only the images added since."""

    def __init__(self, db: Database, *, clock: Any = time.time) -> None:
        self.db = db
        self.clock = clock

    async def _model_of(self, job_id: str) -> str | None:
        row = await self.db.fetchone("SELECT json_extract(params, '$.model_id') AS m FROM jobs WHERE id = ?", (job_id,))
        return str(row["m"]) if row and row["m"] else None

    async def uploaded(self, job_id: str) -> dict[str, str]:
        model_id = await self._model_of(job_id)
        rows = await self.db.fetchall(
            "SELECT input_key, data_id FROM flair_uploads WHERE flair_model_id = ? OR job_id = ?", (model_id, job_id)
        )
        return {str(r["input_key"]): str(r["data_id"]) for r in rows}

    async def record_upload(self, job_id: str, key: str, data_id: str) -> None:
        model_id = await self._model_of(job_id) or f"job:{job_id}"
        await self.db.execute(
            "INSERT OR REPLACE INTO flair_uploads (flair_model_id, input_key, data_id, job_id, uploaded_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (model_id, key, data_id, job_id, self.clock()),
        )

    async def start_state(self, job_id: str) -> StartState:
        row = await self.db.fetchone("SELECT sent, training_id, earlier FROM flair_starts WHERE job_id = ?", (job_id,))
        if row is None:
            return StartState()
        earlier = tuple(str(x) for x in json.loads(row["earlier"] or "[]"))
        return StartState(sent=bool(row["sent"]), training_id=row["training_id"], earlier=earlier)

    async def set_start_sent(self, job_id: str, sent: bool, earlier: tuple[str, ...] = ()) -> None:
        await self.db.execute(
            "INSERT INTO flair_starts (job_id, sent, training_id, earlier, updated_at) VALUES (?, ?, NULL, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET sent = excluded.sent, training_id = NULL, earlier = excluded.earlier, "
            "updated_at = excluded.updated_at",
            (job_id, int(sent), json.dumps(list(earlier)), self.clock()),
        )

    async def record_training(self, job_id: str, training_id: str) -> None:
        await self.db.execute(
            "INSERT INTO flair_starts (job_id, sent, training_id, earlier, updated_at) VALUES (?, 1, ?, '[]', ?) "
            "ON CONFLICT (job_id) DO UPDATE SET sent = 1, training_id = excluded.training_id, "
            "updated_at = excluded.updated_at",
            (job_id, training_id, self.clock()),
        )
