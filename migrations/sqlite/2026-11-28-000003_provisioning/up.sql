-- Outbound provisioning: the planner turns change-log entries into one order per target.

-- How far the planner has read the change log.
CREATE TABLE planner_position (
    name TEXT PRIMARY KEY NOT NULL,
    last_seq BIGINT NOT NULL
);
INSERT INTO planner_position (name, last_seq) VALUES ('planner', 0);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    target TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    change_seq BIGINT NOT NULL,
    operation TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    last_error TEXT,
    remote_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- A change becomes at most one order per target, whatever crashes in between.
CREATE UNIQUE INDEX orders_target_change ON orders (target, change_seq);
CREATE INDEX orders_claim ON orders (target, state, id);
CREATE INDEX orders_resource ON orders (target, resource_type, resource_id, id);

CREATE TABLE order_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    order_id BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    http_status INTEGER,
    error TEXT,
    response_id TEXT
);
CREATE INDEX order_attempts_order ON order_attempts (order_id);

CREATE TABLE order_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    order_id BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX order_transitions_order ON order_transitions (order_id);

-- Which remote object stands for which local resource, per target.
CREATE TABLE identity_links (
    target TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    source_id TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    linked_at BIGINT NOT NULL,
    PRIMARY KEY (target, resource_type, source_id)
);
