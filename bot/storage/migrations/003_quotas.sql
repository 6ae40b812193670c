-- Quotas (bot.quotas). guild_key is the Discord server id, or 0 for DMs (ids are never 0).
-- Credits are integers; times are Unix seconds; period_start identifies an allowance period.

-- Per-server settings (NULL: the QuotaPolicy default) and the running server spend of the current period.
CREATE TABLE quota_guilds (
    guild_key           INTEGER PRIMARY KEY,
    allowance           INTEGER CHECK (allowance >= 0),
    period              TEXT CHECK (period IN ('daily', 'weekly', 'monthly')),
    reset_hour          INTEGER CHECK (reset_hour BETWEEN 0 AND 23),
    budget              INTEGER CHECK (budget >= 0),
    budget_period_start INTEGER NOT NULL DEFAULT 0,
    budget_spent        INTEGER NOT NULL DEFAULT 0   -- reserved minus refunded in budget_period_start
);

-- A server's cost overrides, credits per unit.
CREATE TABLE quota_costs (
    guild_key INTEGER NOT NULL,
    feature   TEXT NOT NULL,
    credits   INTEGER NOT NULL CHECK (credits >= 0),
    PRIMARY KEY (guild_key, feature)
) WITHOUT ROWID;

CREATE TABLE quota_role_allowances (
    guild_key INTEGER NOT NULL,
    role_id   INTEGER NOT NULL,
    credits   INTEGER NOT NULL CHECK (credits >= 0),
    PRIMARY KEY (guild_key, role_id)
) WITHOUT ROWID;

-- Per member: admin settings (allowance override, block) and the running balance. The running columns
-- are a cache of quota_ledger: bonus = SUM(bonus_delta) over all entries, period_used = -SUM(allowance_delta)
-- over the entries of period_start.
CREATE TABLE quota_members (
    guild_key    INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    allowance    INTEGER CHECK (allowance >= 0),
    blocked_at   INTEGER,
    blocked_by   INTEGER,
    block_reason TEXT,
    bonus        INTEGER NOT NULL DEFAULT 0 CHECK (bonus >= 0),
    period_start INTEGER NOT NULL DEFAULT 0,
    period_used  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_key, user_id)
) WITHOUT ROWID;

-- Append-only. A reservation is one 'reserve' row (negative deltas) settled by at most one 'commit'
-- (no deltas) or 'refund' (the reserve's deltas negated, in the reserve's period). 'grant'/'adjust'
-- change bonus credits; 'reset' gives back allowance used in the current period.
CREATE TABLE quota_ledger (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    guild_key       INTEGER NOT NULL,
    user_id         INTEGER,                      -- NULL once the member erased their data
    kind            TEXT NOT NULL CHECK (kind IN ('reserve', 'commit', 'refund', 'grant', 'adjust', 'reset')),
    period_start    INTEGER NOT NULL,
    allowance_delta INTEGER NOT NULL DEFAULT 0,
    bonus_delta     INTEGER NOT NULL DEFAULT 0,
    job_id          TEXT,
    feature         TEXT,
    units           INTEGER,
    by_user         INTEGER,                      -- the admin, for grant/adjust/reset
    note            TEXT
);
-- One reservation per job, settled at most once: these two make commit/refund idempotent.
CREATE UNIQUE INDEX quota_ledger_reserve ON quota_ledger(job_id) WHERE kind = 'reserve';
CREATE UNIQUE INDEX quota_ledger_settle ON quota_ledger(job_id) WHERE kind IN ('commit', 'refund');
CREATE INDEX quota_ledger_period ON quota_ledger(guild_key, period_start, user_id);
