//! Operators' decisions on orders awaiting approval, whatever held them (a review rule, the
//! mass-delete guard): approved → `pending` and never held again, declined → `inactive`; who
//! decided, when and why is kept on the order.

use diesel::prelude::*;

use super::orders::{self, Action, OrderState};
use super::schema::{order_transitions, orders as orders_table};
use super::{Db, StoreError, WriteTx, BIND_CHUNK};

/// An operator's decision.
#[derive(Debug, Clone)]
pub struct Decision {
    pub approve: bool,
    /// The admin token's name.
    pub by: String,
    pub comment: Option<String>,
}

impl Decision {
    fn state(&self) -> OrderState {
        if self.approve {
            OrderState::Pending
        } else {
            OrderState::Inactive
        }
    }
}

/// Which awaiting orders a bulk decision covers; unset fields match any.
#[derive(Debug, Clone, Default)]
pub struct HeldQuery {
    pub target: Option<String>,
    pub operation: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
}

/// Decides ids that are awaiting approval now; returns how many moved.
fn apply(tx: &mut WriteTx<'_>, ids: &[i64], decision: &Decision) -> Result<usize, StoreError> {
    let now = tx.now();
    let to = decision.state();
    let mut moved = 0;
    for chunk in ids.chunks(BIND_CHUNK) {
        // The state condition again: a concurrent decision on the same order counts once.
        let decided: Vec<(i64, String, String)> = diesel::update(
            orders_table::table
                .filter(orders_table::id.eq_any(chunk))
                .filter(orders_table::state.eq(OrderState::AwaitingApproval.as_str())),
        )
        .set((
            orders_table::state.eq(to.as_str()),
            orders_table::approved.eq(decision.approve),
            orders_table::decided_by.eq(&decision.by),
            orders_table::decided_at.eq(now),
            orders_table::decision_comment.eq(&decision.comment),
            // An approved order goes out in the next round with a fresh attempt budget.
            orders_table::attempts.eq(0),
            orders_table::next_attempt_at.eq(now),
            orders_table::updated_at.eq(now),
        ))
        .returning((
            orders_table::id,
            orders_table::target,
            orders_table::resource_id,
        ))
        .get_results(tx.conn())?;
        for (id, target, resource_id) in &decided {
            if !decision.approve {
                // A declined member is left out of its groups: those waiting for it go now.
                orders::wake_waiting(tx, target, &[resource_id.as_str()])?;
            }
            diesel::insert_into(order_transitions::table)
                .values((
                    order_transitions::order_id.eq(id),
                    order_transitions::state.eq(to.as_str()),
                    order_transitions::at.eq(now),
                ))
                .execute(tx.conn())?;
        }
        moved += decided.len();
    }
    Ok(moved)
}

/// Decides one order; refused when it is not awaiting approval.
pub fn decide(db: &Db, id: i64, decision: &Decision) -> Result<Action, StoreError> {
    db.write(|tx| {
        let Some(order) = orders::find(tx.conn(), id)? else {
            return Ok(Action::NotFound);
        };
        if order.state != OrderState::AwaitingApproval.as_str() || apply(tx, &[id], decision)? == 0
        {
            return Ok(Action::Refused(format!(
                "order {id} is not awaiting approval (it is {})",
                order.state
            )));
        }
        Ok(orders::find(tx.conn(), id)?.map_or(Action::NotFound, |o| Action::Done(Box::new(o))))
    })
}

/// Decides every order awaiting approval that matches, in one transaction; returns how many.
pub fn decide_matching(
    db: &Db,
    query: &HeldQuery,
    decision: &Decision,
) -> Result<usize, StoreError> {
    db.write(|tx| {
        let mut select = orders_table::table
            .filter(orders_table::state.eq(OrderState::AwaitingApproval.as_str()))
            .select(orders_table::id)
            .into_boxed();
        if let Some(v) = &query.target {
            select = select.filter(orders_table::target.eq(v.clone()));
        }
        if let Some(v) = &query.operation {
            select = select.filter(orders_table::operation.eq(v.clone()));
        }
        if let Some(v) = &query.resource_type {
            select = select.filter(orders_table::resource_type.eq(v.clone()));
        }
        if let Some(v) = &query.resource_id {
            select = select.filter(orders_table::resource_id.eq(v.clone()));
        }
        let ids: Vec<i64> = select.order(orders_table::id.asc()).load(tx.conn())?;
        apply(tx, &ids, decision)
    })
}
