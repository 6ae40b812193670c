-- Portrait models (mimpi). A member collects photos in a training set, reviews them, then trains a model.
-- The training job's row in `jobs` is the model: its status, the mimpi model id (provider_ref), its expiry
-- (meta) and owner. The tables here hold what the job row cannot: the photos before a job exists, who
-- deleted a model, and the training's unpaid steps.

CREATE TABLE portrait_sets (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    subject    TEXT NOT NULL,                 -- what the photos show: man, woman, dog, ...
    name       TEXT NOT NULL,                 -- the member's name for the model
    status     TEXT NOT NULL DEFAULT 'open',  -- open|training (a job was created from it)
    job_id     TEXT REFERENCES jobs(id) ON DELETE SET NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
-- At most one set being collected per member and server.
CREATE UNIQUE INDEX portrait_sets_open ON portrait_sets(guild_id, user_id) WHERE status = 'open';

-- The photos, stored under the data directory by content hash (the job engine's input store).
CREATE TABLE portrait_photos (
    set_id       INTEGER NOT NULL REFERENCES portrait_sets(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,            -- order added; the member sees them numbered 1..n in this order
    sha256       TEXT NOT NULL,
    filename     TEXT NOT NULL,
    format       TEXT NOT NULL,
    size         INTEGER NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    added_at     REAL NOT NULL,
    PRIMARY KEY (set_id, sha256)
);
CREATE INDEX portrait_photos_sha ON portrait_photos(sha256);

-- Deleted models (mimpi has no delete endpoint: the model is forgotten here and expires there).
CREATE TABLE portrait_model_deletions (
    job_id     TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    deleted_by INTEGER NOT NULL,
    deleted_at REAL NOT NULL
);

-- A training's unpaid steps, recorded as they happen, so a retried or recovered submit never uploads a
-- photo twice, and never sends the paid create twice.
CREATE TABLE portrait_uploads (
    job_id      TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    input_key   TEXT NOT NULL,               -- the photo's content hash
    image_id    TEXT NOT NULL,               -- mimpi's id for the uploaded image
    uploaded_at REAL NOT NULL,
    PRIMARY KEY (job_id, input_key)
);

CREATE TABLE portrait_creates (
    job_id     TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    sent       INTEGER NOT NULL,             -- 1: the create may have reached mimpi
    model_id   TEXT,                         -- its answer, once seen
    updated_at REAL NOT NULL
);
