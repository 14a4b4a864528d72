//! `POST /admin/provision-on-demand` `{"userId", "target"}`: runs one user's plan on one target
//! now and answers with the step-by-step trace and the order it is recorded as.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::orders::order_json;
use super::targets::{find, not_found};
use super::{blocking, AdminError, AdminState};
use crate::provisioning::on_demand_run::{provision_user, OnDemandError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Body {
    user_id: String,
    target: String,
}

pub async fn run(
    state: web::Data<AdminState>,
    raw: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let body: Body = serde_json::from_slice(&raw).map_err(|e| {
        AdminError::BadRequest(format!(
            "send {{\"userId\": \"...\", \"target\": \"...\"}}: {e}"
        ))
    })?;
    let (state2, name) = (state.clone(), body.target.clone());
    let known = blocking(move || find(&state2, &name)?.ok_or_else(|| not_found(&name))).await?;
    let (order, trace) = provision_user(&state.directory, &known.config, &body.user_id)
        .await
        .map_err(|e| match e {
            OnDemandError::NoUser(_) => AdminError::NotFound(e.to_string()),
            OnDemandError::Failed(why) => AdminError::Internal(why),
            _ => AdminError::Conflict(e.to_string()),
        })?;
    Ok(HttpResponse::Ok().json(json!({
        "order": order_json(&order),
        "trace": trace,
    })))
}
