-- Users' and groups' rows change on every write. With no index on a column an ordinary
-- change writes, PostgreSQL keeps the new row version on the page of the old one (a HOT
-- update) and leaves every index alone; room is left on each page for that. `lastModified`
-- had the one such index: filters for recent changes now find them through the change log,
-- which logs every change at the time its row records.
DROP INDEX scim_users_last_modified;
DROP INDEX scim_groups_last_modified;
CREATE INDEX change_log_occurred ON change_log (resource_type, occurred_at);
ALTER TABLE scim_users SET (fillfactor = 85);
ALTER TABLE scim_groups SET (fillfactor = 85);
