//! Event subscriptions: who receives which events, and how far each has been fanned out.

use diesel::prelude::*;

use super::schema::{event_deliveries, event_delivery_attempts, event_subscriptions};
use super::{events, Db, DbConnection, Micros, StoreError, WriteTx};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = event_subscriptions)]
pub struct StoredSubscription {
    pub id: String,
    pub name: String,
    /// `webhook`, `set_push` or `set_poll`.
    pub format: String,
    pub url: Option<String>,
    /// JSON list of event-type patterns.
    pub event_types: String,
    /// JSON list of target names, or none: every target.
    pub targets: Option<String>,
    /// JSON list of resource types, or none: every type.
    pub resource_types: Option<String>,
    /// Sealed JSON list of secrets.
    pub secrets: String,
    pub audience: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub max_age_seconds: i64,
    pub position: i64,
    pub from_config: bool,
    pub sender: Option<String>,
    pub sender_until: Option<Micros>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// A subscription's settings, as written.
#[derive(Debug, Clone, AsChangeset, Insertable)]
#[diesel(table_name = event_subscriptions, treat_none_as_null = true)]
pub struct SubscriptionFields {
    pub name: String,
    pub format: String,
    pub url: Option<String>,
    pub event_types: String,
    pub targets: Option<String>,
    pub resource_types: Option<String>,
    pub secrets: String,
    pub audience: Option<String>,
    pub enabled: bool,
    pub max_age_seconds: i64,
    pub from_config: bool,
}

pub fn all(conn: &mut DbConnection) -> Result<Vec<StoredSubscription>, StoreError> {
    Ok(event_subscriptions::table
        .order(event_subscriptions::name.asc())
        .select(StoredSubscription::as_select())
        .load(conn)?)
}

/// The subscription with this id or name.
pub fn find(conn: &mut DbConnection, key: &str) -> Result<Option<StoredSubscription>, StoreError> {
    Ok(event_subscriptions::table
        .filter(
            event_subscriptions::id
                .eq(key)
                .or(event_subscriptions::name.eq(key)),
        )
        .select(StoredSubscription::as_select())
        .first(conn)
        .optional()?)
}

/// Stores a new subscription, starting after the latest event; `None` when the name is taken.
pub fn insert(
    db: &Db,
    fields: &SubscriptionFields,
) -> Result<Option<StoredSubscription>, StoreError> {
    db.write(|tx| {
        if find(tx.conn(), &fields.name)?.is_some() {
            return Ok(None);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let position = events::last_seq(tx.conn())?;
        let now = tx.now();
        diesel::insert_into(event_subscriptions::table)
            .values((
                fields,
                event_subscriptions::id.eq(&id),
                event_subscriptions::position.eq(position),
                event_subscriptions::created_at.eq(now),
                event_subscriptions::updated_at.eq(now),
            ))
            .execute(tx.conn())?;
        find(tx.conn(), &id)
    })
}

/// Writes new settings over a subscription; re-enabling clears why it was disabled.
pub fn update(
    db: &Db,
    id: &str,
    fields: &SubscriptionFields,
) -> Result<Option<StoredSubscription>, StoreError> {
    db.write(|tx| {
        let now = tx.now();
        let changed = diesel::update(event_subscriptions::table.find(id))
            .set((fields, event_subscriptions::updated_at.eq(now)))
            .execute(tx.conn())?;
        if fields.enabled {
            diesel::update(event_subscriptions::table.find(id))
                .set(event_subscriptions::disabled_reason.eq(None::<String>))
                .execute(tx.conn())?;
        }
        if changed == 0 {
            return Ok(None);
        }
        find(tx.conn(), id)
    })
}

/// Deletes a subscription with its deliveries and their attempts.
pub fn delete(db: &Db, id: &str) -> Result<bool, StoreError> {
    db.write(|tx| {
        let deliveries: Vec<i64> = event_deliveries::table
            .filter(event_deliveries::subscription_id.eq(id))
            .select(event_deliveries::id)
            .load(tx.conn())?;
        for chunk in deliveries.chunks(super::BIND_CHUNK) {
            diesel::delete(
                event_delivery_attempts::table
                    .filter(event_delivery_attempts::delivery_id.eq_any(chunk)),
            )
            .execute(tx.conn())?;
        }
        diesel::delete(event_deliveries::table.filter(event_deliveries::subscription_id.eq(id)))
            .execute(tx.conn())?;
        let gone = diesel::delete(event_subscriptions::table.find(id)).execute(tx.conn())?;
        Ok(gone > 0)
    })
}

/// Turns a subscription off, saying why (a receiver answered `410 Gone`).
pub(super) fn disable(tx: &mut WriteTx<'_>, id: &str, reason: &str) -> Result<(), StoreError> {
    let now = tx.now();
    diesel::update(event_subscriptions::table.find(id))
        .set((
            event_subscriptions::enabled.eq(false),
            event_subscriptions::disabled_reason.eq(reason),
            event_subscriptions::updated_at.eq(now),
        ))
        .execute(tx.conn())?;
    Ok(())
}

/// Moves a subscription's fan-out position from `from` to `to`, if it is still at `from`.
pub(super) fn advance(
    tx: &mut WriteTx<'_>,
    id: &str,
    from: i64,
    to: i64,
) -> Result<bool, StoreError> {
    let moved = diesel::update(
        event_subscriptions::table
            .find(id)
            .filter(event_subscriptions::position.eq(from)),
    )
    .set(event_subscriptions::position.eq(to))
    .execute(tx.conn())?;
    Ok(moved == 1)
}

/// Takes (or keeps) the right to send a subscription's deliveries until `until`: one instance
/// at a time, so deliveries of one resource leave in order.
pub fn claim_sender(db: &Db, id: &str, owner: &str, until: Micros) -> Result<bool, StoreError> {
    db.write(|tx| {
        let now = tx.now();
        let taken = diesel::update(
            event_subscriptions::table.find(id).filter(
                event_subscriptions::sender
                    .is_null()
                    .or(event_subscriptions::sender.eq(owner))
                    .or(event_subscriptions::sender_until.lt(now)),
            ),
        )
        .set((
            event_subscriptions::sender.eq(owner),
            event_subscriptions::sender_until.eq(until),
        ))
        .execute(tx.conn())?;
        Ok(taken == 1)
    })
}

/// Gives back a subscription's sending (a stopping instance).
pub fn release_sender(db: &Db, id: &str, owner: &str) -> Result<(), StoreError> {
    db.write(|tx| {
        diesel::update(
            event_subscriptions::table
                .find(id)
                .filter(event_subscriptions::sender.eq(owner)),
        )
        .set((
            event_subscriptions::sender.eq(None::<String>),
            event_subscriptions::sender_until.eq(None::<Micros>),
        ))
        .execute(tx.conn())?;
        Ok(())
    })
}

/// The lowest position of any subscription (events at or below it are fanned out).
pub fn lowest_position(conn: &mut DbConnection) -> Result<Option<i64>, StoreError> {
    Ok(event_subscriptions::table
        .select(diesel::dsl::min(event_subscriptions::position))
        .first(conn)?)
}
