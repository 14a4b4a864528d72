-- SQLite only (identity_links becomes a WITHOUT ROWID table); PostgreSQL keeps its layout.
SELECT 1;
