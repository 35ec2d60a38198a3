-- Linkage results: stable person and household ids, their merges and splits, and one summary
-- per processing run. Numbers and keyed references only: nothing here identifies anyone.
CREATE TABLE linkage_runs (
    id BIGINT PRIMARY KEY,                -- run number, increasing
    period TEXT NOT NULL,                 -- YYYY-MM processed (records up to that month)
    run_at BIGINT NOT NULL,               -- unix seconds
    summary TEXT NOT NULL                 -- JSON: counts, score distribution, cluster sizes, model
);
CREATE INDEX linkage_runs_period ON linkage_runs (period);

CREATE TABLE linkage_ids (
    kind TEXT NOT NULL,                   -- 'person' or 'household'
    id BIGINT NOT NULL,                   -- never reused: rows are never deleted
    first_run BIGINT NOT NULL,            -- run that issued it
    retired_run BIGINT,                   -- run after which it holds no record (merged or purged)
    PRIMARY KEY (kind, id)
);

CREATE TABLE record_links (
    operator_id TEXT NOT NULL,
    record_ref TEXT NOT NULL,             -- per-operator keyed reference, as in records
    person_id BIGINT NOT NULL,
    household_id BIGINT NOT NULL,
    PRIMARY KEY (operator_id, record_ref)
);
CREATE INDEX record_links_person ON record_links (person_id);

CREATE TABLE linkage_events (
    run_id BIGINT NOT NULL,               -- the run that found it
    kind TEXT NOT NULL,                   -- person_merge, person_split, household_merge, household_split
    id BIGINT NOT NULL,                   -- id holding the records now
    other_id BIGINT NOT NULL,             -- id merged away / split from
    records BIGINT NOT NULL               -- records concerned
);
CREATE INDEX linkage_events_run ON linkage_events (run_id);

-- What linkage reads of a record in one compact field (sex, birth year, exact-date flag,
-- nationality group, household role, admin status, then family:value keys): one row per
-- record to load instead of one per key. NULL for records stored before this migration.
ALTER TABLE records ADD COLUMN linkage TEXT;
