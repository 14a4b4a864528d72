-- Links are written and read by their key only. Keyed storage (WITHOUT ROWID) keeps each
-- link in one B-tree instead of a row plus an entry in the key's index: an aggregation that
-- links 100,000 accounts writes half the pages.
CREATE TABLE identity_links_keyed (
    target TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    source_id TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    linked_at BIGINT NOT NULL,
    PRIMARY KEY (target, resource_type, source_id)
) WITHOUT ROWID;
INSERT INTO identity_links_keyed (target, resource_type, source_id, remote_id, linked_at)
    SELECT target, resource_type, source_id, remote_id, linked_at FROM identity_links;
DROP TABLE identity_links;
ALTER TABLE identity_links_keyed RENAME TO identity_links;
