//! `POST /admin/targets/{name}/test`: tests a target's connection with its connector's check
//! (for SCIM, an authenticated `GET Users?count=1`) and reports the outcome and latency. The
//! answer is 200 whatever the outcome; `ok` says how it went.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::targets::{find, not_found};
use super::{blocking, AdminError, AdminState};
use crate::catalog::test_connection;

pub async fn test(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let n = name.clone();
    let known = blocking(move || find(&state, &n)?.ok_or_else(|| not_found(&n))).await?;
    let tested = test_connection(&known.config).await;
    let latency_ms = tested.latency_ms;
    Ok(HttpResponse::Ok().json(match tested.outcome {
        Ok(found) => json!({"target": name, "ok": true, "latencyMs": latency_ms, "error": null, "httpStatus": null, "found": found}),
        Err(e) => json!({"target": name, "ok": false, "latencyMs": latency_ms, "error": e.to_string(), "httpStatus": e.status(), "found": null}),
    }))
}
