//! Group commit, on SQLite, for the writes that change one resource (PUT, PATCH, DELETE,
//! membership changes): writes that arrive while a transaction is open join it, each in a savepoint of
//! its own, and one COMMIT makes them all durable. A lone write is a batch of one: nothing
//! waits for company.
//!
//! The first write of a batch leads it: it takes a connection, begins the transaction, runs
//! its own write, waits for the writes that joined meanwhile, closes the batch and commits.
//! Every write runs on its own caller's thread, on the batch's connection in turn, so it keeps
//! its own borrowed inputs and its own answer:
//! - a write that fails (a precondition, a conflict) is rolled back to its savepoint and
//!   answered alone; the others stay in the batch;
//! - row locks are taken in arrival order, and the change log numbers changes in that order;
//! - when the COMMIT fails, nothing of the batch was written, and each write is tried again
//!   on its own.
//!
//! One batch writes at a time, and the next gathers while it commits.
//!
//! This is for SQLite, where every write transaction waits for the one writer and pays its
//! own commit. PostgreSQL writes each on its own (see [`super::Db::write_grouped`]): its
//! connections write side by side and it already shares one WAL flush among the commits that
//! arrive together. Should a write still meet a deadlock or a serialization failure in a
//! batch, it is written again on its own afterwards.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use diesel::connection::TransactionManager;

use super::connection::Manager;
use super::observer::OrderMove;
use super::{DbConnection, Micros, StoreError, WriteTx};

type MultiTm = <DbConnection as diesel::Connection>::TransactionManager;
type PooledConnection = diesel::r2d2::PooledConnection<Manager>;

/// Errors a grouped write can answer with. A retryable one is tried again on its own.
pub trait GroupedError: From<StoreError> {
    fn is_retryable(&self) -> bool;
}

impl GroupedError for StoreError {
    fn is_retryable(&self) -> bool {
        self.is_deadlock_or_serialization()
    }
}

/// The batch open for writes to join, if any; one per database handle.
#[derive(Default)]
pub struct WriteGroups {
    open: Mutex<Option<Arc<Batch>>>,
}

struct Batch {
    state: Mutex<BatchState>,
    // One condition variable per thing waited for, so each signal wakes only the threads
    // that wait for it: a batch of n writes then costs O(n) wake-ups, not O(n²).
    /// The connection is ready, or the batch broke: the joined writes may run.
    ready: Condvar,
    /// Every joined write finished: the leader may close the batch or commit.
    drained: Condvar,
    /// The batch committed, failed to, or broke: the followers may answer.
    settled: Condvar,
}

#[derive(Default)]
struct BatchState {
    joined: usize,
    finished: usize,
    /// The transaction's connection, once the leader has begun it.
    conn: Option<PooledConnection>,
    now: Micros,
    moves: Vec<OrderMove>,
    /// Why the leader could not begin: every write is tried on its own.
    broken: bool,
    /// Set once the batch committed (true) or failed to (false).
    committed: Option<bool>,
}

impl Batch {
    fn lock(&self) -> MutexGuard<'_, BatchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(
        condition: &Condvar,
        state: MutexGuard<'a, BatchState>,
    ) -> MutexGuard<'a, BatchState> {
        condition.wait(state).unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a joined write as finished; the last one wakes the leader.
    fn finish_one(&self, state: &mut BatchState) {
        state.finished += 1;
        if state.finished == state.joined {
            self.drained.notify_all();
        }
    }
}

impl WriteGroups {
    fn open(&self) -> MutexGuard<'_, Option<Arc<Batch>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the open batch, or opens one and leads it.
    fn join(&self) -> (Arc<Batch>, bool) {
        let mut open = self.open();
        if let Some(batch) = open.as_ref() {
            batch.lock().joined += 1;
            return (batch.clone(), false);
        }
        let batch = Arc::new(Batch {
            state: Mutex::new(BatchState {
                joined: 1,
                ..BatchState::default()
            }),
            ready: Condvar::new(),
            drained: Condvar::new(),
            settled: Condvar::new(),
        });
        *open = Some(batch.clone());
        (batch, true)
    }

    /// No write joins `batch` from now on.
    fn close(&self, batch: &Arc<Batch>) {
        let mut open = self.open();
        if open.as_ref().is_some_and(|b| Arc::ptr_eq(b, batch)) {
            *open = None;
        }
    }
}

/// What a write's step in a batch came to.
enum Step<T, E> {
    Done(Result<T, E>),
    /// Not run in the batch, or to be run again on its own.
    Alone,
}

impl super::Db {
    /// Runs `f` in a write transaction shared with the writes that arrive meanwhile (see the
    /// module docs); `f` may run a second time, on its own, when the batch could not commit.
    pub fn write_grouped<T, E>(
        &self,
        mut f: impl FnMut(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: GroupedError,
    {
        // PostgreSQL already shares one WAL flush among the commits that arrive together, and
        // its connections write side by side; a batch would run them one after another on one
        // connection (measured: PATCH 1,915/s alone, 1,107/s batched).
        if self.backend() == super::Backend::Postgres {
            return self.write(f);
        }
        let groups = self.groups();
        let (batch, leader) = groups.join();
        let step = if leader {
            self.lead(groups, &batch, &mut f)
        } else {
            follow(&batch, &mut f)
        };
        match step {
            Step::Done(result) => result,
            Step::Alone => self.write(f),
        }
    }

    fn lead<T, E>(
        &self,
        groups: &WriteGroups,
        batch: &Arc<Batch>,
        f: &mut impl FnMut(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Step<T, E>
    where
        E: GroupedError,
    {
        // SQLite's one writer, held until the COMMIT: the next batch gathers meanwhile.
        let sqlite_writer = self.sqlite_writer_lock();
        let begun = self
            .pool_get()
            .and_then(|mut pooled| begin(&mut pooled.conn).map(|()| pooled));
        match begun {
            Ok(pooled) => {
                let mut state = batch.lock();
                state.conn = Some(pooled);
                state.now = self.clock().now_micros();
                batch.ready.notify_all();
            }
            Err(_) => {
                groups.close(batch);
                batch.lock().broken = true;
                batch.ready.notify_all();
                batch.settled.notify_all();
                return Step::Alone;
            }
        }
        // Should this thread unwind from here on, the joined writes are released, not left
        // waiting for a COMMIT that will not come.
        let abandon = Abandon { groups, batch };
        let mine = run(batch, f);
        // Writes that joined meanwhile run; then the batch closes, and the last joiners run.
        let mut state = batch.lock();
        while state.finished < state.joined {
            state = Batch::wait(&batch.drained, state);
        }
        drop(state);
        groups.close(batch);
        let mut state = batch.lock();
        while state.finished < state.joined {
            state = Batch::wait(&batch.drained, state);
        }
        let (Some(mut pooled), moves) = (state.conn.take(), std::mem::take(&mut state.moves))
        else {
            return Step::Alone;
        };
        std::mem::forget(abandon);
        let now = state.now;
        drop(state);
        let committed = self.commit(&mut pooled.conn, now, &moves);
        if !committed {
            pooled.distrust();
        }
        drop(sqlite_writer);
        drop(pooled);
        batch.lock().committed = Some(committed);
        batch.settled.notify_all();
        if committed {
            self.after_commit(&moves);
        }
        settle(committed, mine)
    }

    /// Tallies the batch's order moves and commits; false when nothing was written.
    fn commit(&self, conn: &mut DbConnection, now: Micros, moves: &[OrderMove]) -> bool {
        let tallied = if moves.is_empty() {
            Ok(())
        } else {
            let mut tx = WriteTx {
                conn,
                now,
                moves: Vec::new(),
            };
            self.tally(&mut tx, moves)
        };
        let committed =
            tallied.and_then(|()| MultiTm::commit_transaction(conn).map_err(StoreError::from));
        match committed {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "a group of writes could not commit; each is written again on its own");
                let _ = MultiTm::rollback_transaction(conn);
                false
            }
        }
    }
}

/// Releases a batch whose leader unwinds: rolled back, every joined write tried on its own.
struct Abandon<'a> {
    groups: &'a WriteGroups,
    batch: &'a Arc<Batch>,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        self.groups.close(self.batch);
        let mut state = self.batch.lock();
        if let Some(mut pooled) = state.conn.take() {
            let _ = MultiTm::rollback_transaction(&mut pooled.conn);
            pooled.distrust();
        }
        state.committed = Some(false);
        self.batch.settled.notify_all();
    }
}

/// A write that joined a batch: runs when the connection is ready, then waits for the COMMIT.
fn follow<T, E>(
    batch: &Arc<Batch>,
    f: &mut impl FnMut(&mut WriteTx<'_>) -> Result<T, E>,
) -> Step<T, E>
where
    E: GroupedError,
{
    let mine = run(batch, f);
    let mut state = batch.lock();
    while state.committed.is_none() && !state.broken {
        state = Batch::wait(&batch.settled, state);
    }
    let committed = state.committed == Some(true);
    drop(state);
    settle(committed, mine)
}

/// The write's answer once the batch is over: its own, unless the batch wrote nothing or the
/// write met another transaction's locks.
fn settle<T, E: GroupedError>(committed: bool, mine: Option<Result<T, E>>) -> Step<T, E> {
    match mine {
        Some(Err(e)) if e.is_retryable() => Step::Alone,
        Some(result) if committed => Step::Done(result),
        _ => Step::Alone,
    }
}

/// Runs one write in its own savepoint on the batch's connection; `None` when the batch never
/// began.
fn run<T, E>(
    batch: &Batch,
    f: &mut impl FnMut(&mut WriteTx<'_>) -> Result<T, E>,
) -> Option<Result<T, E>>
where
    E: GroupedError,
{
    let mut state = batch.lock();
    while state.conn.is_none() && !state.broken {
        state = Batch::wait(&batch.ready, state);
    }
    let now = state.now;
    let result = match state.conn.as_mut() {
        None => None,
        Some(pooled) => {
            let conn = &mut pooled.conn;
            Some(match MultiTm::begin_transaction(conn) {
                Err(e) => (Err(E::from(StoreError::from(e))), Vec::new()),
                Ok(()) => {
                    let mut tx = WriteTx {
                        conn,
                        now,
                        moves: Vec::new(),
                    };
                    let ran = catch_unwind(AssertUnwindSafe(|| f(&mut tx)));
                    let moves = std::mem::take(&mut tx.moves);
                    let result = match ran {
                        Ok(result) => result,
                        Err(panic) => {
                            // Its savepoint rolled back and counted, so the batch goes on.
                            let _ = MultiTm::rollback_transaction(conn);
                            batch.finish_one(&mut state);
                            drop(state);
                            resume_unwind(panic);
                        }
                    };
                    let result = match result {
                        Ok(value) => MultiTm::commit_transaction(conn)
                            .map(|()| value)
                            .map_err(|e| E::from(StoreError::from(e))),
                        Err(e) => Err(e),
                    };
                    if result.is_err() {
                        let _ = MultiTm::rollback_transaction(conn);
                    }
                    (result, moves)
                }
            })
        }
    };
    let outcome = result.map(|(result, moves)| {
        if result.is_ok() {
            state.moves.extend(moves);
        }
        result
    });
    batch.finish_one(&mut state);
    outcome
}

/// Begins the batch's transaction as [`super::write_transaction`] does.
fn begin(conn: &mut DbConnection) -> Result<(), StoreError> {
    let begun = match conn {
        DbConnection::Sqlite(c) => {
            diesel::connection::AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        DbConnection::Postgresql(_) => MultiTm::begin_transaction(conn),
    };
    Ok(begun?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use diesel::sql_types::BigInt;
    use diesel::RunQueryDsl;

    use super::*;
    use crate::storage::Db;

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    /// Concurrent writes share transactions, yet each keeps its own answer: a failed one is
    /// rolled back alone, a panicking one unwinds in its own thread, the rest are written.
    #[test]
    fn concurrent_writes_share_commits_and_keep_their_own_answers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("groups.db").display());
        let db = Db::open(&url, 4).expect("open");
        db.write(|tx| {
            diesel::sql_query("CREATE TABLE probe (n BIGINT PRIMARY KEY, at BIGINT NOT NULL)")
                .execute(tx.conn())
                .map_err(StoreError::from)
        })
        .expect("table");
        let writers: Vec<_> = (0..48_i64)
            .map(|n| {
                let db = db.clone();
                std::thread::spawn(move || {
                    db.write_grouped(|tx| {
                        let now = tx.now();
                        diesel::sql_query(format!("INSERT INTO probe VALUES ({n}, {now})"))
                            .execute(tx.conn())
                            .map_err(StoreError::from)?;
                        // Slow enough that others arrive while the transaction is open.
                        std::thread::sleep(Duration::from_millis(2));
                        if n == 7 {
                            panic!("a write that panics");
                        }
                        if n % 5 == 0 {
                            return Err(StoreError::Aborted(format!("refused {n}")));
                        }
                        Ok(n)
                    })
                })
            })
            .collect();
        let mut answered = BTreeSet::new();
        for (n, writer) in writers.into_iter().enumerate() {
            match writer.join() {
                Ok(Ok(got)) => {
                    assert_eq!(got, n as i64, "each write gets its own answer");
                    answered.insert(got);
                }
                Ok(Err(e)) => {
                    assert!(n % 5 == 0 && e.to_string().contains(&format!("refused {n}")))
                }
                Err(_) => assert_eq!(n, 7, "only the panicking write unwinds"),
            }
        }
        let rows: Vec<Row> = db
            .read(|c| {
                diesel::sql_query("SELECT n FROM probe ORDER BY n")
                    .load(c)
                    .map_err(StoreError::from)
            })
            .expect("rows");
        let written: BTreeSet<i64> = rows.into_iter().map(|r| r.n).collect();
        assert_eq!(written, answered, "exactly the answered writes are stored");
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let transactions: Vec<Count> = db
            .read(|c| {
                diesel::sql_query("SELECT COUNT(DISTINCT at) AS n FROM probe")
                    .load(c)
                    .map_err(StoreError::from)
            })
            .expect("count");
        assert!(
            transactions[0].n < written.len() as i64 / 2,
            "{} transactions for {} writes",
            transactions[0].n,
            written.len()
        );
    }
}
