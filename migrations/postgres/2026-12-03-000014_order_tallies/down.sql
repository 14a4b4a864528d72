DROP INDEX orders_of_resource;
DROP TABLE order_tally_changes;
DROP TABLE order_tallies;
