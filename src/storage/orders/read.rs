//! Reading orders: one, a resource's, a target's counts and health, a filtered list.

use std::collections::HashMap;

use diesel::prelude::*;

use super::kinds::OrderState;
use super::{Attempt, Order, Transition};
use crate::storage::schema::{order_attempts, order_transitions, orders};
use crate::storage::{order_tallies, DbConnection, Micros, StoreError, WriteTx};

pub fn find(conn: &mut DbConnection, id: i64) -> Result<Option<Order>, StoreError> {
    Ok(orders::table
        .find(id)
        .select(Order::as_select())
        .first(conn)
        .optional()?)
}

pub fn attempts_of(conn: &mut DbConnection, id: i64) -> Result<Vec<Attempt>, StoreError> {
    Ok(order_attempts::table
        .filter(order_attempts::order_id.eq(id))
        .order(order_attempts::id.asc())
        .select(Attempt::as_select())
        .load(conn)?)
}

pub fn transitions_of(conn: &mut DbConnection, id: i64) -> Result<Vec<Transition>, StoreError> {
    Ok(order_transitions::table
        .filter(order_transitions::order_id.eq(id))
        .order(order_transitions::id.asc())
        .select(Transition::as_select())
        .load(conn)?)
}

/// Orders of one resource on every target, oldest first.
pub fn of_resource(
    conn: &mut DbConnection,
    resource_type: &str,
    resource_id: &str,
) -> Result<Vec<Order>, StoreError> {
    Ok(orders::table
        .filter(orders::resource_type.eq(resource_type))
        .filter(orders::resource_id.eq(resource_id))
        .order(orders::id.asc())
        .select(Order::as_select())
        .load(conn)?)
}

/// The open orders of one resource on one target, oldest first.
pub fn open_of(
    conn: &mut DbConnection,
    target: &str,
    resource_type: &str,
    resource_id: &str,
) -> Result<Vec<Order>, StoreError> {
    Ok(orders::table
        .filter(orders::target.eq(target))
        .filter(orders::resource_type.eq(resource_type))
        .filter(orders::resource_id.eq(resource_id))
        .filter(orders::state.eq_any(OrderState::OPEN.map(OrderState::as_str)))
        .order(orders::id.asc())
        .select(Order::as_select())
        .load(conn)?)
}

/// Orders per state for one target.
pub fn counts(conn: &mut DbConnection, target: &str) -> Result<HashMap<String, i64>, StoreError> {
    let rows: Vec<(String, i64)> = orders::table
        .filter(orders::target.eq(target))
        .group_by(orders::state)
        .select((orders::state, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// Whether any of the target's orders is in one of `states`: an index seek, however many
/// there are (a watcher waiting for a backlog to drain asks this often).
pub fn any_in(
    conn: &mut DbConnection,
    target: &str,
    states: &[OrderState],
) -> Result<bool, StoreError> {
    let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    Ok(diesel::select(diesel::dsl::exists(
        orders::table
            .filter(orders::target.eq(target))
            .filter(orders::state.eq_any(states)),
    ))
    .get_result(conn)?)
}

/// Whether `resource` has an order on `target` still on its way, read under row locks on
/// PostgreSQL.
pub(super) fn has_open_order(
    tx: &mut WriteTx<'_>,
    target: &str,
    resource: &str,
) -> Result<bool, StoreError> {
    let query = orders::table
        .filter(orders::target.eq(target))
        .filter(orders::resource_id.eq(resource))
        .select((orders::id, orders::state));
    let rows: Vec<(i64, String)> = match tx.conn() {
        DbConnection::Postgresql(pg) => query.for_update().load(pg)?,
        DbConnection::Sqlite(lite) => query.load(lite)?,
    };
    Ok(rows
        .iter()
        .any(|(_, state)| OrderState::parse(state).is_some_and(OrderState::is_open)))
}

/// The newest order of each resource, by (resource type, id): its id and state.
pub type LatestOrders = HashMap<(String, String), (i64, OrderState)>;

/// The newest order on `target` of each (resource type, id) asked for, with its state.
pub fn latest_orders(
    conn: &mut DbConnection,
    target: &str,
    resources: &[(String, String)],
) -> Result<LatestOrders, StoreError> {
    let mut latest = LatestOrders::new();
    for kind in ["User", "Group"] {
        let ids: Vec<&str> = resources
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, id)| id.as_str())
            .collect();
        for chunk in ids.chunks(500) {
            let rows: Vec<(String, i64, String)> = orders::table
                .filter(orders::target.eq(target))
                .filter(orders::resource_type.eq(kind))
                .filter(orders::resource_id.eq_any(chunk))
                .select((orders::resource_id, orders::id, orders::state))
                .load(conn)?;
            for (id, order_id, state) in rows {
                let Some(state) = OrderState::parse(&state) else {
                    continue;
                };
                let slot = latest
                    .entry((kind.to_string(), id))
                    .or_insert((order_id, state));
                if order_id > slot.0 {
                    *slot = (order_id, state);
                }
            }
        }
    }
    Ok(latest)
}

/// Filters for listing orders (the admin API).
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub state: Option<OrderState>,
    pub target: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub since: Option<Micros>,
    pub until: Option<Micros>,
    /// Keyset paging: orders with a larger id.
    pub after_id: Option<i64>,
    pub limit: i64,
}

pub fn list(conn: &mut DbConnection, filter: &OrderFilter) -> Result<Vec<Order>, StoreError> {
    let mut query = orders::table.into_boxed();
    if let Some(v) = filter.state {
        query = query.filter(orders::state.eq(v.as_str()));
    }
    if let Some(v) = &filter.target {
        query = query.filter(orders::target.eq(v.clone()));
    }
    if let Some(v) = &filter.resource_type {
        query = query.filter(orders::resource_type.eq(v.clone()));
    }
    if let Some(v) = &filter.resource_id {
        query = query.filter(orders::resource_id.eq(v.clone()));
    }
    if let Some(v) = filter.since {
        query = query.filter(orders::created_at.ge(v));
    }
    if let Some(v) = filter.until {
        query = query.filter(orders::created_at.lt(v));
    }
    if let Some(v) = filter.after_id {
        query = query.filter(orders::id.gt(v));
    }
    Ok(query
        .order(orders::id.asc())
        .limit(filter.limit)
        .select(Order::as_select())
        .load(conn)?)
}

/// A target's delivery health at a glance.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    pub counts: HashMap<String, i64>,
    pub oldest_pending_at: Option<Micros>,
    pub last_success_at: Option<Micros>,
    pub last_error: Option<(Micros, String)>,
}

/// Reads a handful of rows whatever the history: the counts and the last success come from
/// the tallies, the oldest open order from an index seek per open state (the first planned
/// of each: ids follow planning order), the last error from the orders in error.
pub fn status(conn: &mut DbConnection, target: &str) -> Result<TargetStatus, StoreError> {
    let tallies = order_tallies::of_target(conn, target)?;
    let succeeded = [OrderState::Executed.as_str(), OrderState::Verified.as_str()];
    let last_success_at = tallies
        .iter()
        .filter(|t| succeeded.contains(&t.state.as_str()))
        .filter_map(|t| t.last_entered_at)
        .max();
    let mut oldest_pending_at: Option<Micros> = None;
    for open in [
        OrderState::Pending,
        OrderState::Errored,
        OrderState::Transmitted,
    ] {
        let first: Option<Micros> = orders::table
            .filter(orders::target.eq(target))
            .filter(orders::state.eq(open.as_str()))
            .order(orders::id.asc())
            .select(orders::created_at)
            .first(conn)
            .optional()?;
        oldest_pending_at = match (oldest_pending_at, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let last_error: Option<(Micros, Option<String>)> = orders::table
        .filter(orders::target.eq(target))
        .filter(orders::last_error.is_not_null())
        .filter(orders::state.eq_any([OrderState::Error.as_str(), OrderState::Errored.as_str()]))
        .order(orders::updated_at.desc())
        .select((orders::updated_at, orders::last_error))
        .first(conn)
        .optional()?;
    Ok(TargetStatus {
        counts: tallies
            .into_iter()
            .filter(|t| t.orders != 0)
            .map(|t| (t.state, t.orders))
            .collect(),
        oldest_pending_at,
        last_success_at,
        last_error: last_error.map(|(at, e)| (at, e.unwrap_or_default())),
    })
}

/// Orders that ended well (executed, verified) or badly (errored, error) per target and minute
/// since `since`: (target, minute number since the epoch, succeeded, failed).
pub fn outcomes_per_minute(
    conn: &mut DbConnection,
    since: Micros,
) -> Result<Vec<(String, i64, i64, i64)>, StoreError> {
    use diesel::sql_types::{BigInt, Text};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        target: String,
        #[diesel(sql_type = BigInt)]
        minute: i64,
        #[diesel(sql_type = Text)]
        state: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    const SQL: &str = "SELECT o.target AS target, t.at / 60000000 AS minute, t.state AS state,
            COUNT(*) AS n
        FROM order_transitions t JOIN orders o ON o.id = t.order_id
        WHERE t.at >= {1} AND t.state IN ('executed', 'verified', 'errored', 'error')
        GROUP BY o.target, t.at / 60000000, t.state";
    let rows: Vec<Row> = match conn {
        DbConnection::Postgresql(pg) => diesel::sql_query(SQL.replace("{1}", "$1"))
            .bind::<BigInt, _>(since)
            .load(pg)?,
        DbConnection::Sqlite(lite) => diesel::sql_query(SQL.replace("{1}", "?1"))
            .bind::<BigInt, _>(since)
            .load(lite)?,
    };
    let mut out: HashMap<(String, i64), (i64, i64)> = HashMap::new();
    for row in rows {
        // An order verified after it executed counts once.
        let slot = out.entry((row.target, row.minute)).or_default();
        match row.state.as_str() {
            "executed" => slot.0 += row.n,
            "errored" | "error" => slot.1 += row.n,
            _ => {}
        }
    }
    Ok(out
        .into_iter()
        .map(|((target, minute), (ok, bad))| (target, minute, ok, bad))
        .collect())
}
