DROP INDEX scim_users_display_name_lower;
ALTER TABLE scim_group_members DROP COLUMN display;
