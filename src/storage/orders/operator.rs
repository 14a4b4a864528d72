//! What operators do with orders: send a failed one again, withdraw one, approve or decline
//! one awaiting approval (whatever held it: a review rule, the mass-delete guard). Who decided,
//! when and why is kept on the order. Withdrawing a deleted target's orders is here too.

use diesel::prelude::*;

use super::kinds::{Operation, OrderState};
use super::read::find;
use super::transition::{self, Attempts, Changes, Decided, Guard};
use super::Order;
use crate::storage::schema::orders;
use crate::storage::{Db, StoreError, WriteTx};

/// What an operator's action on an order came to.
#[derive(Debug)]
pub enum Action {
    Done(Box<Order>),
    NotFound,
    /// The order's state does not allow it (e.g. cancelling one in flight).
    Refused(String),
}

/// Moves one order if it is in one of `from`.
fn act(
    db: &Db,
    id: i64,
    from: &[OrderState],
    to: OrderState,
    changes: &Changes<'_>,
) -> Result<Action, StoreError> {
    db.write(|tx| {
        let Some(order) = find(tx.conn(), id)? else {
            return Ok(Action::NotFound);
        };
        if transition::apply_to_all(tx, Guard::from(from), &[id], to, changes)?.is_empty() {
            return Ok(Action::Refused(format!(
                "order {id} is {}",
                order.state.as_str()
            )));
        }
        Ok(find(tx.conn(), id)?.map_or(Action::NotFound, |o| Action::Done(Box::new(o))))
    })
}

/// Sends a failed order again, with a fresh attempt budget.
pub fn retry(db: &Db, id: i64) -> Result<Action, StoreError> {
    let changes = Changes {
        attempts: Attempts::Reset,
        ..Changes::default()
    };
    act(
        db,
        id,
        &[OrderState::Error, OrderState::Errored],
        OrderState::Pending,
        &changes,
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
        &Changes::default(),
    )
}

/// An operator's decision on an order awaiting approval.
#[derive(Debug, Clone)]
pub struct Decision {
    pub approve: bool,
    /// The admin token's name.
    pub by: String,
    pub comment: Option<String>,
}

/// Which awaiting orders a bulk decision covers; unset fields match any.
#[derive(Debug, Clone, Default)]
pub struct HeldQuery {
    pub target: Option<String>,
    pub operation: Option<Operation>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
}

/// Approved → pending, with a fresh attempt budget and never held again; declined →
/// inactive (a declined member is left out of its groups: those waiting for it go now).
fn apply_decision(
    tx: &mut WriteTx<'_>,
    ids: &[i64],
    decision: &Decision,
) -> Result<usize, StoreError> {
    let to = if decision.approve {
        OrderState::Pending
    } else {
        OrderState::Inactive
    };
    let changes = Changes {
        attempts: Attempts::Reset,
        decided: Some(Decided {
            approved: decision.approve,
            by: &decision.by,
            comment: decision.comment.as_deref(),
        }),
        ..Changes::default()
    };
    let moved = transition::apply_to_all(
        tx,
        Guard::from(&[OrderState::AwaitingApproval]),
        ids,
        to,
        &changes,
    )?;
    Ok(moved.len())
}

/// Decides one order; refused when it is not awaiting approval.
pub fn decide(db: &Db, id: i64, decision: &Decision) -> Result<Action, StoreError> {
    db.write(|tx| {
        let Some(order) = find(tx.conn(), id)? else {
            return Ok(Action::NotFound);
        };
        if apply_decision(tx, &[id], decision)? == 0 {
            return Ok(Action::Refused(format!(
                "order {id} is not awaiting approval (it is {})",
                order.state.as_str()
            )));
        }
        Ok(find(tx.conn(), id)?.map_or(Action::NotFound, |o| Action::Done(Box::new(o))))
    })
}

/// Decides every order awaiting approval that matches, in one transaction; returns how many.
pub fn decide_matching(
    db: &Db,
    query: &HeldQuery,
    decision: &Decision,
) -> Result<usize, StoreError> {
    db.write(|tx| {
        let mut select = orders::table
            .filter(orders::state.eq(OrderState::AwaitingApproval.as_str()))
            .select(orders::id)
            .into_boxed();
        if let Some(v) = &query.target {
            select = select.filter(orders::target.eq(v.clone()));
        }
        if let Some(v) = query.operation {
            select = select.filter(orders::operation.eq(v.as_str()));
        }
        if let Some(v) = &query.resource_type {
            select = select.filter(orders::resource_type.eq(v.clone()));
        }
        if let Some(v) = &query.resource_id {
            select = select.filter(orders::resource_id.eq(v.clone()));
        }
        let ids: Vec<i64> = select.order(orders::id.asc()).load(tx.conn())?;
        apply_decision(tx, &ids, decision)
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
        .filter(orders::state.eq_any(OrderState::OPEN.map(OrderState::as_str)))
        .select(orders::id)
        .load(tx.conn())?;
    let changes = Changes {
        error: Some(Some(reason.to_string())),
        ..Changes::default()
    };
    let moved = transition::apply_to_all(
        tx,
        Guard::from(&OrderState::OPEN),
        &open,
        OrderState::Inactive,
        &changes,
    )?;
    Ok(moved.len())
}
