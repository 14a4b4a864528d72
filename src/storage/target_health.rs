//! Delivery health per target (`target_health`), shared by every instance on the database: the
//! workers write it, every worker honours it, and the admin API shows it.

use diesel::prelude::*;

use super::orders::OrderState;
use super::schema::{orders, target_health};
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
        change(&mut row);
        diesel::update(target_health::table.find(target))
            .set((
                target_health::consecutive_failures.eq(row.consecutive_failures),
                target_health::quarantined_since.eq(row.quarantined_since),
                target_health::next_probe_at.eq(row.next_probe_at),
                target_health::probe_delay.eq(row.probe_delay),
                target_health::updated_at.eq(now),
            ))
            .execute(tx.conn())?;
        row.updated_at = now;
        Ok(row)
    })
}

/// Takes the due probe of a quarantined target: moves its next probe to `next` if it is still
/// at `seen`. Only one instance wins; the others see the new time.
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
        Ok(updated > 0)
    })
}

/// Whether the target has an order waiting that a worker could take now (a probe needs one).
pub fn has_due_orders(
    conn: &mut DbConnection,
    target: &str,
    now: Micros,
) -> Result<bool, StoreError> {
    let due: Option<i64> = orders::table
        .filter(orders::target.eq(target))
        .filter(orders::state.eq_any([OrderState::Pending.as_str(), OrderState::Errored.as_str()]))
        .filter(orders::next_attempt_at.le(now))
        .select(orders::id)
        .first(conn)
        .optional()?;
    Ok(due.is_some())
}
