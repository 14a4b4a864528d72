-- The event outbox: one row per event, written in the transaction of the change that causes
-- it; subscriptions read it in seq order, as the planner reads the change log.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    -- Increases with every event of the same resource.
    resource_seq BIGINT NOT NULL,
    target TEXT,
    actor TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_occurred ON events (occurred_at);

-- Orders and targets count their events, for the events' per-resource sequence.
ALTER TABLE orders ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
-- The state an order moved from, set by the move itself (for its event).
ALTER TABLE orders ADD COLUMN previous_state TEXT;
ALTER TABLE target_health ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

-- Who receives events: webhooks (Standard Webhooks), RFC 8935 push and RFC 8936 poll of SETs.
CREATE TABLE event_subscriptions (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    format TEXT NOT NULL,
    url TEXT,
    event_types TEXT NOT NULL,
    targets TEXT,
    resource_types TEXT,
    -- Sealed JSON list of signing secrets, newest first, each with its expiry.
    secrets TEXT NOT NULL,
    audience TEXT,
    enabled BOOLEAN NOT NULL,
    disabled_reason TEXT,
    max_age_seconds BIGINT NOT NULL,
    -- The last event seq fanned out into deliveries.
    position BIGINT NOT NULL,
    from_config BOOLEAN NOT NULL,
    -- The instance sending for it, until when.
    sender TEXT,
    sender_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE event_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    subscription_id TEXT NOT NULL,
    event_seq BIGINT NOT NULL,
    resource_key TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    last_status INTEGER,
    last_error TEXT
);
CREATE INDEX event_deliveries_open ON event_deliveries (subscription_id, state, id);
CREATE INDEX event_deliveries_event ON event_deliveries (subscription_id, event_seq);

CREATE TABLE event_delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    delivery_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status INTEGER,
    latency_ms BIGINT NOT NULL,
    error TEXT
);
CREATE INDEX event_delivery_attempts_delivery ON event_delivery_attempts (delivery_id);
