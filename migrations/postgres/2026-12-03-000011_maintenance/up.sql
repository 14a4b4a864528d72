-- One-off data conversions done at start-up (e.g. moving clear passwords out of documents),
-- recorded once finished so later starts skip them instead of scanning again.
CREATE TABLE maintenance (
    task TEXT PRIMARY KEY NOT NULL,
    done_at BIGINT NOT NULL
);
