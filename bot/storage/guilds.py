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


class CommandSyncRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def last_hash(self, scope: str) -> str | None:
        row = await self._db.fetchone("SELECT tree_hash FROM command_sync WHERE scope = ?", (scope,))
        return str(row["tree_hash"]) if row else None

    async def record(self, scope: str, tree_hash: str) -> None:
        await self._db.execute(
            "INSERT INTO command_sync (scope, tree_hash) VALUES (?, ?) "
            "ON CONFLICT (scope) DO UPDATE SET tree_hash = excluded.tree_hash, "
            "synced_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            (scope, tree_hash),
        )
