//! The one way orders come to be: a planned change, a full sync's correction, an on-demand
//! run. Each starts pending, held for approval, or (an on-demand run) taken at once under its
//! runner's lease, with its first transitions recorded.

use diesel::prelude::*;

use super::kinds::{Hold, Operation, OrderState, Origin};
use super::transition::{insert_transitions, order_event, Moved};
use crate::storage::change_log::{self, ChangeEntry};
use crate::storage::events;
use crate::storage::holes::Log;
use crate::storage::schema::{orders, planner_position};
use crate::storage::{Db, DbConnection, Micros, StoreError, WriteTx};

/// How a new order starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Start {
    /// Pending (or awaiting approval when held).
    #[default]
    Queued,
    /// Taken at once by `owner` until `until` (an on-demand run delivers it itself).
    Leased { owner: String, until: Micros },
}

/// An order to create.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub target: String,
    pub resource_type: String,
    /// The local resource, or for an orphan account its remote id.
    pub resource_id: String,
    pub operation: Operation,
    pub origin: Origin,
    /// The change it carries out (0 when it is not a change's).
    pub change_seq: i64,
    /// The full sync that emitted it.
    pub sync_id: Option<i64>,
    pub remote_id: Option<String>,
    /// Held for approval: by what, and why.
    pub hold: Option<Hold>,
    pub start: Start,
    /// The connection of the resource; when unknown, looked up from the resource at insert.
    pub connection: Option<String>,
}

impl NewOrder {
    /// An order for a change of the change log.
    pub fn for_change(target: &str, entry: &ChangeEntry, operation: Operation) -> NewOrder {
        NewOrder {
            target: target.to_string(),
            resource_type: entry.resource_type.clone(),
            resource_id: entry.resource_id.clone(),
            operation,
            origin: Origin::Change,
            change_seq: entry.seq,
            sync_id: None,
            remote_id: None,
            hold: None,
            start: Start::Queued,
            connection: Some(entry.connection.clone()),
        }
    }
}

/// Inserts the orders; returns their ids, in order.
pub fn insert(tx: &mut WriteTx<'_>, new: &[NewOrder]) -> Result<Vec<i64>, StoreError> {
    let now = tx.now();
    let mut ids = Vec::with_capacity(new.len());
    let mut firsts = Vec::with_capacity(new.len());
    let mut created_events = Vec::with_capacity(new.len());
    for order in new {
        let connection = match &order.connection {
            Some(c) => Some(c.clone()),
            None => connection_of(tx.conn(), &order.resource_type, &order.resource_id)?,
        };
        let (state, attempts, lease_owner, lease_until) = match (&order.start, &order.hold) {
            (Start::Leased { owner, until }, _) => (
                OrderState::Transmitted,
                1,
                Some(owner.as_str()),
                Some(*until),
            ),
            (Start::Queued, Some(_)) => (OrderState::AwaitingApproval, 0, None, None),
            (Start::Queued, None) => (OrderState::Pending, 0, None, None),
        };
        let id: i64 = diesel::insert_into(orders::table)
            .values((
                orders::target.eq(&order.target),
                orders::resource_type.eq(&order.resource_type),
                orders::resource_id.eq(&order.resource_id),
                orders::change_seq.eq(order.change_seq),
                orders::operation.eq(order.operation.as_str()),
                orders::state.eq(state.as_str()),
                orders::attempts.eq(attempts),
                orders::next_attempt_at.eq(now),
                orders::lease_owner.eq(lease_owner),
                orders::lease_until.eq(lease_until),
                orders::remote_id.eq(&order.remote_id),
                orders::created_at.eq(now),
                orders::updated_at.eq(now),
                orders::origin.eq(order.origin.as_str()),
                orders::sync_id.eq(order.sync_id),
                orders::held_by.eq(order.hold.as_ref().map(|h| h.kind.as_str())),
                orders::held_reason.eq(order.hold.as_ref().map(|h| h.reason.as_str())),
                orders::connection.eq(&connection),
            ))
            .returning(orders::id)
            .get_result(tx.conn())?;
        if state == OrderState::Transmitted {
            firsts.push((id, OrderState::Pending));
        }
        firsts.push((id, state));
        ids.push(id);
        let created = Moved {
            id,
            target: order.target.clone(),
            resource_type: order.resource_type.clone(),
            resource_id: order.resource_id.clone(),
            operation: order.operation.as_str().to_string(),
            revision: 1,
            from: None,
            connection,
        };
        created_events.push(order_event(&created, state, None, "scimgate"));
        tx.moved([crate::storage::observer::OrderMove {
            target: order.target.clone(),
            from: None,
            to: state.as_str(),
        }]);
    }
    insert_transitions(tx, &firsts)?;
    events::append(tx, &created_events)?;
    Ok(ids)
}

/// The connection of the user or group `id`; none for an account no identity owns.
fn connection_of(
    conn: &mut DbConnection,
    resource_type: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    let groups = match resource_type {
        "User" => false,
        "Group" => true,
        _ => return Ok(None),
    };
    let mut owners = crate::storage::connections::owners(conn, &[id.to_string()], groups)?;
    Ok(owners.remove(id))
}

/// Accepted changes the planner has not read yet (the newest change's number minus its
/// position).
pub fn planner_lag(conn: &mut DbConnection) -> Result<i64, StoreError> {
    let position: i64 = planner_position::table
        .filter(planner_position::name.eq("planner"))
        .select(planner_position::last_seq)
        .first(conn)?;
    let newest: Option<i64> = crate::storage::schema::change_log::table
        .select(diesel::dsl::max(crate::storage::schema::change_log::seq))
        .first(conn)?;
    Ok((newest.unwrap_or(0) - position).max(0))
}

/// The changes not planned yet: the planner's position, and up to `limit` change-log
/// entries after it, stopping at a number that may still be written (see [`crate::storage::holes`]).
pub fn unplanned(db: &Db, limit: i64) -> Result<(i64, Vec<ChangeEntry>), StoreError> {
    db.read(|conn| {
        let position: i64 = planner_position::table
            .filter(planner_position::name.eq("planner"))
            .select(planner_position::last_seq)
            .first(conn)?;
        let mut entries = change_log::since(conn, position, limit)?;
        let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
        let now = db.clock().now_micros();
        let usable = db
            .holes()
            .readable(conn, Log::Changes, position, &seqs, now)?;
        entries.truncate(usable);
        Ok((position, entries))
    })
}

/// What committing a plan came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Done,
    /// Another planner planned these changes first; nothing was written.
    PositionMoved,
    /// The targets changed since the plan was made; nothing was written.
    TargetsChanged,
}

/// Writes the orders planned for the changes after `from` up to `through`, and advances the
/// planner's position to `through`, in one transaction: a crash loses no change and plans
/// none twice. Only if the position is still `from` (on PostgreSQL the planner row is locked,
/// so concurrent planners take turns and the later one finds it moved) and, when given, the
/// targets generation is still `generation`.
pub fn commit_plan(
    db: &Db,
    from: i64,
    through: i64,
    generation: Option<i64>,
    planned: &[NewOrder],
) -> Result<Committed, StoreError> {
    db.write(|tx| {
        let position: i64 = match tx.conn() {
            DbConnection::Postgresql(pg) => planner_position::table
                .filter(planner_position::name.eq("planner"))
                .select(planner_position::last_seq)
                .for_update()
                .first(pg)?,
            DbConnection::Sqlite(lite) => planner_position::table
                .filter(planner_position::name.eq("planner"))
                .select(planner_position::last_seq)
                .first(lite)?,
        };
        if position != from {
            return Ok(Committed::PositionMoved);
        }
        if let Some(expected) = generation {
            if crate::storage::targets::generation(tx.conn())? != expected {
                return Ok(Committed::TargetsChanged);
            }
        }
        insert(tx, planned)?;
        diesel::update(planner_position::table.filter(planner_position::name.eq("planner")))
            .set(planner_position::last_seq.eq(through))
            .execute(tx.conn())?;
        Ok(Committed::Done)
    })
}
