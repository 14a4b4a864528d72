//! Deliveries: one event for one subscription, with its attempts. A subscription's deliveries
//! of one resource go out in id order; each ends `delivered` or `failed`.

use diesel::prelude::*;

use super::event_subscriptions;
use super::events::StoredEvent;
use super::schema::{event_deliveries, event_delivery_attempts, events};
use super::{insert_rows, Db, DbConnection, Micros, StoreError, WriteTx};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = event_deliveries)]
pub struct StoredDelivery {
    pub id: i64,
    pub subscription_id: String,
    pub event_seq: i64,
    pub resource_key: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Micros,
    pub created_at: Micros,
    pub finished_at: Option<Micros>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = event_delivery_attempts)]
pub struct StoredAttempt {
    pub id: i64,
    pub delivery_id: i64,
    pub at: Micros,
    pub status: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// One event to deliver to a subscription.
#[derive(Debug, Clone)]
pub struct Planned {
    pub event_seq: i64,
    pub resource_key: String,
}

/// A subscription's share of a fan-out: the events after `from` up to `to` that it takes.
#[derive(Debug, Clone)]
pub struct FanOut {
    pub subscription_id: String,
    pub from: i64,
    pub to: i64,
    pub deliveries: Vec<Planned>,
}

/// Writes each subscription's deliveries and moves its position, in one transaction; a
/// subscription whose position moved meanwhile (another instance fanned out) is skipped.
pub fn fan_out(db: &Db, shares: &[FanOut]) -> Result<(), StoreError> {
    db.write(|tx| {
        for share in shares {
            if event_subscriptions::advance(tx, &share.subscription_id, share.from, share.to)? {
                insert(tx, &share.subscription_id, &share.deliveries)?;
            }
        }
        Ok(())
    })
}

/// Adds deliveries to a subscription (a fan-out, a replay, a test).
pub(crate) fn insert(
    tx: &mut WriteTx<'_>,
    subscription_id: &str,
    planned: &[Planned],
) -> Result<(), StoreError> {
    let now = tx.now();
    for chunk in planned.chunks(500) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|p| {
                (
                    event_deliveries::subscription_id.eq(subscription_id),
                    event_deliveries::event_seq.eq(p.event_seq),
                    event_deliveries::resource_key.eq(&p.resource_key),
                    event_deliveries::state.eq(PENDING),
                    event_deliveries::attempts.eq(0),
                    event_deliveries::next_attempt_at.eq(now),
                    event_deliveries::created_at.eq(now),
                )
            })
            .collect();
        insert_rows!(tx, event_deliveries::table, rows);
    }
    Ok(())
}

/// [`insert`] in a transaction of its own.
pub fn add(db: &Db, subscription_id: &str, planned: &[Planned]) -> Result<(), StoreError> {
    db.write(|tx| insert(tx, subscription_id, planned))
}

/// Up to `limit` of a subscription's pending deliveries with their events, oldest first.
pub fn pending(
    conn: &mut DbConnection,
    subscription_id: &str,
    limit: i64,
) -> Result<Vec<(StoredDelivery, StoredEvent)>, StoreError> {
    Ok(event_deliveries::table
        .inner_join(events::table.on(events::seq.eq(event_deliveries::event_seq)))
        .filter(event_deliveries::subscription_id.eq(subscription_id))
        .filter(event_deliveries::state.eq(PENDING))
        .order(event_deliveries::id.asc())
        .limit(limit)
        .select((StoredDelivery::as_select(), StoredEvent::as_select()))
        .load(conn)?)
}

/// What became of one attempt, and of its delivery.
#[derive(Debug, Clone)]
pub struct Attempted {
    pub delivery_id: i64,
    pub at: Micros,
    pub status: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub next: Next,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Delivered,
    RetryAt(Micros),
    Failed,
}

/// Records attempts and their deliveries' new states; `disable` turns the subscription off.
pub fn record(
    db: &Db,
    subscription_id: &str,
    attempted: &[Attempted],
    disable: Option<&str>,
) -> Result<(), StoreError> {
    db.write(|tx| {
        let now = tx.now();
        // Most attempts succeed: those are one statement per status, the rest one each.
        let mut delivered: std::collections::BTreeMap<Option<i32>, Vec<i64>> = Default::default();
        for a in attempted {
            let (state, due, finished) = match a.next {
                Next::Delivered => {
                    delivered.entry(a.status).or_default().push(a.delivery_id);
                    continue;
                }
                Next::RetryAt(at) => (PENDING, at, None),
                Next::Failed => (FAILED, now, Some(now)),
            };
            diesel::update(
                event_deliveries::table
                    .find(a.delivery_id)
                    .filter(event_deliveries::state.eq(PENDING)),
            )
            .set((
                event_deliveries::state.eq(state),
                event_deliveries::attempts.eq(event_deliveries::attempts + 1),
                event_deliveries::next_attempt_at.eq(due),
                event_deliveries::finished_at.eq(finished),
                event_deliveries::last_status.eq(a.status),
                event_deliveries::last_error.eq(&a.error),
            ))
            .execute(tx.conn())?;
        }
        for (status, ids) in &delivered {
            diesel::update(
                event_deliveries::table
                    .filter(event_deliveries::id.eq_any(ids))
                    .filter(event_deliveries::state.eq(PENDING)),
            )
            .set((
                event_deliveries::state.eq(DELIVERED),
                event_deliveries::attempts.eq(event_deliveries::attempts + 1),
                event_deliveries::next_attempt_at.eq(now),
                event_deliveries::finished_at.eq(now),
                event_deliveries::last_status.eq(*status),
                event_deliveries::last_error.eq(None::<String>),
            ))
            .execute(tx.conn())?;
        }
        for chunk in attempted.chunks(500) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|a| {
                    (
                        event_delivery_attempts::delivery_id.eq(a.delivery_id),
                        event_delivery_attempts::at.eq(a.at),
                        event_delivery_attempts::status.eq(a.status),
                        event_delivery_attempts::latency_ms.eq(a.latency_ms),
                        event_delivery_attempts::error.eq(&a.error),
                    )
                })
                .collect();
            insert_rows!(tx, event_delivery_attempts::table, rows);
        }
        if let Some(reason) = disable {
            event_subscriptions::disable(tx, subscription_id, reason)?;
        }
        Ok(())
    })
}

/// Ends pending deliveries of a subscription whose events have these ids (`acknowledged`:
/// delivered, else failed with `error`); returns how many ended.
pub fn settle_by_event(
    db: &Db,
    subscription_id: &str,
    event_ids: &[String],
    outcome: Result<(), &str>,
) -> Result<usize, StoreError> {
    if event_ids.is_empty() {
        return Ok(0);
    }
    db.write(|tx| {
        let now = tx.now();
        let seqs = events::table
            .filter(events::id.eq_any(event_ids))
            .select(events::seq);
        let (state, error) = match outcome {
            Ok(()) => (DELIVERED, None),
            Err(e) => (FAILED, Some(e)),
        };
        Ok(diesel::update(
            event_deliveries::table
                .filter(event_deliveries::subscription_id.eq(subscription_id))
                .filter(event_deliveries::state.eq(PENDING))
                .filter(event_deliveries::event_seq.eq_any(seqs)),
        )
        .set((
            event_deliveries::state.eq(state),
            event_deliveries::finished_at.eq(now),
            event_deliveries::last_error.eq(error),
        ))
        .execute(tx.conn())?)
    })
}

/// Fails a subscription's pending deliveries created before `before` (too old to send).
pub fn expire(
    db: &Db,
    subscription_id: &str,
    before: Micros,
    reason: &str,
) -> Result<usize, StoreError> {
    db.write(|tx| {
        let now = tx.now();
        Ok(diesel::update(
            event_deliveries::table
                .filter(event_deliveries::subscription_id.eq(subscription_id))
                .filter(event_deliveries::state.eq(PENDING))
                .filter(event_deliveries::created_at.lt(before)),
        )
        .set((
            event_deliveries::state.eq(FAILED),
            event_deliveries::finished_at.eq(now),
            event_deliveries::last_error.eq(reason),
        ))
        .execute(tx.conn())?)
    })
}

/// Which deliveries a listing shows.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub state: Option<String>,
    /// Only ids below this (the next page).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// A subscription's deliveries, newest first, with their events.
pub fn list(
    conn: &mut DbConnection,
    subscription_id: &str,
    filter: &DeliveryFilter,
) -> Result<Vec<(StoredDelivery, StoredEvent)>, StoreError> {
    let mut query = event_deliveries::table
        .inner_join(events::table.on(events::seq.eq(event_deliveries::event_seq)))
        .filter(event_deliveries::subscription_id.eq(subscription_id))
        .into_boxed();
    if let Some(state) = &filter.state {
        query = query.filter(event_deliveries::state.eq(state.clone()));
    }
    if let Some(before) = filter.before_id {
        query = query.filter(event_deliveries::id.lt(before));
    }
    Ok(query
        .order(event_deliveries::id.desc())
        .limit(filter.limit)
        .select((StoredDelivery::as_select(), StoredEvent::as_select()))
        .load(conn)?)
}

/// One delivery of a subscription, with its event and attempts.
pub fn find(
    conn: &mut DbConnection,
    subscription_id: &str,
    id: i64,
) -> Result<Option<(StoredDelivery, StoredEvent, Vec<StoredAttempt>)>, StoreError> {
    let found: Option<(StoredDelivery, StoredEvent)> = event_deliveries::table
        .inner_join(events::table.on(events::seq.eq(event_deliveries::event_seq)))
        .filter(event_deliveries::subscription_id.eq(subscription_id))
        .filter(event_deliveries::id.eq(id))
        .select((StoredDelivery::as_select(), StoredEvent::as_select()))
        .first(conn)
        .optional()?;
    let Some((delivery, event)) = found else {
        return Ok(None);
    };
    let attempts = event_delivery_attempts::table
        .filter(event_delivery_attempts::delivery_id.eq(id))
        .order(event_delivery_attempts::id.asc())
        .select(StoredAttempt::as_select())
        .load(conn)?;
    Ok(Some((delivery, event, attempts)))
}

/// The lowest event number any pending delivery still needs.
pub fn lowest_pending_event(conn: &mut DbConnection) -> Result<Option<i64>, StoreError> {
    Ok(event_deliveries::table
        .filter(event_deliveries::state.eq(PENDING))
        .select(diesel::dsl::min(event_deliveries::event_seq))
        .first(conn)?)
}

/// Deletes deliveries that ended before `before`, with their attempts.
pub fn prune_finished(db: &Db, before: Micros) -> Result<usize, StoreError> {
    db.write(|tx| {
        let old: Vec<i64> = event_deliveries::table
            .filter(event_deliveries::state.ne(PENDING))
            .filter(event_deliveries::finished_at.lt(before))
            .select(event_deliveries::id)
            .limit(50_000)
            .load(tx.conn())?;
        for chunk in old.chunks(super::BIND_CHUNK) {
            diesel::delete(
                event_delivery_attempts::table
                    .filter(event_delivery_attempts::delivery_id.eq_any(chunk)),
            )
            .execute(tx.conn())?;
            diesel::delete(event_deliveries::table.filter(event_deliveries::id.eq_any(chunk)))
                .execute(tx.conn())?;
        }
        Ok(old.len())
    })
}
