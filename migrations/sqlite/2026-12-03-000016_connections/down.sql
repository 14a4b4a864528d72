DROP INDEX change_log_user_deletions;
ALTER TABLE change_log DROP COLUMN connection;
ALTER TABLE api_tokens DROP COLUMN connection;
DROP INDEX scim_groups_connection;
DROP INDEX scim_users_connection;
ALTER TABLE scim_groups DROP COLUMN connection;
ALTER TABLE scim_users DROP COLUMN connection;
DROP TABLE connections;
