//! SQLite WAL checkpoints off the write path.
//!
//! With SQLite's automatic checkpoint, the commit that crosses the threshold copies the whole
//! WAL into the database file and syncs it while holding the writer's place: a bulk load
//! spent a third of its write time there. A background thread checkpoints passively instead
//! (readers and the writer go on meanwhile); the automatic checkpoint stays, at a higher
//! threshold, as the backstop should this thread fall behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::connection::SimpleConnection;

use super::connection::{establish, DbConnection};

/// WAL pages (4 KiB) after which a commit checkpoints by itself: the backstop.
pub(crate) const AUTOCHECKPOINT_PAGES: u32 = 8_000;
/// How often the background checkpoint looks for new commits.
const INTERVAL: Duration = Duration::from_millis(200);

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
    let commits: Weak<Commits> = Arc::downgrade(commits);
    let url = url.to_string();
    let spawned = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || run(&url, &commits));
    if let Err(error) = spawned {
        tracing::warn!(%error, "no background checkpoint; SQLite checkpoints on commit");
    }
}

fn run(url: &str, commits: &Weak<Commits>) {
    let mut conn = match establish(url) {
        Ok(DbConnection::Sqlite(conn)) => conn,
        Ok(_) => return,
        Err(error) => {
            tracing::warn!(%error, "no background checkpoint; SQLite checkpoints on commit");
            return;
        }
    };
    let mut checkpointed_at = 0;
    loop {
        std::thread::sleep(INTERVAL);
        let Some(counter) = commits.upgrade() else {
            return;
        };
        let now = counter.count();
        drop(counter);
        if now == checkpointed_at {
            continue;
        }
        checkpointed_at = now;
        if let Err(error) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
            tracing::debug!(%error, "background checkpoint");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use diesel::connection::SimpleConnection;

    use crate::storage::{Db, StoreError};

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
