//! One connection type over SQLite and PostgreSQL, the pool, and write transactions.

use diesel::connection::SimpleConnection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{CustomizeConnection, Pool};
use std::time::{Duration, Instant};

use super::StoreError;

/// WAL pages (4 KiB, so 125 MiB) after which a commit checkpoints by itself. Under steady
/// writes this is more than a backstop: the background checkpoint never ends with nothing
/// left to copy (commits keep coming), so the WAL only starts over after a checkpoint a commit
/// runs, and that commit waits for it (13-27 ms measured, mostly syncing). At 8,000 pages a
/// PATCH burst hit one every ~180 ms, and the 16 requests waiting each time were more than 1 %
/// of all: PATCH p99 18-20 ms at 30,000 users. At 32,000 pages: 7 ms.
pub(crate) const AUTOCHECKPOINT_PAGES: u32 = 32_000;
/// The WAL file's size bound (the `journal_size_limit` each connection sets, too); above what
/// the automatic checkpoint lets it reach, so steady writes never pay a truncation.
pub(crate) const WAL_BOUND_BYTES: u64 = 160 * 1024 * 1024;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Which backend a URL names. SQLite accepts any string as a path, so the scheme decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// The backend a connection talks to.
    pub fn of(conn: &DbConnection) -> Backend {
        match conn {
            DbConnection::Sqlite(_) => Backend::Sqlite,
            DbConnection::Postgresql(_) => Backend::Postgres,
        }
    }
}

/// The SQLite path a URL names: `sqlite://path`, `sqlite:path` or a bare path.
pub fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
}

pub fn establish(url: &str) -> Result<DbConnection, StoreError> {
    Ok(match Backend::of_url(url) {
        Backend::Postgres => DbConnection::Postgresql(diesel::PgConnection::establish(url)?),
        Backend::Sqlite => {
            let path = sqlite_path(url);
            if path.is_empty() || path == ":memory:" {
                // Each pooled connection would get its own empty database.
                return Err(StoreError::UnsupportedUrl(url.to_string()));
            }
            super::sqlite_library::configure();
            DbConnection::Sqlite(diesel::SqliteConnection::establish(path)?)
        }
    })
}

/// How long a connection that answered stays trusted without asking it again.
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// A pooled connection, and since when it is known to work. Checking every checkout cost a
/// round trip per request on PostgreSQL; a connection that answered within the last second,
/// and whose last use did not fail, is handed out as it is.
pub struct Pooled {
    pub(super) conn: DbConnection,
    vouched_at: Option<Instant>,
}

impl Pooled {
    /// Its last use failed: ask it again before it is handed out next.
    pub(super) fn distrust(&mut self) {
        self.vouched_at = None;
    }
}

/// r2d2 manager that opens the variant the URL names.
pub struct Manager {
    url: String,
}

impl diesel::r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Pooled, Self::Error> {
        let conn = establish(&self.url).map_err(|e| match e {
            StoreError::Connection(c) => diesel::r2d2::Error::ConnectionError(c),
            other => diesel::r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
                other.to_string(),
            )),
        })?;
        Ok(Pooled {
            conn,
            vouched_at: Some(Instant::now()),
        })
    }

    /// Diesel's ping (prepared once per connection) unless the connection answered lately.
    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), Self::Error> {
        use diesel::r2d2::R2D2Connection;
        if pooled
            .vouched_at
            .is_some_and(|at| at.elapsed() < TRUSTED_FOR)
        {
            return Ok(());
        }
        match &mut pooled.conn {
            DbConnection::Postgresql(c) => c.ping(),
            DbConnection::Sqlite(c) => c.ping(),
        }
        .map_err(diesel::r2d2::Error::QueryError)?;
        pooled.vouched_at = Some(Instant::now());
        Ok(())
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        use diesel::r2d2::R2D2Connection;
        match &mut pooled.conn {
            DbConnection::Postgresql(c) => c.is_broken(),
            DbConnection::Sqlite(c) => c.is_broken(),
        }
    }
}

/// How much of a SQLite database file each connection maps into memory.
const SQLITE_MMAP_BYTES: u64 = 1 << 30;

/// Per-connection SQLite settings; WAL itself is persistent and set once at open.
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<Pooled, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, pooled: &mut Pooled) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(c) = &mut pooled.conn {
            // Reads through a memory map skip a copy per page out of the kernel's cache,
            // which was a tenth of a busy server's CPU; the map only reserves address space.
            c.batch_execute(&format!(
                "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                 PRAGMA wal_autocheckpoint = {}; PRAGMA mmap_size = {}; PRAGMA cache_size = -16384; \
                 PRAGMA journal_size_limit = {};",
                AUTOCHECKPOINT_PAGES,
                SQLITE_MMAP_BYTES,
                WAL_BOUND_BYTES
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

pub type DbPool = Pool<Manager>;

/// How long a request waits for a connection by default before it is told the database is
/// unavailable (`503`); the pool also retries a lost database at least this often.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(2);

pub fn build_pool(url: &str, size: u32, wait: Duration) -> Result<DbPool, StoreError> {
    if Backend::of_url(url) == Backend::Sqlite {
        let mut conn = establish(url)?;
        if let DbConnection::Sqlite(c) = &mut conn {
            c.batch_execute("PRAGMA journal_mode = WAL;")?;
        }
    }
    let pool = Pool::builder()
        .max_size(size.max(1))
        // r2d2 also retries failed connects at most every half of this: a database that comes
        // back is in use again within a second.
        .connection_timeout(wait.max(Duration::from_millis(100)))
        .connection_customizer(Box::new(SqlitePragmas))
        .build(Manager {
            url: url.to_string(),
        })?;
    Ok(pool)
}

// The MultiConnection derive generates this manager; it delegates to the inner connection's.
type MultiTm = <DbConnection as Connection>::TransactionManager;

/// Runs `f` in a write transaction: `BEGIN IMMEDIATE` on SQLite (a deferred transaction that
/// upgrades to a write fails at once with SQLITE_BUSY under WAL), a plain one on PostgreSQL.
/// Rolls back on any error, so nothing is half-written.
pub fn write_transaction<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StoreError>,
{
    let begin = match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        DbConnection::Postgresql(_) => MultiTm::begin_transaction(conn),
    };
    begin.map_err(StoreError::from)?;
    match f(conn) {
        Ok(value) => match MultiTm::commit_transaction(conn) {
            Ok(()) => Ok(value),
            Err(commit_error) => {
                // A failed COMMIT leaves the transaction open on some backends.
                let _ = MultiTm::rollback_transaction(conn);
                Err(StoreError::from(commit_error).into())
            }
        },
        Err(error) => {
            if let Err(rollback_error) = MultiTm::rollback_transaction(conn) {
                tracing::error!(%rollback_error, "rollback failed");
            }
            Err(error)
        }
    }
}
