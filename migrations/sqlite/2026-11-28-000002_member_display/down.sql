DROP INDEX scim_users_display_name_lower;
CREATE INDEX scim_users_display_name ON scim_users (display_name);
ALTER TABLE scim_group_members DROP COLUMN display;
