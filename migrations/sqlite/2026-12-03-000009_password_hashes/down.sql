DROP TABLE scim_user_passwords;
