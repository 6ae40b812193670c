-- Per-server settings, stored as a JSON document validated by bot.storage.guilds.GuildConfig.
CREATE TABLE guild_settings (
    guild_id   INTEGER PRIMARY KEY,
    config     TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- What was last synced to Discord per scope ('global' or 'guild:<id>'), so unchanged restarts skip syncing.
CREATE TABLE command_sync (
    scope      TEXT PRIMARY KEY,
    tree_hash  TEXT NOT NULL,
    synced_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
