//! `/Users` and `/Groups`: one set of thin handlers over the identity service, per endpoint.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value};

use super::error::internal;
use super::media::{json_body, resource, scim_json};
use super::AppState;
use crate::auth::Principal;
use crate::identity::{precondition_strip_weak, Directory, IdentityError, IfMatch, Page, Rendered};
use crate::scim::list::{list_response, Paging};
use crate::scim::output::etag;
use crate::scim::{ScimError, ScimType};

/// The identity operations behind one resource endpoint.
pub trait Endpoint: 'static {
    fn create(
        d: &Directory,
        body: &Map<String, Value>,
        actor: &str,
    ) -> Result<Rendered, IdentityError>;
    fn get(d: &Directory, id: &str) -> Result<Rendered, IdentityError>;
    fn replace(
        d: &Directory,
        id: &str,
        body: &Map<String, Value>,
        c: Option<&IfMatch>,
        actor: &str,
    ) -> Result<Rendered, IdentityError>;
    fn delete(
        d: &Directory,
        id: &str,
        c: Option<&IfMatch>,
        actor: &str,
    ) -> Result<(), IdentityError>;
    fn list(d: &Directory, paging: Paging) -> Result<Page, IdentityError>;
}

pub struct Users;
pub struct Groups;

impl Endpoint for Users {
    fn create(
        d: &Directory,
        body: &Map<String, Value>,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        d.create_user(body, actor)
    }
    fn get(d: &Directory, id: &str) -> Result<Rendered, IdentityError> {
        d.get_user(id)
    }
    fn replace(
        d: &Directory,
        id: &str,
        body: &Map<String, Value>,
        c: Option<&IfMatch>,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        d.replace_user(id, body, c, actor)
    }
    fn delete(
        d: &Directory,
        id: &str,
        c: Option<&IfMatch>,
        actor: &str,
    ) -> Result<(), IdentityError> {
        d.delete_user(id, c, actor)
    }
    fn list(d: &Directory, paging: Paging) -> Result<Page, IdentityError> {
        d.list_users(paging)
    }
}

impl Endpoint for Groups {
    fn create(
        d: &Directory,
        body: &Map<String, Value>,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        d.create_group(body, actor)
    }
    fn get(d: &Directory, id: &str) -> Result<Rendered, IdentityError> {
        d.get_group(id)
    }
    fn replace(
        d: &Directory,
        id: &str,
        body: &Map<String, Value>,
        c: Option<&IfMatch>,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        d.replace_group(id, body, c, actor)
    }
    fn delete(
        d: &Directory,
        id: &str,
        c: Option<&IfMatch>,
        actor: &str,
    ) -> Result<(), IdentityError> {
        d.delete_group(id, c, actor)
    }
    fn list(d: &Directory, paging: Paging) -> Result<Page, IdentityError> {
        d.list_groups(paging)
    }
}

/// Runs blocking identity work on the blocking pool.
async fn blocking<T: Send + 'static>(
    state: &web::Data<AppState>,
    work: impl FnOnce(&Directory) -> Result<T, IdentityError> + Send + 'static,
) -> Result<T, ScimError> {
    let directory = state.directory.clone();
    match web::block(move || work(&directory)).await {
        Ok(result) => result.map_err(ScimError::from),
        Err(e) => Err(internal(e)),
    }
}

fn if_match(req: &HttpRequest) -> Option<IfMatch> {
    req.headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(IfMatch::parse)
}

pub async fn create<E: Endpoint>(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ScimError> {
    let body = json_body(&req, &body)?;
    let rendered = blocking(&state, move |d| E::create(d, &body, &principal.actor)).await?;
    Ok(resource(StatusCode::CREATED, &rendered))
}

pub async fn get<E: Endpoint>(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let id = id.into_inner();
    let rendered = blocking(&state, move |d| E::get(d, &id)).await?;
    let current = etag(rendered.version);
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim() == "*"
                || v.split(',')
                    .any(|t| precondition_strip_weak(t.trim()) == precondition_strip_weak(&current))
        });
    if not_modified {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, current))
            .finish());
    }
    Ok(resource(StatusCode::OK, &rendered))
}

pub async fn replace<E: Endpoint>(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ScimError> {
    let body = json_body(&req, &body)?;
    let condition = if_match(&req);
    let id = id.into_inner();
    let rendered = blocking(&state, move |d| {
        E::replace(d, &id, &body, condition.as_ref(), &principal.actor)
    })
    .await?;
    Ok(resource(StatusCode::OK, &rendered))
}

pub async fn delete<E: Endpoint>(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let condition = if_match(&req);
    let id = id.into_inner();
    blocking(&state, move |d| {
        E::delete(d, &id, condition.as_ref(), &principal.actor)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list<E: Endpoint>(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ScimError> {
    let params = query_params(&req)?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if param("filter").is_some_and(|f| !f.trim().is_empty()) {
        // Answering an unfiltered list would make an IdP believe a user it looks up exists.
        return Err(ScimError::new(
            400,
            Some(ScimType::InvalidFilter),
            "filtering is not supported by this server yet (see /ServiceProviderConfig)",
        ));
    }
    let paging = Paging::from_params(
        param("startIndex"),
        param("count"),
        state.settings.default_page_size,
        state.settings.max_page_size,
    )?;
    let page = blocking(&state, move |d| E::list(d, paging)).await?;
    Ok(scim_json(
        StatusCode::OK,
        &list_response(page.total, paging, page.resources),
    ))
}

/// Query parameters as pairs; names are matched case-insensitively by the callers.
pub fn query_params(req: &HttpRequest) -> Result<Vec<(String, String)>, ScimError> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .map_err(|e| ScimError::invalid_syntax(format!("malformed query string: {e}")))
}
