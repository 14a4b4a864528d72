//! `GET /admin/changes`: the change feed for pull consumers (a cursor, a page, a long poll);
//! `GET /admin/events`: the event outbox itself.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::subscriptions::event_json;
use super::{blocking, query, AdminError, AdminState};
use crate::events::feed;
use crate::storage::events;

fn cursor(raw: &str) -> Result<i64, AdminError> {
    raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
        AdminError::BadRequest("after must be a change number (0: from the start)".into())
    })
}

/// `GET /admin/changes?after=SEQ&limit=N&wait=SECONDS`: entries after `after`, oldest first;
/// with none, waits up to `wait` seconds (at most 60) for one. Ask next with `after=next`.
pub async fn changes(
    state: web::Data<AdminState>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let (mut after, mut limit, mut wait) = (0, 100, Duration::ZERO);
    for (key, value) in query::params(&req)? {
        match key.as_str() {
            "after" => after = cursor(&value)?,
            "limit" => limit = query::limit(&value, feed::MOST)?,
            "wait" => {
                let seconds: u64 = value.parse().map_err(|_| {
                    AdminError::BadRequest("wait must be a number of seconds".into())
                })?;
                wait = Duration::from_secs(seconds).min(feed::LONGEST_WAIT);
            }
            other => return Err(query::unknown(other)),
        }
    }
    let page = feed::changes(&state.db, &state.directory, after, limit, wait).await?;
    Ok(HttpResponse::Ok().json(json!({ "changes": page.entries, "next": page.next })))
}

/// `GET /admin/events?after=SEQ&limit=N`: recorded events, oldest first.
pub async fn list_events(
    state: web::Data<AdminState>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let (mut after, mut limit) = (0, 100);
    for (key, value) in query::params(&req)? {
        match key.as_str() {
            "after" => after = cursor(&value)?,
            "limit" => limit = query::limit(&value, 1000)?,
            other => return Err(query::unknown(other)),
        }
    }
    let db = state.db.clone();
    let page = blocking(move || Ok(events::readable_after(&db, after, limit)?)).await?;
    let next = page.last().map_or(after, |e| e.seq);
    let items: Vec<_> = page.iter().map(event_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "events": items, "next": next })))
}
