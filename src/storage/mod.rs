//! Storage: the identity store's tables on SQLite or PostgreSQL, behind one connection type.
//!
//! Writes go through [`Db::write`], which hands out a [`WriteTx`]; every mutating function here
//! takes one and appends its change-log row in the same transaction, so no resource changes
//! without its log entry.

use std::time::Duration;

mod advisory;
mod checkpoint;
mod connection;
mod error;
mod fixed_shape;
pub mod migrate;
pub mod observer;
pub mod on_demand;
pub mod passwords;
mod pg_arrays;
pub mod schema;
pub mod secrets;
mod sqlite_library;
mod statement;
mod statistics;
pub mod user_change_batches;
pub mod user_changes;
pub mod user_creates;
pub mod user_reads;
mod user_update;
mod write_connection;
mod writer_queue;

pub mod accounts;
pub mod change_log;
pub mod connections;
pub mod console_sessions;
pub mod corrections;
pub mod deletions;
pub mod direct_groups;
pub mod event_deliveries;
pub mod event_subscriptions;
pub mod events;
pub mod extension_indexes;
pub mod group_commit;
pub mod groups;
pub mod holes;
pub mod identity_links;
pub mod member_edits;
pub mod order_tallies;
pub mod orders;
pub mod query;
pub mod schema_extensions;
pub mod search;
pub mod sync_runs;
pub mod target_health;
pub mod target_locks;
pub mod targets;
pub mod tokens;
pub mod users;
pub mod work_items;

pub use connection::{sqlite_path, write_transaction, Backend, DbConnection, DbPool};
pub use error::StoreError;

pub use crate::clock::{Clock, Micros};

/// Inserts `rows` into `table` in one multi-row INSERT on the transaction's connection:
/// both backends have one, diesel's MultiBackend does not, so each backend is named.
macro_rules! insert_rows {
    ($tx:expr, $table:expr, $rows:expr) => {
        match $tx.conn() {
            $crate::storage::DbConnection::Sqlite(c) => {
                diesel::insert_into($table).values($rows).execute(c)?
            }
            $crate::storage::DbConnection::Postgresql(c) => {
                diesel::insert_into($table).values($rows).execute(c)?
            }
        }
    };
}
pub(crate) use insert_rows;

/// Runs a diesel query on the backend's own connection rather than through the
/// `MultiConnection`, which serialises the query's SQL text on every call before its cache
/// lookup: a tenth of a GET by id's CPU. For the hot reads; `$c` names the inner connection.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $query:expr) => {
        match $conn {
            $crate::storage::DbConnection::Sqlite($c) => $query,
            $crate::storage::DbConnection::Postgresql($c) => $query,
        }
    };
}
pub(crate) use on_backend;

/// The database handle shared by the whole process.
#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    backend: Backend,
    /// SQLite allows one writer; queueing writers here is fairer and faster than letting them
    /// spin on SQLITE_BUSY with the busy handler's sleeps (see `write_connection`).
    sqlite_writer: std::sync::Arc<write_connection::SqliteWriter>,
    /// SQLite commits, watched by the background checkpoint.
    commits: std::sync::Arc<checkpoint::Commits>,
    /// This process's writes that moved orders, which decide when the tallies are folded.
    tallied: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The keys secrets stored in the database are sealed with.
    secrets: std::sync::Arc<secrets::SecretBox>,
    /// User creates waiting to be written together.
    user_creates: std::sync::Arc<user_creates::CreateQueue>,
    /// User changes waiting to be written together (PostgreSQL; see `user_change_batches`).
    user_change_queue: std::sync::Arc<user_change_batches::ChangeQueue>,
    /// Reads of single users waiting to be made together (PostgreSQL; see `user_reads`).
    user_reads: std::sync::Arc<user_reads::ReadQueue>,
    /// Users this process created, towards refreshing the planner's statistics.
    created_rows: std::sync::Arc<statistics::CreatedRows>,
    /// Member edits waiting for their group's turn (see `member_edits`).
    member_edits: std::sync::Arc<member_edits::EditQueues>,
    /// The batch other writes may join (see `group_commit`).
    groups: std::sync::Arc<group_commit::WriteGroups>,
    /// Where every timestamp written or compared comes from.
    clock: Clock,
    /// Holes in the numbers of the change log and the event outbox seen by this process.
    holes: std::sync::Arc<holes::Holes>,
    /// Woken after every commit, for readers waiting on new rows (long polls).
    committed: std::sync::Arc<tokio::sync::Notify>,
    /// Told what each commit moved (the metrics).
    observer: Option<std::sync::Arc<dyn observer::StoreObserver>>,
}

impl Db {
    /// Opens the pool and brings the schema up to date.
    pub fn open(url: &str, pool_size: u32) -> Result<Db, StoreError> {
        Db::open_waiting(url, pool_size, connection::DEFAULT_WAIT)
    }

    /// [`Db::open`], with requests waiting at most `wait` for a connection, and stored secrets
    /// sealed with the key in `key_file` (see [`secrets`] for the defaults).
    pub fn open_configured(
        url: &str,
        pool_size: u32,
        wait: Duration,
        key_file: Option<&std::path::Path>,
    ) -> Result<Db, StoreError> {
        let secrets = secrets::SecretBox::for_database(url, key_file)?;
        Db::open_with(url, pool_size, wait, secrets)
    }

    /// The keys stored secrets are sealed with.
    pub fn secrets(&self) -> &secrets::SecretBox {
        &self.secrets
    }

    /// This handle, reading time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Db {
        self.clock = clock;
        self
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// This handle, telling `observer` what its commits move.
    pub fn with_observer(mut self, observer: std::sync::Arc<dyn observer::StoreObserver>) -> Db {
        self.observer = Some(observer);
        self
    }

    pub(crate) fn holes(&self) -> &holes::Holes {
        &self.holes
    }

    /// Notified after each commit of this process (other instances' commits are not seen:
    /// waiters poll as well).
    pub fn committed(&self) -> &tokio::sync::Notify {
        &self.committed
    }

    /// [`Db::open`], with requests waiting at most `wait` for a connection.
    pub fn open_waiting(url: &str, pool_size: u32, wait: Duration) -> Result<Db, StoreError> {
        Db::open_with(url, pool_size, wait, Default::default())
    }

    /// Opens the pool, brings the schema up to date and moves passwords that older versions
    /// kept in user documents into hashes.
    fn open_with(
        url: &str,
        pool_size: u32,
        wait: Duration,
        secrets: secrets::SecretBox,
    ) -> Result<Db, StoreError> {
        let backend = Backend::of_url(url);
        let pool = connection::build_pool(url, pool_size, wait)?;
        let mut pooled = pool.get()?;
        migrate::run(&mut pooled.conn)?;
        drop(pooled);
        let commits = std::sync::Arc::default();
        if backend == Backend::Sqlite {
            checkpoint::start(url, &commits);
        }
        let db = Db {
            pool,
            backend,
            sqlite_writer: Default::default(),
            commits,
            tallied: std::sync::Arc::default(),
            secrets: std::sync::Arc::new(secrets),
            user_creates: Default::default(),
            user_change_queue: Default::default(),
            user_reads: Default::default(),
            created_rows: Default::default(),
            member_edits: Default::default(),
            groups: Default::default(),
            clock: Clock::system(),
            holes: Default::default(),
            committed: Default::default(),
            observer: None,
        };
        passwords::move_out_of_documents(&db)?;
        Ok(db)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn user_creates(&self) -> &user_creates::CreateQueue {
        &self.user_creates
    }

    pub(crate) fn user_change_queue(&self) -> &user_change_batches::ChangeQueue {
        &self.user_change_queue
    }

    pub(crate) fn user_reads(&self) -> &user_reads::ReadQueue {
        &self.user_reads
    }

    pub(crate) fn member_edits(&self) -> &member_edits::EditQueues {
        &self.member_edits
    }

    pub(crate) fn created_rows(&self) -> &statistics::CreatedRows {
        &self.created_rows
    }

    pub fn pool_size(&self) -> u32 {
        self.pool.max_size()
    }

    /// Runs read-only work on a pooled connection.
    pub fn read<T, E>(&self, f: impl FnOnce(&mut DbConnection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut pooled = self.pool.get().map_err(StoreError::from)?;
        let result = f(&mut pooled.conn);
        if result.is_err() {
            pooled.distrust();
        }
        result
    }

    /// Whether a connection can be had and answers now, on a schema with every migration of
    /// this build applied (`/readyz`).
    pub fn ready(&self) -> Result<(), StoreError> {
        self.read(|c| match migrate::current(c)? {
            true => Ok(()),
            false => Err(StoreError::Migration(
                "the database schema is missing migrations of this version".into(),
            )),
        })
    }

    fn groups(&self) -> &group_commit::WriteGroups {
        &self.groups
    }

    fn pool_get(&self) -> Result<diesel::r2d2::PooledConnection<connection::Manager>, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Records a transaction's order moves in the tallies, folding them now and then.
    fn tally(&self, tx: &mut WriteTx<'_>, moves: &[observer::OrderMove]) -> Result<(), StoreError> {
        order_tallies::record(tx, moves)?;
        let tallied = self
            .tallied
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if tallied % order_tallies::FOLD_EVERY == order_tallies::FOLD_EVERY - 1 {
            order_tallies::fold(tx)?;
        }
        Ok(())
    }

    /// Tells whoever waits on commits, and the observer of order moves.
    fn after_commit(&self, moves: &[observer::OrderMove]) {
        self.commits.committed();
        self.committed.notify_waiters();
        if let (Some(observer), false) = (&self.observer, moves.is_empty()) {
            observer.orders_moved(moves);
        }
    }

    /// Runs `f` in one write transaction stamped with one point in time.
    pub fn write<T, E>(&self, f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut writer = self.write_connection()?;
        let now = self.clock.now_micros();
        let mut moves = Vec::new();
        let written = write_transaction(writer.conn()?, |conn| {
            let mut tx = WriteTx {
                conn,
                now,
                moves: Vec::new(),
            };
            let done = f(&mut tx).and_then(|value| {
                if !tx.moves.is_empty() {
                    let moves = std::mem::take(&mut tx.moves);
                    self.tally(&mut tx, &moves)?;
                    tx.moves = moves;
                }
                Ok(value)
            });
            moves = tx.moves;
            done
        });
        if written.is_err() {
            writer.distrust();
        }
        drop(writer);
        if written.is_ok() {
            self.after_commit(&moves);
        }
        written
    }
}

/// An open write transaction. Only storage functions can write through it.
pub struct WriteTx<'a> {
    conn: &'a mut DbConnection,
    now: Micros,
    /// Orders moved so far, for the observer once committed.
    moves: Vec<observer::OrderMove>,
}

impl WriteTx<'_> {
    /// Reads inside the transaction see its own writes.
    pub fn conn(&mut self) -> &mut DbConnection {
        self.conn
    }

    pub fn now(&self) -> Micros {
        self.now
    }

    /// Records orders moved in this transaction, reported once it commits.
    pub(crate) fn moved(&mut self, moves: impl IntoIterator<Item = observer::OrderMove>) {
        self.moves.extend(moves);
    }
}

/// FNV-1a of `bytes`: stable across processes and releases, unlike std's hasher, so it can
/// be stored (account fingerprints) or shared between instances (advisory-lock keys).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// Groups ids into chunks small enough for any backend's bind-parameter limit.
pub(crate) const BIND_CHUNK: usize = 5_000;

/// A fresh SQLite database with `pool_size` connections in a directory of its own, for unit
/// tests; the directory goes when dropped.
#[cfg(test)]
#[allow(clippy::expect_used)]
pub(crate) fn temp_sqlite(pool_size: u32) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("scimgate.db").display());
    let db = Db::open(&url, pool_size).expect("open");
    (dir, db)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv1a_is_the_published_function() {
        // Stored fingerprints and lock keys shared between instances depend on these values.
        assert_eq!(super::fnv1a(*b""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(super::fnv1a(*b"a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
        assert_eq!(super::fnv1a(*b"foobar"), 0x8594_4171_f739_67e8_u64 as i64);
    }
}
