//! `/admin/targets` writes: create, replace, enable, disable and delete targets stored in the
//! database. Config-file targets are read-only here (409). Every write moves the targets
//! generation, which every instance's workers follow; changing a target also clears its
//! recorded health (a quarantine ends: the new settings are tried at once).

use actix_web::http::header::LOCATION;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::target_input::{check, keep_secrets, parse, refuse_markers};
use super::target_view::view;
use super::targets::not_found;
use super::{blocking, AdminError, AdminState};
use crate::targets::lookup::{Known, Source};
use crate::targets::store::StoredTarget;
use crate::targets::store::{self, SaveError};
use crate::targets::TargetConfig;

fn read_only(state: &AdminState, name: &str) -> Result<(), AdminError> {
    if state.targets.iter().any(|t| t.name == name) {
        return Err(AdminError::Conflict(format!(
            "target {name:?} is declared in the config file and is read-only here; change it in the config file"
        )));
    }
    Ok(())
}

/// The settings as stored: JSON, with the secrets sealed.
fn save_failed(error: SaveError) -> AdminError {
    match error {
        SaveError::NoKey(why) => AdminError::BadRequest(why),
        SaveError::Unwritable(why) => AdminError::Internal(why),
        SaveError::Store(e) => AdminError::from(e),
    }
}

fn stored_view(config: TargetConfig, row: StoredTarget) -> serde_json::Value {
    view(&Known {
        config,
        source: Source::Api(row),
    })
}

/// `POST /admin/targets`: body = the target's settings (the config file's keys, as JSON).
pub async fn create(
    state: web::Data<AdminState>,
    body: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let config = parse(&body)?;
    refuse_markers(&config)?;
    check(&config)?;
    let name = config.name.clone();
    if state.targets.iter().any(|t| t.name == name) {
        return Err(AdminError::Conflict(format!(
            "a target named {name:?} is declared in the config file"
        )));
    }
    let db = state.db.clone();
    let (n, stored) = (name.clone(), config.clone());
    let row = blocking(move || {
        store::create(&db, &stored)
            .map_err(save_failed)?
            .ok_or_else(|| AdminError::Conflict(format!("a target named {n:?} exists")))
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/admin/targets/{name}")))
        .json(stored_view(config, row)))
}

/// The stored target `name` with its settings.
async fn current(
    state: &web::Data<AdminState>,
    name: &str,
) -> Result<(TargetConfig, StoredTarget), AdminError> {
    read_only(state, name)?;
    let db = state.db.clone();
    let n = name.to_string();
    blocking(move || store::find(&db, &n).map_err(save_failed))
        .await?
        .ok_or_else(|| not_found(name))
}

/// Writes `config` over the stored target if it is still at `version` (else 409: someone
/// changed it meanwhile) and clears its health.
async fn save(
    state: &web::Data<AdminState>,
    config: TargetConfig,
    version: i64,
) -> Result<HttpResponse, AdminError> {
    let db = state.db.clone();
    let (name, stored) = (config.name.clone(), config.clone());
    let row = blocking(move || {
        store::change(&db, &stored, version)
            .map_err(save_failed)?
            .ok_or_else(|| {
                AdminError::Conflict(format!(
                    "target {name:?} changed or was deleted meanwhile; read it again"
                ))
            })
    })
    .await?;
    Ok(HttpResponse::Ok().json(stored_view(config, row)))
}

/// `PUT /admin/targets/{name}`: replaces every setting. A secret left out or sent as
/// `"********"` keeps the stored one while the auth type and URL stay the same.
pub async fn replace(
    state: web::Data<AdminState>,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let mut config = parse(&body)?;
    if config.name != name {
        return Err(AdminError::BadRequest(format!(
            "the body names {:?} but the URL {name:?}: targets cannot be renamed",
            config.name
        )));
    }
    let (stored, row) = current(&state, &name).await?;
    keep_secrets(&mut config, &stored)?;
    check(&config)?;
    save(&state, config, row.version).await
}

async fn set_enabled(
    state: web::Data<AdminState>,
    name: &str,
    enabled: bool,
) -> Result<HttpResponse, AdminError> {
    let (mut config, row) = current(&state, name).await?;
    if config.enabled == enabled {
        return Ok(HttpResponse::Ok().json(stored_view(config, row)));
    }
    config.enabled = enabled;
    save(&state, config, row.version).await
}

/// `POST /admin/targets/{name}/enable`
pub async fn enable(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    set_enabled(state, &name, true).await
}

/// `POST /admin/targets/{name}/disable`: no new orders are planned for it and none are
/// delivered; its open orders wait until it is enabled again.
pub async fn disable(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    set_enabled(state, &name, false).await
}

/// `DELETE /admin/targets/{name}`: its open orders become `Inactive` (their history stays),
/// its health and identity links are dropped.
pub async fn delete(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    read_only(&state, &name)?;
    let db = state.db.clone();
    let n = name.clone();
    let inactivated =
        blocking(move || store::delete(&db, &n)?.ok_or_else(|| not_found(&n))).await?;
    Ok(HttpResponse::Ok().json(json!({
        "name": name,
        "deleted": true,
        "inactivatedOrders": inactivated,
    })))
}
