//! PostgreSQL advisory locks, keyed by name: how instances sharing one database agree on
//! who goes first. SQLite needs none (one process writes, one transaction at a time).

use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;

use super::{DbConnection, StoreError, WriteTx};

/// A lock key for `name` within `scope`: FNV-1a, stable across processes and releases.
pub(crate) fn key(scope: &str, name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in scope.bytes().chain([0]).chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
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
