//! Change log → orders: each change becomes one order per enabled target that takes its
//! resource type. Scope is decided at delivery, against the resource's state then, so a
//! resource leaving a target's scope is deprovisioned there.
//!
//! The targets come from the registry; each planning transaction checks that the targets
//! generation is the one they were built from, and otherwise reloads them and plans again, so a
//! change accepted after a target was created (on any instance) is planned for it.

use crate::storage::change_log::ChangeEntry;
use crate::storage::orders::{self, Committed, Hold, NewOrder, Operation};
use crate::storage::{Db, StoreError};

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
/// The orders are decided here from what was read (the change log after the planner's
/// position, the mass-delete guard's counts), then handed to the store, which commits them only
/// if no other planner has planned those changes meanwhile.
fn plan_with(
    db: &Db,
    generation: Option<i64>,
    targets: &[Arc<Target>],
    limit: i64,
) -> Result<usize, PlanError> {
    let (position, entries) = orders::unplanned(db, limit)?;
    let Some(through) = entries.last().map(|e| e.seq) else {
        return Ok(0);
    };
    let mut guard = DeleteGuard::at(db.clock().now_micros());
    let planned = db.read(|conn| -> Result<Vec<NewOrder>, StoreError> {
        let mut planned = Vec::new();
        for entry in &entries {
            for order in orders_for(entry, targets) {
                planned.push(guarded(conn, &mut guard, targets, order)?);
            }
        }
        Ok(planned)
    })?;
    match orders::commit_plan(db, position, through, generation, &planned)? {
        Committed::Done => Ok(entries.len()),
        // Another instance planned these changes first: nothing left to do with them.
        Committed::PositionMoved => Ok(0),
        Committed::TargetsChanged => Err(PlanError::TargetsChanged),
    }
}

/// One order per enabled target that takes the entry's resource type.
fn orders_for<'a>(
    entry: &'a ChangeEntry,
    targets: &'a [Arc<Target>],
) -> impl Iterator<Item = NewOrder> + 'a {
    let user = entry.resource_type == "User";
    let operation = if entry.operation == "delete" {
        Operation::Delete
    } else {
        Operation::Upsert
    };
    targets
        .iter()
        .filter(move |t| {
            t.config.enabled
                && if user {
                    t.config.users
                } else {
                    t.config.groups
                }
        })
        .map(move |t| NewOrder::for_change(&t.config.name, entry, operation))
}

/// The order, held for approval when it is a user deletion past its target's mass-delete
/// guard.
fn guarded(
    conn: &mut crate::storage::DbConnection,
    guard: &mut DeleteGuard,
    targets: &[Arc<Target>],
    mut order: NewOrder,
) -> Result<NewOrder, StoreError> {
    if order.resource_type != "User" || order.operation != Operation::Delete {
        return Ok(order);
    }
    if let Some(target) = targets.iter().find(|t| t.config.name == order.target) {
        order.hold = guard.admit(conn, target)?.map(Hold::mass_delete);
    }
    Ok(order)
}
