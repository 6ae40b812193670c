-- What was last synced to Discord, per application and scope ('global' or 'guild:<id>'): a new token (another
-- application) on the same data folder registers its commands, and leaving DEV_GUILD_ID removes the copies
-- in that server. application_id 0: synced before this migration by an unknown application; such rows never
-- count as synced, and their guild scopes are cleared once.
CREATE TABLE command_sync_new (
    application_id INTEGER NOT NULL DEFAULT 0,
    scope          TEXT NOT NULL,
    tree_hash      TEXT NOT NULL,
    synced_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (application_id, scope)
);
INSERT INTO command_sync_new (application_id, scope, tree_hash, synced_at)
    SELECT 0, scope, tree_hash, synced_at FROM command_sync;
DROP TABLE command_sync;
ALTER TABLE command_sync_new RENAME TO command_sync;
