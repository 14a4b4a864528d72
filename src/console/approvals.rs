//! The approvals page: orders held for a decision, with why; operators approve or decline
//! one or many with a comment, and are recorded as the decider.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::session::{acting, html, redirect, redirect_saying, Flash, Operator};
use crate::admin::AdminState;
use crate::provisioning::operator::{self, Action, Decision, OrderFilter, OrderState};
use crate::scim::output::format_time;

struct HeldLine {
    id: i64,
    target: String,
    resource_type: String,
    resource_id: String,
    operation: &'static str,
    held_by: &'static str,
    reason: String,
    since: String,
}

#[derive(Template)]
#[template(path = "console/approvals.html")]
struct ApprovalsPage {
    operator: Option<Operator>,
    flash: Option<String>,
    held: Vec<HeldLine>,
    can_act: bool,
    csrf: String,
}

/// `GET /ui/approvals`
pub async fn page(
    admin: web::Data<AdminState>,
    flash: web::Query<Flash>,
    operator: Operator,
) -> HttpResponse {
    let filter = OrderFilter {
        state: Some(OrderState::AwaitingApproval),
        limit: 500,
        ..OrderFilter::default()
    };
    let db = admin.db.clone();
    let held = match web::block(move || operator::orders(&db, &filter)).await {
        Ok(Ok(held)) => held,
        _ => return HttpResponse::ServiceUnavailable().body("the database is unavailable"),
    };
    let held = held
        .iter()
        .map(|o| HeldLine {
            id: o.id,
            target: o.target.clone(),
            resource_type: o.resource_type.clone(),
            resource_id: o.resource_id.clone(),
            operation: o.operation.as_str(),
            held_by: o.hold_kind().map_or("review", |k| k.as_str()),
            reason: o.held_reason.clone().unwrap_or_default(),
            since: format_time(o.updated_at),
        })
        .collect();
    let (can_act, csrf) = (operator.may_act(), operator.csrf.clone());
    html(ApprovalsPage {
        operator: Some(operator),
        flash: flash.into_inner().done,
        held,
        can_act,
        csrf,
    })
}

/// `POST /ui/approvals`: `order` (repeated), `decision` (`approve` or `decline`), `comment`.
pub async fn decide(
    req: HttpRequest,
    admin: web::Data<AdminState>,
    body: web::Bytes,
) -> HttpResponse {
    let mut csrf = String::new();
    let (mut ids, mut decision, mut comment) = (Vec::new(), String::new(), String::new());
    for (key, value) in url::form_urlencoded::parse(&body) {
        match key.as_ref() {
            "csrf" => csrf = value.into_owned(),
            "order" => match value.parse::<i64>() {
                Ok(id) => ids.push(id),
                Err(_) => return HttpResponse::BadRequest().body(format!("no order {value:?}")),
            },
            "decision" => decision = value.into_owned(),
            "comment" => comment = value.trim().to_string(),
            _ => {}
        }
    }
    let operator = match acting(&req, &admin, &csrf).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    let approve = match decision.as_str() {
        "approve" => true,
        "decline" => false,
        _ => return HttpResponse::BadRequest().body("decision must be approve or decline"),
    };
    if ids.is_empty() {
        return redirect("/ui/approvals?done=Select+at+least+one+order.");
    }
    let decision = Decision {
        approve,
        by: operator
            .actor
            .strip_prefix("token:")
            .unwrap_or(&operator.actor)
            .to_string(),
        comment: Some(comment).filter(|c| !c.is_empty()),
    };
    let db = admin.db.clone();
    let results = web::block(move || {
        ids.iter()
            .map(|id| operator::decide(&db, *id, &decision).map(|a| (*id, a)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await;
    let results = match results {
        Ok(Ok(results)) => results,
        _ => return HttpResponse::ServiceUnavailable().body("the database is unavailable"),
    };
    let verb = if approve { "approved" } else { "declined" };
    let done = results
        .iter()
        .filter(|(_, a)| matches!(a, Action::Done(_)))
        .count();
    let refused: Vec<String> = results
        .iter()
        .filter_map(|(id, a)| match a {
            Action::Refused(why) => Some(format!("#{id}: {why}")),
            Action::NotFound => Some(format!("#{id}: not found")),
            Action::Done(_) => None,
        })
        .collect();
    tracing::info!(actor = %operator.actor, decided = done, verb, "console decision");
    let mut said = format!("{done} order(s) {verb}");
    if !refused.is_empty() {
        said.push_str(&format!("; not decided: {}", refused.join(", ")));
    }
    redirect_saying("/ui/approvals", &said)
}
