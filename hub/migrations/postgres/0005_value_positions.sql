-- An incremental run looks up, for each keyed value of the new batches, where its holders are
-- stored: with the positions in the value index, the lookup never reads the table.
DROP INDEX match_keys_by_value;
CREATE INDEX match_keys_value_position ON match_keys (value, batch_id, idx);
