-- Month-step processing reads only the history a new month touches: records sharing one of its
-- keyed values, the other records of the persons and households found, nothing else.
CREATE INDEX match_keys_by_value ON match_keys (value);
CREATE INDEX records_household ON records (operator_id, household_ref);
CREATE INDEX record_links_household ON record_links (household_id);
