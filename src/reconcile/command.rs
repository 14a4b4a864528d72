//! `scimgate aggregate` and `scimgate sync`: one run against one target, to completion, from
//! the command line (the admin API starts the same runs in the background).

use std::sync::Arc;

use serde_json::Value;

use super::full_sync::{self, SyncOptions};
use super::{aggregate, ReconcileError};
use crate::config::Config;
use crate::identity::Directory;
use crate::provisioning::Context;
use crate::provisioning::Target;
use crate::storage::{sync_runs, Db};
use crate::targets::lookup::{self, LookupError};

/// The config file's or the database's target of that name, ready to use.
fn target(config: &Config, db: &Db, name: &str) -> Result<Arc<Target>, ReconcileError> {
    let known = lookup::find_in(db, &config.targets, name)
        .map_err(|e| match e {
            LookupError::Store(e) => ReconcileError::from(e),
            LookupError::Settings(e) => ReconcileError::Config(e.to_string()),
        })?
        .ok_or_else(|| ReconcileError::Config(format!("no target named {name:?}")))?;
    super::check_settings(&known.config.reconcile).map_err(ReconcileError::Config)?;
    Target::from_config(&known.config)
        .map(Arc::new)
        .map_err(|e| ReconcileError::Config(e.to_string()))
}

fn directory(config: &Config) -> Result<Context, ReconcileError> {
    let db = config.open_database(config.pool_size)?;
    let base_url = config
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}/scim/v2", config.listen));
    Ok(Context::new(Directory::new(db.clone(), &base_url), db))
}

fn runtime() -> Result<tokio::runtime::Runtime, ReconcileError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ReconcileError::Task(e.to_string()))
}

/// Aggregates the target; returns the run's report.
pub fn aggregate(config: &Config, name: &str) -> Result<Value, ReconcileError> {
    let directory = directory(config)?;
    let target = target(config, directory.db(), name)?;
    let id = sync_runs::start(directory.db(), name, "aggregate", false, "cli")?;
    let report = runtime()?.block_on(aggregate::run(&directory, &target, id))?;
    let mut out = serde_json::to_value(report).unwrap_or_default();
    out["id"] = Value::from(id);
    Ok(out)
}

/// Runs a full sync of the target (or only computes it, with `dry_run`).
pub fn sync(config: &Config, name: &str, dry_run: bool) -> Result<Value, ReconcileError> {
    let directory = directory(config)?;
    let target = target(config, directory.db(), name)?;
    let options = SyncOptions {
        dry_run,
        trigger: "cli",
    };
    let id = full_sync::start(directory.db(), name, options)?;
    let report = runtime()?.block_on(full_sync::run(&directory, &target, id, options))?;
    Ok(serde_json::to_value(report).unwrap_or_default())
}
