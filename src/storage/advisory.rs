//! PostgreSQL advisory locks, keyed by name: how instances sharing one database agree on
//! who goes first. SQLite needs none (one process writes, one transaction at a time).

use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;

use super::{DbConnection, StoreError, WriteTx};

/// A lock key for `name` within `scope`, the same in every instance.
pub(crate) fn key(scope: &str, name: &str) -> i64 {
    super::fnv1a(scope.bytes().chain([0]).chain(name.bytes()))
}

/// Holds the lock `key` until the transaction ends, waiting for whoever holds it now.
pub(crate) fn hold_until_commit(tx: &mut WriteTx<'_>, key: i64) -> Result<(), StoreError> {
    if let DbConnection::Postgresql(pg) = tx.conn() {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(key)
            .execute(pg)?;
    }
    Ok(())
}
