//! The targets: every one with where it is declared, and for those kept in the database the
//! admin's enable and disable; a connection test for any. Changes go through the catalogue,
//! as the admin API's do, and need the same roles (admin to change, operator to test).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::session::{acting_as, html, redirect_saying, CsrfForm, Flash, Operator};
use crate::admin::AdminState;
use crate::auth::Role;
use crate::catalog::{self, masked_url, CatalogError};
use crate::targets::lookup::{self, Source};

/// One target's line.
struct TargetLine {
    name: String,
    kind: &'static str,
    url: String,
    auth: &'static str,
    enabled: bool,
    /// Kept in the database (changeable here), not declared in the config file.
    stored: bool,
    version: Option<i64>,
}

#[derive(Template)]
#[template(path = "console/targets.html")]
struct TargetsPage {
    operator: Option<Operator>,
    flash: Option<String>,
    targets: Vec<TargetLine>,
    may_test: bool,
    may_change: bool,
    csrf: String,
}

/// `GET /ui/targets`
pub async fn page(
    admin: web::Data<AdminState>,
    flash: web::Query<Flash>,
    operator: Operator,
) -> HttpResponse {
    let state = admin.clone();
    let Ok(Ok(known)) = web::block(move || lookup::all_in(&state.db, &state.targets)).await else {
        return HttpResponse::ServiceUnavailable().body("the database is unavailable; try again");
    };
    let targets = known
        .into_iter()
        .map(|k| TargetLine {
            kind: k.config.kind.as_str(),
            url: masked_url(&k.config.url),
            auth: k.config.auth.kind.map_or("none", |a| a.as_str()),
            enabled: k.config.enabled,
            stored: matches!(k.source, Source::Api(_)),
            version: match &k.source {
                Source::Api(row) => Some(row.version),
                Source::File => None,
            },
            name: k.config.name,
        })
        .collect();
    html(TargetsPage {
        may_test: operator.may(Role::Operator),
        may_change: operator.may(Role::Admin),
        csrf: operator.csrf.clone(),
        operator: Some(operator),
        flash: flash.into_inner().done,
        targets,
    })
}

/// What a change or test came to, said on the targets page.
fn said(name: &str, error: CatalogError) -> String {
    match error {
        CatalogError::Unavailable(_) | CatalogError::Internal(_) => {
            tracing::warn!(target = name, %error, "a console target action failed");
            format!("{name}: {error}")
        }
        other => format!("{name}: {other}"),
    }
}

/// `POST /ui/targets/{name}/enable`, `/disable` (admin) and `/test` (operator).
pub async fn act(
    req: HttpRequest,
    admin: web::Data<AdminState>,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let (name, action) = path.into_inner();
    let needed = match action.as_str() {
        "enable" | "disable" => Role::Admin,
        "test" => Role::Operator,
        _ => return HttpResponse::NotFound().body(format!("no action {action:?}")),
    };
    let operator = match acting_as(&req, &admin, &form.csrf, needed).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    tracing::info!(actor = %operator.actor, target = %name, action = %action, "console target action");
    let message = if action == "test" {
        test(admin, name).await
    } else {
        let enabled = action == "enable";
        let n = name.clone();
        match web::block(move || catalog::set_enabled(&admin.db, &admin.targets, &n, enabled)).await
        {
            Ok(Ok(_)) => format!("{name} {action}d"),
            Ok(Err(error)) => said(&name, error),
            Err(error) => format!("{name}: {error}"),
        }
    };
    redirect_saying("/ui/targets", &message)
}

async fn test(admin: web::Data<AdminState>, name: String) -> String {
    let n = name.clone();
    let known = match web::block(move || lookup::find_in(&admin.db, &admin.targets, &n)).await {
        Ok(Ok(Some(known))) => known,
        Ok(Ok(None)) => return said(&name, CatalogError::not_found(&name)),
        Ok(Err(error)) => return format!("{name}: {error}"),
        Err(error) => return format!("{name}: {error}"),
    };
    let tested = catalog::test_connection(&known.config).await;
    match tested.outcome {
        Ok(_) => format!("Connection test of {name}: ok in {} ms", tested.latency_ms),
        Err(error) => format!(
            "Connection test of {name} failed after {} ms: {error}",
            tested.latency_ms
        ),
    }
}
