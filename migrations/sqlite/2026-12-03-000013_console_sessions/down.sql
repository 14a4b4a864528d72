DROP TABLE console_sessions;
DROP INDEX order_transitions_at;
