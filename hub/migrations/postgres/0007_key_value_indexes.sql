-- Keyed values are looked up in `node_keys` since 0006; `match_keys` is read only by record
-- (batch, position). Its two value indexes cost every ingestion two insertions at random
-- places in large B-trees (most of its time on a large territory) and a third of the file.
DROP INDEX match_keys_value;
DROP INDEX match_keys_value_position;
