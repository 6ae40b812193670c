"""Repository: each server's default studio per kind (image, upscale, edit, video)."""

from __future__ import annotations

from bot.storage.database import Database


class StudioDefaults:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, guild_id: int | None, kind: str) -> str | None:
        if guild_id is None:
            return None
        row = await self._db.fetchone(
            "SELECT studio FROM studio_defaults WHERE guild_id = ? AND kind = ?", (guild_id, kind)
        )
        return str(row["studio"]) if row else None

    async def all(self, guild_id: int) -> dict[str, str]:
        rows = await self._db.fetchall("SELECT kind, studio FROM studio_defaults WHERE guild_id = ?", (guild_id,))
        return {str(r["kind"]): str(r["studio"]) for r in rows}

    async def set(self, guild_id: int, kind: str, studio: str, set_by: int | None) -> None:
        await self._db.execute(
            "INSERT INTO studio_defaults (guild_id, kind, studio, set_by) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (guild_id, kind) DO UPDATE SET studio = excluded.studio, set_by = excluded.set_by, "
            "updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            (guild_id, kind, studio, set_by),
        )

    async def clear(self, guild_id: int, kind: str) -> bool:
        return (
            await self._db.execute("DELETE FROM studio_defaults WHERE guild_id = ? AND kind = ?", (guild_id, kind)) > 0
        )
