DROP TABLE api_tokens;
DROP TABLE change_log;
DROP TABLE scim_group_members;
DROP TABLE scim_groups;
DROP TABLE scim_user_emails;
DROP TABLE scim_users;
