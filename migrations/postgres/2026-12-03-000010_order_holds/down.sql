ALTER TABLE orders DROP COLUMN held_by;
