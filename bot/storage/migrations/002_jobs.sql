-- Jobs: one row per provider request a member asked for. The row is the truth; the scheduler's heap is an
-- index rebuilt from it at start-up.
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,             -- short id shown to members
    guild_id          INTEGER,                      -- NULL in DMs
    channel_id        INTEGER NOT NULL,
    user_id           INTEGER,                      -- NULL once the member erased their data
    feature           TEXT NOT NULL,
    provider          TEXT NOT NULL,
    params            TEXT NOT NULL,                -- validated request, JSON
    status            TEXT NOT NULL,                -- queued|submitting|submitted|running|succeeded|failed|cancelled|expired
    credits           INTEGER NOT NULL DEFAULT 0,   -- reserved in the quota ledger for this job
    slot_group        TEXT,                         -- provider concurrency group (NULL: unlimited)
    provider_ref      TEXT NOT NULL DEFAULT '{}',   -- provider ids, JSON
    progress          REAL,
    attempts          INTEGER NOT NULL DEFAULT 0,   -- submits tried
    check_errors      INTEGER NOT NULL DEFAULT 0,   -- consecutive failed status checks
    next_check_at     REAL,                         -- when the engine looks next (NULL: final)
    deadline_at       REAL NOT NULL,
    error_kind        TEXT,
    error             TEXT,
    meta              TEXT NOT NULL DEFAULT '{}',   -- provider result details, JSON
    result_text       TEXT,
    delivery          TEXT NOT NULL DEFAULT 'none', -- none|pending|delivered|undeliverable
    delivery_attempts INTEGER NOT NULL DEFAULT 0,
    result_channel_id INTEGER,
    result_message_id INTEGER,
    application_id    INTEGER,
    interaction_token TEXT,                         -- cleared when the job ends or the token dies
    token_expires_at  REAL,
    attachment_limit  INTEGER NOT NULL DEFAULT 10485760,
    status_edited_at  REAL,
    callback_secret   TEXT NOT NULL,
    parent_job        TEXT REFERENCES jobs(id) ON DELETE SET NULL,
    created_at        REAL NOT NULL,
    started_at        REAL,                         -- when the provider started working on it
    updated_at        REAL NOT NULL,
    finished_at       REAL
);
CREATE INDEX jobs_active ON jobs(status) WHERE status IN ('queued', 'submitting', 'submitted', 'running');
CREATE INDEX jobs_delivery ON jobs(delivery) WHERE delivery = 'pending';
CREATE INDEX jobs_by_user ON jobs(guild_id, user_id, created_at);
CREATE INDEX jobs_queue ON jobs(provider, slot_group, created_at) WHERE status = 'queued';

-- Input files, downloaded when the command arrives (attachment URLs expire), stored by content hash.
CREATE TABLE job_inputs (
    job_id       TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    position     INTEGER NOT NULL DEFAULT 0,
    sha256       TEXT NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    PRIMARY KEY (job_id, name, position)
);
CREATE INDEX job_inputs_sha ON job_inputs(sha256);

-- Result files, downloaded as soon as the provider says they are ready.
CREATE TABLE job_results (
    job_id       TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    filename     TEXT NOT NULL,
    kind         TEXT NOT NULL,       -- image|video|file
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    path         TEXT NOT NULL,       -- relative to the data directory
    label        TEXT,
    send         INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (job_id, position)
);
