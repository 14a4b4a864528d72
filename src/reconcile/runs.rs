//! What operators see of reconciliation and start: aggregation and full-sync runs with their
//! findings, the accounts read from a target and how they correlate.

use std::collections::HashMap;

use crate::storage::{accounts, sync_runs, target_locks};
use crate::storage::{Db, StoreError};

pub use crate::storage::accounts::{situation, Account, AccountFilter};
pub use crate::storage::sync_runs::{Finding, SyncRun};
pub use crate::storage::target_locks::TargetLock;

/// Records the start of an aggregation of `target`; its id.
pub fn start_aggregation(db: &Db, target: &str, trigger: &str) -> Result<i64, StoreError> {
    sync_runs::start(db, target, "aggregate", false, trigger)
}

/// Who holds the target's lock now (a full sync running), if anyone.
pub fn lock_of(db: &Db, target: &str) -> Result<Option<TargetLock>, StoreError> {
    let now = db.clock().now_micros();
    db.read(|c| target_locks::held(c, target, now))
}

/// The target's latest runs, newest first.
pub fn runs_of(db: &Db, target: &str, limit: i64) -> Result<Vec<SyncRun>, StoreError> {
    db.read(|c| sync_runs::of_target(c, target, limit))
}

/// A run of `target` and a page of its findings (ids after `after`).
pub fn run_with_findings(
    db: &Db,
    target: &str,
    id: i64,
    after: i64,
    limit: i64,
) -> Result<Option<(SyncRun, Vec<Finding>)>, StoreError> {
    db.read(|c| {
        let Some(run) = sync_runs::find(c, id)?.filter(|r| r.target == target) else {
            return Ok(None);
        };
        Ok(Some((run, sync_runs::findings(c, id, after, limit)?)))
    })
}

/// How many accounts a target has, by (resource type, situation).
pub type AccountCounts = HashMap<(String, String), i64>;

/// A page of the accounts read from `target`, and how many there are in all.
pub fn accounts_of(
    db: &Db,
    target: &str,
    filter: &AccountFilter,
) -> Result<(Vec<Account>, AccountCounts), StoreError> {
    db.read(|c| {
        Ok((
            accounts::page(c, target, filter)?,
            accounts::counts(c, target)?,
        ))
    })
}
