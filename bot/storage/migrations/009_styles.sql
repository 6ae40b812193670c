-- One training-set store for every studio (portraits on mimpi, styles on Flair), and Flair style models.
-- Migration 004's portrait_sets/portrait_photos move into the generic tables (same ids), then are dropped.

CREATE TABLE training_sets (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    studio     TEXT NOT NULL,                 -- portrait|style: whose rules apply
    guild_id   INTEGER NOT NULL,
    owner_key  TEXT NOT NULL,                 -- what it belongs to: "u:<member>" (portraits), "s:<style id>"
    user_id    INTEGER,                       -- the member it belongs to; NULL for a server style's set
    subject    TEXT NOT NULL DEFAULT '',
    name       TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'open',  -- open|training (portraits: a job was created from it)
    job_id     TEXT REFERENCES jobs(id) ON DELETE SET NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
-- At most one set being collected per owner: per member for portraits, per model for styles.
CREATE UNIQUE INDEX training_sets_open ON training_sets(studio, guild_id, owner_key) WHERE status = 'open';
CREATE INDEX training_sets_member ON training_sets(guild_id, user_id);

CREATE TABLE training_images (
    set_id    INTEGER NOT NULL REFERENCES training_sets(id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,               -- order added: shown numbered 1..n in this order
    sha256    TEXT NOT NULL,                  -- the file, in the job engine's input store
    filename  TEXT NOT NULL,
    format    TEXT NOT NULL,
    size      INTEGER NOT NULL,
    width     INTEGER NOT NULL,
    height    INTEGER NOT NULL,
    added_by  INTEGER,                        -- the member whose own message or attachment it came from
    added_at  REAL NOT NULL,
    PRIMARY KEY (set_id, sha256)
);
CREATE INDEX training_images_sha ON training_images(sha256);

INSERT INTO training_sets (id, studio, guild_id, owner_key, user_id, subject, name, status, job_id, created_at,
                           updated_at)
    SELECT id, 'portrait', guild_id, 'u:' || user_id, user_id, subject, name, status, job_id, created_at, updated_at
    FROM portrait_sets;
INSERT INTO training_images (set_id, seq, sha256, filename, format, size, width, height, added_by, added_at)
    SELECT p.set_id, p.seq, p.sha256, p.filename, p.format, p.size, p.width, p.height, s.user_id, p.added_at
    FROM portrait_photos p JOIN portrait_sets s ON s.id = p.set_id;
DROP TABLE portrait_photos;
DROP TABLE portrait_sets;

-- Style models (Flair). A member's, or the server's (user_id NULL) when an admin created it. The Flair model
-- exists from creation (free); its trainings are jobs (feature style_training, params.style_id).
CREATE TABLE style_models (
    id             TEXT PRIMARY KEY,          -- Easel's short id, shown and typed by members
    guild_id       INTEGER NOT NULL,
    user_id        INTEGER,                   -- owner; NULL: the server's
    name           TEXT NOT NULL,
    flair_model_id TEXT NOT NULL,
    created_by     INTEGER,
    training_id    TEXT,                      -- its latest successful training, once seen (a member's erase
    trigger_word   TEXT,                      -- anonymises job rows: a server style must stay usable)
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL
);
CREATE UNIQUE INDEX style_models_name ON style_models(guild_id, COALESCE(user_id, 0), name COLLATE NOCASE);

-- Flair's data ids of a model's training images, by content hash: each image is uploaded once per model
-- (a retrain sends only new ones; removing an image from the set deletes it at Flair).
CREATE TABLE flair_uploads (
    flair_model_id TEXT NOT NULL,
    input_key      TEXT NOT NULL,
    data_id        TEXT NOT NULL,
    job_id         TEXT,
    uploaded_at    REAL NOT NULL,
    PRIMARY KEY (flair_model_id, input_key)
);

-- A style training's start (paid: sent at most once), as the adapter's UploadLog records it.
CREATE TABLE flair_starts (
    job_id      TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    sent        INTEGER NOT NULL,
    training_id TEXT,
    earlier     TEXT NOT NULL DEFAULT '[]',   -- JSON: the model's training ids before the start was sent
    updated_at  REAL NOT NULL
);

-- Who asked for each style image job: /forget-me deletes those predictions at Flair even after the job
-- row was anonymised.
CREATE TABLE style_jobs (
    job_id   TEXT PRIMARY KEY,
    guild_id INTEGER,
    user_id  INTEGER NOT NULL,
    style_id TEXT
);
CREATE INDEX style_jobs_member ON style_jobs(guild_id, user_id);

-- Deletions at Flair owed to members who used /forget-me: recorded before their rows here are removed, and
-- retried (at start and at the next erase) until Flair confirms, so an outage never keeps their data there.
CREATE TABLE flair_erasures (
    kind     TEXT NOT NULL,                   -- model (its training images, then the model) | prediction
    item_id  TEXT NOT NULL,
    added_at REAL NOT NULL,
    tries    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, item_id)
);
