//! Target locks: a full sync holds its target's lock, and incremental delivery to that target
//! waits until it is released. The row says who holds it and until when (a holder that dies
//! stops renewing); on PostgreSQL an advisory lock closes the gap between a claim that read
//! "unlocked" and the lock being taken, across instances.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::orders::OrderState;
use super::schema::{orders, sync_runs, target_locks};
use super::{Db, DbConnection, Micros, StoreError, WriteTx};

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = target_locks)]
pub struct TargetLock {
    pub target: String,
    pub holder: String,
    pub sync_id: Option<i64>,
    pub acquired_at: Micros,
    pub expires_at: Micros,
}

/// The advisory-lock key of a target (stable across processes and releases).
fn advisory_key(target: &str) -> i64 {
    super::fnv1a(b"scimgate-target:".iter().chain(target.as_bytes()).copied())
}

/// The lock on `target` while it is held (not expired).
pub fn held(
    conn: &mut DbConnection,
    target: &str,
    now: Micros,
) -> Result<Option<TargetLock>, StoreError> {
    Ok(target_locks::table
        .find(target)
        .filter(target_locks::expires_at.gt(now))
        .select(TargetLock::as_select())
        .first(conn)
        .optional()?)
}

/// Called at the start of every claim transaction: false when a full sync holds the target.
/// On PostgreSQL the claim also holds the target's advisory lock in shared mode until it
/// commits, which [`acquire`] waits for.
pub fn may_deliver(tx: &mut WriteTx<'_>, target: &str) -> Result<bool, StoreError> {
    let now = tx.now();
    if let DbConnection::Postgresql(pg) = tx.conn() {
        diesel::sql_query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind::<BigInt, _>(advisory_key(target))
            .execute(pg)?;
    }
    Ok(held(tx.conn(), target, now)?.is_none())
}

/// Takes the lock for `holder` if it is free (or expired); returns whether it was taken. Once
/// this returns true no claim for the target is in progress and none starts until release,
/// though orders claimed before may still be in flight.
pub fn acquire(
    db: &Db,
    target: &str,
    holder: &str,
    sync_id: Option<i64>,
    ttl: Micros,
) -> Result<bool, StoreError> {
    let taken = db.write(|tx| {
        let now = tx.now();
        if held(tx.conn(), target, now)?.is_some() {
            return Ok::<_, StoreError>(false);
        }
        // An expired lock's holder died mid-sync: its run will never finish by itself.
        let abandoned: Option<Option<i64>> = target_locks::table
            .find(target)
            .select(target_locks::sync_id)
            .first(tx.conn())
            .optional()?;
        if let Some(Some(run)) = abandoned {
            diesel::update(
                sync_runs::table
                    .find(run)
                    .filter(sync_runs::state.eq("running")),
            )
            .set((
                sync_runs::state.eq("failed"),
                sync_runs::finished_at.eq(now),
                sync_runs::error
                    .eq("abandoned: the process running it stopped renewing the target lock"),
            ))
            .execute(tx.conn())?;
        }
        diesel::delete(target_locks::table.find(target)).execute(tx.conn())?;
        diesel::insert_into(target_locks::table)
            .values((
                target_locks::target.eq(target),
                target_locks::holder.eq(holder),
                target_locks::sync_id.eq(sync_id),
                target_locks::acquired_at.eq(now),
                target_locks::expires_at.eq(now + ttl),
            ))
            .execute(tx.conn())?;
        Ok(true)
    });
    // Two instances racing for the row: the primary key lets one insert win.
    let taken = match taken {
        Err(e) if e.is_unique_violation() => false,
        other => other?,
    };
    if taken && db.backend() == super::Backend::Postgres {
        // Waits for claims that started before the row was visible.
        db.write(|tx| match tx.conn() {
            DbConnection::Postgresql(pg) => {
                diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                    .bind::<BigInt, _>(advisory_key(target))
                    .execute(pg)?;
                Ok::<_, StoreError>(())
            }
            DbConnection::Sqlite(_) => Ok(()),
        })?;
    }
    Ok(taken)
}

/// Extends a held lock; false when `holder` no longer holds it.
pub fn renew(db: &Db, target: &str, holder: &str, ttl: Micros) -> Result<bool, StoreError> {
    db.write(|tx| {
        let until = tx.now() + ttl;
        let n = diesel::update(
            target_locks::table
                .find(target)
                .filter(target_locks::holder.eq(holder)),
        )
        .set(target_locks::expires_at.eq(until))
        .execute(tx.conn())?;
        Ok(n == 1)
    })
}

pub fn release(db: &Db, target: &str, holder: &str) -> Result<(), StoreError> {
    db.write(|tx| {
        diesel::delete(
            target_locks::table
                .find(target)
                .filter(target_locks::holder.eq(holder)),
        )
        .execute(tx.conn())?;
        Ok(())
    })
}

/// Orders of the target out with a worker whose lease still runs.
pub fn in_flight(conn: &mut DbConnection, target: &str, now: Micros) -> Result<i64, StoreError> {
    Ok(orders::table
        .filter(orders::target.eq(target))
        .filter(orders::state.eq(OrderState::Transmitted.as_str()))
        .filter(orders::lease_until.gt(now))
        .count()
        .get_result(conn)?)
}
