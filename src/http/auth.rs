//! Bearer authentication for every SCIM route; the principal rides in request extensions.

use std::future::{ready, Ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, ResponseError};

use super::connection::{self, Served};
use super::error::internal;
use super::AppState;
use crate::auth::{AuthError, Principal, Role};
use crate::scim::ScimError;

/// Middleware for the SCIM API: answers 401 with `WWW-Authenticate: Bearer` unless the request
/// carries a valid identity-provider token (an API token or a JWT).
pub async fn require_bearer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> actix_web::Result<ServiceResponse<actix_web::body::BoxBody>> {
    require(Role::Scim, req, next).await
}

/// Middleware for the SCIM API: counts the request as in flight while it is served, so
/// background work can yield to identity providers.
pub async fn count_inbound(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> actix_web::Result<ServiceResponse<impl MessageBody>> {
    let _in_flight = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.inbound.enter());
    next.call(req).await
}

/// Middleware for the admin API: admin-API tokens (`scimgate token create --role ...`) whose
/// role allows the route ([`crate::admin::needed_role`]); others get 403.
pub async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> actix_web::Result<ServiceResponse<actix_web::body::BoxBody>> {
    let needed = crate::admin::needed_role(req.method(), req.path());
    require(needed, req, next).await
}

/// Lets the request through when its token's role is `needed` (SCIM) or allows it (admin).
async fn require(
    needed: Role,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> actix_web::Result<ServiceResponse<actix_web::body::BoxBody>> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        let error = ScimError::unauthorized("a bearer token is required");
        return Ok(req.into_response(error.error_response()));
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req.into_response(internal("application state missing").error_response()));
    };
    let served_state = state.clone();
    // Most requests are answered from memory; only a cache miss costs a blocking DB read.
    let verdict = match state.authenticator.authenticate_in_memory(&token) {
        Some(v) => Ok(v),
        None => web::block(move || state.authenticator.authenticate(&token)).await,
    };
    match verdict {
        Ok(Ok(principal)) if needed == Role::Scim && principal.role == Role::Scim => {
            // An identity provider's token works at its own connection's endpoint only.
            let route = connection::named_in(req.request()).to_string();
            if principal.connection.as_deref() != Some(route.as_str()) {
                let error = ScimError::unauthorized(format!(
                    "this token is not valid for connection {route:?}'s endpoint"
                ));
                return Ok(req.into_response(error.error_response()));
            }
            if let Some(rate) = principal.settings.max_requests_per_second {
                if served_state.connection_rates.take(&route, rate, 1) == 0 {
                    let error = ScimError::new(
                        429,
                        None,
                        format!("connection {route:?} sends more than {rate} requests a second"),
                    );
                    let mut response = error.error_response();
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                    return Ok(req.into_response(response));
                }
            }
            let patch_returns_no_content = principal
                .settings
                .patch_returns_no_content
                .unwrap_or(served_state.settings.patch_returns_no_content);
            let served = Served::new(
                &served_state.directory,
                &served_state.settings.base_url,
                &route,
                &principal.settings,
                patch_returns_no_content,
            );
            req.extensions_mut().insert(served);
            req.extensions_mut().insert(principal);
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Ok(Ok(principal)) if needed != Role::Scim && principal.role.allows(needed) => {
            req.extensions_mut().insert(principal);
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Ok(Ok(principal)) => {
            let detail = match (needed, principal.role) {
                (Role::Scim, _) => "this token is not valid for the SCIM API".to_string(),
                (_, Role::Scim) => "this token is not valid for the admin API".to_string(),
                (needed, role) => format!(
                    "a {} token may not do this; it needs the {} role",
                    role.as_str(),
                    needed.as_str()
                ),
            };
            Ok(req.into_response(ScimError::new(403, None, detail).error_response()))
        }
        Ok(Err(AuthError::Storage(e))) => {
            Ok(req.into_response(super::error::storage(e).error_response()))
        }
        Ok(Err(e)) => {
            tracing::info!(error = %e, "authentication failed");
            let error = ScimError::unauthorized(e.to_string());
            Ok(req.into_response(error.error_response()))
        }
        Err(e) => Ok(req.into_response(internal(e).error_response())),
    }
}

impl FromRequest for Principal {
    type Error = ScimError;
    type Future = Ready<Result<Principal, ScimError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .ok_or_else(|| ScimError::unauthorized("a bearer token is required")),
        )
    }
}
