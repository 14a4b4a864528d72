-- The browser console's sign-ins: a session per signed-in operator, found by the hash of its
-- cookie (the cookie itself is never stored), with the CSRF token its forms must carry.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
CREATE INDEX order_transitions_at ON order_transitions (at);
