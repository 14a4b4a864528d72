-- Each order names the connection (upstream identity provider) of the resource it provisions;
-- none for orders on accounts no identity owns, and for orders made before connections.
ALTER TABLE orders ADD COLUMN connection TEXT;
