"""Training sets of every studio in one store: sets, their numbered images, and the files they keep.

A set belongs to an owner key: a member for portraits ("u:<id>"), a style model for styles ("s:<id>").
Images live in the job engine's input store by content hash; a file is deleted once no open set and no
unfinished job needs it.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from bot.errors import BadInput
from bot.jobs.files import FileStore
from bot.media import MediaInfo
from bot.storage.database import Database

# For JobStore.add_input_referrer: the images of open sets are still needed.
REFERRER_SQL = (
    "SELECT 1 FROM training_images i JOIN training_sets s ON s.id = i.set_id "
    "WHERE i.sha256 = ? AND s.status = 'open' LIMIT 1"
)


@dataclass(frozen=True)
class TrainingSet:
    id: int
    studio: str
    guild_id: int
    owner_key: str
    user_id: int | None
    subject: str
    name: str
    status: str
    job_id: str | None


@dataclass(frozen=True)
class SetImage:
    number: int  # 1-based, in the order added
    sha256: str
    filename: str
    format: str
    size: int
    width: int
    height: int
    added_by: int | None = None

    def info(self) -> MediaInfo:
        return MediaInfo("image", self.format, self.width, self.height)


@dataclass(frozen=True)
class NewImage:
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


def member_key(user_id: int) -> str:
    return f"u:{user_id}"


class TrainingSetStore:
    def __init__(self, db: Database, files: FileStore, *, clock: Any = time.time) -> None:
        self.db = db
        self.files = files
        self.clock = clock

    @staticmethod
    def _set(row: sqlite3.Row) -> TrainingSet:
        return TrainingSet(
            row["id"], row["studio"], row["guild_id"], row["owner_key"], row["user_id"], row["subject"], row["name"],
            row["status"], row["job_id"],
        )  # fmt: skip

    async def open_set(self, studio: str, guild_id: int, owner_key: str) -> TrainingSet | None:
        row = await self.db.fetchone(
            "SELECT * FROM training_sets WHERE studio = ? AND guild_id = ? AND owner_key = ? AND status = 'open'",
            (studio, guild_id, owner_key),
        )
        return self._set(row) if row else None

    async def get_set(self, set_id: int) -> TrainingSet | None:
        row = await self.db.fetchone("SELECT * FROM training_sets WHERE id = ?", (set_id,))
        return self._set(row) if row else None

    async def create_set(
        self, studio: str, guild_id: int, owner_key: str, user_id: int | None, *, name: str, subject: str = ""
    ) -> TrainingSet | None:
        """The new set, or None if the owner already has one open."""
        now = self.clock()

        def write(conn: sqlite3.Connection) -> int | None:
            try:
                cursor = conn.execute(
                    "INSERT INTO training_sets (studio, guild_id, owner_key, user_id, subject, name, status, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                    (studio, guild_id, owner_key, user_id, subject, name, now, now),
                )
            except sqlite3.IntegrityError:
                return None
            return cursor.lastrowid

        set_id = await self.db.write(write)
        return None if set_id is None else await self.get_set(set_id)

    async def rename_set(self, set_id: int, name: str) -> None:
        await self.db.execute(
            "UPDATE training_sets SET name = ?, updated_at = ? WHERE id = ?", (name, self.clock(), set_id)
        )

    async def touch(self, set_id: int) -> None:
        """The member is working on this set: the shared message command adds to it next."""
        await self.db.execute("UPDATE training_sets SET updated_at = ? WHERE id = ?", (self.clock(), set_id))

    async def images(self, set_id: int) -> list[SetImage]:
        rows = await self.db.fetchall(
            "SELECT sha256, filename, format, size, width, height, added_by FROM training_images WHERE set_id = ? "
            "ORDER BY seq",
            (set_id,),
        )
        return [SetImage(n + 1, *tuple(r)) for n, r in enumerate(rows)]

    async def add_images(self, set_id: int, images: list[NewImage], max_images: int, *, added_by: int) -> AddResult:
        """Add in one transaction, so two adds at once can never pass the limit together."""
        now = self.clock()

        def write(conn: sqlite3.Connection) -> AddResult:
            status = conn.execute("SELECT status FROM training_sets WHERE id = ?", (set_id,)).fetchone()
            if status is None or status["status"] != "open":
                raise BadInput("That training set is no longer open.")
            have = {r[0] for r in conn.execute("SELECT sha256 FROM training_images WHERE set_id = ?", (set_id,))}
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM training_images WHERE set_id = ?", (set_id,))
            next_seq = int(seq.fetchone()[0]) + 1
            result = AddResult([], [], [], len(have))
            for image in images:
                if image.sha256 in have:
                    result.duplicates.append(image.filename)
                    continue
                if result.total >= max_images:
                    result.over_limit.append(image.filename)
                    continue
                conn.execute(
                    "INSERT INTO training_images (set_id, seq, sha256, filename, format, size, width, height, "
                    "added_by, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (set_id, next_seq, image.sha256, image.filename, image.format, image.size, image.width,
                     image.height, added_by, now),
                )  # fmt: skip
                have.add(image.sha256)
                next_seq += 1
                result.total += 1
                result.added.append(image.filename)
            conn.execute("UPDATE training_sets SET updated_at = ? WHERE id = ?", (now, set_id))
            return result

        return await self.db.write(write)

    async def remove_images(self, set_id: int, shas: list[str]) -> int:
        def write(conn: sqlite3.Connection) -> int:
            return conn.executemany(
                "DELETE FROM training_images WHERE set_id = ? AND sha256 = ?", [(set_id, s) for s in shas]
            ).rowcount

        removed = await self.db.write(write)
        await self.forget_files(shas)
        return removed

    async def discard(self, set_id: int) -> None:
        shas = [p.sha256 for p in await self.images(set_id)]
        await self.db.execute("DELETE FROM training_sets WHERE id = ?", (set_id,))
        await self.forget_files(shas)

    async def mark_training(self, set_id: int, job_id: str) -> None:
        await self.db.execute(
            "UPDATE training_sets SET status = 'training', job_id = ?, updated_at = ? WHERE id = ?",
            (job_id, self.clock(), set_id),
        )

    async def job_for_set(self, feature: str, set_id: int) -> str | None:
        """An unfinished or successful job already made from this set (found by its params, so a crash between
        creating the job and marking the set still cannot train it twice)."""
        row = await self.db.fetchone(
            "SELECT id FROM jobs WHERE feature = ? AND json_extract(params, '$._set_id') = ? "
            "AND status NOT IN ('failed', 'cancelled', 'expired') ORDER BY created_at DESC LIMIT 1",
            (feature, set_id),
        )
        return str(row["id"]) if row else None

    async def forget_files(self, shas: list[str]) -> None:
        """Delete stored images nothing needs any more (no open set, no unfinished job: a training job holds its
        own images until it ends)."""
        for sha in shas:
            async with self.files.holding([sha]):
                in_set = await self.db.fetchone(REFERRER_SQL, (sha,))
                in_job = await self.db.fetchone(
                    "SELECT 1 FROM job_inputs JOIN jobs ON jobs.id = job_inputs.job_id WHERE sha256 = ? "
                    "AND jobs.status IN ('queued', 'submitting', 'submitted', 'running') LIMIT 1",
                    (sha,),
                )
                if in_set is None and in_job is None:
                    await self.files.remove_input(sha)

    async def erase_owner(self, studio: str, guild_id: int, owner_key: str) -> int:
        """Forget every set of one owner (a deleted style model), with their images."""
        return await self._erase("s.studio = ? AND s.guild_id = ? AND s.owner_key = ?", (studio, guild_id, owner_key))

    async def erase_member(self, studio: str, guild_id: int | None, user_id: int) -> int:
        """Forget a member's sets of one studio here, with their images. Returns how many sets were removed."""
        if guild_id is None:
            return 0  # training sets are per server; there are none in DMs
        return await self._erase("s.studio = ? AND s.guild_id = ? AND s.user_id = ?", (studio, guild_id, user_id))

    async def _erase(self, where: str, params: tuple[Any, ...]) -> int:
        rows = await self.db.fetchall(
            f"SELECT i.sha256 FROM training_images i JOIN training_sets s ON s.id = i.set_id WHERE {where}", params
        )
        removed = await self.db.execute(
            f"DELETE FROM training_sets WHERE id IN (SELECT s.id FROM training_sets s WHERE {where})", params
        )
        await self.forget_files(sorted({str(r[0]) for r in rows}))
        return removed
