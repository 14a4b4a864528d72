-- Passwords are never kept in clear: a salted Argon2id hash in its own table, outside the
-- resource document (which is searched, logged and delivered). `sealed` is the password
-- encrypted under the server's secret key, kept only so targets that provision passwords
-- (LDAP userPassword/unicodePwd) can set them; NULL when no key is configured.
CREATE TABLE scim_user_passwords (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    hash TEXT NOT NULL,
    sealed TEXT,
    changed_at BIGINT NOT NULL
);
