//! `/admin/subscriptions`: webhook and SET subscriptions, their delivery log, replays and test
//! events. Settings use the config file's vocabulary (`[[events.subscriptions]]`); a secret is
//! shown once, when it is made or rotated.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{blocking, query, time, AdminError, AdminState};
use crate::auth::Principal;
use crate::events::{service, EventsError, Format, Subscription, SubscriptionSettings};
use crate::storage::event_deliveries::{DeliveryFilter, StoredAttempt, StoredDelivery};
use crate::storage::events::StoredEvent;

impl From<EventsError> for AdminError {
    fn from(e: EventsError) -> Self {
        match e {
            EventsError::Invalid(m) | EventsError::NoKey(m) => AdminError::BadRequest(m),
            EventsError::NotFound(m) => AdminError::NotFound(m),
            EventsError::Conflict(m) => AdminError::Conflict(m),
            EventsError::Store(e) => e.into(),
            EventsError::Identity(e) => AdminError::Internal(e.to_string()),
        }
    }
}

pub fn subscription_json(s: &Subscription) -> Value {
    let mut out = json!({
        "id": s.id,
        "name": s.name,
        "format": s.format.as_str(),
        "url": s.url,
        "eventTypes": s.interest.types(),
        "targets": s.interest.targets(),
        "resourceTypes": s.interest.resource_types(),
        "audience": s.audience,
        "enabled": s.enabled,
        "disabledReason": s.disabled_reason,
        "maxAgeHours": s.max_age_seconds / 3600,
        "fromConfig": s.from_config,
        "position": s.position,
        // Never the secrets themselves: how many sign, and until when the old ones do.
        "secrets": s.secrets.iter().map(|k| json!({"expires": k.expires_at.map(time)})).collect::<Vec<_>>(),
        "created": time(s.created_at),
        "lastModified": time(s.updated_at),
    });
    if s.format == Format::SetPoll {
        out["pollPath"] = json!(format!("/events/{}", s.name));
    }
    out
}

fn settings(raw: &[u8]) -> Result<SubscriptionSettings, AdminError> {
    serde_json::from_slice(raw)
        .map_err(|e| AdminError::BadRequest(format!("invalid subscription settings: {e}")))
}

fn optional_body<T: Default + serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, AdminError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(raw).map_err(|e| AdminError::BadRequest(format!("invalid body: {e}")))
}

pub async fn list(state: web::Data<AdminState>) -> Result<HttpResponse, AdminError> {
    let db = state.db.clone();
    let all = blocking(move || Ok(service::list(&db)?)).await?;
    let items: Vec<Value> = all.iter().map(subscription_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "subscriptions": items })))
}

pub async fn get(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let db = state.db.clone();
    let found = blocking(move || Ok(service::get(&db, &name)?)).await?;
    Ok(HttpResponse::Ok().json(subscription_json(&found)))
}

pub async fn create(
    state: web::Data<AdminState>,
    body: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let settings = settings(&body)?;
    let (db, config) = (state.db.clone(), state.events.clone());
    let (created, secret) = blocking(move || Ok(service::create(&db, &config, &settings)?)).await?;
    let mut out = subscription_json(&created);
    out["secret"] = json!(secret);
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/admin/subscriptions/{}", created.name)))
        .json(out))
}

pub async fn replace(
    state: web::Data<AdminState>,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let settings = settings(&body)?;
    let (db, config) = (state.db.clone(), state.events.clone());
    let changed = blocking(move || Ok(service::replace(&db, &config, &name, &settings)?)).await?;
    Ok(HttpResponse::Ok().json(subscription_json(&changed)))
}

pub async fn delete(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let db = state.db.clone();
    blocking(move || Ok(service::delete(&db, &name)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn set_enabled(
    state: web::Data<AdminState>,
    name: String,
    enabled: bool,
) -> Result<HttpResponse, AdminError> {
    let (db, config) = (state.db.clone(), state.events.clone());
    let changed = blocking(move || Ok(service::set_enabled(&db, &config, &name, enabled)?)).await?;
    Ok(HttpResponse::Ok().json(subscription_json(&changed)))
}

pub async fn enable(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    set_enabled(state, name.into_inner(), true).await
}

pub async fn disable(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    set_enabled(state, name.into_inner(), false).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RotateBody {
    secret: Option<String>,
    overlap_hours: Option<u64>,
}

pub async fn rotate_secret(
    state: web::Data<AdminState>,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let rotate: RotateBody = optional_body(&body)?;
    let (db, config) = (state.db.clone(), state.events.clone());
    let secret = blocking(move || {
        Ok(service::rotate_secret(
            &db,
            &config,
            &name,
            rotate.secret,
            rotate.overlap_hours,
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "secret": secret })))
}

pub async fn test(
    state: web::Data<AdminState>,
    principal: Principal,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let db = state.db.clone();
    let event = blocking(move || Ok(service::send_test(&db, &name, &principal.actor)?)).await?;
    Ok(HttpResponse::Accepted().json(event_json(&event)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    since: String,
}

pub async fn replay(
    state: web::Data<AdminState>,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let replay: ReplayBody = serde_json::from_slice(&body).map_err(|e| {
        AdminError::BadRequest(format!("invalid body (want {{\"since\": TIME}}): {e}"))
    })?;
    let since = chrono::DateTime::parse_from_rfc3339(&replay.since)
        .map(|t| t.timestamp_micros())
        .map_err(|_| AdminError::BadRequest("since must be an RFC 3339 time".into()))?;
    let db = state.db.clone();
    let queued = blocking(move || Ok(service::replay_since(&db, &name, since)?)).await?;
    Ok(HttpResponse::Accepted().json(json!({ "queued": queued })))
}

pub fn event_json(e: &StoredEvent) -> Value {
    json!({
        "seq": e.seq,
        "id": e.id,
        "type": e.event_type,
        "resourceType": e.resource_type,
        "resourceId": e.resource_id,
        "sequence": e.resource_seq,
        "target": e.target,
        "actor": e.actor,
        "time": time(e.occurred_at),
        "data": serde_json::from_str::<Value>(&e.data).unwrap_or(Value::Null),
    })
}

fn delivery_json(d: &StoredDelivery, e: &StoredEvent) -> Value {
    json!({
        "id": d.id,
        "event": event_json(e),
        "state": d.state,
        "attempts": d.attempts,
        "nextAttemptAt": time(d.next_attempt_at),
        "created": time(d.created_at),
        "finished": d.finished_at.map(time),
        "lastStatus": d.last_status,
        "lastError": d.last_error,
    })
}

fn attempt_json(a: &StoredAttempt) -> Value {
    json!({"at": time(a.at), "status": a.status, "latencyMs": a.latency_ms, "error": a.error})
}

pub async fn deliveries(
    state: web::Data<AdminState>,
    req: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let mut filter = DeliveryFilter {
        limit: 100,
        ..Default::default()
    };
    for (key, value) in query::params(&req)? {
        match key.as_str() {
            "state" => match value.as_str() {
                "pending" | "delivered" | "failed" => filter.state = Some(value),
                other => {
                    return Err(AdminError::BadRequest(format!(
                        "state {other:?}: pending, delivered or failed"
                    )))
                }
            },
            "before" => filter.before_id = Some(query::after_id(&value, "a delivery")?),
            "limit" => filter.limit = query::limit(&value, 1000)?,
            other => return Err(query::unknown(other)),
        }
    }
    let db = state.db.clone();
    let limit = filter.limit;
    let page = blocking(move || Ok(service::deliveries(&db, &name, &filter)?)).await?;
    let next = (page.len() as i64 == limit)
        .then(|| page.last().map(|(d, _)| d.id))
        .flatten();
    let items: Vec<Value> = page.iter().map(|(d, e)| delivery_json(d, e)).collect();
    Ok(HttpResponse::Ok().json(json!({ "deliveries": items, "nextBefore": next })))
}

fn delivery_id(raw: &str) -> Result<i64, AdminError> {
    raw.parse()
        .map_err(|_| AdminError::NotFound(format!("no delivery {raw}")))
}

pub async fn delivery(
    state: web::Data<AdminState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (name, id) = path.into_inner();
    let id = delivery_id(&id)?;
    let db = state.db.clone();
    let (d, e, attempts) = blocking(move || Ok(service::delivery(&db, &name, id)?)).await?;
    let mut out = delivery_json(&d, &e);
    out["attemptLog"] = attempts.iter().map(attempt_json).collect();
    Ok(HttpResponse::Ok().json(out))
}

pub async fn replay_delivery(
    state: web::Data<AdminState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (name, id) = path.into_inner();
    let id = delivery_id(&id)?;
    let db = state.db.clone();
    blocking(move || Ok(service::replay_one(&db, &name, id)?)).await?;
    Ok(HttpResponse::Accepted().json(json!({ "queued": 1 })))
}
