DROP TABLE identity_links;
DROP TABLE order_transitions;
DROP TABLE order_attempts;
DROP TABLE orders;
DROP TABLE planner_position;
