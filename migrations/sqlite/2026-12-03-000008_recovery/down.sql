DROP INDEX orders_waiting_for;
ALTER TABLE orders DROP COLUMN note;
ALTER TABLE orders DROP COLUMN waiting_for;
ALTER TABLE target_health DROP COLUMN failing_since;
