-- Admin API tokens are distinct from the tokens identity providers use.
ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'scim';
