-- Targets managed through the admin API (config-file targets are not stored), the counter
-- every instance polls to notice their changes, and target health shared by all instances.

CREATE TABLE targets (
    name TEXT PRIMARY KEY NOT NULL,
    -- The target's settings as JSON, in the config file's vocabulary (secrets included).
    config TEXT NOT NULL,
    -- The targets generation at the row's last change.
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Bumped in the same transaction as every create, update and delete of a target.
CREATE TABLE targets_generation (
    id INTEGER PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO targets_generation (id, value) VALUES (1, 0);

-- Delivery health per target (config-file and API targets alike), written by the workers.
CREATE TABLE target_health (
    target TEXT PRIMARY KEY NOT NULL,
    -- Retryable failures in a row.
    consecutive_failures INTEGER NOT NULL,
    quarantined_since BIGINT,
    -- While quarantined: when the next probe may go out.
    next_probe_at BIGINT,
    -- The current wait between probes, in microseconds (doubles after a failed probe).
    probe_delay BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
