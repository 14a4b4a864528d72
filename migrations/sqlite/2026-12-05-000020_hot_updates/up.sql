-- PostgreSQL's rows stop having an index on lastModified (see its migration); SQLite has no
-- in-page updates to gain, so its rows keep theirs. Nothing changes here.
SELECT 1;
