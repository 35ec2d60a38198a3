-- Linkage nodes (one operator's record across months), kept up to date at ingestion so that an
-- incremental run reads what a new month touches, not every month of every record that shares
-- a value with it. `profile` is the months merged in month order (linkage::node_profile);
-- `node_keys` holds each keyed value once per node, so a value's holders are counted in
-- records, as a full run counts them, not in monthly rows. Filled from the stored records when
-- the hub first opens after this migration.
CREATE TABLE nodes (
    operator_id TEXT NOT NULL,
    record_ref TEXT NOT NULL,
    household_ref TEXT,
    last_period TEXT NOT NULL,            -- the latest month merged in
    profile TEXT NOT NULL,
    PRIMARY KEY (operator_id, record_ref)
);
CREATE TABLE node_keys (
    value TEXT NOT NULL,
    operator_id TEXT NOT NULL,
    record_ref TEXT NOT NULL,
    PRIMARY KEY (value, operator_id, record_ref)
);
CREATE INDEX node_keys_node ON node_keys (operator_id, record_ref);
