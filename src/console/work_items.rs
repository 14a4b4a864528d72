//! Work items of manual targets: the open ones with their summaries; a person completes one
//! (with the account's id) or fails it (with why), recorded as the closer.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::session::{acting, html, redirect, redirect_saying, Flash, Operator};
use crate::admin::AdminState;
use crate::provisioning::operator::{self, Closed, Closing, WorkItemFilter};
use crate::scim::output::format_time;

struct ItemLine {
    id: i64,
    target: String,
    action: String,
    resource_type: String,
    resource_id: String,
    summary: String,
    created: String,
}

#[derive(Template)]
#[template(path = "console/work_items.html")]
struct WorkItemsPage {
    operator: Option<Operator>,
    flash: Option<String>,
    items: Vec<ItemLine>,
    can_act: bool,
    csrf: String,
}

/// `GET /ui/work-items`: the open ones, oldest first.
pub async fn page(
    admin: web::Data<AdminState>,
    flash: web::Query<Flash>,
    operator: Operator,
) -> HttpResponse {
    let filter = WorkItemFilter {
        state: Some("open".into()),
        limit: 500,
        ..WorkItemFilter::default()
    };
    let db = admin.db.clone();
    let Ok(Ok(items)) = web::block(move || operator::work_items(&db, &filter)).await else {
        return HttpResponse::ServiceUnavailable().body("the database is unavailable");
    };
    let items = items
        .into_iter()
        .map(|i| ItemLine {
            id: i.id,
            target: i.target,
            action: i.action,
            resource_type: i.resource_type,
            resource_id: i.resource_id,
            summary: i.summary,
            created: format_time(i.created_at),
        })
        .collect();
    let (can_act, csrf) = (operator.may_act(), operator.csrf.clone());
    html(WorkItemsPage {
        operator: Some(operator),
        flash: flash.into_inner().done,
        items,
        can_act,
        csrf,
    })
}

#[derive(Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    remote_id: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    reason: String,
}

/// `POST /ui/work-items/{id}/complete` and `/fail`.
pub async fn close(
    req: HttpRequest,
    admin: web::Data<AdminState>,
    path: web::Path<(i64, String)>,
    form: web::Form<CloseForm>,
) -> HttpResponse {
    let operator = match acting(&req, &admin, &form.csrf).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    let (id, how) = path.into_inner();
    let given = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let closing = match how.as_str() {
        "complete" => Closing::Completed {
            remote_id: given(&form.remote_id),
            comment: given(&form.comment),
        },
        "fail" => match given(&form.reason) {
            Some(reason) => Closing::Failed { reason },
            None => return redirect("/ui/work-items?done=Say+why+it+failed."),
        },
        _ => return HttpResponse::NotFound().body(format!("no action {how:?}")),
    };
    let by = operator
        .actor
        .strip_prefix("token:")
        .unwrap_or(&operator.actor)
        .to_string();
    let db = admin.db.clone();
    let said = match web::block(move || operator::close_work_item(&db, id, &by, &closing)).await {
        Ok(Ok(Closed::Done(item))) => format!("work item #{id} {}", item.state),
        Ok(Ok(Closed::NotFound)) => {
            return HttpResponse::NotFound().body(format!("no work item {id}"))
        }
        Ok(Ok(Closed::Refused(why))) => format!("work item #{id}: {why}"),
        _ => return HttpResponse::ServiceUnavailable().body("the database is unavailable"),
    };
    tracing::info!(actor = %operator.actor, item = id, how = %how, "console work item");
    redirect_saying("/ui/work-items", &said)
}
