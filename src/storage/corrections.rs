//! Orders a full sync emits to correct drift. They are not changes (no change-log entry) and
//! are delivered like any other order, after the older orders of the same resource.

use diesel::prelude::*;

use super::orders::OrderState;
use super::schema::{order_transitions, orders};
use super::{StoreError, WriteTx};

/// One corrective order.
#[derive(Debug, Clone)]
pub struct Correction {
    pub resource_type: String,
    /// The local resource, or for an orphan account its remote id.
    pub resource_id: String,
    pub operation: String,
    pub remote_id: Option<String>,
    /// Set when the order must wait for approval (the mass-delete guard).
    pub held_reason: Option<String>,
}

/// Inserts the corrections of sync `sync_id` on `target`; returns their order ids in order.
pub fn insert(
    tx: &mut WriteTx<'_>,
    target: &str,
    sync_id: i64,
    corrections: &[Correction],
) -> Result<Vec<i64>, StoreError> {
    let now = tx.now();
    let mut ids = Vec::with_capacity(corrections.len());
    for c in corrections {
        let state = if c.held_reason.is_some() {
            OrderState::AwaitingApproval
        } else {
            OrderState::Pending
        };
        let id: i64 = diesel::insert_into(orders::table)
            .values((
                orders::target.eq(target),
                orders::resource_type.eq(&c.resource_type),
                orders::resource_id.eq(&c.resource_id),
                orders::change_seq.eq(0),
                orders::operation.eq(&c.operation),
                orders::state.eq(state.as_str()),
                orders::attempts.eq(0),
                orders::next_attempt_at.eq(now),
                orders::remote_id.eq(&c.remote_id),
                orders::created_at.eq(now),
                orders::updated_at.eq(now),
                orders::origin.eq("sync"),
                orders::sync_id.eq(sync_id),
                orders::held_reason.eq(&c.held_reason),
            ))
            .returning(orders::id)
            .get_result(tx.conn())?;
        diesel::insert_into(order_transitions::table)
            .values((
                order_transitions::order_id.eq(id),
                order_transitions::state.eq(state.as_str()),
                order_transitions::at.eq(now),
            ))
            .execute(tx.conn())?;
        ids.push(id);
    }
    Ok(ids)
}
