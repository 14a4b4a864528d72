//! `/admin/work-items`: what people have to do on manual targets, and closing it:
//! `complete` (the order is `executed`) or `fail` with a reason (the order is `error`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{blocking, query, time, AdminError, AdminState};
use crate::auth::Principal;
use crate::provisioning::operator::{self, Closed, Closing, WorkItem, WorkItemFilter};

fn item_json(i: &WorkItem) -> Value {
    json!({
        "id": i.id,
        "orderId": i.order_id,
        "target": i.target,
        "resourceType": i.resource_type,
        "resourceId": i.resource_id,
        "action": i.action,
        "summary": i.summary,
        "data": serde_json::from_str::<Value>(&i.data).unwrap_or(Value::Null),
        "state": i.state,
        "created": time(i.created_at),
        "closed": i.closed_at.map(time),
        "closedBy": i.closed_by,
        "outcome": i.outcome,
    })
}

fn item_id(raw: &str) -> Result<i64, AdminError> {
    raw.parse()
        .map_err(|_| AdminError::NotFound(format!("no work item {raw}")))
}

/// `GET /admin/work-items?target=&state=&after=&limit=`
pub async fn list(
    state: web::Data<AdminState>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let params = query::params(&req)?;
    let mut filter = WorkItemFilter {
        limit: 100,
        ..WorkItemFilter::default()
    };
    for (k, v) in params {
        match k.as_str() {
            "target" => filter.target = Some(v),
            "state" if matches!(v.as_str(), "open" | "completed" | "failed" | "withdrawn") => {
                filter.state = Some(v)
            }
            "state" => {
                return Err(AdminError::BadRequest(format!(
                    "state must be open, completed, failed or withdrawn, not {v:?}"
                )))
            }
            "after" => filter.after_id = Some(query::after_id(&v, "a work item")?),
            "limit" => filter.limit = query::limit(&v, 1000)?,
            other => return Err(query::unknown(other)),
        }
    }
    let db = state.db.clone();
    let limit = filter.limit;
    let found = blocking(move || Ok(operator::work_items(&db, &filter)?)).await?;
    let next = query::next_after(&found, limit, |i| i.id);
    Ok(HttpResponse::Ok().json(json!({
        "workItems": found.iter().map(item_json).collect::<Vec<_>>(),
        "next": next,
    })))
}

/// `GET /admin/work-items/{id}`
pub async fn get(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id = item_id(&id)?;
    let db = state.db.clone();
    let item = blocking(move || {
        operator::work_item(&db, id)?
            .ok_or_else(|| AdminError::NotFound(format!("no work item {id}")))
    })
    .await?;
    Ok(HttpResponse::Ok().json(item_json(&item)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CompleteBody {
    remote_id: Option<String>,
    comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailBody {
    reason: String,
}

async fn close(
    state: web::Data<AdminState>,
    principal: Principal,
    id: &str,
    closing: Closing,
) -> Result<HttpResponse, AdminError> {
    let id = item_id(id)?;
    let by = principal
        .actor
        .strip_prefix("token:")
        .unwrap_or(&principal.actor)
        .to_string();
    let db = state.db.clone();
    match blocking(move || Ok(operator::close_work_item(&db, id, &by, &closing)?)).await? {
        Closed::Done(item) => Ok(HttpResponse::Ok().json(item_json(&item))),
        Closed::NotFound => Err(AdminError::NotFound(format!("no work item {id}"))),
        Closed::Refused(why) => Err(AdminError::Conflict(why)),
    }
}

/// `POST /admin/work-items/{id}/complete` with optional `{"remoteId", "comment"}`.
pub async fn complete(
    state: web::Data<AdminState>,
    principal: Principal,
    id: web::Path<String>,
    raw: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let body: CompleteBody = if raw.iter().all(u8::is_ascii_whitespace) {
        CompleteBody::default()
    } else {
        serde_json::from_slice(&raw)
            .map_err(|e| AdminError::BadRequest(format!("invalid body: {e}")))?
    };
    let remote_id = body.remote_id.filter(|r| !r.trim().is_empty());
    let closing = Closing::Completed {
        remote_id,
        comment: body.comment,
    };
    close(state, principal, &id, closing).await
}

/// `POST /admin/work-items/{id}/fail` with `{"reason": "..."}`.
pub async fn fail(
    state: web::Data<AdminState>,
    principal: Principal,
    id: web::Path<String>,
    raw: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let body: FailBody = serde_json::from_slice(&raw)
        .map_err(|e| AdminError::BadRequest(format!("send {{\"reason\": \"...\"}}: {e}")))?;
    if body.reason.trim().is_empty() {
        return Err(AdminError::BadRequest("reason must not be empty".into()));
    }
    close(
        state,
        principal,
        &id,
        Closing::Failed {
            reason: body.reason,
        },
    )
    .await
}
