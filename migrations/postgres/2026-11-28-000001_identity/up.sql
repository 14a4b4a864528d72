-- Identity store: Users and Groups with their searchable attributes in indexed columns,
-- the rest of each resource as canonical JSON text.
CREATE TABLE scim_users (
    id TEXT PRIMARY KEY NOT NULL,
    user_name TEXT NOT NULL,
    user_name_key TEXT NOT NULL,
    external_id TEXT,
    display_name TEXT,
    active BOOLEAN,
    data TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_modified BIGINT NOT NULL
);
CREATE UNIQUE INDEX scim_users_user_name_key ON scim_users (user_name_key);
CREATE INDEX scim_users_external_id ON scim_users (external_id);
CREATE INDEX scim_users_display_name ON scim_users (display_name);
CREATE INDEX scim_users_last_modified ON scim_users (last_modified);
CREATE INDEX scim_users_created ON scim_users (created_at, id);

CREATE TABLE scim_user_emails (
    user_id TEXT NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    value_key TEXT NOT NULL,
    email_type TEXT,
    is_primary BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, position)
);
CREATE INDEX scim_user_emails_value ON scim_user_emails (value_key);

CREATE TABLE scim_groups (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    display_name_key TEXT NOT NULL,
    external_id TEXT,
    data TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_modified BIGINT NOT NULL
);
CREATE UNIQUE INDEX scim_groups_display_name_key ON scim_groups (display_name_key);
CREATE INDEX scim_groups_external_id ON scim_groups (external_id);
CREATE INDEX scim_groups_last_modified ON scim_groups (last_modified);
CREATE INDEX scim_groups_created ON scim_groups (created_at, id);

-- One row per membership, so adding or removing a member never rewrites the list.
CREATE TABLE scim_group_members (
    group_id TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    member_type TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX scim_group_members_member ON scim_group_members (member_id);

-- Append-only log of accepted writes; the outbound provisioner consumes it in seq order.
CREATE TABLE change_log (
    seq BIGSERIAL PRIMARY KEY,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    version BIGINT NOT NULL,
    actor TEXT NOT NULL,
    occurred_at BIGINT NOT NULL
);
CREATE INDEX change_log_resource ON change_log (resource_type, resource_id);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE UNIQUE INDEX api_tokens_hash ON api_tokens (token_hash);
CREATE INDEX api_tokens_name ON api_tokens (name);
