//! `/admin/targets` writes: create, replace, enable, disable and delete targets stored in the
//! database, through the catalogue (which the console uses too). Config-file targets are
//! read-only here (409).

use actix_web::http::header::LOCATION;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::target_view::view;
use super::{blocking, AdminError, AdminState};
use crate::catalog::{self, CatalogError};
use crate::targets::lookup::{Known, Source};
use crate::targets::store::StoredTarget;
use crate::targets::TargetConfig;

impl From<CatalogError> for AdminError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Invalid(why) => AdminError::BadRequest(why),
            CatalogError::NotFound(why) => AdminError::NotFound(why),
            CatalogError::Conflict(why) => AdminError::Conflict(why),
            CatalogError::Unavailable(why) => AdminError::Unavailable(why),
            CatalogError::Internal(why) => AdminError::Internal(why),
        }
    }
}

fn stored_view((config, row): (TargetConfig, StoredTarget)) -> serde_json::Value {
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
    let config = catalog::parse(&body)?;
    let name = config.name.clone();
    let created = blocking(move || {
        let row = catalog::create(&state.db, &state.targets, &config)?;
        Ok((config, row))
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/admin/targets/{name}")))
        .json(stored_view(created)))
}

/// `PUT /admin/targets/{name}`: replaces every setting. A secret left out or sent as
/// `"********"` keeps the stored one while the auth type and URL stay the same.
pub async fn replace(
    state: web::Data<AdminState>,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let config = catalog::parse(&body)?;
    let replaced = blocking(move || {
        Ok(catalog::replace(
            &state.db,
            &state.targets,
            &name,
            config,
            None,
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(stored_view(replaced)))
}

async fn set_enabled(
    state: web::Data<AdminState>,
    name: String,
    enabled: bool,
) -> Result<HttpResponse, AdminError> {
    let changed = blocking(move || {
        Ok(catalog::set_enabled(
            &state.db,
            &state.targets,
            &name,
            enabled,
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(stored_view(changed)))
}

/// `POST /admin/targets/{name}/enable`
pub async fn enable(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    set_enabled(state, name.into_inner(), true).await
}

/// `POST /admin/targets/{name}/disable`: no new orders are planned for it and none are
/// delivered; its open orders wait until it is enabled again.
pub async fn disable(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    set_enabled(state, name.into_inner(), false).await
}

/// `DELETE /admin/targets/{name}`: its open orders become `Inactive` (their history stays),
/// its health and identity links are dropped.
pub async fn delete(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let n = name.clone();
    let inactivated = blocking(move || Ok(catalog::delete(&state.db, &state.targets, &n)?)).await?;
    Ok(HttpResponse::Ok().json(json!({
        "name": name,
        "deleted": true,
        "inactivatedOrders": inactivated,
    })))
}
