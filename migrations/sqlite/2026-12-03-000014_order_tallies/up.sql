-- Orders per target and state, kept as they move, so pages and metrics read a few rows
-- instead of counting a million orders. Each committed write appends its net changes to
-- order_tally_changes (appends only: concurrent writers never wait for each other on a
-- counter row); now and then they are folded into order_tallies. A read sums both.
CREATE TABLE order_tallies (
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    orders BIGINT NOT NULL,
    -- When an order last entered this state.
    last_entered_at BIGINT,
    PRIMARY KEY (target, state)
);
CREATE TABLE order_tally_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    delta BIGINT NOT NULL,
    entered_at BIGINT
);
CREATE INDEX order_tally_changes_target ON order_tally_changes (target);
INSERT INTO order_tallies (target, state, orders, last_entered_at)
SELECT target, state, COUNT(*), MAX(updated_at) FROM orders GROUP BY target, state;

-- A person's orders across every target (the console's person page, the admin API's orders
-- of a resource): orders_resource starts with the target, which PostgreSQL cannot skip.
CREATE INDEX orders_of_resource ON orders (resource_id, id);
