//! The one way an order changes state. Every move is checked against the lifecycle
//! ([`OrderState::may_become`]) and guarded by the states it may come from (and the lease, for
//! a worker's outcome), so a concurrent move wins once; what it moved is recorded with it in
//! the same transaction: the transition, the attempt, the identity-link change, and the wake-up
//! of group orders waiting for the resource whose order ended.

use std::collections::HashMap;

use diesel::prelude::*;

use super::kinds::{Hold, OrderState};
use super::{bounded, schedule};
use crate::storage::events::{self, EventType, NewEvent};
use crate::storage::fixed_shape::{insert_in_fixed_chunks, FixedShape};
use crate::storage::observer::OrderMove;
use crate::storage::schema::{order_attempts, order_transitions, orders};
use crate::storage::{identity_links, on_backend, Micros, StoreError, WriteTx, BIND_CHUNK};

/// What one delivery attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub started_at: Micros,
    pub duration_ms: i64,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub response_id: Option<String>,
}

/// The identity-link change a delivery made, written with the order's outcome. Losing it (a
/// crash before that write) is safe: the next attempt correlates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    Set(String),
    Remove,
}

/// How a move treats the order's attempt count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Attempts {
    #[default]
    Keep,
    /// A worker takes it: one more attempt.
    Count,
    /// An operator sends it again: a fresh budget.
    Reset,
}

/// An operator's decision recorded on the order.
#[derive(Debug, Clone, Copy)]
pub(super) struct Decided<'a> {
    pub approved: bool,
    pub by: &'a str,
    pub comment: Option<&'a str>,
}

/// What a move changes besides the state. Every move ends the order's lease unless it takes
/// one (`lease`), and makes it due at `due_at` (default: now).
#[derive(Debug, Clone, Default)]
pub(super) struct Changes<'a> {
    pub due_at: Option<Micros>,
    pub error: Option<Option<String>>,
    pub remote_id: Option<Option<String>>,
    pub attempts: Attempts,
    /// Taken by `owner` until `until` (a claim).
    pub lease: Option<(&'a str, Micros)>,
    pub hold: Option<&'a Hold>,
    pub waiting_for: Option<Option<String>>,
    pub note: Option<Option<String>>,
    pub decided: Option<Decided<'a>>,
    pub link: Option<LinkChange>,
    /// Recorded whether or not the move happened (the target was called either way).
    pub attempt: Option<AttemptRecord>,
    /// Leave group orders waiting for this resource waiting (a superseded order: a newer one
    /// of the same resource is on its way).
    pub keep_members_waiting: bool,
}

/// Which orders a move applies to: those in one of `from`, and leased to `leased_to` if set.
#[derive(Debug, Clone, Copy)]
pub(super) struct Guard<'a> {
    pub from: &'a [OrderState],
    pub leased_to: Option<&'a str>,
}

impl<'a> Guard<'a> {
    pub fn from(states: &'a [OrderState]) -> Guard<'a> {
        Guard {
            from: states,
            leased_to: None,
        }
    }
}

/// One order's move.
#[derive(Debug, Clone)]
pub(super) struct Move<'a> {
    pub id: i64,
    pub to: OrderState,
    pub changes: Changes<'a>,
}

/// An order that moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Moved {
    pub id: i64,
    pub target: String,
    pub resource_type: String,
    pub resource_id: String,
    pub operation: String,
    /// The order's revision after the move (its events' sequence).
    pub revision: i64,
    /// The state it moved from.
    pub from: Option<String>,
    /// The connection of the resource it provisions.
    pub connection: Option<String>,
}

/// The columns a move returns, in [`Moved`]'s order.
type MovedRow = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
);

fn moved_row(
    (id, target, resource_type, resource_id, operation, revision, from, connection): MovedRow,
) -> Moved {
    Moved {
        id,
        target,
        resource_type,
        resource_id,
        operation,
        revision,
        from,
        connection,
    }
}

const RETURNING: (
    orders::id,
    orders::target,
    orders::resource_type,
    orders::resource_id,
    orders::operation,
    orders::revision,
    orders::previous_state,
    orders::connection,
) = (
    orders::id,
    orders::target,
    orders::resource_type,
    orders::resource_id,
    orders::operation,
    orders::revision,
    orders::previous_state,
    orders::connection,
);

/// Moves each order as its own move says, if the guard lets it; one result per move, in
/// order (`None`: the order was not where the guard expects, and nothing changed).
pub(super) fn apply(
    tx: &mut WriteTx<'_>,
    guard: Guard<'_>,
    moves: &[Move<'_>],
) -> Result<Vec<Option<Moved>>, StoreError> {
    let mut results: Vec<Option<Moved>> = vec![None; moves.len()];
    // Outcomes that set the same values share one statement (a queue's confirmed messages,
    // a batch of retries); the rest go one by one.
    let mut alike: Vec<(&Move<'_>, Vec<usize>)> = Vec::new();
    for (index, m) in moves.iter().enumerate() {
        check(guard, m.to)?;
        match guard.leased_to {
            Some(_) if is_outcome(guard, &m.changes) && m.changes.hold.is_none() => {
                match alike.iter_mut().find(|(first, _)| same_outcome(first, m)) {
                    Some((_, members)) => members.push(index),
                    None => alike.push((m, vec![index])),
                }
            }
            Some(owner) if is_outcome(guard, &m.changes) => {
                results[index] = update_outcome(tx, owner, &[m.id], m.to, &m.changes)?.pop();
            }
            _ => results[index] = update(tx, guard, &[m.id], m.to, &m.changes)?.pop(),
        }
    }
    if let Some(owner) = guard.leased_to {
        for (first, members) in &alike {
            for chunk in members.chunks(BIND_CHUNK) {
                let ids: Vec<i64> = chunk.iter().map(|i| moves[*i].id).collect();
                for moved in update_outcome(tx, owner, &ids, first.to, &first.changes)? {
                    if let Some(at) = chunk.iter().find(|i| moves[**i].id == moved.id) {
                        results[*at] = Some(moved);
                    }
                }
            }
        }
    }
    let mut records = Records::default();
    for (m, moved) in moves.iter().zip(&results) {
        if let Some(attempt) = &m.changes.attempt {
            records.attempts.push((m.id, attempt.clone()));
        }
        if let Some(moved) = moved {
            records.moved(guard, m.to, &m.changes, moved);
        }
    }
    records.write(tx)?;
    Ok(results)
}

/// Whether two outcomes set the same values in the order rows (links and attempts are
/// recorded per order anyway).
fn same_outcome(a: &Move<'_>, b: &Move<'_>) -> bool {
    let (x, y) = (&a.changes, &b.changes);
    a.to == b.to
        && x.due_at == y.due_at
        && x.error == y.error
        && x.remote_id == y.remote_id
        && x.waiting_for == y.waiting_for
        && x.note == y.note
        && x.hold.is_none()
        && y.hold.is_none()
}

/// Moves every order of `ids` the guard lets through to `to` with the same changes, in a
/// statement per chunk; returns those that moved.
pub(super) fn apply_to_all(
    tx: &mut WriteTx<'_>,
    guard: Guard<'_>,
    ids: &[i64],
    to: OrderState,
    changes: &Changes<'_>,
) -> Result<Vec<Moved>, StoreError> {
    check(guard, to)?;
    debug_assert!(
        changes.attempt.is_none() && changes.link.is_none(),
        "attempts and links belong to one order"
    );
    let mut all = Vec::new();
    let mut records = Records::default();
    for chunk in ids.chunks(BIND_CHUNK) {
        for moved in update(tx, guard, chunk, to, changes)? {
            records.moved(guard, to, changes, &moved);
            all.push(moved);
        }
    }
    records.write(tx)?;
    Ok(all)
}

fn check(guard: Guard<'_>, to: OrderState) -> Result<(), StoreError> {
    match guard.from.iter().find(|from| !from.may_become(to)) {
        Some(from) => Err(StoreError::Aborted(format!(
            "an order cannot move from {} to {}",
            from.as_str(),
            to.as_str()
        ))),
        None => Ok(()),
    }
}

/// What the moves of one call record beside the orders themselves, written together.
#[derive(Default)]
struct Records {
    transitions: Vec<(i64, OrderState)>,
    attempts: Vec<(i64, AttemptRecord)>,
    links: Vec<(Moved, LinkChange)>,
    /// Resources whose order ended, by target.
    ended: HashMap<String, Vec<String>>,
    events: Vec<NewEvent>,
    moves: Vec<OrderMove>,
}

impl Records {
    fn moved(&mut self, guard: Guard<'_>, to: OrderState, changes: &Changes<'_>, moved: &Moved) {
        // Staying put (a manual target's order, still with a person) is no transition.
        if guard.from != [to] {
            if to == OrderState::Verified && guard.from.contains(&OrderState::Transmitted) {
                self.transitions.push((moved.id, OrderState::Executed));
            }
            self.transitions.push((moved.id, to));
            let error = changes.error.clone().flatten();
            let actor = changes
                .decided
                .map_or_else(|| "scimgate".to_string(), |d| events::operator_actor(d.by));
            self.events
                .push(order_event(moved, to, error.as_deref(), &actor));
            self.moves.push(OrderMove {
                target: moved.target.clone(),
                from: moved.from.clone(),
                to: to.as_str(),
            });
        }
        if let Some(link) = &changes.link {
            self.links.push((moved.clone(), link.clone()));
        }
        if to.ends_delivery() && !changes.keep_members_waiting {
            self.ended
                .entry(moved.target.clone())
                .or_default()
                .push(moved.resource_id.clone());
        }
    }

    fn write(self, tx: &mut WriteTx<'_>) -> Result<(), StoreError> {
        tx.moved(self.moves);
        insert_transitions(tx, &self.transitions)?;
        events::append(tx, &self.events)?;
        insert_attempts(tx, &self.attempts)?;
        let links: Vec<identity_links::LinkUpdate<'_>> = self
            .links
            .iter()
            .map(|(moved, link)| identity_links::LinkUpdate {
                target: &moved.target,
                resource_type: &moved.resource_type,
                source_id: &moved.resource_id,
                remote: match link {
                    LinkChange::Set(remote) => Some(remote.as_str()),
                    LinkChange::Remove => None,
                },
            })
            .collect();
        identity_links::set_many(tx, &links)?;
        for (target, resources) in &self.ended {
            let resources: Vec<&str> = resources.iter().map(String::as_str).collect();
            schedule::wake_waiting(tx, target, &resources)?;
        }
        Ok(())
    }
}

/// Whether a move is a worker's outcome for an order it holds: the statement every delivery
/// ends with.
fn is_outcome(guard: Guard<'_>, changes: &Changes<'_>) -> bool {
    guard.from == [OrderState::Transmitted]
        && changes.attempts == Attempts::Keep
        && changes.lease.is_none()
        && changes.decided.is_none()
}

/// Workers' outcomes that set the same values, as one statement of fixed shape (every column
/// it may set is set): for one order it is prepared once per connection however many orders
/// are delivered; for several, one statement moves them all.
fn update_outcome(
    tx: &mut WriteTx<'_>,
    owner: &str,
    ids: &[i64],
    to: OrderState,
    changes: &Changes<'_>,
) -> Result<Vec<Moved>, StoreError> {
    let now = tx.now();
    let error = changes.error.clone().flatten().as_deref().map(bounded);
    let note = changes.note.clone().flatten().as_deref().map(bounded);
    let assignments = (
        orders::state.eq(to.as_str()),
        orders::next_attempt_at.eq(changes.due_at.unwrap_or(now)),
        orders::last_error.eq(error),
        orders::remote_id.eq(changes.remote_id.clone().flatten()),
        orders::lease_owner.eq(None::<String>),
        orders::lease_until.eq(None::<Micros>),
        orders::updated_at.eq(now),
        orders::waiting_for.eq(changes.waiting_for.clone().flatten()),
        orders::note.eq(note),
        orders::previous_state.eq(orders::state.nullable()),
        orders::revision.eq(orders::revision + 1),
    );
    let held = orders::lease_owner
        .eq(owner)
        .and(orders::state.eq(OrderState::Transmitted.as_str()));
    let moved: Vec<MovedRow> = match ids {
        // Every delivery ends here: one text whatever the values, kept prepared.
        [id] => {
            let statement = FixedShape::<OutcomeOfOne, _>::new(
                diesel::update(orders::table.filter(orders::id.eq(*id)).filter(held))
                    .set(assignments)
                    .returning(RETURNING),
            );
            on_backend!(tx.conn(), |c| statement.get_results(c))?
        }
        _ => diesel::update(orders::table.filter(orders::id.eq_any(ids)).filter(held))
            .set(assignments)
            .returning(RETURNING)
            .get_results(tx.conn())?,
    };
    if let Some(hold) = changes.hold {
        let held: Vec<i64> = moved.iter().map(|row| row.0).collect();
        diesel::update(orders::table.filter(orders::id.eq_any(&held)))
            .set((
                orders::held_by.eq(hold.kind.as_str()),
                orders::held_reason.eq(bounded(&hold.reason)),
            ))
            .execute(tx.conn())?;
    }
    Ok(moved.into_iter().map(moved_row).collect())
}

/// [`update_outcome`]'s statement for one order.
struct OutcomeOfOne;

/// The UPDATE of a move: state, the changed fields, the lease, guarded; returns what moved.
fn update(
    tx: &mut WriteTx<'_>,
    guard: Guard<'_>,
    ids: &[i64],
    to: OrderState,
    changes: &Changes<'_>,
) -> Result<Vec<Moved>, StoreError> {
    let now = tx.now();
    let fields = Fields {
        state: to.as_str(),
        updated_at: now,
        next_attempt_at: changes.due_at.unwrap_or(now),
        last_error: changes.error.as_ref().map(|e| e.as_deref().map(bounded)),
        remote_id: changes.remote_id.clone(),
        lease_owner: Some(changes.lease.map(|(owner, _)| owner)),
        lease_until: Some(changes.lease.map(|(_, until)| until)),
        held_by: changes.hold.map(|h| h.kind.as_str()),
        held_reason: changes.hold.map(|h| bounded(&h.reason)),
        waiting_for: changes.waiting_for.clone(),
        note: changes.note.as_ref().map(|n| n.as_deref().map(bounded)),
        approved: changes.decided.map(|d| d.approved),
        decided_by: changes.decided.map(|d| d.by),
        decided_at: changes.decided.map(|_| now),
        decision_comment: changes.decided.map(|d| d.comment),
        attempts: (changes.attempts == Attempts::Reset).then_some(0),
    };
    let states: Vec<&str> = guard.from.iter().map(|s| s.as_str()).collect();
    let returning = RETURNING;
    // Assignments read the row as it was: the state before this move.
    let fields = (
        fields,
        orders::previous_state.eq(orders::state.nullable()),
        orders::revision.eq(orders::revision + 1),
    );
    let source = orders::table
        .filter(orders::id.eq_any(ids))
        .filter(orders::state.eq_any(states));
    let conn = tx.conn();
    let rows: Vec<MovedRow> = match (guard.leased_to, changes.attempts == Attempts::Count) {
        (Some(owner), true) => diesel::update(source.filter(orders::lease_owner.eq(owner)))
            .set((fields, orders::attempts.eq(orders::attempts + 1)))
            .returning(returning)
            .get_results(conn)?,
        (Some(owner), false) => diesel::update(source.filter(orders::lease_owner.eq(owner)))
            .set(fields)
            .returning(returning)
            .get_results(conn)?,
        (None, true) => diesel::update(source)
            .set((fields, orders::attempts.eq(orders::attempts + 1)))
            .returning(returning)
            .get_results(conn)?,
        (None, false) => diesel::update(source)
            .set(fields)
            .returning(returning)
            .get_results(conn)?,
    };
    Ok(rows.into_iter().map(moved_row).collect())
}

/// The columns a move sets; `None` leaves a column as it is.
#[derive(AsChangeset)]
#[diesel(table_name = orders)]
struct Fields<'a> {
    state: &'a str,
    updated_at: Micros,
    next_attempt_at: Micros,
    last_error: Option<Option<String>>,
    remote_id: Option<Option<String>>,
    lease_owner: Option<Option<&'a str>>,
    lease_until: Option<Option<Micros>>,
    held_by: Option<&'a str>,
    held_reason: Option<String>,
    waiting_for: Option<Option<String>>,
    note: Option<Option<String>>,
    approved: Option<bool>,
    decided_by: Option<&'a str>,
    decided_at: Option<Micros>,
    decision_comment: Option<Option<&'a str>>,
    attempts: Option<i32>,
}

/// The event of an order's move (or of its creation, `from` none): into `awaiting_approval`
/// it asks for a decision; any other move is a state change.
pub(super) fn order_event(
    moved: &Moved,
    to: OrderState,
    error: Option<&str>,
    actor: &str,
) -> NewEvent {
    let event_type = match to {
        OrderState::AwaitingApproval => EventType::OrderApprovalRequired,
        _ => EventType::OrderStateChanged,
    };
    // Every delivery writes two of these: the map is sized once rather than grown.
    let mut data = serde_json::Map::with_capacity(9);
    data.insert("order".into(), moved.id.into());
    data.insert("target".into(), moved.target.clone().into());
    data.insert("resourceType".into(), moved.resource_type.clone().into());
    data.insert("resourceId".into(), moved.resource_id.clone().into());
    data.insert("operation".into(), moved.operation.clone().into());
    data.insert("from".into(), moved.from.clone().into());
    data.insert("to".into(), to.as_str().into());
    if let Some(connection) = &moved.connection {
        data.insert("connection".into(), connection.clone().into());
    }
    if let Some(error) = error {
        data.insert("error".into(), bounded(error).into());
    }
    let data = serde_json::Value::Object(data);
    NewEvent {
        event_type,
        resource_type: "Order".into(),
        resource_id: moved.id.to_string(),
        resource_seq: moved.revision,
        target: Some(moved.target.clone()),
        actor: actor.to_string(),
        data,
    }
}

/// The first transition of new orders (they are inserted in that state).
pub(super) fn insert_transitions(
    tx: &mut WriteTx<'_>,
    rows: &[(i64, OrderState)],
) -> Result<(), StoreError> {
    let now = tx.now();
    let values: Vec<_> = rows
        .iter()
        .map(|(id, state)| {
            (
                order_transitions::order_id.eq(*id),
                order_transitions::state.eq(state.as_str()),
                order_transitions::at.eq(now),
            )
        })
        .collect();
    insert_in_fixed_chunks!(tx, order_transitions::table, values);
    Ok(())
}

fn insert_attempts(
    tx: &mut WriteTx<'_>,
    attempts: &[(i64, AttemptRecord)],
) -> Result<(), StoreError> {
    let rows: Vec<_> = attempts
        .iter()
        .map(|(order_id, attempt)| {
            (
                order_attempts::order_id.eq(*order_id),
                order_attempts::started_at.eq(attempt.started_at),
                order_attempts::duration_ms.eq(attempt.duration_ms),
                order_attempts::http_status.eq(attempt.http_status),
                order_attempts::error.eq(attempt.error.as_deref().map(bounded)),
                order_attempts::response_id.eq(attempt.response_id.clone()),
            )
        })
        .collect();
    insert_in_fixed_chunks!(tx, order_attempts::table, rows);
    Ok(())
}
