//! `/Users` and `/Groups`: one set of thin handlers over the identity service, per endpoint.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

use super::connection::{Named, Served};
use super::error::internal;
use super::media::{json_body, resource, scim_json};
use super::search_request::SearchRequest;
use super::AppState;
use crate::auth::Principal;
use crate::identity::{
    precondition_strip_weak, Change, Directory, IdentityError, IfMatch, Kind, Page,
};
use crate::scim::list::{cursor_list_response, list_response, Paging};
use crate::scim::output::etag;
use crate::scim::projection::Projection;
use crate::scim::ScimError;

/// An endpoint: the resource type it serves.
pub trait Endpoint: 'static {
    const KIND: Kind;
}

pub struct Users;
pub struct Groups;

impl Endpoint for Users {
    const KIND: Kind = Kind::User;
}

impl Endpoint for Groups {
    const KIND: Kind = Kind::Group;
}

/// Runs blocking identity work on the blocking pool, in the connection's directory.
async fn blocking<T: Send + 'static>(
    served: &Served,
    work: impl FnOnce(&Directory) -> Result<T, IdentityError> + Send + 'static,
) -> Result<T, ScimError> {
    let directory = served.directory.clone();
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
    served: Served,
    principal: Principal,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ScimError> {
    let body = json_body(&req, &body)?;
    let projection = projection_param(&req)?.after_write();
    let rendered = served
        .directory
        .create_async(E::KIND, body, projection, principal.actor)
        .await?;
    Ok(resource(StatusCode::CREATED, &rendered))
}

pub async fn get<E: Endpoint>(
    served: Served,
    req: HttpRequest,
    id: web::Path<Named>,
) -> Result<HttpResponse, ScimError> {
    let id = resource_id(id)?;
    let projection = projection_param(&req)?;
    let rendered = served.directory.get_async(E::KIND, id, projection).await?;
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

/// `PUT` (RFC 7644 §3.5.1) or `PATCH` (§3.5.2) of one resource, as the request's method says.
pub async fn change<E: Endpoint>(
    served: Served,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<Named>,
    body: Bytes,
) -> Result<HttpResponse, ScimError> {
    let patching = req.method() == actix_web::http::Method::PATCH;
    let body = json_body(&req, &body)?;
    let condition = if_match(&req);
    let projection = projection_param(&req)?.after_write();
    let id = resource_id(id)?;
    let rendered = blocking(&served, move |d| {
        let change = if patching {
            Change::Patch(&body)
        } else {
            Change::Replace(&body)
        };
        d.change(
            E::KIND,
            &id,
            change,
            condition.as_ref(),
            &projection,
            &principal.actor,
        )
    })
    .await?;
    if patching && served.patch_returns_no_content {
        let mut response = HttpResponse::NoContent().finish();
        if let Ok(tag) = header::HeaderValue::from_str(&etag(rendered.version)) {
            response.headers_mut().insert(header::ETAG, tag);
        }
        return Ok(response);
    }
    Ok(resource(StatusCode::OK, &rendered))
}

pub async fn delete<E: Endpoint>(
    served: Served,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<Named>,
) -> Result<HttpResponse, ScimError> {
    let condition = if_match(&req);
    let id = resource_id(id)?;
    blocking(&served, move |d| {
        d.delete(E::KIND, &id, condition.as_ref(), &principal.actor)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list<E: Endpoint>(
    state: web::Data<AppState>,
    served: Served,
    req: HttpRequest,
) -> Result<HttpResponse, ScimError> {
    let params = query_params(&req)?;
    let request = SearchRequest::from_params(&params);
    let (query, paging) = request.into_query(&state.settings)?;
    let cursor_paged = query.cursor.is_some();
    let page = served.directory.search_async(E::KIND, query).await?;
    Ok(scim_json(
        StatusCode::OK,
        &list_body(cursor_paged, paging, page),
    ))
}

/// `POST /{Resource}/.search` (RFC 7644 §3.4.3).
pub async fn search<E: Endpoint>(
    state: web::Data<AppState>,
    served: Served,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ScimError> {
    let body = json_body(&req, &body)?;
    let (query, paging) = SearchRequest::from_body(&body)?.into_query(&state.settings)?;
    let cursor_paged = query.cursor.is_some();
    let page = served.directory.search_async(E::KIND, query).await?;
    Ok(scim_json(
        StatusCode::OK,
        &list_body(cursor_paged, paging, page),
    ))
}

/// `POST /.search` at the root: Users, then Groups, paged as one list.
pub async fn search_all(
    state: web::Data<AppState>,
    served: Served,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ScimError> {
    let body = json_body(&req, &body)?;
    let (query, paging) = SearchRequest::from_body(&body)?.into_query(&state.settings)?;
    let page = blocking(&served, move |d| d.search_all(&query, paging)).await?;
    Ok(scim_json(
        StatusCode::OK,
        &list_response(page.total, paging, page.resources),
    ))
}

fn list_body(cursor_paged: bool, paging: Paging, page: Page) -> Value {
    if cursor_paged {
        cursor_list_response(page.total, page.next_cursor, page.resources)
    } else {
        list_response(page.total, paging, page.resources)
    }
}

/// `attributes` / `excludedAttributes` from the query string of a single-resource request.
fn projection_param(req: &HttpRequest) -> Result<Projection, ScimError> {
    let params = query_params(req)?;
    let request = SearchRequest::from_params(&params);
    Projection::parse(
        request.attributes.as_deref(),
        request.excluded_attributes.as_deref(),
    )
}

/// Query parameters as pairs; names are matched case-insensitively by the callers.
pub fn query_params(req: &HttpRequest) -> Result<Vec<(String, String)>, ScimError> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .map_err(|e| ScimError::invalid_syntax(format!("malformed query string: {e}")))
}

/// The resource id from the URL. One no resource can have (a control character, which
/// PostgreSQL cannot even compare) is a 404 before the store is asked.
fn resource_id(id: web::Path<Named>) -> Result<String, ScimError> {
    let id = id.into_inner().id;
    if crate::scim::text::has_forbidden_control(&id) {
        return Err(ScimError::not_found(format!(
            "no resource has the id {}",
            id.escape_debug()
        )));
    }
    Ok(id)
}
