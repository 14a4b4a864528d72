//! A full sync of one target: take the target's lock (incremental delivery to it waits), let
//! deliveries in flight finish, aggregate, compare, and emit the corrective orders with the
//! drift report, all in one transaction; then release the lock. Corrective orders are
//! delivered by the workers like any other, after older orders of the same resource, and a
//! correction supersedes the older pending orders of its resource (they become Inactive).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::aggregate::{self, AggregationReport};
use super::diff::{self, Plan};
use super::error::{blocking, ReconcileError};
use crate::provisioning::Context;
use crate::provisioning::Target;
use crate::storage::orders::Hold;
use crate::storage::sync_runs::{self, NewFinding};
use crate::storage::{corrections, target_locks, Db};

/// How long the lock lives without renewal: a sync whose process died frees its target.
const LOCK_TTL: Duration = Duration::from_secs(60);
/// What a full sync of a message queue reports instead of drift.
const UNREADABLE: &str = "a message queue cannot be read back (aggregated), so no drift can be measured: every resource in scope was published again as an upsert with origin \"sync\"";
/// Longest wait for deliveries that were in flight when the lock was taken.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
pub struct SyncOptions<'a> {
    /// Compute and report the plan; send nothing, emit no orders.
    pub dry_run: bool,
    /// `admin`, `cli` or `schedule`.
    pub trigger: &'a str,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub id: i64,
    pub dry_run: bool,
    pub aggregation: AggregationReport,
    pub compared: u64,
    pub missing: u64,
    pub differs: u64,
    pub orphans: u64,
    pub ambiguous: u64,
    pub out_of_scope: u64,
    /// Resources published again to a target that cannot be read back (a message queue).
    pub republished: u64,
    pub orders_emitted: u64,
    /// Orders held for approval by the mass-delete guard.
    pub orders_held: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_reason: Option<String>,
    /// What the run could not do, and what it did instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub aggregate_ms: u64,
    pub diff_ms: u64,
}

/// Starts a run record; the caller then runs [`run`] with its id (the admin API answers with
/// the id before the sync ends).
pub fn start(db: &Db, target: &str, options: SyncOptions<'_>) -> Result<i64, ReconcileError> {
    Ok(sync_runs::start(
        db,
        target,
        "full_sync",
        options.dry_run,
        options.trigger,
    )?)
}

/// Runs full sync `id` (from [`start`]) and records how it ended.
pub async fn run(
    directory: &Context,
    target: &Arc<Target>,
    id: i64,
    options: SyncOptions<'_>,
) -> Result<SyncReport, ReconcileError> {
    let db = directory.db().clone();
    let result = locked(directory, target, id, options).await;
    if let Err(error) = &result {
        let message = error.to_string();
        let _ = blocking(move || {
            db.write(|tx| sync_runs::finish(tx, id, &json!({}), Some(&message)))
                .map_err(ReconcileError::from)
        })
        .await;
    }
    result
}

async fn locked(
    directory: &Context,
    target: &Arc<Target>,
    id: i64,
    options: SyncOptions<'_>,
) -> Result<SyncReport, ReconcileError> {
    let db = directory.db().clone();
    let name = target.config.name.clone();
    let holder = format!("full-sync:{id}:{}", uuid::Uuid::new_v4());
    let ttl = LOCK_TTL.as_micros() as i64;
    let taken = {
        let (db, name, holder) = (db.clone(), name.clone(), holder.clone());
        blocking(move || Ok(target_locks::acquire(&db, &name, &holder, Some(id), ttl)?)).await?
    };
    if !taken {
        return Err(ReconcileError::Busy(format!(
            "a full sync of {name} is already running"
        )));
    }
    let renewal = {
        let (db, name, holder) = (db.clone(), name.clone(), holder.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LOCK_TTL / 3).await;
                let (db, lock, holder) = (db.clone(), name.clone(), holder.clone());
                let renewed = tokio::task::spawn_blocking(move || {
                    target_locks::renew(&db, &lock, &holder, ttl)
                })
                .await;
                if !matches!(renewed, Ok(Ok(true))) {
                    tracing::warn!(target = %name, "could not renew the full-sync lock");
                }
            }
        })
    };
    let result = synchronise(directory, target, id, options).await;
    renewal.abort();
    let released = blocking(move || Ok(target_locks::release(&db, &name, &holder)?)).await;
    if let Err(error) = released {
        tracing::warn!(%error, "releasing the full-sync lock failed; it expires by itself");
    }
    result
}

async fn synchronise(
    directory: &Context,
    target: &Arc<Target>,
    id: i64,
    options: SyncOptions<'_>,
) -> Result<SyncReport, ReconcileError> {
    let name = target.config.name.clone();
    drain(directory.db(), &name).await?;
    let clock = Instant::now();
    let (aggregation, note) = if target.publisher.is_some() {
        (AggregationReport::default(), Some(UNREADABLE.to_string()))
    } else {
        (aggregate::aggregate(directory, target, id).await?, None)
    };
    let aggregate_ms = clock.elapsed().as_millis() as u64;
    let clock = Instant::now();
    let plan = {
        let directory = directory.clone();
        // The comparison is CPU and store work: off the async runtime, with the target's
        // connector (for its notion of difference) shared in.
        let target = target.clone();
        blocking(move || diff::plan(&directory, &target)).await?
    };
    let diff_ms = clock.elapsed().as_millis() as u64;
    let mut report = SyncReport {
        id,
        dry_run: options.dry_run,
        aggregation,
        compared: plan.compared,
        note,
        aggregate_ms,
        diff_ms,
        ..SyncReport::default()
    };
    let (findings, corrections) = guarded(target, plan, &mut report);
    let db = directory.db().clone();
    let summary = serde_json::to_value(&report).unwrap_or_default();
    let dry_run = options.dry_run;
    let emitted = blocking(move || {
        db.write(|tx| {
            let mut findings = findings;
            let mut emitted = 0u64;
            if !dry_run {
                let (indices, list): (Vec<usize>, Vec<_>) = corrections.into_iter().unzip();
                let ids = corrections::insert(tx, &name, id, &list)?;
                for (index, order) in indices.into_iter().zip(ids) {
                    findings[index].order_id = Some(order);
                    emitted += 1;
                }
            }
            sync_runs::record_findings(tx, id, &findings)?;
            let mut summary = summary;
            summary["ordersEmitted"] = json!(emitted);
            sync_runs::finish(tx, id, &summary, None)?;
            Ok::<_, crate::storage::StoreError>(emitted)
        })
        .map_err(ReconcileError::from)
    })
    .await?;
    report.orders_emitted = emitted;
    Ok(report)
}

/// Counts the findings and applies the mass-delete guard: when the plan would delete or
/// disable more than the target allows, those orders wait for approval.
fn guarded(
    target: &Target,
    plan: Plan,
    report: &mut SyncReport,
) -> (Vec<NewFinding>, Vec<(usize, corrections::Correction)>) {
    let removals = plan.planned.iter().filter(|p| p.removes()).count() as u64;
    let held = target
        .config
        .reconcile
        .mass_delete(removals, plan.population);
    let mut findings = Vec::with_capacity(plan.planned.len());
    let mut orders = Vec::new();
    for (index, planned) in plan.planned.into_iter().enumerate() {
        match planned.finding.finding {
            "missing" => report.missing += 1,
            "differs" => report.differs += 1,
            "orphan" => report.orphans += 1,
            "ambiguous" => report.ambiguous += 1,
            "out_of_scope" => report.out_of_scope += 1,
            "republished" => report.republished += 1,
            _ => {}
        }
        let removes = planned.removes();
        if let Some(mut correction) = planned.correction {
            if removes {
                if let Some(why) = &held {
                    correction.hold = Some(Hold::mass_delete(why.clone()));
                    report.orders_held += 1;
                }
            }
            orders.push((index, correction));
        }
        findings.push(planned.finding);
    }
    report.held_reason = held.filter(|_| report.orders_held > 0);
    (findings, orders)
}

/// Waits until no delivery to the target is in flight (claimed before the lock was taken).
async fn drain(db: &Db, target: &str) -> Result<(), ReconcileError> {
    let started = Instant::now();
    loop {
        let (db2, name) = (db.clone(), target.to_string());
        let busy = blocking(move || {
            Ok(db2.read(|c| target_locks::in_flight(c, &name, db2.clock().now_micros()))?)
        })
        .await?;
        if busy == 0 || started.elapsed() > DRAIN_LIMIT {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
