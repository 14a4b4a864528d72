//! The console's pages: the overview of targets, the orders list, and one order's timeline
//! with its retry and cancel buttons. Each reads through the same services as the admin API.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::chart::minutes_svg;
use super::session::{acting, html, redirect_saying, CsrfForm, Flash, Operator};
use crate::admin::AdminState;
use crate::provisioning::operator::{self, Action, OrderFilter, OrderState};
use crate::scim::output::format_time;
use crate::storage::{orders, Db, StoreError};
use crate::targets::lookup;

/// One target's line on the overview.
struct TargetLine {
    name: String,
    kind: &'static str,
    enabled: bool,
    quarantined: bool,
    failures: u32,
    counts: Vec<(&'static str, i64)>,
    oldest_open: Option<String>,
    last_success: Option<String>,
    last_error: Option<String>,
    chart: String,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    operator: Option<Operator>,
    flash: Option<String>,
    targets: Vec<TargetLine>,
}

fn unavailable(error: impl std::fmt::Display) -> HttpResponse {
    tracing::warn!(%error, "a console page could not read the store");
    HttpResponse::ServiceUnavailable().body("the database is unavailable; try again")
}

/// `GET /ui`: every target's health, orders per state and the last hour's outcomes.
pub async fn overview(admin: web::Data<AdminState>, operator: Operator) -> HttpResponse {
    let state = admin.clone();
    match web::block(move || target_lines(&state)).await {
        Ok(Ok(targets)) => html(OverviewPage {
            operator: Some(operator),
            flash: None,
            targets,
        }),
        Ok(Err(error)) => unavailable(error),
        Err(error) => unavailable(error),
    }
}

fn target_lines(admin: &AdminState) -> Result<Vec<TargetLine>, String> {
    let db = &admin.db;
    let now = db.clock().now_micros();
    let known = lookup::all_in(db, &admin.targets).map_err(|e| e.to_string())?;
    let hour_ago = now - 3_600_000_000;
    let minutes = db
        .read(|c| orders::outcomes_per_minute(c, hour_ago))
        .map_err(|e| e.to_string())?;
    let this_minute = now / 60_000_000;
    let mut charts: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
    for (target, minute, ok, bad) in minutes {
        let slot = 59 - (this_minute - minute).clamp(0, 59);
        let bars = charts.entry(target).or_insert_with(|| vec![(0, 0); 60]);
        bars[slot as usize].0 += ok.max(0) as u64;
        bars[slot as usize].1 += bad.max(0) as u64;
    }
    let mut lines = Vec::new();
    for target in known {
        let name = target.config.name.clone();
        let state = operator::target_state(db, &name).map_err(|e| e.to_string())?;
        let counts = OrderState::ALL
            .iter()
            .map(|s| {
                let n = state.orders.counts.get(s.as_str()).copied().unwrap_or(0);
                (s.as_str(), n)
            })
            .collect();
        let bars = charts.remove(&name).unwrap_or_else(|| vec![(0, 0); 60]);
        lines.push(TargetLine {
            kind: target.config.kind.as_str(),
            enabled: target.config.enabled,
            quarantined: state.health.quarantined_since.is_some(),
            failures: state.health.consecutive_failures,
            counts,
            oldest_open: state.orders.oldest_pending_at.map(|at| age(now - at)),
            last_success: state.orders.last_success_at.map(format_time),
            last_error: state.orders.last_error.map(|(_, e)| e),
            chart: minutes_svg(&bars),
            name,
        });
    }
    Ok(lines)
}

fn age(micros: i64) -> String {
    let seconds = micros.max(0) / 1_000_000;
    match seconds {
        0..=119 => format!("{seconds} s"),
        120..=7199 => format!("{} min", seconds / 60),
        _ => format!("{} h", seconds / 3600),
    }
}

/// One order's line on the orders page.
struct OrderLine {
    id: i64,
    target: String,
    resource_type: String,
    resource_id: String,
    operation: &'static str,
    state: &'static str,
    attempts: i32,
    last_error: Option<String>,
    updated: String,
    note: Option<String>,
}

fn line(o: &orders::Order) -> OrderLine {
    OrderLine {
        id: o.id,
        target: o.target.clone(),
        resource_type: o.resource_type.clone(),
        resource_id: o.resource_id.clone(),
        operation: o.operation.as_str(),
        state: o.state.as_str(),
        attempts: o.attempts,
        last_error: o.last_error.clone(),
        updated: format_time(o.updated_at),
        note: o.note.clone(),
    }
}

#[derive(Deserialize, Default)]
pub struct OrderQuery {
    #[serde(default)]
    target: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    since: String,
}

#[derive(Template)]
#[template(path = "console/orders.html")]
struct OrdersPage {
    operator: Option<Operator>,
    flash: Option<String>,
    filter: OrderQuery,
    states: Vec<&'static str>,
    orders: Vec<OrderLine>,
}

/// `GET /ui/orders?target=&state=&resource=&since=`: the newest 200 orders that match.
pub async fn orders(
    admin: web::Data<AdminState>,
    query: web::Query<OrderQuery>,
    operator: Operator,
) -> HttpResponse {
    let query = query.into_inner();
    let since = match query.since.trim() {
        "" => None,
        raw => match chrono::DateTime::parse_from_rfc3339(raw) {
            Ok(at) => Some(at.timestamp_micros()),
            Err(_) => {
                return HttpResponse::BadRequest()
                    .body("since must be an RFC 3339 time such as 2026-12-01T00:00:00Z")
            }
        },
    };
    let state = match query.state.trim() {
        "" => None,
        raw => match OrderState::parse(raw) {
            Some(state) => Some(state),
            None => return HttpResponse::BadRequest().body(format!("no order state {raw:?}")),
        },
    };
    let filter = OrderFilter {
        state,
        target: Some(query.target.trim().to_string()).filter(|t| !t.is_empty()),
        resource_id: Some(query.resource.trim().to_string()).filter(|r| !r.is_empty()),
        since,
        limit: 200,
        ..OrderFilter::default()
    };
    let db = admin.db.clone();
    match web::block(move || operator::orders(&db, &filter)).await {
        Ok(Ok(found)) => html(OrdersPage {
            operator: Some(operator),
            flash: None,
            filter: query,
            states: OrderState::ALL.iter().map(|s| s.as_str()).collect(),
            orders: found.iter().map(line).collect(),
        }),
        Ok(Err(error)) => unavailable(error),
        Err(error) => unavailable(error),
    }
}

/// A step of an order's timeline.
struct Step {
    at: String,
    what: String,
    detail: Option<String>,
    class: &'static str,
}

#[derive(Template)]
#[template(path = "console/order.html")]
struct OrderPage {
    operator: Option<Operator>,
    flash: Option<String>,
    order: OrderLine,
    timeline: Vec<Step>,
    can_act: bool,
    csrf: String,
}

/// `GET /ui/orders/{id}`: its transitions and attempts as one timeline.
pub async fn order(
    admin: web::Data<AdminState>,
    id: web::Path<i64>,
    flash: web::Query<Flash>,
    operator: Operator,
) -> HttpResponse {
    let (db, id) = (admin.db.clone(), id.into_inner());
    let detail = match web::block(move || operator::order_detail(&db, id)).await {
        Ok(Ok(Some(detail))) => detail,
        Ok(Ok(None)) => return HttpResponse::NotFound().body(format!("no order {id}")),
        Ok(Err(error)) => return unavailable(error),
        Err(error) => return unavailable(error),
    };
    let mut timeline: Vec<(i64, Step)> = detail
        .transitions
        .iter()
        .map(|t| {
            let step = Step {
                at: format_time(t.at),
                what: format!("became {}", t.state),
                detail: None,
                class: "muted",
            };
            (t.at, step)
        })
        .collect();
    for a in &detail.attempts {
        let mut said = Vec::new();
        if let Some(status) = a.http_status {
            said.push(format!("HTTP {status}"));
        }
        if let Some(remote) = &a.response_id {
            said.push(format!("remote id {remote}"));
        }
        if let Some(error) = &a.error {
            said.push(error.clone());
        }
        let step = Step {
            at: format_time(a.started_at),
            what: format!("attempt ({} ms)", a.duration_ms),
            detail: (!said.is_empty()).then(|| said.join("; ")),
            class: if a.error.is_some() { "bad" } else { "good" },
        };
        timeline.push((a.started_at, step));
    }
    timeline.sort_by_key(|(at, _)| *at);
    let can_act = operator.may_act();
    let csrf = operator.csrf.clone();
    html(OrderPage {
        operator: Some(operator),
        flash: flash.into_inner().done,
        order: line(&detail.order),
        timeline: timeline.into_iter().map(|(_, step)| step).collect(),
        can_act,
        csrf,
    })
}

/// `POST /ui/orders/{id}/retry` and `/cancel`: operators and admins, with the session's CSRF
/// token; the order's page says what came of it.
pub async fn order_action(
    req: HttpRequest,
    admin: web::Data<AdminState>,
    path: web::Path<(i64, String)>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let operator = match acting(&req, &admin, &form.csrf).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    let (id, action) = path.into_inner();
    let act: fn(&Db, i64) -> Result<Action, StoreError> = match action.as_str() {
        "retry" => operator::retry,
        "cancel" => operator::cancel,
        _ => return HttpResponse::NotFound().body(format!("no action {action:?}")),
    };
    let db = admin.db.clone();
    let outcome = match web::block(move || act(&db, id)).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => return unavailable(error),
        Err(error) => return unavailable(error),
    };
    let said = match outcome {
        Action::Done(order) => {
            tracing::info!(actor = %operator.actor, order = id, action = %action, "console action");
            format!("{action}: the order is now {}", order.state.as_str())
        }
        Action::NotFound => return HttpResponse::NotFound().body(format!("no order {id}")),
        Action::Refused(why) => format!("{action} refused: {why}"),
    };
    redirect_saying(&format!("/ui/orders/{id}"), &said)
}
