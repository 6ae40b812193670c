-- Results are posted in parts (10 files, 25 MiB per message). For each job: how many parts Discord has
-- confirmed, and the part being posted right now (its route and when it started). After a crash between
-- Discord accepting a part and us recording it, the engine looks for that part before posting it again.
ALTER TABLE jobs ADD COLUMN delivery_parts_sent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN delivery_inflight TEXT;
ALTER TABLE jobs ADD COLUMN delivery_inflight_at REAL;
