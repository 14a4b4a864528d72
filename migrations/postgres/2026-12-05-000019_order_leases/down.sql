DROP INDEX orders_leased;
