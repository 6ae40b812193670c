-- Content rules, owned by each server's admins (bot.content). Checked for every new job before anything is
-- stored or spent.

-- Blocked words (stored normalised: letters and digits, case-folded) and patterns (regexes, as written).
CREATE TABLE content_blocklist (
    guild_id INTEGER NOT NULL,
    kind     TEXT NOT NULL,              -- word|pattern
    value    TEXT NOT NULL,
    added_by INTEGER,                    -- NULL once that admin erased their data
    added_at REAL NOT NULL,
    PRIMARY KEY (guild_id, kind, value)
);

-- The server's NSFW policy; a server without a row follows CONTENT_AGE_RESTRICTED_ONLY.
CREATE TABLE content_settings (
    guild_id             INTEGER PRIMARY KEY,
    age_restricted_only  INTEGER NOT NULL,   -- 1: generation only in age-restricted (NSFW) channels
    updated_by           INTEGER,
    updated_at           REAL NOT NULL
);

-- Features switched on or off for the whole server (channel_id 0) or one channel (or thread); a channel's
-- switch wins over the server's. No row: on.
CREATE TABLE content_features (
    guild_id      INTEGER NOT NULL,
    channel_id    INTEGER NOT NULL,
    feature_group TEXT NOT NULL,
    enabled       INTEGER NOT NULL,
    updated_by    INTEGER,
    updated_at    REAL NOT NULL,
    PRIMARY KEY (guild_id, channel_id, feature_group)
);
