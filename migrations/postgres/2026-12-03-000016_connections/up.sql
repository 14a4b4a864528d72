-- Connections: one per upstream identity provider, each with its own SCIM endpoint
-- (/scim/{name}/v2), tokens and settings. Users and groups belong to the connection that
-- created them; everything that existed before belongs to the default one, served at /scim/v2.
CREATE TABLE connections (
    name TEXT PRIMARY KEY NOT NULL,
    enabled BOOLEAN NOT NULL,
    -- The connection's own settings, as JSON (dialect switches, limits).
    settings TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO connections (name, enabled, settings, version, created_at, updated_at)
VALUES ('default', TRUE, '{}', 1, 0, 0);
ALTER TABLE scim_users ADD COLUMN connection TEXT NOT NULL DEFAULT 'default';
ALTER TABLE scim_groups ADD COLUMN connection TEXT NOT NULL DEFAULT 'default';
CREATE INDEX scim_users_connection ON scim_users (connection, created_at, id);
CREATE INDEX scim_groups_connection ON scim_groups (connection, created_at, id);
-- The connection an identity provider's token serves (admin tokens serve none).
ALTER TABLE api_tokens ADD COLUMN connection TEXT;
UPDATE api_tokens SET connection = 'default' WHERE role = 'scim';
-- Each change names the connection of the resource it changed.
ALTER TABLE change_log ADD COLUMN connection TEXT NOT NULL DEFAULT 'default';
-- A connection's recent user deletions, counted by its mass-delete guard.
CREATE INDEX change_log_user_deletions ON change_log (connection, occurred_at)
    WHERE operation = 'delete' AND resource_type = 'User';
-- externalId is unique within a connection. The key is written by every create and change
-- from this version on; rows written before keep none, so a database that already holds a
-- duplicate still migrates (its rows are checked when next written).
ALTER TABLE scim_users ADD COLUMN external_id_key TEXT;
ALTER TABLE scim_groups ADD COLUMN external_id_key TEXT;
CREATE UNIQUE INDEX scim_users_external_id_key ON scim_users (connection, external_id_key);
CREATE UNIQUE INDEX scim_groups_external_id_key ON scim_groups (connection, external_id_key);
