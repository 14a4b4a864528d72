CREATE TABLE identity_links_rowid (
    target TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    source_id TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    linked_at BIGINT NOT NULL,
    PRIMARY KEY (target, resource_type, source_id)
);
INSERT INTO identity_links_rowid (target, resource_type, source_id, remote_id, linked_at)
    SELECT target, resource_type, source_id, remote_id, linked_at FROM identity_links;
DROP TABLE identity_links;
ALTER TABLE identity_links_rowid RENAME TO identity_links;
