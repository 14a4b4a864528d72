//! `POST /admin/targets/{name}/test`: tests a target's connection with its connector's check
//! (for SCIM, an authenticated `GET Users?count=1`) and reports the outcome and latency. The
//! answer is 200 whatever the outcome; `ok` says how it went.

use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::targets::{find, not_found};
use super::{blocking, AdminError, AdminState};
use crate::connectors::ConnectorError;
use crate::provisioning::Target;

pub async fn test(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let n = name.clone();
    let known = blocking(move || find(&state, &n)?.ok_or_else(|| not_found(&n))).await?;
    let started = Instant::now();
    let outcome = match Target::from_config(&known.config) {
        Err(e) => Err(ConnectorError::Permanent {
            message: e.to_string(),
            status: None,
        }),
        Ok(target) => {
            // The connector has its own timeout; this bounds connectors that might not.
            let limit = Duration::from_secs(known.config.timeout_seconds.max(1) + 5);
            match tokio::time::timeout(limit, target.connector.check()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ConnectorError::Retryable {
                    message: format!("no answer within {} s", limit.as_secs()),
                    status: None,
                    retry_after: None,
                }),
            }
        }
    };
    let latency_ms = started.elapsed().as_millis() as u64;
    Ok(HttpResponse::Ok().json(match outcome {
        Ok(found) => json!({"target": name, "ok": true, "latencyMs": latency_ms, "error": null, "httpStatus": null, "found": found}),
        Err(e) => json!({"target": name, "ok": false, "latencyMs": latency_ms, "error": e.to_string(), "httpStatus": e.status(), "found": null}),
    }))
}
