//! Orders a full sync emits to correct drift. They are not changes (no change-log entry) and
//! are delivered like any other order, after the older orders of the same resource.

use super::orders::{self, Hold, NewOrder, Operation, Origin, Start};
use super::{StoreError, WriteTx};

/// One corrective order.
#[derive(Debug, Clone)]
pub struct Correction {
    pub resource_type: String,
    /// The local resource, or for an orphan account its remote id.
    pub resource_id: String,
    pub operation: Operation,
    pub remote_id: Option<String>,
    /// Held for approval (the mass-delete guard).
    pub hold: Option<Hold>,
}

/// Inserts the corrections of sync `sync_id` on `target`; returns their order ids in order.
pub fn insert(
    tx: &mut WriteTx<'_>,
    target: &str,
    sync_id: i64,
    corrections: &[Correction],
) -> Result<Vec<i64>, StoreError> {
    let new: Vec<NewOrder> = corrections
        .iter()
        .map(|c| NewOrder {
            target: target.to_string(),
            resource_type: c.resource_type.clone(),
            resource_id: c.resource_id.clone(),
            operation: c.operation,
            origin: Origin::Sync,
            change_seq: 0,
            sync_id: Some(sync_id),
            remote_id: c.remote_id.clone(),
            hold: c.hold.clone(),
            start: Start::Queued,
            connection: None,
        })
        .collect();
    orders::insert(tx, &new)
}
