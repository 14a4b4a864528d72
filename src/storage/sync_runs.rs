//! Aggregation and full-sync runs per target, and each full sync's findings (its drift report).

use diesel::prelude::*;

use super::events::{self, EventType, NewEvent};
use super::schema::{sync_drift, sync_runs};
use super::{insert_rows, Db, DbConnection, Micros, StoreError, WriteTx};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sync_runs)]
pub struct SyncRun {
    pub id: i64,
    pub target: String,
    /// `aggregate` or `full_sync`.
    pub kind: String,
    pub dry_run: bool,
    /// `running`, `completed` or `failed`.
    pub state: String,
    /// `admin`, `cli` or `schedule`.
    pub trigger: String,
    pub started_at: Micros,
    pub finished_at: Option<Micros>,
    /// Counts, as JSON.
    pub summary: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sync_drift)]
pub struct Finding {
    pub id: i64,
    pub sync_id: i64,
    pub resource_type: String,
    pub identity_id: Option<String>,
    pub remote_id: Option<String>,
    /// `missing`, `differs`, `orphan`, `ambiguous` or `out_of_scope`.
    pub finding: String,
    /// JSON list of `{name, expected, actual}`.
    pub attributes: Option<String>,
    /// `create`, `update`, `delete`, `disable`, `deprovision` or `none`.
    pub action: String,
    pub order_id: Option<i64>,
}

/// A finding before it is stored.
#[derive(Debug, Clone)]
pub struct NewFinding {
    pub resource_type: String,
    pub identity_id: Option<String>,
    pub remote_id: Option<String>,
    pub finding: &'static str,
    pub attributes: Option<String>,
    pub action: &'static str,
    pub order_id: Option<i64>,
}

pub fn start(
    db: &Db,
    target: &str,
    kind: &str,
    dry_run: bool,
    trigger: &str,
) -> Result<i64, StoreError> {
    db.write(|tx| {
        let now = tx.now();
        Ok(diesel::insert_into(sync_runs::table)
            .values((
                sync_runs::target.eq(target),
                sync_runs::kind.eq(kind),
                sync_runs::dry_run.eq(dry_run),
                sync_runs::state.eq("running"),
                sync_runs::trigger.eq(trigger),
                sync_runs::started_at.eq(now),
            ))
            .returning(sync_runs::id)
            .get_result(tx.conn())?)
    })
}

/// Records how a run ended.
pub fn finish(
    tx: &mut WriteTx<'_>,
    id: i64,
    summary: &serde_json::Value,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let now = tx.now();
    let (target, kind, dry_run, trigger): (String, String, bool, String) =
        diesel::update(sync_runs::table.find(id))
            .set((
                sync_runs::state.eq(if error.is_some() {
                    "failed"
                } else {
                    "completed"
                }),
                sync_runs::finished_at.eq(now),
                sync_runs::summary.eq(summary.to_string()),
                sync_runs::error.eq(error),
            ))
            .returning((
                sync_runs::target,
                sync_runs::kind,
                sync_runs::dry_run,
                sync_runs::trigger,
            ))
            .get_result(tx.conn())?;
    let mut data = serde_json::json!({
        "run": id,
        "target": target,
        "kind": kind,
        "dryRun": dry_run,
        "trigger": trigger,
        "state": if error.is_some() { "failed" } else { "completed" },
        "counts": summary,
    });
    if let Some(error) = error {
        data["error"] = serde_json::json!(error);
    }
    let event = NewEvent {
        event_type: EventType::SyncFinished,
        resource_type: "SyncRun".into(),
        resource_id: id.to_string(),
        resource_seq: 1,
        target: Some(target),
        actor: "scimgate".into(),
        data,
    };
    events::append(tx, &[event])
}

pub fn find(conn: &mut DbConnection, id: i64) -> Result<Option<SyncRun>, StoreError> {
    Ok(sync_runs::table
        .find(id)
        .select(SyncRun::as_select())
        .first(conn)
        .optional()?)
}

/// A target's runs, newest first.
pub fn of_target(
    conn: &mut DbConnection,
    target: &str,
    limit: i64,
) -> Result<Vec<SyncRun>, StoreError> {
    Ok(sync_runs::table
        .filter(sync_runs::target.eq(target))
        .order(sync_runs::id.desc())
        .limit(limit)
        .select(SyncRun::as_select())
        .load(conn)?)
}

/// When the target's last full sync started, if ever (schedules count from it).
pub fn last_full_sync_start(
    conn: &mut DbConnection,
    target: &str,
) -> Result<Option<Micros>, StoreError> {
    Ok(sync_runs::table
        .filter(sync_runs::target.eq(target))
        .filter(sync_runs::kind.eq("full_sync"))
        .filter(sync_runs::dry_run.eq(false))
        .order(sync_runs::id.desc())
        .select(sync_runs::started_at)
        .first(conn)
        .optional()?)
}

pub fn record_findings(
    tx: &mut WriteTx<'_>,
    sync_id: i64,
    findings: &[NewFinding],
) -> Result<(), StoreError> {
    for chunk in findings.chunks(500) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|f| {
                (
                    sync_drift::sync_id.eq(sync_id),
                    sync_drift::resource_type.eq(&f.resource_type),
                    sync_drift::identity_id.eq(&f.identity_id),
                    sync_drift::remote_id.eq(&f.remote_id),
                    sync_drift::finding.eq(f.finding),
                    sync_drift::attributes.eq(&f.attributes),
                    sync_drift::action.eq(f.action),
                    sync_drift::order_id.eq(f.order_id),
                )
            })
            .collect();
        insert_rows!(tx, sync_drift::table, rows);
    }
    Ok(())
}

/// A run's findings in order, after `after` (keyset paging).
pub fn findings(
    conn: &mut DbConnection,
    sync_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<Finding>, StoreError> {
    Ok(sync_drift::table
        .filter(sync_drift::sync_id.eq(sync_id))
        .filter(sync_drift::id.gt(after))
        .order(sync_drift::id)
        .limit(limit)
        .select(Finding::as_select())
        .load(conn)?)
}
