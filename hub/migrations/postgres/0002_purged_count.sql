-- Records removed from a batch by retention, so that received = stored + purged stays checkable.
ALTER TABLE batches ADD COLUMN purged_count BIGINT NOT NULL DEFAULT 0;
