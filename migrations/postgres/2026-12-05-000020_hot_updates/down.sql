ALTER TABLE scim_groups RESET (fillfactor);
ALTER TABLE scim_users RESET (fillfactor);
DROP INDEX change_log_occurred;
CREATE INDEX scim_groups_last_modified ON scim_groups (last_modified);
CREATE INDEX scim_users_last_modified ON scim_users (last_modified);
