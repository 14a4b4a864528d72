//! `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas` (RFC 7644 §4).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::media::scim_json;
use super::AppState;
use crate::scim::discovery;
use crate::scim::list::{list_response, Paging};
use crate::scim::{resource_type, schema, ScimError};

pub async fn service_provider_config(state: web::Data<AppState>) -> HttpResponse {
    scim_json(
        StatusCode::OK,
        &discovery::service_provider_config(&state.settings.capabilities, &state.settings.base_url),
    )
}

fn whole_list(items: Vec<serde_json::Value>) -> HttpResponse {
    let paging = Paging {
        start_index: 1,
        count: items.len() as i64,
    };
    scim_json(
        StatusCode::OK,
        &list_response(items.len() as i64, paging, items),
    )
}

pub async fn resource_types(state: web::Data<AppState>) -> HttpResponse {
    whole_list(discovery::resource_types(&state.settings.base_url))
}

pub async fn resource_type(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let rt = resource_type::all()
        .into_iter()
        .find(|rt| rt.name.eq_ignore_ascii_case(&name))
        .ok_or_else(|| ScimError::not_found(format!("no resource type named {name}")))?;
    Ok(scim_json(
        StatusCode::OK,
        &discovery::resource_type(rt, &state.settings.base_url),
    ))
}

pub async fn schemas(state: web::Data<AppState>) -> HttpResponse {
    whole_list(discovery::schemas(&state.settings.base_url))
}

pub async fn schema(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let def = schema::by_urn(&id).ok_or_else(|| ScimError::not_found(format!("no schema {id}")))?;
    Ok(scim_json(
        StatusCode::OK,
        &discovery::schema(def, &state.settings.base_url),
    ))
}
