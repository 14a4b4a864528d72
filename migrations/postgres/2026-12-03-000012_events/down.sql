DROP TABLE event_delivery_attempts;
DROP TABLE event_deliveries;
DROP TABLE event_subscriptions;
ALTER TABLE target_health DROP COLUMN revision;
ALTER TABLE orders DROP COLUMN previous_state;
ALTER TABLE orders DROP COLUMN revision;
DROP TABLE events;
