//! Change log → orders: each change becomes one order per target that takes its resource type.
//! Scope is decided at delivery, against the resource's state then, so a resource leaving a
//! target's scope is deprovisioned there.

use crate::storage::change_log::ChangeEntry;
use crate::storage::orders::{self, NewOrder};
use crate::storage::{Db, StoreError};

use super::Target;

/// Plans up to `limit` change-log entries; returns how many were planned.
pub fn plan(db: &Db, targets: &[std::sync::Arc<Target>], limit: i64) -> Result<usize, StoreError> {
    orders::plan_batch(db, limit, |_, entry: &ChangeEntry| {
        let user = entry.resource_type == "User";
        let operation = if entry.operation == "delete" {
            "delete"
        } else {
            "upsert"
        };
        Ok::<_, StoreError>(
            targets
                .iter()
                .filter(|t| {
                    t.config.enabled
                        && if user {
                            t.config.users
                        } else {
                            t.config.groups
                        }
                })
                .map(|t| NewOrder {
                    target: t.config.name.clone(),
                    resource_type: entry.resource_type.clone(),
                    resource_id: entry.resource_id.clone(),
                    operation: operation.to_string(),
                })
                .collect(),
        )
    })
}
