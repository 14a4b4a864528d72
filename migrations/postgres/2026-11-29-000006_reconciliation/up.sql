-- Reconciliation and review: where an order came from and who decided on it, the accounts
-- aggregated from targets, full-sync runs with their drift, target locks, and work items for
-- targets fulfilled by hand.

-- 'change' (the change log), 'sync' (a full sync's correction) or 'on_demand'.
ALTER TABLE orders ADD COLUMN origin TEXT NOT NULL DEFAULT 'change';
ALTER TABLE orders ADD COLUMN sync_id BIGINT;
-- Why the order waits for approval (a review rule, the mass-delete guard).
ALTER TABLE orders ADD COLUMN held_reason TEXT;
-- An approved order is not held again.
ALTER TABLE orders ADD COLUMN approved BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE orders ADD COLUMN decided_by TEXT;
ALTER TABLE orders ADD COLUMN decided_at BIGINT;
ALTER TABLE orders ADD COLUMN decision_comment TEXT;
-- Only change-log orders are one per change; corrections and on-demand runs are not changes.
DROP INDEX orders_target_change;
CREATE UNIQUE INDEX orders_target_change ON orders (target, change_seq) WHERE origin = 'change';

-- Every account and group last read from a target, and which identity it stands for.
CREATE TABLE accounts (
    target TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    -- The object as the target's connector reads it (JSON).
    attributes TEXT NOT NULL,
    -- A hash of `attributes`: an unchanged account is recognised without reading them.
    fingerprint BIGINT NOT NULL,
    -- The local resource it is linked or correlated to.
    identity_id TEXT,
    -- 'linked', 'correlated', 'uncorrelated' or 'ambiguous'.
    situation TEXT NOT NULL,
    -- Ambiguous: the identities that matched (JSON array).
    candidates TEXT,
    aggregation_id BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (target, resource_type, remote_id)
);

-- Aggregations and full syncs, with what they found.
CREATE TABLE sync_runs (
    id BIGSERIAL PRIMARY KEY,
    target TEXT NOT NULL,
    -- 'aggregate' or 'full_sync'.
    kind TEXT NOT NULL,
    dry_run BOOLEAN NOT NULL,
    -- 'running', 'completed' or 'failed'.
    state TEXT NOT NULL,
    -- 'admin', 'cli' or 'schedule'.
    trigger TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    -- Counts (JSON).
    summary TEXT,
    error TEXT
);
CREATE INDEX sync_runs_target ON sync_runs (target, id);

-- One finding of a full sync: an object and how it differed, and what was done about it.
CREATE TABLE sync_drift (
    id BIGSERIAL PRIMARY KEY,
    sync_id BIGINT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    resource_type TEXT NOT NULL,
    identity_id TEXT,
    remote_id TEXT,
    -- 'missing', 'differs', 'orphan', 'ambiguous' or 'out_of_scope'.
    finding TEXT NOT NULL,
    -- The attributes that differ (JSON: [{"name", "expected", "actual"}]).
    attributes TEXT,
    -- 'create', 'update', 'delete', 'disable', 'deprovision' or 'none'.
    action TEXT NOT NULL,
    order_id BIGINT
);
CREATE INDEX sync_drift_sync ON sync_drift (sync_id, id);

-- A full sync holds its target's lock; incremental delivery to the target waits meanwhile.
CREATE TABLE target_locks (
    target TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    sync_id BIGINT,
    acquired_at BIGINT NOT NULL,
    -- A holder that dies stops renewing; the lock is free after this.
    expires_at BIGINT NOT NULL
);

-- Orders for targets of kind 'manual': what a person has to do, and how it ended.
CREATE TABLE work_items (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    -- 'create', 'update', 'deactivate' or 'delete'.
    action TEXT NOT NULL,
    -- What to do, in words.
    summary TEXT NOT NULL,
    -- What to do, as data (JSON).
    data TEXT NOT NULL,
    -- 'open', 'completed', 'failed' or 'withdrawn' (its target was deleted).
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    closed_at BIGINT,
    closed_by TEXT,
    -- The failure reason, or the remote id the person reported.
    outcome TEXT
);
CREATE UNIQUE INDEX work_items_order ON work_items (order_id);
CREATE INDEX work_items_state ON work_items (target, state, id);
