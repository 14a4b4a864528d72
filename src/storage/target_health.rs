//! Delivery health per target (`target_health`), shared by every instance on the database: the
//! workers write it, every worker honours it, and the admin API shows it.

use diesel::prelude::*;

use super::events::{self, EventType, NewEvent};
use super::schema::target_health;
use super::{Db, DbConnection, Micros, StoreError};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = target_health)]
pub struct HealthRow {
    pub target: String,
    pub consecutive_failures: i32,
    pub quarantined_since: Option<Micros>,
    pub next_probe_at: Option<Micros>,
    /// Microseconds between probes while quarantined.
    pub probe_delay: Micros,
    pub updated_at: Micros,
    /// When the current run of failures began.
    pub failing_since: Option<Micros>,
}

pub fn all(conn: &mut DbConnection) -> Result<Vec<HealthRow>, StoreError> {
    Ok(target_health::table
        .select(HealthRow::as_select())
        .load(conn)?)
}

pub fn find(conn: &mut DbConnection, target: &str) -> Result<Option<HealthRow>, StoreError> {
    Ok(target_health::table
        .find(target)
        .select(HealthRow::as_select())
        .first(conn)
        .optional()?)
}

/// Applies `change` to the target's row (created healthy when missing) under a row lock, so
/// instances recording outcomes at the same time do not lose each other's.
pub fn update(
    db: &Db,
    target: &str,
    change: impl FnOnce(&mut HealthRow),
) -> Result<HealthRow, StoreError> {
    db.write(|tx| {
        let now = tx.now();
        let healthy = (
            target_health::target.eq(target),
            target_health::consecutive_failures.eq(0),
            target_health::quarantined_since.eq(None::<Micros>),
            target_health::next_probe_at.eq(None::<Micros>),
            target_health::probe_delay.eq(0),
            target_health::updated_at.eq(now),
        );
        let mut row = match tx.conn() {
            DbConnection::Postgresql(pg) => {
                diesel::insert_into(target_health::table)
                    .values(healthy)
                    .on_conflict(target_health::target)
                    .do_nothing()
                    .execute(pg)?;
                target_health::table
                    .find(target)
                    .select(HealthRow::as_select())
                    .for_update()
                    .first(pg)?
            }
            DbConnection::Sqlite(lite) => {
                diesel::insert_or_ignore_into(target_health::table)
                    .values(healthy)
                    .execute(lite)?;
                target_health::table
                    .find(target)
                    .select(HealthRow::as_select())
                    .first(lite)?
            }
        };
        let was_quarantined = row.quarantined_since.is_some();
        change(&mut row);
        let turned = match (was_quarantined, row.quarantined_since.is_some()) {
            (false, true) => Some(EventType::TargetQuarantined),
            (true, false) => Some(EventType::TargetRecovered),
            _ => None,
        };
        if let Some(event_type) = turned {
            let revision: i64 = diesel::update(target_health::table.find(target))
                .set(target_health::revision.eq(target_health::revision + 1))
                .returning(target_health::revision)
                .get_result(tx.conn())?;
            let event = NewEvent {
                event_type,
                resource_type: "Target".into(),
                resource_id: target.to_string(),
                resource_seq: revision,
                target: Some(target.to_string()),
                actor: "scimgate".into(),
                data: serde_json::json!({
                    "target": target,
                    "consecutiveFailures": row.consecutive_failures,
                }),
            };
            events::append(tx, &[event])?;
        }
        diesel::update(target_health::table.find(target))
            .set((
                target_health::consecutive_failures.eq(row.consecutive_failures),
                target_health::quarantined_since.eq(row.quarantined_since),
                target_health::next_probe_at.eq(row.next_probe_at),
                target_health::probe_delay.eq(row.probe_delay),
                target_health::failing_since.eq(row.failing_since),
                target_health::updated_at.eq(now),
            ))
            .execute(tx.conn())?;
        row.updated_at = now;
        Ok(row)
    })
}

/// Takes the due probe of a quarantined target: moves its next probe to `next` if it is still
/// at `seen`, and makes the target's oldest open order due now, so the probe has an order to
/// send even while every order waits out its backoff. Only one instance wins; the others see
/// the new time.
pub fn claim_probe(db: &Db, target: &str, seen: Micros, next: Micros) -> Result<bool, StoreError> {
    db.write(|tx| {
        let now = tx.now();
        let updated = diesel::update(
            target_health::table
                .filter(target_health::target.eq(target))
                .filter(target_health::next_probe_at.eq(seen)),
        )
        .set((
            target_health::next_probe_at.eq(next),
            target_health::updated_at.eq(now),
        ))
        .execute(tx.conn())?;
        if updated == 0 {
            return Ok(false);
        }
        super::orders::ready_for_probe(tx, target)?;
        Ok(true)
    })
}
