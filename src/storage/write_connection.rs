//! The connection a write transaction runs on.
//!
//! SQLite has one writer at a time, and every write runs on the same connection, kept out of
//! the pool between writes. SQLite empties a connection's page cache whenever another
//! connection wrote since that connection's last transaction: writes that took turns on
//! pooled connections read back, each time, the pages the previous write had just changed (a
//! tenth of recording a batch of delivery outcomes). On PostgreSQL writers run side by side,
//! each on a pooled connection.

use std::sync::{Mutex, MutexGuard};

use diesel::r2d2::PooledConnection;

use super::connection::{Manager, Pooled};
use super::{Backend, Db, DbConnection, StoreError};

/// SQLite's writer: the turn, and the connection held between writes (none until the first
/// write, or after one failed).
pub(super) type SqliteWriter = Mutex<Option<PooledConnection<Manager>>>;

/// A write's connection; on SQLite it also holds the writer's turn until dropped.
pub(super) enum WriteConnection<'a> {
    Sqlite {
        slot: MutexGuard<'a, Option<PooledConnection<Manager>>>,
        /// Whether the connection stays out of the pool after this write: not when the pool
        /// has only one, which readers need between writes.
        keep: bool,
    },
    Pooled(PooledConnection<Manager>),
}

impl WriteConnection<'_> {
    fn pooled(&mut self) -> Option<&mut Pooled> {
        match self {
            WriteConnection::Sqlite { slot, .. } => slot.as_deref_mut(),
            WriteConnection::Pooled(pooled) => Some(pooled),
        }
    }

    pub(super) fn conn(&mut self) -> Result<&mut DbConnection, StoreError> {
        self.pooled()
            .map(|pooled| &mut pooled.conn)
            .ok_or_else(|| StoreError::Aborted("the writer's connection was given back".into()))
    }

    /// Its last use failed: it goes back to the pool, to be checked before anyone uses it
    /// again, and the next write takes another.
    pub(super) fn distrust(&mut self) {
        match self {
            WriteConnection::Sqlite { slot, .. } => {
                if let Some(mut pooled) = slot.take() {
                    pooled.distrust();
                }
            }
            WriteConnection::Pooled(pooled) => pooled.distrust(),
        }
    }
}

impl Drop for WriteConnection<'_> {
    fn drop(&mut self) {
        if let WriteConnection::Sqlite { slot, keep: false } = self {
            slot.take();
        }
    }
}

impl Db {
    /// The connection for the next write, waiting for SQLite's writer turn.
    pub(super) fn write_connection(&self) -> Result<WriteConnection<'_>, StoreError> {
        match self.backend {
            Backend::Postgres => Ok(WriteConnection::Pooled(self.pool_get()?)),
            Backend::Sqlite => {
                // A poisoned lock only means another writer panicked; the database is intact.
                let mut slot = self
                    .sqlite_writer
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if slot.is_none() {
                    *slot = Some(self.pool_get()?);
                }
                Ok(WriteConnection::Sqlite {
                    slot,
                    keep: self.pool.max_size() > 1,
                })
            }
        }
    }
}
