//! What operators see of reconciliation and start: aggregation and full-sync runs with their
//! findings, the accounts read from a target and how they correlate.

use std::collections::HashMap;

use crate::storage::{accounts, sync_runs, target_locks};
use crate::storage::{Db, StoreError};

pub use crate::storage::accounts::{situation, Account, AccountFilter};
pub use crate::storage::sync_runs::{Finding, SyncRun};
pub use crate::storage::target_locks::TargetLock;

/// Why a full sync did not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("a full sync of {target} is already running (run {run})")]
    Running { target: String, run: i64 },
    #[error("{0}")]
    Failed(String),
}

/// Starts a full sync (or a dry run) of `target` in the background, unless one is running;
/// answers the run's id at once (the admin API's `POST .../sync` and the console's button).
pub async fn launch_full_sync(
    directory: crate::provisioning::Context,
    target: std::sync::Arc<crate::provisioning::Target>,
    dry_run: bool,
    trigger: &'static str,
) -> Result<i64, LaunchError> {
    use super::full_sync::{self, SyncOptions};
    let options = SyncOptions { dry_run, trigger };
    let (db, name) = (directory.db().clone(), target.config.name.clone());
    let started = tokio::task::spawn_blocking(move || {
        if let Some(lock) = lock_of(&db, &name).map_err(|e| LaunchError::Failed(e.to_string()))? {
            return Err(LaunchError::Running {
                target: name,
                run: lock.sync_id.unwrap_or_default(),
            });
        }
        full_sync::start(&db, &name, options).map_err(|e| LaunchError::Failed(e.to_string()))
    })
    .await
    .map_err(|e| LaunchError::Failed(e.to_string()))??;
    actix_web::rt::spawn(async move {
        let options = SyncOptions { dry_run, trigger };
        if let Err(error) = full_sync::run(&directory, &target, started, options).await {
            tracing::warn!(%error, id = started, "full sync failed");
        }
    });
    Ok(started)
}

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
