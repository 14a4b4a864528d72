//! Mapping errors to SCIM error responses at the HTTP edge (RFC 7644 §3.12).

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};

use super::media::SCIM_JSON;
use crate::identity::IdentityError;
use crate::scim::ScimError;

impl ResponseError for ScimError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, SCIM_JSON));
        if self.status == 401 {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"scimgate\""));
        }
        if self.status == 503 {
            response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
        }
        response.body(self.to_json().to_string())
    }
}

impl From<IdentityError> for ScimError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Invalid(scim) => scim,
            IdentityError::NotFound(detail) => ScimError::not_found(detail),
            IdentityError::Conflict(detail) => ScimError::uniqueness(detail),
            e @ IdentityError::PreconditionFailed { .. } => {
                ScimError::precondition_failed(e.to_string())
            }
            IdentityError::Storage(e) => storage(e),
            e @ IdentityError::Corrupt(_) => internal(e),
        }
    }
}

/// What a client is told to wait before trying again while the database is unavailable.
const RETRY_AFTER_SECONDS: &str = "1";

/// A storage failure: `503` with `Retry-After` when the database cannot be reached (it is
/// down, or the connection was lost), else a logged `500`.
pub fn storage(error: crate::storage::StoreError) -> ScimError {
    if error.is_unavailable() {
        tracing::warn!(%error, "database unavailable");
        return ScimError::new(503, None, "the database is unavailable; try again shortly");
    }
    internal(error)
}

/// Logs the cause and answers 500 without leaking internals.
pub fn internal(error: impl std::fmt::Display) -> ScimError {
    tracing::error!(%error, "internal error");
    ScimError::internal("internal server error")
}

/// Gives every error response that actix-web itself produced (no route, wrong method, body too
/// large, ...) a SCIM error body, so clients never see a plain-text error.
pub fn scim_error_body<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // Handlers answer in JSON themselves (SCIM errors, admin API errors); only actix-web's own
    // plain responses are rewritten.
    let already_json = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(SCIM_JSON.as_bytes())
                || v.as_bytes().starts_with(b"application/json")
        });
    // The console answers its browsers in HTML and plain text.
    if already_json || res.request().path().starts_with("/ui") {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let error = match status.as_u16() {
        400 => ScimError::invalid_syntax("the request could not be read"),
        404 => ScimError::not_found(format!("no SCIM endpoint at {}", res.request().path())),
        405 => ScimError::new(
            405,
            None,
            format!(
                "method {} is not allowed on {}",
                res.request().method(),
                res.request().path()
            ),
        ),
        413 => ScimError::new(
            413,
            None,
            "the request body is larger than the server accepts",
        ),
        415 => ScimError::new(
            415,
            None,
            "use Content-Type application/scim+json or application/json",
        ),
        code => ScimError::new(code, None, status.canonical_reason().unwrap_or("error")),
    };
    let (req, mut original) = res.into_parts();
    let mut response = error.error_response();
    // Keep headers such as Allow that actix-web set for the original error.
    for (name, value) in original.headers_mut().drain() {
        if let Some(name) = name {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
}
