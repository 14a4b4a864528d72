//! What the HTTP edge tells operators: Prometheus metrics (`GET /metrics`, and the SCIM
//! requests it counts) and the optional access log.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::metrics::Metrics;
use crate::storage::Db;

/// The metrics endpoint's settings and the server's metrics.
pub struct Observed {
    pub metrics: Metrics,
    pub db: Db,
    pub scrape_enabled: bool,
    /// Scrapers must send it as a bearer token, when set.
    pub scrape_token: Option<String>,
    pub access_log: bool,
}

/// `GET /metrics`: everything in Prometheus text format (version 0.0.4).
pub async fn scrape(req: HttpRequest, observed: web::Data<Observed>) -> HttpResponse {
    if !observed.scrape_enabled {
        return HttpResponse::NotFound().finish();
    }
    if let Some(expected) = &observed.scrape_token {
        let sent = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        // Digests compared, so the time taken says nothing about the token.
        let same = sent.is_some_and(|sent| {
            Sha256::digest(sent.as_bytes()) == Sha256::digest(expected.as_bytes())
        });
        if !same {
            return HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\""))
                .json(serde_json::json!({"detail": "/metrics needs its bearer token"}));
        }
    }
    let (metrics, db) = (observed.metrics.clone(), observed.db.clone());
    match web::block(move || metrics.render(&db)).await {
        Ok(Ok(text)) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Ok(Err(error)) => {
            tracing::warn!(%error, "metrics could not read the store");
            HttpResponse::ServiceUnavailable().body("the database is unavailable")
        }
        Err(_) => HttpResponse::ServiceUnavailable().body("busy"),
    }
}

/// Middleware for the SCIM API: each request's latency by resource, method and status.
pub async fn count_scim_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> actix_web::Result<ServiceResponse<impl MessageBody>> {
    let started = Instant::now();
    let observed = req.app_data::<web::Data<Observed>>().cloned();
    let response = next.call(req).await?;
    if let Some(observed) = observed {
        let request = response.request();
        let resource = scim_resource(request.match_pattern().as_deref());
        observed.metrics.scim_request(
            resource,
            request.method().as_str(),
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    Ok(response)
}

/// Middleware for every route: one `access` log line per request when the config asks for it.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> actix_web::Result<ServiceResponse<impl MessageBody>> {
    let logging = req
        .app_data::<web::Data<Observed>>()
        .is_some_and(|o| o.access_log);
    let started = Instant::now();
    let response = next.call(req).await?;
    if logging {
        let request = response.request();
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "(no route)".to_string());
        let actor = request
            .extensions()
            .get::<Principal>()
            .map(|p| p.actor.clone())
            .unwrap_or_else(|| "-".to_string());
        tracing::info!(
            target: "scimgate::access",
            method = %request.method(),
            route = %route,
            status = response.status().as_u16(),
            latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            actor = %actor,
            "request"
        );
    }
    Ok(response)
}

/// The resource a SCIM route pattern serves: `/scim/v2/Users/{id}` is `Users`.
fn scim_resource(pattern: Option<&str>) -> &'static str {
    const KNOWN: [&str; 8] = [
        "Users",
        "Groups",
        "Bulk",
        "Me",
        "ServiceProviderConfig",
        "Schemas",
        "ResourceTypes",
        ".search",
    ];
    let Some(rest) = pattern.and_then(|p| {
        p.strip_prefix(super::SCIM_PATH)
            .or_else(|| p.strip_prefix(super::CONNECTION_SCIM_PATH))
    }) else {
        return "unmatched";
    };
    let first = rest.trim_start_matches('/').split('/').next().unwrap_or("");
    KNOWN.into_iter().find(|k| *k == first).unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::scim_resource;

    #[test]
    fn a_route_pattern_names_its_resource_and_never_an_id() {
        assert_eq!(scim_resource(Some("/scim/v2/Users/{id}")), "Users");
        assert_eq!(scim_resource(Some("/scim/v2/Users/.search")), "Users");
        assert_eq!(scim_resource(Some("/scim/v2/Groups")), "Groups");
        assert_eq!(scim_resource(Some("/scim/v2/.search")), ".search");
        assert_eq!(scim_resource(Some("/scim/v2/Schemas/{id}")), "Schemas");
        assert_eq!(
            scim_resource(Some("/scim/{connection}/v2/Users/{id}")),
            "Users"
        );
        assert_eq!(scim_resource(None), "unmatched");
        assert_eq!(scim_resource(Some("/admin/orders")), "unmatched");
    }
}
