//! Provisioning orders: one per (change, target), their state machine, attempts and
//! transitions, and identity links between local resources and remote objects.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::change_log::{self, ChangeEntry};
use super::schema::{identity_links, order_attempts, order_transitions, orders, planner_position};
use super::{Db, DbConnection, Micros, StoreError, WriteTx, BIND_CHUNK};

/// The states of RFC-less provisioning, as operators know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderState {
    /// Ready, not yet taken by a worker.
    Pending,
    /// A worker sent it and has no answer yet.
    Transmitted,
    /// The target said OK.
    Executed,
    /// Read back from the target and it matches.
    Verified,
    /// An attempt failed; it will be retried at `next_attempt_at`.
    Errored,
    /// Given up: permanent failure or attempts exhausted.
    Error,
    /// Held for review.
    AwaitingApproval,
    /// Superseded or cancelled, never sent.
    Inactive,
}

impl OrderState {
    pub const ALL: [OrderState; 8] = [
        OrderState::Pending,
        OrderState::Transmitted,
        OrderState::Executed,
        OrderState::Verified,
        OrderState::Errored,
        OrderState::Error,
        OrderState::AwaitingApproval,
        OrderState::Inactive,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            OrderState::Pending => "pending",
            OrderState::Transmitted => "transmitted",
            OrderState::Executed => "executed",
            OrderState::Verified => "verified",
            OrderState::Errored => "errored",
            OrderState::Error => "error",
            OrderState::AwaitingApproval => "awaiting_approval",
            OrderState::Inactive => "inactive",
        }
    }

    pub fn parse(s: &str) -> Option<OrderState> {
        OrderState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// States of an order still on its way to the target.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            OrderState::Pending
                | OrderState::Transmitted
                | OrderState::Errored
                | OrderState::AwaitingApproval
        )
    }

    /// States after which nothing more happens to an order without an operator.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderState::Executed | OrderState::Verified | OrderState::Error | OrderState::Inactive
        )
    }
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = orders)]
pub struct Order {
    pub id: i64,
    pub target: String,
    pub resource_type: String,
    pub resource_id: String,
    pub change_seq: i64,
    pub operation: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Micros,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Micros>,
    pub last_error: Option<String>,
    pub remote_id: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
    /// `change` (the change log), `sync` (a full sync's correction) or `on_demand`.
    pub origin: String,
    pub sync_id: Option<i64>,
    /// Why the order awaits approval.
    pub held_reason: Option<String>,
    /// Approved by an operator: not held for review again.
    pub approved: bool,
    pub decided_by: Option<String>,
    pub decided_at: Option<Micros>,
    pub decision_comment: Option<String>,
    /// A deferred group order: the member whose order it waits for.
    pub waiting_for: Option<String>,
    /// What the order says beside its state (members left out of a group, and why).
    pub note: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = order_attempts)]
pub struct Attempt {
    pub id: i64,
    pub order_id: i64,
    pub started_at: Micros,
    pub duration_ms: i64,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub response_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = order_transitions)]
pub struct Transition {
    pub id: i64,
    pub order_id: i64,
    pub state: String,
    pub at: Micros,
}

/// An order the planner wants.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub target: String,
    pub resource_type: String,
    pub resource_id: String,
    pub operation: String,
    /// Set when the order must wait for approval (the mass-delete guard): why.
    pub held_reason: Option<String>,
}

/// Longest error text kept per attempt.
const MAX_ERROR_LEN: usize = 2_000;

fn bounded(text: &str) -> String {
    if text.len() <= MAX_ERROR_LEN {
        return text.to_string();
    }
    let mut end = MAX_ERROR_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn transition(tx: &mut WriteTx<'_>, order_id: i64, state: OrderState) -> Result<(), StoreError> {
    let now = tx.now();
    diesel::insert_into(order_transitions::table)
        .values((
            order_transitions::order_id.eq(order_id),
            order_transitions::state.eq(state.as_str()),
            order_transitions::at.eq(now),
        ))
        .execute(tx.conn())?;
    Ok(())
}

/// Records several transitions in one statement.
fn transitions(tx: &mut WriteTx<'_>, rows: &[(i64, OrderState)]) -> Result<(), StoreError> {
    let now = tx.now();
    for chunk in rows.chunks(500) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(id, state)| {
                (
                    order_transitions::order_id.eq(*id),
                    order_transitions::state.eq(state.as_str()),
                    order_transitions::at.eq(now),
                )
            })
            .collect();
        // Multi-row INSERT exists on both backends but not on diesel's MultiBackend.
        match tx.conn() {
            DbConnection::Sqlite(c) => diesel::insert_into(order_transitions::table)
                .values(values)
                .execute(c)?,
            DbConnection::Postgresql(c) => diesel::insert_into(order_transitions::table)
                .values(values)
                .execute(c)?,
        };
    }
    Ok(())
}

/// Reads the change log after the planner's position and turns each entry into orders, in one
/// transaction with advancing the position: a crash loses no change and plans none twice.
/// Returns how many change-log entries were planned.
pub fn plan_batch<E>(
    db: &Db,
    limit: i64,
    mut plan: impl FnMut(&mut DbConnection, &ChangeEntry) -> Result<Vec<NewOrder>, E>,
) -> Result<usize, E>
where
    E: From<StoreError>,
{
    db.write(|tx| {
        // On PostgreSQL the row lock makes concurrent planners (several instances) take turns.
        let position: i64 = match tx.conn() {
            DbConnection::Postgresql(pg) => planner_position::table
                .filter(planner_position::name.eq("planner"))
                .select(planner_position::last_seq)
                .for_update()
                .first(pg)
                .map_err(StoreError::from)?,
            DbConnection::Sqlite(_) => planner_position::table
                .filter(planner_position::name.eq("planner"))
                .select(planner_position::last_seq)
                .first(tx.conn())
                .map_err(StoreError::from)?,
        };
        let entries = change_log::since(tx.conn(), position, limit)?;
        let Some(last) = entries.last().map(|e| e.seq) else {
            return Ok(0);
        };
        let now = tx.now();
        for entry in &entries {
            for order in plan(tx.conn(), entry)? {
                let state = if order.held_reason.is_some() {
                    OrderState::AwaitingApproval
                } else {
                    OrderState::Pending
                };
                let id: i64 = diesel::insert_into(orders::table)
                    .values((
                        orders::target.eq(&order.target),
                        orders::resource_type.eq(&order.resource_type),
                        orders::resource_id.eq(&order.resource_id),
                        orders::change_seq.eq(entry.seq),
                        orders::operation.eq(&order.operation),
                        orders::held_reason.eq(&order.held_reason),
                        orders::state.eq(state.as_str()),
                        orders::attempts.eq(0),
                        orders::next_attempt_at.eq(now),
                        orders::created_at.eq(now),
                        orders::updated_at.eq(now),
                    ))
                    .returning(orders::id)
                    .get_result(tx.conn())
                    .map_err(StoreError::from)?;
                transition(tx, id, state)?;
            }
        }
        diesel::update(planner_position::table.filter(planner_position::name.eq("planner")))
            .set(planner_position::last_seq.eq(last))
            .execute(tx.conn())
            .map_err(StoreError::from)?;
        Ok(entries.len())
    })
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Takes up to `limit` deliverable orders of one target for `owner`, under a lease. Only the
/// oldest unfinished order of each resource is deliverable, so one resource's orders go out in
/// change order; an order with a newer one pending behind it becomes `Inactive` (coalesced),
/// since delivery always sends the resource's current state.
pub fn claim(
    db: &Db,
    target: &str,
    owner: &str,
    lease: Micros,
    limit: i64,
) -> Result<Vec<Order>, StoreError> {
    db.write(|tx| {
        if !super::target_locks::may_deliver(tx, target)? {
            return Ok(Vec::new());
        }
        let now = tx.now();
        // One state at a time, so each scan walks the (target, state, id) index in id order
        // and stops after `limit` rows, however long the backlog.
        const HEADS: &str = "SELECT o.id AS id FROM orders o
            WHERE o.target = {1} AND o.state = {4} AND o.next_attempt_at <= {2}
              AND NOT EXISTS (SELECT 1 FROM orders p
                  WHERE p.target = o.target AND p.resource_type = o.resource_type
                    AND p.resource_id = o.resource_id AND p.id < o.id
                    AND p.state IN ('pending', 'transmitted', 'errored', 'awaiting_approval'))
            ORDER BY o.id LIMIT {3}";
        let mut heads: Vec<IdRow> = Vec::new();
        for state in [OrderState::Pending, OrderState::Errored] {
            let found: Vec<IdRow> = match tx.conn() {
                DbConnection::Postgresql(pg) => {
                    let sql = HEADS
                        .replace("{1}", "$1")
                        .replace("{2}", "$2")
                        .replace("{3}", "$3")
                        .replace("{4}", "$4")
                        + " FOR UPDATE SKIP LOCKED";
                    diesel::sql_query(sql)
                        .bind::<Text, _>(target)
                        .bind::<BigInt, _>(now)
                        .bind::<BigInt, _>(limit)
                        .bind::<Text, _>(state.as_str())
                        .load(pg)?
                }
                DbConnection::Sqlite(lite) => {
                    // SQLite numbers `?` by position: bind in text order (target, state, now, limit).
                    let sql = HEADS
                        .replace("{1}", "?1")
                        .replace("{2}", "?3")
                        .replace("{3}", "?4")
                        .replace("{4}", "?2");
                    diesel::sql_query(sql)
                        .bind::<Text, _>(target)
                        .bind::<Text, _>(state.as_str())
                        .bind::<BigInt, _>(now)
                        .bind::<BigInt, _>(limit)
                        .load(lite)?
                }
            };
            heads.extend(found);
        }
        heads.sort_by_key(|h| h.id);
        heads.truncate(limit.max(0) as usize);
        let ids: Vec<i64> = heads.iter().map(|h| h.id).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let found: Vec<Order> = orders::table
            .filter(orders::id.eq_any(&ids))
            .order(orders::id)
            .select(Order::as_select())
            .load(tx.conn())?;
        // The newest pending order of each of these resources: an older head is superseded.
        let resource_ids: Vec<&str> = found.iter().map(|o| o.resource_id.as_str()).collect();
        let pending: Vec<(String, String, i64)> = orders::table
            .filter(orders::target.eq(target))
            .filter(orders::state.eq(OrderState::Pending.as_str()))
            .filter(orders::resource_id.eq_any(&resource_ids))
            .select((orders::resource_type, orders::resource_id, orders::id))
            .load(tx.conn())?;
        let mut newest: HashMap<(&str, &str), i64> = HashMap::new();
        for (kind, id, order_id) in &pending {
            let slot = newest
                .entry((kind.as_str(), id.as_str()))
                .or_insert(*order_id);
            *slot = (*slot).max(*order_id);
        }
        let (superseded, claimable): (Vec<Order>, Vec<Order>) = found.into_iter().partition(|o| {
            newest
                .get(&(o.resource_type.as_str(), o.resource_id.as_str()))
                .is_some_and(|n| *n > o.id)
        });
        let now = tx.now();
        if !superseded.is_empty() {
            let ids: Vec<i64> = superseded.iter().map(|o| o.id).collect();
            diesel::update(orders::table.filter(orders::id.eq_any(&ids)))
                .set((
                    orders::state.eq(OrderState::Inactive.as_str()),
                    orders::last_error.eq(Some("superseded by a newer change")),
                    orders::lease_owner.eq(None::<String>),
                    orders::lease_until.eq(None::<i64>),
                    orders::updated_at.eq(now),
                ))
                .execute(tx.conn())?;
            let rows: Vec<_> = ids.iter().map(|id| (*id, OrderState::Inactive)).collect();
            transitions(tx, &rows)?;
        }
        if claimable.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = claimable.iter().map(|o| o.id).collect();
        diesel::update(orders::table.filter(orders::id.eq_any(&ids)))
            .set((
                orders::state.eq(OrderState::Transmitted.as_str()),
                orders::attempts.eq(orders::attempts + 1),
                orders::lease_owner.eq(owner),
                orders::lease_until.eq(now + lease),
                orders::updated_at.eq(now),
            ))
            .execute(tx.conn())?;
        let rows: Vec<_> = ids
            .iter()
            .map(|id| (*id, OrderState::Transmitted))
            .collect();
        transitions(tx, &rows)?;
        Ok(claimable
            .into_iter()
            .map(|order| Order {
                state: OrderState::Transmitted.as_str().to_string(),
                attempts: order.attempts + 1,
                lease_owner: Some(owner.to_string()),
                lease_until: Some(now + lease),
                ..order
            })
            .collect())
    })
}

/// What one delivery attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub started_at: Micros,
    pub duration_ms: i64,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub response_id: Option<String>,
}

/// Records an attempt and moves the order on, if `owner` still holds its lease (a reclaimed
/// order's late answer must not overwrite the new holder's work). Returns whether it did.
pub fn finish(
    db: &Db,
    order: &Order,
    owner: &str,
    outcome: &Finish,
    attempt: &AttemptRecord,
) -> Result<bool, StoreError> {
    let recorded = finish_all(db, owner, &[(order, outcome, attempt)])?;
    Ok(recorded.first().copied().unwrap_or(false))
}

/// [`finish`] for several orders in one transaction (a worker's round records its outcomes
/// together); one flag per order, in order.
pub fn finish_all(
    db: &Db,
    owner: &str,
    outcomes: &[(&Order, &Finish, &AttemptRecord)],
) -> Result<Vec<bool>, StoreError> {
    let recorded: Vec<bool> = db.write(|tx| -> Result<Vec<bool>, StoreError> {
        let mut recorded = Vec::with_capacity(outcomes.len());
        let mut moved = Vec::with_capacity(outcomes.len() * 2);
        // Resources whose order ended (landed, or in error), by target: group orders deferred
        // for them go now.
        let mut ended: HashMap<&str, Vec<&str>> = HashMap::new();
        for (order, outcome, attempt) in outcomes {
            let kept = record_outcome(tx, owner, order, outcome, attempt)?;
            // A manual target's order stays transmitted while its work item is open.
            if kept && outcome.state != OrderState::Transmitted {
                moved.push((order.id, outcome.state));
                if outcome.verified {
                    moved.push((order.id, OrderState::Verified));
                }
            }
            if kept && matches!(outcome.state, OrderState::Executed | OrderState::Error) {
                ended
                    .entry(order.target.as_str())
                    .or_default()
                    .push(order.resource_id.as_str());
            }
            recorded.push(kept);
        }
        record_attempts(tx, outcomes)?;
        transitions(tx, &moved)?;
        for (target, members) in &ended {
            wake_waiting(tx, target, members)?;
        }
        Ok(recorded)
    })?;
    for ((order, outcome, _), kept) in outcomes.iter().zip(&recorded) {
        if let (true, Some(member)) = (kept, &outcome.waiting_for) {
            wake_if_landed(db, order, member)?;
        }
    }
    Ok(recorded)
}

/// A deferred order whose member landed while it was being delivered has nothing to wait for:
/// due now. Run after the deferral is committed, with the member's orders read under row
/// locks on PostgreSQL: the member's outcome, recorded concurrently, is either seen here or
/// sees the deferral (and wakes it). SQLite's writers are serialised already.
fn wake_if_landed(db: &Db, order: &Order, member: &str) -> Result<(), StoreError> {
    db.write(|tx| {
        if has_open_order(tx, &order.target, member)? {
            return Ok(());
        }
        let now = tx.now();
        diesel::update(
            orders::table
                .filter(orders::id.eq(order.id))
                .filter(orders::state.eq(OrderState::Errored.as_str())),
        )
        .set(orders::next_attempt_at.eq(now))
        .execute(tx.conn())?;
        Ok(())
    })
}

/// Every attempt is kept, whether or not the order was still this worker's.
fn record_attempts(
    tx: &mut WriteTx<'_>,
    outcomes: &[(&Order, &Finish, &AttemptRecord)],
) -> Result<(), StoreError> {
    for chunk in outcomes.chunks(200) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(order, _, attempt)| {
                (
                    order_attempts::order_id.eq(order.id),
                    order_attempts::started_at.eq(attempt.started_at),
                    order_attempts::duration_ms.eq(attempt.duration_ms),
                    order_attempts::http_status.eq(attempt.http_status),
                    order_attempts::error.eq(attempt.error.as_deref().map(bounded)),
                    order_attempts::response_id.eq(attempt.response_id.clone()),
                )
            })
            .collect();
        match tx.conn() {
            DbConnection::Sqlite(c) => diesel::insert_into(order_attempts::table)
                .values(rows)
                .execute(c)?,
            DbConnection::Postgresql(c) => diesel::insert_into(order_attempts::table)
                .values(rows)
                .execute(c)?,
        };
    }
    Ok(())
}

/// Moves one order to its outcome (straight to `Verified` when the read-back matched) and
/// records its identity-link change; `false` when the order is no longer this worker's.
fn record_outcome(
    tx: &mut WriteTx<'_>,
    owner: &str,
    order: &Order,
    outcome: &Finish,
    attempt: &AttemptRecord,
) -> Result<bool, StoreError> {
    let now = tx.now();
    let state = if outcome.verified {
        OrderState::Verified
    } else {
        outcome.state
    };
    let updated = diesel::update(
        orders::table
            .filter(orders::id.eq(order.id))
            .filter(orders::lease_owner.eq(owner))
            .filter(orders::state.eq(OrderState::Transmitted.as_str())),
    )
    .set((
        orders::state.eq(state.as_str()),
        orders::next_attempt_at.eq(outcome.next_attempt_at.unwrap_or(now)),
        orders::last_error.eq(attempt.error.as_deref().map(bounded)),
        orders::remote_id.eq(attempt.response_id.clone()),
        orders::lease_owner.eq(None::<String>),
        orders::lease_until.eq(None::<i64>),
        orders::updated_at.eq(now),
        orders::waiting_for.eq(outcome.waiting_for.as_deref()),
        orders::note.eq(outcome.note.as_deref().map(bounded)),
    ))
    .execute(tx.conn())?;
    if updated == 0 {
        return Ok(false);
    }
    if let Some(reason) = &outcome.held_reason {
        diesel::update(orders::table.find(order.id))
            .set(orders::held_reason.eq(reason))
            .execute(tx.conn())?;
    }
    if let Some(link) = &outcome.link {
        diesel::delete(identity_links::table.find((
            &order.target,
            &order.resource_type,
            &order.resource_id,
        )))
        .execute(tx.conn())?;
        if let Some(remote) = link {
            diesel::insert_into(identity_links::table)
                .values((
                    identity_links::target.eq(&order.target),
                    identity_links::resource_type.eq(&order.resource_type),
                    identity_links::source_id.eq(&order.resource_id),
                    identity_links::remote_id.eq(remote),
                    identity_links::linked_at.eq(now),
                ))
                .execute(tx.conn())?;
        }
    }
    Ok(true)
}

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

/// Whether `resource` has an order on `target` still on its way, read under row locks on
/// PostgreSQL.
fn has_open_order(tx: &mut WriteTx<'_>, target: &str, resource: &str) -> Result<bool, StoreError> {
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

/// How an attempt ends, as the worker decided it.
#[derive(Debug, Clone)]
pub struct Finish {
    pub state: OrderState,
    pub next_attempt_at: Option<Micros>,
    /// An identity-link change to record with it: `Some(Some(remote))` sets, `Some(None)` removes.
    pub link: Option<Option<String>>,
    /// Read back from the target and found matching: the order ends `Verified`.
    pub verified: bool,
    /// Held for approval (`AwaitingApproval`): why.
    pub held_reason: Option<String>,
    /// Deferred until this member's order has landed (it makes this order due at once).
    pub waiting_for: Option<String>,
    /// A note to keep on the order (members left out of a group).
    pub note: Option<String>,
}

/// Gives back every order leased to `owner` (a worker shutting down): retryable at once.
pub fn release_leases(db: &Db, owner: &str) -> Result<usize, StoreError> {
    release_where(db, "released: the worker shut down mid-delivery", |held| {
        held == owner
    })
}

/// Gives back the orders a previous run of this instance held when it died: those leased by
/// an owner for which `was_mine` holds (but `current`). Retryable at once, instead of when
/// their lease runs out.
pub fn release_previous(
    db: &Db,
    current: &str,
    was_mine: impl Fn(&str) -> bool,
) -> Result<usize, StoreError> {
    release_where(
        db,
        "released: the instance restarted mid-delivery",
        |held| held != current && was_mine(held),
    )
}

fn release_where(
    db: &Db,
    why: &str,
    leased_by: impl Fn(&str) -> bool,
) -> Result<usize, StoreError> {
    db.write(|tx| {
        let now = tx.now();
        let leased: Vec<(i64, Option<String>)> = orders::table
            .filter(orders::state.eq(OrderState::Transmitted.as_str()))
            .filter(orders::lease_owner.is_not_null())
            .select((orders::id, orders::lease_owner))
            .load(tx.conn())?;
        let held: Vec<i64> = leased
            .into_iter()
            .filter(|(_, owner)| owner.as_deref().is_some_and(&leased_by))
            .map(|(id, _)| id)
            .collect();
        for id in &held {
            diesel::update(orders::table.find(id))
                .set((
                    orders::state.eq(OrderState::Errored.as_str()),
                    orders::next_attempt_at.eq(now),
                    orders::last_error.eq(Some(why)),
                    orders::lease_owner.eq(None::<String>),
                    orders::lease_until.eq(None::<i64>),
                    orders::updated_at.eq(now),
                ))
                .execute(tx.conn())?;
            transition(tx, *id, OrderState::Errored)?;
        }
        Ok(held.len())
    })
}

/// Extends the leases `owner` holds to `lease` from now (the worker's heartbeat); answers how
/// many it holds.
pub fn renew_leases(db: &Db, owner: &str, lease: Micros) -> Result<usize, StoreError> {
    db.write(|tx| {
        let until = tx.now() + lease;
        Ok(diesel::update(
            orders::table
                .filter(orders::state.eq(OrderState::Transmitted.as_str()))
                .filter(orders::lease_owner.eq(owner)),
        )
        .set(orders::lease_until.eq(until))
        .execute(tx.conn())?)
    })
}

/// Orders whose worker vanished (lease expired while `Transmitted`) become retryable now.
pub fn reclaim_expired(db: &Db) -> Result<usize, StoreError> {
    db.write(|tx| {
        let now = tx.now();
        let expired: Vec<i64> = orders::table
            .filter(orders::state.eq(OrderState::Transmitted.as_str()))
            .filter(orders::lease_until.lt(now))
            .select(orders::id)
            .load(tx.conn())?;
        for id in &expired {
            diesel::update(orders::table.find(id))
                .set((
                    orders::state.eq(OrderState::Errored.as_str()),
                    orders::next_attempt_at.eq(now),
                    orders::last_error.eq(Some("lease expired: the worker stopped mid-delivery")),
                    orders::lease_owner.eq(None::<String>),
                    orders::lease_until.eq(None::<i64>),
                    orders::updated_at.eq(now),
                ))
                .execute(tx.conn())?;
            transition(tx, *id, OrderState::Errored)?;
        }
        Ok(expired.len())
    })
}

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

/// Orders per state for one target.
pub fn counts(conn: &mut DbConnection, target: &str) -> Result<HashMap<String, i64>, StoreError> {
    let rows: Vec<(String, i64)> = orders::table
        .filter(orders::target.eq(target))
        .group_by(orders::state)
        .select((orders::state, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

pub fn link(
    conn: &mut DbConnection,
    target: &str,
    resource_type: &str,
    source_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(identity_links::table
        .find((target, resource_type, source_id))
        .select(identity_links::remote_id)
        .first(conn)
        .optional()?)
}

pub fn links(
    conn: &mut DbConnection,
    target: &str,
    resource_type: &str,
    source_ids: &[String],
) -> Result<HashMap<String, String>, StoreError> {
    let mut out = HashMap::new();
    for chunk in source_ids.chunks(BIND_CHUNK) {
        let rows: Vec<(String, String)> = identity_links::table
            .filter(identity_links::target.eq(target))
            .filter(identity_links::resource_type.eq(resource_type))
            .filter(identity_links::source_id.eq_any(chunk))
            .select((identity_links::source_id, identity_links::remote_id))
            .load(conn)?;
        out.extend(rows);
    }
    Ok(out)
}

/// Filters for listing orders (the admin API).
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub state: Option<String>,
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
    if let Some(v) = &filter.state {
        query = query.filter(orders::state.eq(v.clone()));
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

/// What an operator's action on an order came to.
#[derive(Debug)]
pub enum Action {
    Done(Box<Order>),
    NotFound,
    /// The order's state does not allow it (e.g. cancelling one in flight).
    Refused(String),
}

fn act(
    db: &Db,
    id: i64,
    allowed: &[OrderState],
    to: OrderState,
    reset_attempts: bool,
) -> Result<Action, StoreError> {
    db.write(|tx| {
        let Some(order) = find(tx.conn(), id)? else {
            return Ok(Action::NotFound);
        };
        let current = OrderState::parse(&order.state);
        if !current.is_some_and(|c| allowed.contains(&c)) {
            return Ok(Action::Refused(format!("the order is {}", order.state)));
        }
        let now = tx.now();
        diesel::update(orders::table.find(id))
            .set((
                orders::state.eq(to.as_str()),
                orders::next_attempt_at.eq(now),
                orders::updated_at.eq(now),
                orders::attempts.eq(if reset_attempts { 0 } else { order.attempts }),
            ))
            .execute(tx.conn())?;
        transition(tx, id, to)?;
        Ok(find(tx.conn(), id)?.map_or(Action::NotFound, |o| Action::Done(Box::new(o))))
    })
}

/// Sends a failed order again, with a fresh attempt budget.
pub fn retry(db: &Db, id: i64) -> Result<Action, StoreError> {
    act(
        db,
        id,
        &[OrderState::Error, OrderState::Errored],
        OrderState::Pending,
        true,
    )
}

/// Withdraws an order not yet delivered.
pub fn cancel(db: &Db, id: i64) -> Result<Action, StoreError> {
    act(
        db,
        id,
        &[
            OrderState::Pending,
            OrderState::Errored,
            OrderState::AwaitingApproval,
            OrderState::Error,
        ],
        OrderState::Inactive,
        false,
    )
}

/// A target's delivery health at a glance.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    pub counts: HashMap<String, i64>,
    pub oldest_pending_at: Option<Micros>,
    pub last_success_at: Option<Micros>,
    pub last_error: Option<(Micros, String)>,
}

pub fn status(conn: &mut DbConnection, target: &str) -> Result<TargetStatus, StoreError> {
    let open = [
        OrderState::Pending.as_str(),
        OrderState::Errored.as_str(),
        OrderState::Transmitted.as_str(),
    ];
    let oldest_pending_at: Option<Micros> = orders::table
        .filter(orders::target.eq(target))
        .filter(orders::state.eq_any(open))
        .select(diesel::dsl::min(orders::created_at))
        .first(conn)?;
    let last_success_at: Option<Micros> = orders::table
        .filter(orders::target.eq(target))
        .filter(
            orders::state.eq_any([OrderState::Executed.as_str(), OrderState::Verified.as_str()]),
        )
        .select(diesel::dsl::max(orders::updated_at))
        .first(conn)?;
    let last_error: Option<(Micros, Option<String>)> = orders::table
        .filter(orders::target.eq(target))
        .filter(orders::last_error.is_not_null())
        .filter(orders::state.eq_any([OrderState::Error.as_str(), OrderState::Errored.as_str()]))
        .order(orders::updated_at.desc())
        .select((orders::updated_at, orders::last_error))
        .first(conn)
        .optional()?;
    Ok(TargetStatus {
        counts: counts(conn, target)?,
        oldest_pending_at,
        last_success_at,
        last_error: last_error.map(|(at, e)| (at, e.unwrap_or_default())),
    })
}

/// Withdraws every unfinished order of a target (it was deleted), in flight or not: they
/// become `Inactive` with `reason`, and a late outcome of one in flight is not recorded.
pub fn inactivate_open(
    tx: &mut WriteTx<'_>,
    target: &str,
    reason: &str,
) -> Result<usize, StoreError> {
    let open: Vec<i64> = orders::table
        .filter(orders::target.eq(target))
        .filter(orders::state.eq_any([
            OrderState::Pending.as_str(),
            OrderState::Transmitted.as_str(),
            OrderState::Errored.as_str(),
            OrderState::AwaitingApproval.as_str(),
        ]))
        .select(orders::id)
        .load(tx.conn())?;
    let now = tx.now();
    for ids in open.chunks(BIND_CHUNK) {
        diesel::update(orders::table.filter(orders::id.eq_any(ids)))
            .set((
                orders::state.eq(OrderState::Inactive.as_str()),
                orders::last_error.eq(Some(bounded(reason))),
                orders::lease_owner.eq(None::<String>),
                orders::lease_until.eq(None::<i64>),
                orders::updated_at.eq(now),
            ))
            .execute(tx.conn())?;
        let rows: Vec<_> = ids.iter().map(|id| (*id, OrderState::Inactive)).collect();
        transitions(tx, &rows)?;
    }
    Ok(open.len())
}
