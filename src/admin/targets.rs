//! `/admin/targets` reads: every target (config file and API) with its settings, and each
//! target's delivery health as the database holds it, whichever instance answers. Secrets
//! never appear.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::target_view::view;
use super::{blocking, time, AdminError, AdminState};
use crate::provisioning::operator::{self, OrderState, TargetState};
use crate::targets::lookup::{self, Known, LookupError};

/// The target named `name`, from the config file or the database.
pub fn find(state: &AdminState, name: &str) -> Result<Option<Known>, AdminError> {
    lookup::find_in(&state.db, &state.targets, name).map_err(lookup_failed)
}

fn lookup_failed(error: LookupError) -> AdminError {
    match error {
        LookupError::Store(e) => AdminError::from(e),
        LookupError::Settings(e) => AdminError::Internal(e.to_string()),
    }
}

pub fn not_found(name: &str) -> AdminError {
    AdminError::NotFound(format!("no target named {name:?}"))
}

/// `GET /admin/targets`: the config file's targets, then the API's, by name.
pub async fn list(state: web::Data<AdminState>) -> Result<HttpResponse, AdminError> {
    let known = blocking(move || {
        let db = state.db.clone();
        lookup::all_in(&db, &state.targets).map_err(lookup_failed)
    })
    .await?;
    let all: Vec<Value> = known.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({ "targets": all })))
}

/// `GET /admin/targets/{name}`
pub async fn get(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let known = blocking(move || find(&state, &name)?.ok_or_else(|| not_found(&name))).await?;
    Ok(HttpResponse::Ok().json(view(&known)))
}

/// `GET /admin/targets/{name}/status`: orders per state, oldest open order, last success and
/// error, and quarantine.
pub async fn status(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let clock = state.db.clock().clone();
    let (known, current) = blocking(move || {
        let db = state.db.clone();
        let known = find(&state, &name)?.ok_or_else(|| not_found(&name))?;
        Ok((known, operator::target_state(&db, &name)?))
    })
    .await?;
    let TargetState {
        orders: status,
        health,
        guard,
        lock,
    } = current;
    let counts: serde_json::Map<String, Value> = OrderState::ALL
        .iter()
        .map(|s| {
            (
                s.as_str().to_string(),
                json!(status.counts.get(s.as_str()).copied().unwrap_or(0)),
            )
        })
        .collect();
    let now = clock.now_micros();
    Ok(HttpResponse::Ok().json(json!({
        "target": view(&known),
        "orders": counts,
        "oldestOpenOrder": status.oldest_pending_at.map(time),
        "oldestOpenOrderAgeSeconds": status.oldest_pending_at.map(|t| (now - t) / 1_000_000),
        "lastSuccess": status.last_success_at.map(time),
        "lastError": status.last_error.map(|(at, e)| json!({"at": time(at), "error": e})),
        "quarantine": {
            "quarantined": health.quarantined_since.is_some(),
            "since": health.quarantined_since.map(time),
            "nextProbe": health.next_probe_at.map(time),
            "probeIntervalSeconds": health.quarantined_since.map(|_| health.probe_delay as f64 / 1e6),
            "consecutiveFailures": health.consecutive_failures,
            "failingSince": health.failing_since.map(time),
        },
        "massDeleteGuard": {"held": guard.0, "reason": guard.1},
        "fullSync": lock.map(|l| json!({"running": true, "syncId": l.sync_id, "since": time(l.acquired_at)})),
    })))
}
