//! SQLite's writes run on one connection, kept between writes so its page cache stays warm;
//! a pool of one still serves reads between writes, and after a failed write (rolled back,
//! its connection given back to the pool to be checked) the next write runs.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use scimgate::storage::{users, Db, StoreError};

use crate::harness::{database_url, Backend};

fn sqlite(pool_size: u32) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(&database_url(Backend::Sqlite, dir.path()), pool_size).expect("open");
    (dir, db)
}

/// Whether the write's connection holds the TEMP table an earlier write made (TEMP tables
/// belong to the connection that made them).
fn holds_marker(db: &Db) -> bool {
    db.write(|tx| {
        let found: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "count(*) FROM sqlite_temp_master WHERE name = 'writer_marker'",
        ))
        .get_result(tx.conn())
        .map_err(StoreError::from)?;
        Ok::<_, StoreError>(found == 1)
    })
    .expect("write")
}

fn mark(db: &Db) {
    db.write(|tx| {
        tx.conn()
            .batch_execute("CREATE TEMP TABLE writer_marker (x INTEGER)")
            .map_err(StoreError::from)
    })
    .expect("mark");
}

#[test]
fn sqlite_writes_run_on_one_connection_between_reads() {
    let (_dir, db) = sqlite(4);
    mark(&db);
    for _ in 0..5 {
        // A read holds a pooled connection while the write runs: handed out from the pool,
        // the write would get another one (or the one the last write gave back) each time.
        let same_connection = db
            .read(|c| {
                assert_eq!(users::count(c)?, 0);
                Ok::<_, StoreError>(holds_marker(&db))
            })
            .expect("read");
        assert!(same_connection, "the write ran on another connection");
    }
}

#[test]
fn a_failed_sqlite_write_is_rolled_back_and_the_next_one_runs() {
    let (_dir, db) = sqlite(4);
    let failed: Result<(), StoreError> = db.write(|tx| {
        tx.conn()
            .batch_execute("CREATE TABLE half_done (x INTEGER)")
            .map_err(StoreError::from)?;
        Err(StoreError::Aborted("refused on purpose".into()))
    });
    assert!(failed.is_err());
    let left: i64 = db
        .write(|tx| {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "count(*) FROM sqlite_master WHERE name = 'half_done'",
            ))
            .get_result(tx.conn())
            .map_err(StoreError::from)
        })
        .expect("the next write");
    assert_eq!(left, 0, "the failed write was rolled back");
}

#[test]
fn a_pool_of_one_sqlite_connection_serves_reads_between_writes() {
    let (_dir, db) = sqlite(1);
    for _ in 0..3 {
        mark(&db);
        assert_eq!(db.read(users::count).expect("a read after a write"), 0);
        db.write(|tx| {
            tx.conn()
                .batch_execute("DROP TABLE IF EXISTS temp.writer_marker")
                .map_err(StoreError::from)
        })
        .expect("write");
    }
}

/// A write that copies a hundred thousand rows keeps its statement journal (the undo of one
/// statement) in memory up to SQLite's default 64 KiB, then on disk. With the threshold raised
/// (4 MiB, 1 MiB and 256 KiB were tried, on SQLite 3.5x), this write failed with "database or
/// disk is full".
#[test]
fn a_large_sqlite_write_runs_to_its_end() {
    let (_dir, db) = sqlite(4);
    let count = |table: &str| {
        db.read(|c| {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
                "count(*) FROM {table}"
            )))
            .get_result::<i64>(c)
            .map_err(StoreError::from)
        })
        .expect("count")
    };
    let before = count("order_transitions");
    db.write(|tx| {
        tx.conn().batch_execute(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000) \
             INSERT INTO orders (target, resource_type, resource_id, change_seq, operation, \
                 state, attempts, next_attempt_at, created_at, updated_at, origin) \
             SELECT 'app' || (i % 5), 'User', hex(randomblob(16)), i, 'upsert', 'executed', 1, \
                 0, i, i + 1, 'change' FROM c",
        )?;
        tx.conn().batch_execute(
            "INSERT INTO order_transitions (order_id, state, at) \
             SELECT id, 'pending', created_at FROM orders",
        )?;
        Ok::<_, StoreError>(())
    })
    .expect("a large write");
    assert_eq!(count("orders"), 100_000);
    assert_eq!(count("order_transitions") - before, 100_000);
}
