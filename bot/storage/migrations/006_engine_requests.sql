-- The engine under concurrency and faults (bot.jobs).
-- A member's request (cancel, erase) is written here and acted on by the job's own next step, so nothing
-- but that step ever changes a job's state.
ALTER TABLE jobs ADD COLUMN request TEXT;                          -- NULL | cancel | erase
-- The studio's finished answer (its files: saved bytes or URLs still to fetch), written before anything is
-- downloaded or processed: a result the studio billed for is never dropped by a crash or a failed download.
ALTER TABLE jobs ADD COLUMN outcome TEXT;
-- Consecutive steps that crashed (a bug, a full disk): retried with backoff, then failed and refunded.
ALTER TABLE jobs ADD COLUMN step_errors INTEGER NOT NULL DEFAULT 0;
DROP INDEX jobs_active;
CREATE INDEX jobs_active ON jobs(status) WHERE status IN ('queued', 'submitting', 'submitted', 'running', 'fetching');
-- Every message a result was posted in, so Delete removes all of its parts.
CREATE TABLE job_messages (
    job_id     TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    part       INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    PRIMARY KEY (job_id, part)
);
