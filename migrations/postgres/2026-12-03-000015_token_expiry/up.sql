-- A token may expire (a rotation issues the next one before the current one runs out), and
-- records when it was last used (at most once a minute per instance).
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
