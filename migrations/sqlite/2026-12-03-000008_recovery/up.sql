-- Quarantine needs failures that persist in time as well as in count: when the streak began.
ALTER TABLE target_health ADD COLUMN failing_since BIGINT;
-- A group order deferred until a member's order executes names that member, so the member's
-- execution makes it due at once; `note` says what was left out of the group and why.
ALTER TABLE orders ADD COLUMN waiting_for TEXT;
ALTER TABLE orders ADD COLUMN note TEXT;
CREATE INDEX orders_waiting_for ON orders (target, waiting_for) WHERE waiting_for IS NOT NULL;
