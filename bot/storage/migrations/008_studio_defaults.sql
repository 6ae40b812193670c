-- Which studio makes each kind of thing (image, upscale, edit, video) in a server, chosen by its admins.
-- A studio that is off (no key) is skipped at routing time, so a row may name one that is off today.
CREATE TABLE studio_defaults (
    guild_id   INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    studio     TEXT NOT NULL,
    set_by     INTEGER,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (guild_id, kind)
);
-- Secrets Easel makes for itself (e.g. the key that signs links to results), made once and kept here so
-- links stay valid across restarts.
CREATE TABLE app_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
