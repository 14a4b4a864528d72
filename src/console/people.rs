//! People and groups: search with a SCIM filter; one user's page with their attributes,
//! groups and where they stand on every target (linked account, last order); "Provision now"
//! runs the user's plan on one target and shows the trace step by step.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;

use super::session::{acting, html, CsrfForm, Operator};
use crate::admin::AdminState;
use crate::identity::Query;
use crate::identity::{IdentityError, Kind};
use crate::provisioning::on_demand_run::provision_user;
use crate::provisioning::operator;
use crate::scim::list::Paging;
use crate::scim::projection::Projection;
use crate::storage::identity_links;
use crate::targets::lookup;

struct Found {
    id: String,
    name: String,
    display: String,
    active: String,
    connection: String,
}

#[derive(Template)]
#[template(path = "console/people.html")]
struct PeoplePage {
    operator: Option<Operator>,
    flash: Option<String>,
    kind: String,
    filter: String,
    error: Option<String>,
    total: i64,
    found: Vec<Found>,
}

#[derive(Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    filter: String,
}

fn text(value: &Value, name: &str) -> String {
    match &value[name] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `GET /ui/people?kind=users|groups&filter=`: the first 100 matches, by name.
pub async fn search(
    admin: web::Data<AdminState>,
    search: web::Query<Search>,
    operator: Operator,
) -> HttpResponse {
    let Search { kind, filter } = search.into_inner();
    let groups = kind == "groups";
    let sort = if groups { "displayName" } else { "userName" };
    let paging = Paging {
        start_index: 1,
        count: 100,
    };
    let mut page = PeoplePage {
        operator: Some(operator),
        flash: None,
        kind: if groups { "groups" } else { "users" }.into(),
        filter: filter.clone(),
        error: None,
        total: 0,
        found: Vec::new(),
    };
    let query = match Query::parse(
        Some(&filter),
        Some(sort),
        None,
        paging,
        Projection::default(),
    ) {
        Ok(query) => query,
        Err(e) => {
            page.error = Some(format!("The filter is not valid: {}", e.detail));
            let mut response = html(page);
            *response.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            return response;
        }
    };
    let directory = admin.directory.clone();
    let result = web::block(move || {
        let (found, kind) = match groups {
            true => (directory.search_groups(&query)?, Kind::Group),
            false => (directory.search_users(&query)?, Kind::User),
        };
        let ids: Vec<String> = found.resources.iter().map(|r| text(r, "id")).collect();
        let owners = directory.connections_of(kind, &ids)?;
        Ok::<_, IdentityError>((found, owners))
    })
    .await;
    match result {
        Ok(Ok((found, owners))) => {
            page.total = found.total;
            page.found = found
                .resources
                .iter()
                .map(|r| Found {
                    id: text(r, "id"),
                    name: text(r, if groups { "displayName" } else { "userName" }),
                    display: text(r, if groups { "externalId" } else { "displayName" }),
                    active: text(r, "active"),
                    connection: owners.get(&text(r, "id")).cloned().unwrap_or_default(),
                })
                .collect();
            html(page)
        }
        Ok(Err(IdentityError::Invalid(e))) => {
            page.error = Some(format!("The filter is not valid: {}", e.detail));
            html(page)
        }
        _ => HttpResponse::ServiceUnavailable().body("the database is unavailable"),
    }
}

struct Standing {
    name: String,
    remote: Option<String>,
    order: Option<i64>,
    state: String,
}

#[derive(Template)]
#[template(path = "console/person.html")]
struct PersonPage {
    operator: Option<Operator>,
    flash: Option<String>,
    id: String,
    user_name: String,
    targets: Vec<Standing>,
    groups: Vec<String>,
    attributes: String,
    can_act: bool,
    csrf: String,
}

/// `GET /ui/people/users/{id}`
pub async fn user(
    admin: web::Data<AdminState>,
    id: web::Path<String>,
    operator: Operator,
) -> HttpResponse {
    let id = id.into_inner();
    let (state, user_id) = (admin.clone(), id.clone());
    let read = web::block(move || -> Result<Option<(Value, Vec<Standing>)>, String> {
        let user = match state.directory.get_user(&user_id, &Projection::default()) {
            Ok(rendered) => rendered.body,
            Err(IdentityError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let known = lookup::all_in(&state.db, &state.targets).map_err(|e| e.to_string())?;
        let orders = operator::orders_of(&state.db, "User", &user_id).map_err(|e| e.to_string())?;
        let ids = [user_id.clone()];
        let mut standing = Vec::new();
        for target in known {
            let name = target.config.name;
            let links = state
                .db
                .read(|c| identity_links::links(c, &name, "User", &ids))
                .map_err(|e| e.to_string())?;
            let last = orders
                .iter()
                .filter(|o| o.target == name)
                .max_by_key(|o| o.id);
            standing.push(Standing {
                remote: links.get(&user_id).cloned(),
                order: last.map(|o| o.id),
                state: last.map_or_else(|| "no order".into(), |o| o.state.as_str().into()),
                name,
            });
        }
        Ok(Some((user, standing)))
    })
    .await;
    let (user, targets) = match read {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return HttpResponse::NotFound().body(format!("no user {id:?}")),
        _ => return HttpResponse::ServiceUnavailable().body("the database is unavailable"),
    };
    let groups = user["groups"]
        .as_array()
        .map(|all| all.iter().map(|g| text(g, "display")).collect())
        .unwrap_or_default();
    let (can_act, csrf) = (operator.may_act(), operator.csrf.clone());
    html(PersonPage {
        operator: Some(operator),
        flash: None,
        user_name: text(&user, "userName"),
        id,
        targets,
        groups,
        attributes: serde_json::to_string_pretty(&user).unwrap_or_default(),
        can_act,
        csrf,
    })
}

struct TraceStep {
    name: String,
    body: String,
}

#[derive(Template)]
#[template(path = "console/trace.html")]
struct TracePage {
    operator: Option<Operator>,
    flash: Option<String>,
    user_name: String,
    target: String,
    error: Option<String>,
    order_id: i64,
    state: String,
    steps: Vec<TraceStep>,
}

/// `POST /ui/people/users/{id}/provision/{target}`: provision on demand, and its trace.
pub async fn provision(
    req: HttpRequest,
    admin: web::Data<AdminState>,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let operator = match acting(&req, &admin, &form.csrf).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    let (user_id, target) = path.into_inner();
    let (state, name, user) = (admin.clone(), target.clone(), user_id.clone());
    let found = web::block(move || {
        let known = lookup::find_in(&state.db, &state.targets, &name).map_err(|e| e.to_string())?;
        let user_name = match state.directory.get_user(&user, &Projection::default()) {
            Ok(rendered) => Some(text(&rendered.body, "userName")),
            Err(IdentityError::NotFound(_)) => None,
            Err(e) => return Err(e.to_string()),
        };
        Ok::<_, String>((known, user_name))
    })
    .await;
    let (known, user_name) = match found {
        Ok(Ok((Some(known), Some(user_name)))) => (known, user_name),
        Ok(Ok((None, _))) => return HttpResponse::NotFound().body(format!("no target {target:?}")),
        Ok(Ok((_, None))) => return HttpResponse::NotFound().body(format!("no user {user_id:?}")),
        _ => return HttpResponse::ServiceUnavailable().body("the database is unavailable"),
    };
    tracing::info!(actor = %operator.actor, user = %user_id, target = %target, "console provision on demand");
    let ran = provision_user(&admin.directory, &known.config, &user_id).await;
    let mut page = TracePage {
        operator: Some(operator),
        flash: None,
        user_name,
        target,
        error: None,
        order_id: 0,
        state: String::new(),
        steps: Vec::new(),
    };
    match ran {
        Ok((order, trace)) => {
            page.order_id = order.id;
            page.state = order.state.as_str().into();
            page.steps = trace
                .iter()
                .map(|step| TraceStep {
                    name: text(step, "step"),
                    body: serde_json::to_string_pretty(step).unwrap_or_default(),
                })
                .collect();
        }
        Err(e) => page.error = Some(e.to_string()),
    }
    html(page)
}
