-- The orders out with a worker, by lease holder: what the heartbeat renews, what a restart
-- gives back and what expiry reclaims. Only leased orders are in it (the few in flight, never
-- the history), so a round's expiry check stays a short seek however many orders have ended.
CREATE INDEX orders_leased ON orders (lease_owner, lease_until) WHERE lease_owner IS NOT NULL;
