//! When waiting orders become due, without changing their state: group orders waiting for a
//! member, retries pushed back while their target failed, the order a probe sends.

use diesel::prelude::*;

use super::kinds::OrderState;
use crate::storage::schema::orders;
use crate::storage::{Db, DbConnection, Micros, StoreError, WriteTx, BIND_CHUNK};

/// Orders waiting to go: pending, or errored and waiting to be retried.
const WAITING: [&str; 2] = [OrderState::Pending.as_str(), OrderState::Errored.as_str()];

/// Makes the group orders deferred for any of `members` on `target` due now: the members'
/// orders have landed, or have ended in a way that leaves them out of the group.
pub(super) fn wake_waiting(
    tx: &mut WriteTx<'_>,
    target: &str,
    members: &[&str],
) -> Result<usize, StoreError> {
    let now = tx.now();
    let mut woken = 0;
    for chunk in members.chunks(BIND_CHUNK) {
        woken += diesel::update(
            orders::table
                .filter(orders::target.eq(target))
                .filter(orders::waiting_for.eq_any(chunk))
                .filter(orders::state.eq(OrderState::Errored.as_str())),
        )
        .set(orders::next_attempt_at.eq(now))
        .execute(tx.conn())?;
    }
    Ok(woken)
}

/// Makes one errored order due now.
pub(super) fn due_now(tx: &mut WriteTx<'_>, id: i64) -> Result<(), StoreError> {
    let now = tx.now();
    diesel::update(
        orders::table
            .filter(orders::id.eq(id))
            .filter(orders::state.eq(OrderState::Errored.as_str())),
    )
    .set(orders::next_attempt_at.eq(now))
    .execute(tx.conn())?;
    Ok(())
}

/// Makes the target's retries due now (not those waiting for a group member); answers how
/// many. Called when a target that was failing answers again.
pub fn hasten_retries(db: &Db, target: &str, now: Micros) -> Result<usize, StoreError> {
    db.write(|tx| {
        Ok(diesel::update(
            orders::table
                .filter(orders::target.eq(target))
                .filter(orders::state.eq(OrderState::Errored.as_str()))
                .filter(orders::waiting_for.is_null())
                .filter(orders::next_attempt_at.gt(now)),
        )
        .set(orders::next_attempt_at.eq(now))
        .execute(tx.conn())?)
    })
}

/// Whether the target has an order waiting to go, not for a group member: a probe needs one.
pub fn has_due_orders(conn: &mut DbConnection, target: &str) -> Result<bool, StoreError> {
    let open: Option<i64> = orders::table
        .filter(orders::target.eq(target))
        .filter(orders::state.eq_any(WAITING))
        .filter(orders::waiting_for.is_null())
        .select(orders::id)
        .first(conn)
        .optional()?;
    Ok(open.is_some())
}

/// Makes the target's oldest waiting order due now, so a probe has an order to send even
/// while every order waits out its backoff.
pub fn ready_for_probe(tx: &mut WriteTx<'_>, target: &str) -> Result<(), StoreError> {
    let now = tx.now();
    let oldest: Option<i64> = orders::table
        .filter(orders::target.eq(target))
        .filter(orders::state.eq_any(WAITING))
        .filter(orders::waiting_for.is_null())
        .filter(orders::next_attempt_at.gt(now))
        .order(orders::id)
        .select(orders::id)
        .first(tx.conn())
        .optional()?;
    if let Some(id) = oldest {
        diesel::update(orders::table.find(id))
            .set(orders::next_attempt_at.eq(now))
            .execute(tx.conn())?;
    }
    Ok(())
}
