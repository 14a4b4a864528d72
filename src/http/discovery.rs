//! `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas` (RFC 7644 §4).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::connection::{Named, Served};
use super::media::scim_json;
use super::AppState;
use crate::scim::discovery;
use crate::scim::list::{list_response, Paging};
use crate::scim::{registry, ScimError};

pub async fn service_provider_config(state: web::Data<AppState>, served: Served) -> HttpResponse {
    scim_json(
        StatusCode::OK,
        &discovery::service_provider_config(&state.settings.capabilities, &served.base_url),
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

pub async fn resource_types(served: Served) -> HttpResponse {
    whole_list(discovery::resource_types(&served.base_url))
}

pub async fn resource_type(
    served: Served,
    name: web::Path<Named>,
) -> Result<HttpResponse, ScimError> {
    let name = name.into_inner().id;
    let rt = registry::resource_types()
        .into_iter()
        .find(|rt| rt.name.eq_ignore_ascii_case(&name))
        .ok_or_else(|| ScimError::not_found(format!("no resource type named {name}")))?;
    Ok(scim_json(
        StatusCode::OK,
        &discovery::resource_type(rt, &served.base_url),
    ))
}

pub async fn schemas(served: Served) -> HttpResponse {
    whole_list(discovery::schemas(&served.base_url))
}

pub async fn schema(served: Served, id: web::Path<Named>) -> Result<HttpResponse, ScimError> {
    let id = id.into_inner().id;
    let def =
        registry::schema(&id).ok_or_else(|| ScimError::not_found(format!("no schema {id}")))?;
    Ok(scim_json(
        StatusCode::OK,
        &discovery::schema(def, &served.base_url),
    ))
}
