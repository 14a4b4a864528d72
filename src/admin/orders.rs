//! `/admin/orders`: list, inspect, retry and cancel provisioning orders.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{blocking, query, time, AdminError, AdminState};
use crate::provisioning::operator::{
    self, Action, Attempt, Order, OrderFilter, OrderState, Transition,
};

pub fn order_json(o: &Order) -> Value {
    json!({
        "id": o.id,
        "target": o.target,
        "resourceType": o.resource_type,
        "resourceId": o.resource_id,
        "connection": o.connection,
        "changeSeq": o.change_seq,
        "operation": o.operation.as_str(),
        "state": o.state.as_str(),
        "attempts": o.attempts,
        "nextAttemptAt": time(o.next_attempt_at),
        "leaseOwner": o.lease_owner,
        "lastError": o.last_error,
        "remoteId": o.remote_id,
        "created": time(o.created_at),
        "lastModified": time(o.updated_at),
        "origin": o.origin.as_str(),
        "heldReason": o.held_reason,
        "heldBy": o.hold_kind().map(|k| k.as_str()),
        "approved": o.approved,
        "decidedBy": o.decided_by,
        "decided": o.decided_at.map(time),
        "decisionComment": o.decision_comment,
        "waitingFor": o.waiting_for,
        "note": o.note,
    })
}

fn attempt_json(a: &Attempt) -> Value {
    json!({"started": time(a.started_at), "durationMs": a.duration_ms, "httpStatus": a.http_status, "error": a.error, "responseId": a.response_id})
}

fn transition_json(t: &Transition) -> Value {
    json!({"state": t.state, "at": time(t.at)})
}

fn timestamp(name: &str, raw: &str) -> Result<i64, AdminError> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.timestamp_micros())
        .map_err(|_| {
            AdminError::BadRequest(format!(
                "{name} must be an RFC 3339 time such as 2026-01-01T00:00:00Z"
            ))
        })
}

/// `GET /admin/orders?state=&target=&resourceType=&resourceId=&since=&until=&after=&limit=`
pub async fn list(
    state: web::Data<AdminState>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let mut filter = OrderFilter {
        limit: 100,
        ..OrderFilter::default()
    };
    for (k, v) in query::params(&req)? {
        match k.as_str() {
            "state" => {
                let state = OrderState::parse(&v)
                    .ok_or_else(|| AdminError::BadRequest(format!("unknown state {v:?}")))?;
                filter.state = Some(state)
            }
            "target" => filter.target = Some(v),
            "resourceType" => filter.resource_type = Some(v),
            "resourceId" => filter.resource_id = Some(v),
            "since" => filter.since = Some(timestamp("since", &v)?),
            "until" => filter.until = Some(timestamp("until", &v)?),
            "after" => filter.after_id = Some(query::after_id(&v, "an order")?),
            "limit" => filter.limit = query::limit(&v, 1000)?,
            other => return Err(query::unknown(other)),
        }
    }
    let db = state.db.clone();
    let limit = filter.limit;
    let found = blocking(move || Ok(operator::orders(&db, &filter)?)).await?;
    let next = query::next_after(&found, limit, |o| o.id);
    Ok(HttpResponse::Ok().json(json!({
        "orders": found.iter().map(order_json).collect::<Vec<_>>(),
        "next": next,
    })))
}

fn order_id(raw: &str) -> Result<i64, AdminError> {
    raw.parse()
        .map_err(|_| AdminError::NotFound(format!("no order {raw}")))
}

/// `GET /admin/orders/{id}`: the order with its attempts and state transitions.
pub async fn get(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id = order_id(&id)?;
    let db = state.db.clone();
    let detail = blocking(move || {
        operator::order_detail(&db, id)?
            .ok_or_else(|| AdminError::NotFound(format!("no order {id}")))
    })
    .await?;
    let mut body = order_json(&detail.order);
    body["attemptLog"] = detail.attempts.iter().map(attempt_json).collect();
    body["transitions"] = detail.transitions.iter().map(transition_json).collect();
    Ok(HttpResponse::Ok().json(body))
}

async fn act(
    state: web::Data<AdminState>,
    id: &str,
    action: fn(&crate::storage::Db, i64) -> Result<Action, crate::storage::StoreError>,
) -> Result<HttpResponse, AdminError> {
    let id = order_id(id)?;
    let db = state.db.clone();
    match blocking(move || Ok(action(&db, id)?)).await? {
        Action::Done(order) => Ok(HttpResponse::Ok().json(order_json(&order))),
        Action::NotFound => Err(AdminError::NotFound(format!("no order {id}"))),
        Action::Refused(why) => Err(AdminError::Conflict(why)),
    }
}

/// `POST /admin/orders/{id}/retry`: a failed order goes back to `Pending` with fresh attempts.
pub async fn retry(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    act(state, &id, operator::retry).await
}

/// `POST /admin/orders/{id}/cancel`: an undelivered order becomes `Inactive`.
pub async fn cancel(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    act(state, &id, operator::cancel).await
}

/// `GET /admin/resources/{type}/{id}/orders`: where one user or group stands on every target.
pub async fn of_resource(
    state: web::Data<AdminState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (kind, id) = path.into_inner();
    let kind = match kind.to_ascii_lowercase().as_str() {
        "users" | "user" => "User",
        "groups" | "group" => "Group",
        _ => return Err(AdminError::NotFound(format!("no resource type {kind:?}"))),
    };
    let db = state.db.clone();
    let found = blocking(move || Ok(operator::orders_of(&db, kind, &id)?)).await?;
    Ok(
        HttpResponse::Ok()
            .json(json!({"orders": found.iter().map(order_json).collect::<Vec<_>>()})),
    )
}
