-- Synchro hub schema v1 (SQLite). Append-only: later changes go in new migration files.
CREATE TABLE operators (
    id TEXT PRIMARY KEY,                  -- operator id, as enrolled
    display_name TEXT NOT NULL,           -- human name
    signing_public_key TEXT NOT NULL,     -- Ed25519 public key, base64
    age_recipient TEXT NOT NULL,          -- operator's age recipient (public)
    active INTEGER NOT NULL,              -- 1 accepts uploads, 0 disabled
    enrolled_at BIGINT NOT NULL           -- unix seconds
);

CREATE TABLE batches (
    id TEXT PRIMARY KEY,                  -- hub batch id
    operator_id TEXT NOT NULL REFERENCES operators(id),
    period TEXT NOT NULL,                 -- YYYY-MM
    ciphertext_sha256 TEXT NOT NULL,      -- hex, as signed by the operator
    row_count BIGINT NOT NULL,
    rejected_count BIGINT NOT NULL,       -- rows the operator left out under its tolerance
    key_epoch BIGINT NOT NULL,
    template_version BIGINT NOT NULL,
    key_set_version BIGINT NOT NULL,
    agent_version TEXT NOT NULL,
    received_at BIGINT NOT NULL,          -- unix seconds
    UNIQUE (operator_id, period)          -- a resubmission replaces the month
);

CREATE TABLE batch_blobs (
    batch_id TEXT PRIMARY KEY REFERENCES batches(id) ON DELETE CASCADE,
    ciphertext BLOB,                      -- the raw age file (encrypted); NULL once purged
    signature TEXT NOT NULL               -- the operator's detached signature, JSON
);

CREATE TABLE records (
    batch_id TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    idx BIGINT NOT NULL,                  -- position in the batch
    operator_id TEXT NOT NULL,
    period TEXT NOT NULL,
    record_ref TEXT NOT NULL,             -- per-operator keyed reference (pseudonym)
    household_ref TEXT,                   -- per-operator keyed reference (pseudonym)
    last_contact TEXT NOT NULL,           -- YYYY-MM-DD, drives retention
    attributes TEXT NOT NULL,             -- JSON of the non-identifying attributes
    PRIMARY KEY (batch_id, idx)
);
CREATE INDEX records_ref ON records (operator_id, record_ref);

CREATE TABLE match_keys (
    batch_id TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    idx BIGINT NOT NULL,                  -- the record's position in its batch
    family TEXT NOT NULL,                 -- key family code (ndf, pdf, ...)
    value TEXT NOT NULL                   -- match key re-keyed with the hub-only pepper
);
CREATE INDEX match_keys_value ON match_keys (family, value);
CREATE INDEX match_keys_record ON match_keys (batch_id, idx);

CREATE TABLE nonces (
    nonce TEXT PRIMARY KEY,               -- signature nonce, refused if seen again (replay)
    operator_id TEXT NOT NULL,
    seen_at BIGINT NOT NULL
);

CREATE TABLE audit_entries (
    seq BIGINT PRIMARY KEY,               -- leaf index in the Merkle tree
    leaf TEXT NOT NULL                    -- canonical JSON event, no personal data
);

CREATE TABLE checkpoints (
    tree_size BIGINT PRIMARY KEY,
    note TEXT NOT NULL,                   -- signed tlog-checkpoint note
    signed_at BIGINT NOT NULL
);

CREATE TABLE admins (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,          -- argon2id PHC string
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,          -- SHA-256 of the session token; the token itself is never stored
    username TEXT NOT NULL REFERENCES admins(username) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
