//! Reconciliation through the admin API: start an aggregation or a full sync of a target (both
//! run in the background; the answer names the run), read runs with their drift report, and
//! list the target's aggregated accounts by situation.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::query::{self, params};
use super::targets::{find, not_found};
use super::{blocking, time, AdminError, AdminState};
use crate::provisioning::Target;
use crate::reconcile::aggregate;
use crate::reconcile::runs::{self, situation, Account, AccountFilter, Finding, SyncRun};

fn flag(params: &[(String, String)], name: &str) -> Result<bool, AdminError> {
    match params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
    {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(AdminError::BadRequest(format!(
            "{name} must be true or false, not {v:?}"
        ))),
    }
}

fn count(params: &[(String, String)], default: i64) -> Result<i64, AdminError> {
    match params.iter().find(|(k, _)| k == "count").map(|(_, v)| v) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| AdminError::BadRequest("count must be 1 to 10000".into())),
    }
}

/// The named target, built for use (its connector ready).
async fn target(state: &web::Data<AdminState>, name: &str) -> Result<Arc<Target>, AdminError> {
    let (state2, n) = (state.clone(), name.to_string());
    let known = blocking(move || find(&state2, &n)?.ok_or_else(|| not_found(&n))).await?;
    Target::from_config(&known.config)
        .map(Arc::new)
        .map_err(|e| AdminError::Conflict(format!("the target cannot be used: {e}")))
}

fn run_json(run: &SyncRun) -> Value {
    let summary = run
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok());
    json!({
        "id": run.id,
        "target": run.target,
        "kind": run.kind,
        "dryRun": run.dry_run,
        "state": run.state,
        "trigger": run.trigger,
        "started": time(run.started_at),
        "finished": run.finished_at.map(time),
        "summary": summary,
        "error": run.error,
    })
}

fn finding_json(f: &Finding) -> Value {
    json!({
        "id": f.id,
        "resourceType": f.resource_type,
        "identityId": f.identity_id,
        "remoteId": f.remote_id,
        "finding": f.finding,
        "attributes": f.attributes.as_deref().and_then(|a| serde_json::from_str::<Value>(a).ok()),
        "action": f.action,
        "orderId": f.order_id,
    })
}

fn account_json(a: &Account) -> Value {
    json!({
        "resourceType": a.resource_type,
        "remoteId": a.remote_id,
        "situation": a.situation,
        "identityId": a.identity_id,
        "candidates": a.candidates.as_deref().and_then(|c| serde_json::from_str::<Value>(c).ok()),
        "attributes": serde_json::from_str::<Value>(&a.attributes).unwrap_or(Value::Null),
        "recorded": time(a.last_seen),
    })
}

fn accepted(target: &str, id: i64, kind: &str, dry_run: bool) -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((
            "Location",
            format!("/admin/targets/{target}/syncs/{id}"),
        ))
        .json(json!({"id": id, "target": target, "kind": kind, "dryRun": dry_run, "state": "running"}))
}

/// `POST /admin/targets/{name}/aggregate`
pub async fn aggregate(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let target = target(&state, &name).await?;
    let db = state.db.clone();
    let n = name.clone();
    let id = blocking(move || Ok(runs::start_aggregation(&db, &n, "admin")?)).await?;
    let directory = state.directory.clone();
    actix_web::rt::spawn(async move {
        if let Err(error) = aggregate::run(&directory, &target, id).await {
            tracing::warn!(%error, id, "aggregation failed");
        }
    });
    Ok(accepted(&name, id, "aggregate", false))
}

/// `POST /admin/targets/{name}/sync?dryRun=true`
pub async fn sync(
    state: web::Data<AdminState>,
    name: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let dry_run = flag(&params(&req)?, "dryRun")?;
    let target = target(&state, &name).await?;
    let id = runs::launch_full_sync(state.directory.clone(), target, dry_run, "admin")
        .await
        .map_err(|e| match e {
            runs::LaunchError::Running { .. } => AdminError::Conflict(e.to_string()),
            runs::LaunchError::Failed(why) => AdminError::Internal(why),
        })?;
    Ok(accepted(&name, id, "full_sync", dry_run))
}

/// `GET /admin/targets/{name}/syncs`: the target's runs, newest first.
pub async fn list(
    state: web::Data<AdminState>,
    name: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let limit = count(&params(&req)?, 50)?;
    let (state2, n) = (state.clone(), name.into_inner());
    let found = blocking(move || {
        let db = state2.db.clone();
        find(&state2, &n)?.ok_or_else(|| not_found(&n))?;
        Ok(runs::runs_of(&db, &n, limit)?)
    })
    .await?;
    let listed: Vec<Value> = found.iter().map(run_json).collect();
    Ok(HttpResponse::Ok().json(json!({"Resources": listed})))
}

/// `GET /admin/targets/{name}/syncs/{id}?after=&count=`: the run and its findings.
pub async fn get(
    state: web::Data<AdminState>,
    path: web::Path<(String, i64)>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let (name, id) = path.into_inner();
    let params = params(&req)?;
    let limit = count(&params, 1_000)?;
    let after = match params.iter().find(|(k, _)| k == "after").map(|(_, v)| v) {
        None => 0,
        Some(v) => query::after_id(v, "a finding")?,
    };
    let db = state.db.clone();
    let (run, findings) = blocking(move || {
        runs::run_with_findings(&db, &name, id, after, limit)?
            .ok_or_else(|| AdminError::NotFound(format!("no run {id} of target {name:?}")))
    })
    .await?;
    let mut body = run_json(&run);
    let next = query::next_after(&findings, limit, |f| f.id);
    body["findings"] = Value::Array(findings.iter().map(finding_json).collect());
    body["nextAfter"] = json!(next);
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /admin/targets/{name}/accounts?situation=&resourceType=&after=&count=`
pub async fn accounts(
    state: web::Data<AdminState>,
    name: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let params = params(&req)?;
    let value = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let filter = AccountFilter {
        resource_type: value("resourceType"),
        situation: value("situation"),
        after: value("after"),
        limit: count(&params, 100)?,
    };
    if let Some(s) = &filter.situation {
        if !situation::ALL.contains(&s.as_str()) {
            return Err(AdminError::BadRequest(format!(
                "situation must be linked, correlated, uncorrelated or ambiguous, not {s:?}"
            )));
        }
    }
    let (state2, n) = (state.clone(), name.into_inner());
    let (found, counts) = blocking(move || {
        let db = state2.db.clone();
        find(&state2, &n)?.ok_or_else(|| not_found(&n))?;
        Ok(runs::accounts_of(&db, &n, &filter)?)
    })
    .await?;
    let mut totals = serde_json::Map::new();
    for ((kind, situation), n) in counts {
        let entry = totals
            .entry(kind)
            .or_insert_with(|| Value::Object(Default::default()));
        entry[situation] = json!(n);
    }
    Ok(HttpResponse::Ok().json(json!({
        "totals": totals,
        "Resources": found.iter().map(account_json).collect::<Vec<_>>(),
    })))
}
