//! Change log → orders: each change becomes one order per enabled target that takes its
//! resource type. Scope is decided at delivery, against the resource's state then, so a
//! resource leaving a target's scope is deprovisioned there.
//!
//! The targets come from the registry; each planning transaction checks that the targets
//! generation is the one they were built from, and otherwise reloads them and plans again, so a
//! change accepted after a target was created (on any instance) is planned for it.

use crate::storage::change_log::ChangeEntry;
use crate::storage::orders::{self, Hold, NewOrder, Operation};
use crate::storage::{targets, Db, StoreError};

use std::sync::Arc;

use super::guard::DeleteGuard;
use super::registry::TargetRegistry;
use super::Target;

enum PlanError {
    Store(StoreError),
    /// Targets were created, changed or deleted since the snapshot was built.
    TargetsChanged,
}

impl From<StoreError> for PlanError {
    fn from(e: StoreError) -> Self {
        PlanError::Store(e)
    }
}

/// Plans up to `limit` change-log entries for exactly these targets; returns how many were
/// planned.
pub fn plan(db: &Db, targets: &[Arc<Target>], limit: i64) -> Result<usize, StoreError> {
    match plan_with(db, None, targets, limit) {
        Ok(planned) => Ok(planned),
        Err(PlanError::Store(e)) => Err(e),
        Err(PlanError::TargetsChanged) => Ok(0),
    }
}

/// Plans up to `limit` change-log entries for the registry's targets, as they are when each
/// entry is planned; returns how many were planned.
pub fn plan_registered(
    db: &Db,
    registry: &TargetRegistry,
    limit: i64,
) -> Result<usize, StoreError> {
    registry.refresh(db)?;
    for _ in 0..3 {
        let snapshot = registry.snapshot();
        match plan_with(db, Some(snapshot.generation), &snapshot.targets, limit) {
            Ok(planned) => return Ok(planned),
            Err(PlanError::Store(e)) => return Err(e),
            Err(PlanError::TargetsChanged) => registry.refresh(db)?,
        }
    }
    // Targets keep changing under us: plan in a later round.
    Ok(0)
}

/// Plans with `targets`; when they were built from a `generation`, only while it is current.
fn plan_with(
    db: &Db,
    generation: Option<i64>,
    targets: &[Arc<Target>],
    limit: i64,
) -> Result<usize, PlanError> {
    let mut checked = generation.is_none();
    let mut guard = DeleteGuard::default();
    orders::plan_batch(db, limit, |conn, entry: &ChangeEntry| {
        if !checked {
            if Some(targets::generation(conn)?) != generation {
                return Err(PlanError::TargetsChanged);
            }
            checked = true;
        }
        let user = entry.resource_type == "User";
        let operation = if entry.operation == "delete" {
            Operation::Delete
        } else {
            Operation::Upsert
        };
        let mut planned = Vec::new();
        for t in targets.iter().filter(|t| {
            t.config.enabled
                && if user {
                    t.config.users
                } else {
                    t.config.groups
                }
        }) {
            let mut order = NewOrder::for_change(&t.config.name, entry, operation);
            if user && operation == Operation::Delete {
                order.hold = guard.admit(conn, t)?.map(Hold::mass_delete);
            }
            planned.push(order);
        }
        Ok(planned)
    })
}
