"""Repository: per-server configuration and command-sync state."""

from __future__ import annotations

from pydantic import BaseModel, Field

from bot.storage.database import Database


class GuildConfig(BaseModel):
    """What a server's admins can change about Easel in their server."""

    blocked_words: list[str] = Field(default_factory=list)
    results_as_spoilers: bool = False


class GuildRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, guild_id: int) -> GuildConfig:
        row = await self._db.fetchone("SELECT config FROM guild_settings WHERE guild_id = ?", (guild_id,))
        return GuildConfig.model_validate_json(row["config"]) if row else GuildConfig()

    async def put(self, guild_id: int, config: GuildConfig) -> None:
        await self._db.execute(
            "INSERT INTO guild_settings (guild_id, config) VALUES (?, ?) "
            "ON CONFLICT (guild_id) DO UPDATE SET config = excluded.config, "
            "updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            (guild_id, config.model_dump_json()),
        )


LEGACY_APPLICATION = 0  # rows synced before Easel recorded which application synced them


class CommandSyncRepository:
    """The tree hash last synced per (application, scope); scope is 'global' or 'guild:<id>'."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def last_hash(self, application_id: int, scope: str) -> str | None:
        row = await self._db.fetchone(
            "SELECT tree_hash FROM command_sync WHERE application_id = ? AND scope = ?", (application_id, scope)
        )
        return str(row["tree_hash"]) if row else None

    async def record(self, application_id: int, scope: str, tree_hash: str) -> None:
        await self._db.execute(
            "INSERT INTO command_sync (application_id, scope, tree_hash) VALUES (?, ?, ?) "
            "ON CONFLICT (application_id, scope) DO UPDATE SET tree_hash = excluded.tree_hash, "
            "synced_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            (application_id, scope, tree_hash),
        )

    async def guilds_with_commands(self, application_id: int) -> list[int]:
        """Servers this application (or an unknown one, before migration 006) synced commands to."""
        rows = await self._db.fetchall(
            "SELECT DISTINCT CAST(substr(scope, 7) AS INTEGER) FROM command_sync "
            "WHERE scope LIKE 'guild:%' AND application_id IN (?, ?) ORDER BY 1",
            (application_id, LEGACY_APPLICATION),
        )
        return [int(row[0]) for row in rows]

    async def forget(self, application_id: int, scope: str) -> None:
        """The scope holds no commands of this application any more (legacy rows for it go too)."""
        await self._db.execute(
            "DELETE FROM command_sync WHERE scope = ? AND application_id IN (?, ?)",
            (scope, application_id, LEGACY_APPLICATION),
        )
