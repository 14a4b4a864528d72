-- The member's display label as the client sent it (RFC 7643 §4.2 members.display).
ALTER TABLE scim_group_members ADD COLUMN display TEXT;
-- displayName filters compare case-insensitively: index the lowered value instead.
DROP INDEX scim_users_display_name;
CREATE INDEX scim_users_display_name_lower ON scim_users (lower(display_name));
