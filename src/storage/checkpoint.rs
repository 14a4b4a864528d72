//! SQLite WAL checkpoints off the write path.
//!
//! With SQLite's automatic checkpoint, the commit that crosses the threshold copies the whole
//! WAL into the database file and syncs it while holding the writer's place: a bulk load
//! spent a third of its write time there. A background thread checkpoints passively instead
//! (readers and the writer go on meanwhile); the automatic checkpoint stays, at a higher
//! threshold, as the backstop should this thread fall behind.
//!
//! A passive checkpoint never shrinks the WAL file, and while readers keep old snapshots open
//! it cannot finish, so under steady load the file grew without bound (346 MB beside an 84 MB
//! database). Two things bound it: `journal_size_limit` makes the writer truncate the file to
//! [`WAL_BOUND_BYTES`](super::connection::WAL_BOUND_BYTES) whenever it starts the WAL over, and when the file has grown past the
//! bound anyway, this thread runs a truncating checkpoint that gives up after
//! [`TRUNCATE_WAIT`] rather than hold writers back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::connection::SimpleConnection;

use super::connection::{establish, sqlite_path, DbConnection, WAL_BOUND_BYTES};

/// How often the background checkpoint looks for new commits. Often enough that the WAL
/// rarely reaches the automatic checkpoint's threshold between two looks: at 8,000 PATCHes a
/// second (about 190 MB of WAL a second) a 200 ms interval left that to the writer, whose
/// commit then stalled (PATCH p90 17-19 ms, p99 48-52 ms; at 50 ms: 6.5-7.8 ms and 30-32 ms).
const INTERVAL: Duration = Duration::from_millis(50);
/// Longest a truncating checkpoint waits for readers; writers wait on it meanwhile.
const TRUNCATE_WAIT: Duration = Duration::from_millis(100);
/// The longest pause between truncation attempts while readers keep failing them.
const TRUNCATE_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Counts commits so the checkpointer only works after writes.
#[derive(Debug, Default)]
pub(crate) struct Commits(AtomicU64);

impl Commits {
    pub(crate) fn committed(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Starts the checkpointer for the database at `url`; it stops once every `Db` handle
/// holding `commits` is dropped.
pub(crate) fn start(url: &str, commits: &Arc<Commits>) {
    start_bounded(url, commits, WAL_BOUND_BYTES);
}

fn start_bounded(url: &str, commits: &Arc<Commits>, bound: u64) {
    let commits: Weak<Commits> = Arc::downgrade(commits);
    let url = url.to_string();
    let spawned = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || run(&url, &commits, bound));
    if let Err(error) = spawned {
        tracing::warn!(%error, "no background checkpoint; SQLite checkpoints on commit");
    }
}

fn run(url: &str, commits: &Weak<Commits>, bound: u64) {
    let wal = std::path::PathBuf::from(format!("{}-wal", sqlite_path(url)));
    let mut conn = match establish(url) {
        Ok(DbConnection::Sqlite(conn)) => conn,
        Ok(_) => return,
        Err(error) => {
            tracing::warn!(%error, "no background checkpoint; SQLite checkpoints on commit");
            return;
        }
    };
    let wait = format!("PRAGMA busy_timeout = {};", TRUNCATE_WAIT.as_millis());
    if let Err(error) = conn.batch_execute(&wait) {
        tracing::debug!(%error, "checkpoint connection settings");
    }
    let mut checkpointed_at = 0;
    // A reader pinning the WAL fails each truncation after holding writers back for up to
    // TRUNCATE_WAIT: tries back off (up to TRUNCATE_BACKOFF_MAX) while it lasts.
    let mut truncate_gap = INTERVAL;
    let mut truncate_after = std::time::Instant::now();
    loop {
        std::thread::sleep(INTERVAL);
        let Some(counter) = commits.upgrade() else {
            return;
        };
        let now = counter.count();
        drop(counter);
        if now != checkpointed_at {
            checkpointed_at = now;
            if let Err(error) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
                tracing::debug!(%error, "background checkpoint");
            }
        }
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if size > bound && std::time::Instant::now() >= truncate_after {
            match conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);") {
                Ok(()) => {
                    tracing::info!(wal_bytes = size, "WAL past its bound: truncated");
                    truncate_gap = INTERVAL;
                }
                Err(error) => {
                    tracing::debug!(%error, wal_bytes = size, "WAL truncation");
                    truncate_gap = (truncate_gap * 2).min(TRUNCATE_BACKOFF_MAX);
                }
            }
            truncate_after = std::time::Instant::now() + truncate_gap;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use diesel::connection::SimpleConnection;

    use crate::storage::{Db, StoreError};

    fn fill(db: &Db, table: &str, rows: u32) {
        db.write(|tx| {
            tx.conn()
                .batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {table} (x TEXT); \
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
                     INSERT INTO {table} SELECT printf('%01000d', i) FROM n;"
                ))
                .map_err(StoreError::from)
        })
        .expect("write");
    }

    #[test]
    fn the_wal_is_truncated_once_past_its_bound() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("scimgate.db");
        let url = format!("sqlite://{}", path.display());
        let db = Db::open(&url, 2).expect("open");
        let bound = 1024 * 1024;
        super::start_bounded(&url, &db.commits, bound);
        let wal = dir.path().join("scimgate.db-wal");
        // A reader holding an old snapshot keeps any checkpoint from finishing: the WAL grows.
        let mut reader = crate::storage::connection::establish(&url).expect("reader");
        reader
            .batch_execute("BEGIN; SELECT count(*) FROM sqlite_master;")
            .expect("hold a snapshot");
        for _ in 0..8 {
            fill(&db, "filler", 1_000);
        }
        let grown = std::fs::metadata(&wal).expect("wal").len();
        assert!(grown > 4 * bound, "the WAL grew to {grown} bytes");
        reader
            .batch_execute("COMMIT;")
            .expect("release the snapshot");
        fill(&db, "filler", 10);
        let deadline = Instant::now() + super::INTERVAL * 50;
        while std::fs::metadata(&wal).map_or(0, |m| m.len()) > bound {
            assert!(Instant::now() < deadline, "the WAL was never truncated");
            std::thread::sleep(super::INTERVAL / 2);
        }
        // Nothing was lost on the way.
        let rows: i64 = db
            .read(|c| {
                use diesel::RunQueryDsl;
                #[derive(diesel::QueryableByName)]
                struct Count {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                diesel::sql_query("SELECT count(*) AS n FROM filler")
                    .get_result::<Count>(c)
                    .map(|c| c.n)
                    .map_err(StoreError::from)
            })
            .expect("count");
        assert_eq!(rows, 8_010);
    }

    #[test]
    fn commits_reach_the_database_file_without_waiting_for_the_automatic_checkpoint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("scimgate.db");
        let db = Db::open(&format!("sqlite://{}", path.display()), 2).expect("open");
        std::thread::sleep(super::INTERVAL * 3);
        let before = std::fs::metadata(&path).expect("database file").len();
        // Far fewer pages than the automatic checkpoint waits for.
        db.write(|tx| {
            tx.conn()
                .batch_execute(
                    "CREATE TABLE filler (x TEXT); \
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
                     INSERT INTO filler SELECT printf('%0200d', i) FROM n;",
                )
                .map_err(StoreError::from)
        })
        .expect("write");
        let deadline = Instant::now() + super::INTERVAL * 25;
        while std::fs::metadata(&path).expect("database file").len() <= before {
            assert!(
                Instant::now() < deadline,
                "the commit never left the WAL for the database file"
            );
            std::thread::sleep(super::INTERVAL / 2);
        }
    }
}
