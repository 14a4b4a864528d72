//! The reconciliation page: each target's runs with their counts and timings, a run's drift
//! report (missing, differing attributes with expected and actual values, orphans, ambiguous
//! matches) linked to the orders it emitted, and the buttons that start a dry run or a full
//! sync through the same service as the admin API.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;

use super::session::{acting, html, redirect, Operator};
use crate::admin::AdminState;
use crate::provisioning::Target;
use crate::reconcile::runs::{self, Finding, LaunchError, SyncRun};
use crate::scim::output::format_time;
use crate::targets::lookup;

struct RunLine {
    id: i64,
    kind: String,
    state: String,
    trigger: String,
    started: String,
    took: String,
    counts: String,
    error: Option<String>,
    running: bool,
}

fn run_line(run: &SyncRun) -> RunLine {
    let kind = match (run.kind.as_str(), run.dry_run) {
        ("full_sync", true) => "dry run".to_string(),
        ("full_sync", false) => "full sync".to_string(),
        (other, _) => other.to_string(),
    };
    let counts = run
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| v.as_object().cloned())
        .map(|fields| {
            fields
                .iter()
                .filter(|(k, v)| v.is_number() && k.as_str() != "id")
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(" · ")
        })
        .unwrap_or_default();
    RunLine {
        id: run.id,
        kind,
        state: run.state.clone(),
        trigger: run.trigger.clone(),
        started: format_time(run.started_at),
        took: run
            .finished_at
            .map(|end| format!("{:.1} s", (end - run.started_at) as f64 / 1e6))
            .unwrap_or_else(|| "…".into()),
        counts,
        error: run.error.clone(),
        running: run.state == "running",
    }
}

struct TargetRuns {
    name: String,
    runs: Vec<RunLine>,
}

#[derive(Template)]
#[template(path = "console/reconcile.html")]
struct ReconcilePage {
    operator: Option<Operator>,
    flash: Option<String>,
    targets: Vec<TargetRuns>,
    can_act: bool,
    csrf: String,
}

/// `GET /ui/reconcile`
pub async fn page(admin: web::Data<AdminState>, operator: Operator) -> HttpResponse {
    let state = admin.clone();
    let found = web::block(move || -> Result<Vec<TargetRuns>, String> {
        let known = lookup::all_in(&state.db, &state.targets).map_err(|e| e.to_string())?;
        known
            .into_iter()
            .map(|k| {
                let runs =
                    runs::runs_of(&state.db, &k.config.name, 10).map_err(|e| e.to_string())?;
                Ok(TargetRuns {
                    name: k.config.name,
                    runs: runs.iter().map(run_line).collect(),
                })
            })
            .collect()
    })
    .await;
    let Ok(Ok(targets)) = found else {
        return HttpResponse::ServiceUnavailable().body("the database is unavailable");
    };
    let (can_act, csrf) = (operator.may_act(), operator.csrf.clone());
    html(ReconcilePage {
        operator: Some(operator),
        flash: None,
        targets,
        can_act,
        csrf,
    })
}

#[derive(Deserialize)]
pub struct SyncForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    dry_run: String,
}

/// `POST /ui/reconcile/{target}/sync` (`dry_run` = `true` or `false`): starts it and shows
/// the run.
pub async fn start(
    req: HttpRequest,
    admin: web::Data<AdminState>,
    name: web::Path<String>,
    form: web::Form<SyncForm>,
) -> HttpResponse {
    let operator = match acting(&req, &admin, &form.csrf).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    let dry_run = match form.dry_run.as_str() {
        "true" => true,
        "false" => false,
        _ => return HttpResponse::BadRequest().body("dry_run must be true or false"),
    };
    let name = name.into_inner();
    let (state, n) = (admin.clone(), name.clone());
    let known = match web::block(move || lookup::find_in(&state.db, &state.targets, &n)).await {
        Ok(Ok(Some(known))) => known,
        Ok(Ok(None)) => return HttpResponse::NotFound().body(format!("no target {name:?}")),
        _ => return HttpResponse::ServiceUnavailable().body("the database is unavailable"),
    };
    let target = match Target::from_config(&known.config) {
        Ok(target) => Arc::new(target),
        Err(e) => return HttpResponse::Conflict().body(format!("the target cannot be used: {e}")),
    };
    match runs::launch_full_sync(admin.directory.clone(), target, dry_run, "console").await {
        Ok(id) => {
            tracing::info!(actor = %operator.actor, target = %name, run = id, dry_run, "console sync");
            let path = url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>();
            redirect(&format!("/ui/reconcile/{path}/runs/{id}"))
        }
        Err(e @ LaunchError::Running { .. }) => HttpResponse::Conflict().body(e.to_string()),
        Err(LaunchError::Failed(why)) => HttpResponse::InternalServerError().body(why),
    }
}

struct FindingLine {
    finding: String,
    resource_type: String,
    identity_id: Option<String>,
    remote_id: Option<String>,
    attributes: Vec<(String, String, String)>,
    action: String,
    order_id: Option<i64>,
}

fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn finding_line(f: &Finding) -> FindingLine {
    let attributes = f
        .attributes
        .as_deref()
        .and_then(|a| serde_json::from_str::<Vec<Value>>(a).ok())
        .unwrap_or_default()
        .iter()
        .map(|a| {
            (
                shown(a.get("name")),
                shown(a.get("expected")),
                shown(a.get("actual")),
            )
        })
        .collect();
    FindingLine {
        finding: f.finding.clone(),
        resource_type: f.resource_type.clone(),
        identity_id: f.identity_id.clone(),
        remote_id: f.remote_id.clone(),
        attributes,
        action: f.action.clone(),
        order_id: f.order_id,
    }
}

#[derive(Template)]
#[template(path = "console/run.html")]
struct RunPage {
    operator: Option<Operator>,
    flash: Option<String>,
    target: String,
    run: RunLine,
    findings: Vec<FindingLine>,
}

/// `GET /ui/reconcile/{target}/runs/{id}`: the run and its drift report (refreshed while it
/// runs).
pub async fn run(
    admin: web::Data<AdminState>,
    path: web::Path<(String, i64)>,
    operator: Operator,
) -> HttpResponse {
    let (target, id) = path.into_inner();
    let (db, name) = (admin.db.clone(), target.clone());
    let found = web::block(move || runs::run_with_findings(&db, &name, id, 0, 1_000)).await;
    let (run, findings) = match found {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return HttpResponse::NotFound().body(format!("no run {id} of {target:?}")),
        _ => return HttpResponse::ServiceUnavailable().body("the database is unavailable"),
    };
    html(RunPage {
        operator: Some(operator),
        flash: None,
        target,
        run: run_line(&run),
        findings: findings.iter().map(finding_line).collect(),
    })
}
