ALTER TABLE orders DROP COLUMN connection;
