//! Deciding orders that await approval: `POST /admin/orders/{id}/approve` and `/decline`, and
//! in bulk `POST /admin/orders/approve` and `/decline` with a query. The decider is the admin
//! token's name.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::orders::order_json;
use super::{blocking, AdminError, AdminState};
use crate::auth::Principal;
use crate::provisioning::operator::{self, Action, Decision, HeldQuery, Operation};

/// The body of a decision on one order.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OneBody {
    comment: Option<String>,
}

/// The body of a bulk decision: which awaiting orders, and why.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BulkBody {
    target: Option<String>,
    operation: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    comment: Option<String>,
}

/// An empty body means no comment; anything else must be the documented JSON.
fn body<T: Default + serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, AdminError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(raw).map_err(|e| AdminError::BadRequest(format!("invalid body: {e}")))
}

/// The admin token's name (`token:ops` → `ops`).
fn decider(principal: &Principal) -> String {
    principal
        .actor
        .strip_prefix("token:")
        .unwrap_or(&principal.actor)
        .to_string()
}

async fn decide_one(
    state: web::Data<AdminState>,
    principal: Principal,
    id: &str,
    raw: &[u8],
    approve: bool,
) -> Result<HttpResponse, AdminError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AdminError::NotFound(format!("no order {id}")))?;
    let body: OneBody = body(raw)?;
    let decision = Decision {
        approve,
        by: decider(&principal),
        comment: body.comment,
    };
    let db = state.db.clone();
    match blocking(move || Ok(operator::decide(&db, id, &decision)?)).await? {
        Action::Done(order) => Ok(HttpResponse::Ok().json(order_json(&order))),
        Action::NotFound => Err(AdminError::NotFound(format!("no order {id}"))),
        Action::Refused(why) => Err(AdminError::Conflict(why)),
    }
}

/// `POST /admin/orders/{id}/approve`: the held order goes out in the next round.
pub async fn approve(
    state: web::Data<AdminState>,
    principal: Principal,
    id: web::Path<String>,
    raw: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    decide_one(state, principal, &id, &raw, true).await
}

/// `POST /admin/orders/{id}/decline`: the held order becomes `Inactive`, never sent.
pub async fn decline(
    state: web::Data<AdminState>,
    principal: Principal,
    id: web::Path<String>,
    raw: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    decide_one(state, principal, &id, &raw, false).await
}

async fn decide_all(
    state: web::Data<AdminState>,
    principal: Principal,
    raw: &[u8],
    approve: bool,
) -> Result<HttpResponse, AdminError> {
    let body: BulkBody = body(raw)?;
    // An empty query would decide every held order of every target: say so explicitly.
    if body.target.is_none()
        && body.operation.is_none()
        && body.resource_type.is_none()
        && body.resource_id.is_none()
    {
        return Err(AdminError::BadRequest(
            "name the orders to decide: at least one of target, operation, resourceType, resourceId"
                .into(),
        ));
    }
    let operation = match body.operation.as_deref() {
        Some(text) => Some(Operation::parse(text).ok_or_else(|| {
            AdminError::BadRequest(format!(
                "unknown operation {text:?}: upsert, delete, delete_orphan or disable_orphan"
            ))
        })?),
        None => None,
    };
    let query = HeldQuery {
        target: body.target,
        operation,
        resource_type: body.resource_type,
        resource_id: body.resource_id,
    };
    let decision = Decision {
        approve,
        by: decider(&principal),
        comment: body.comment,
    };
    let db = state.db.clone();
    let count = blocking(move || Ok(operator::decide_matching(&db, &query, &decision)?)).await?;
    let verdict = if approve { "approved" } else { "declined" };
    Ok(HttpResponse::Ok().json(json!({ verdict: count })))
}

/// `POST /admin/orders/approve`: every awaiting order matching the query, at once.
pub async fn approve_all(
    state: web::Data<AdminState>,
    principal: Principal,
    raw: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    decide_all(state, principal, &raw, true).await
}

/// `POST /admin/orders/decline`: every awaiting order matching the query, at once.
pub async fn decline_all(
    state: web::Data<AdminState>,
    principal: Principal,
    raw: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    decide_all(state, principal, &raw, false).await
}
