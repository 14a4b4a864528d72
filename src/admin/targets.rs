//! `/admin/targets`: the configured targets and their delivery health. Secrets never appear.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::{blocking, time, AdminError, AdminState};
use crate::config::TargetConfig;
use crate::storage::orders::{self, OrderState};

fn summary(t: &TargetConfig) -> Value {
    json!({
        "name": t.name,
        "kind": t.kind,
        "enabled": t.enabled,
        "url": t.url,
        "auth": t.auth.kind.as_deref().unwrap_or("none"),
        "users": t.users,
        "usersFilter": t.users_filter,
        "groups": t.groups,
        "deprovision": t.deprovision,
        "maxAttempts": t.max_attempts,
        "concurrency": t.concurrency,
    })
}

pub async fn list(state: web::Data<AdminState>) -> HttpResponse {
    HttpResponse::Ok()
        .json(json!({"targets": state.targets.iter().map(summary).collect::<Vec<_>>()}))
}

/// `GET /admin/targets/{name}/status`: orders per state, oldest open order, last success/error.
pub async fn status(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let Some(target) = state.targets.iter().find(|t| t.name == name) else {
        return Err(AdminError::NotFound(format!("no target named {name:?}")));
    };
    let db = state.db.clone();
    let n = name.clone();
    let status = blocking(move || Ok(db.read(|c| orders::status(c, &n))?)).await?;
    let counts: serde_json::Map<String, Value> = OrderState::ALL
        .iter()
        .map(|s| {
            (
                s.as_str().to_string(),
                json!(status.counts.get(s.as_str()).copied().unwrap_or(0)),
            )
        })
        .collect();
    let now = crate::storage::now_micros();
    let health = state.quarantine.health(&name);
    Ok(HttpResponse::Ok().json(json!({
        "target": summary(target),
        "orders": counts,
        "oldestOpenOrder": status.oldest_pending_at.map(time),
        "oldestOpenOrderAgeSeconds": status.oldest_pending_at.map(|t| (now - t) / 1_000_000),
        "lastSuccess": status.last_success_at.map(time),
        "lastError": status.last_error.map(|(at, e)| json!({"at": time(at), "error": e})),
        "quarantine": {
            "quarantined": health.quarantined_since.is_some(),
            "since": health.quarantined_since.map(time),
            "nextProbe": health.next_probe_at.map(time),
            "consecutiveFailures": health.consecutive_failures,
        },
    })))
}
