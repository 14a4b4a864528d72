-- Extension schemas declared through the admin API (RFC 7643 §7 form, as JSON). Those in the
-- config file are not stored: the file is their source.
CREATE TABLE schema_extensions (
    urn TEXT PRIMARY KEY NOT NULL,
    declaration TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
