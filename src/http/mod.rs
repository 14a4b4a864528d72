//! The HTTP edge: routes, authentication, media types and SCIM error mapping (actix-web).

mod auth;
pub mod bulk;
mod connection;
mod discovery;
mod error;
mod media;
pub mod observe;
mod resources;
mod search_request;
pub mod set_poll;

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpResponse, HttpServer};

use crate::auth::Authenticator;
use crate::identity::Directory;
use crate::scim::discovery::{BulkLimits, Capabilities};

pub use media::SCIM_JSON;
use resources::{Groups, Users};

/// Settings the handlers read.
#[derive(Debug, Clone)]
pub struct Settings {
    pub base_url: String,
    pub default_page_size: i64,
    pub max_page_size: i64,
    pub max_payload_bytes: usize,
    /// Answer a successful PATCH with 204 and no body instead of 200 and the resource.
    pub patch_returns_no_content: bool,
    pub bulk: BulkLimits,
    pub capabilities: Capabilities,
}

pub struct AppState {
    pub directory: Directory,
    pub authenticator: Authenticator,
    pub settings: Settings,
    /// SCIM requests in flight (event delivery yields to them).
    pub inbound: std::sync::Arc<crate::load::Inbound>,
    /// Each connection's `max_requests_per_second`, in this process.
    pub connection_rates: crate::rate::Buckets,
}

/// The SCIM base path; `Settings::base_url` is its external form.
pub const SCIM_PATH: &str = "/scim/v2";
/// The SCIM base path of a connection other than the default one.
pub const CONNECTION_SCIM_PATH: &str = "/scim/{connection}/v2";

/// Registers every route on an actix-web app.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let payload_limit = state.settings.max_payload_bytes;
        // The body limit lets a slightly oversized bulk request through so the handler can
        // answer it with the RFC's 413 and the announced limit.
        let bulk_payload_limit = state.settings.bulk.max_payload_size.max(0) as usize + 1;
        let authenticator = web::Data::new(state.authenticator.clone());
        cfg.app_data(state)
            .app_data(web::PayloadConfig::new(payload_limit))
            .route(
                "/healthz",
                web::get().to(|| async { HttpResponse::Ok().body("ok") }),
            )
            .route("/readyz", web::get().to(ready))
            .route("/metrics", web::get().to(observe::scrape))
            // The console signs operators in with the same tokens.
            .app_data(authenticator)
            .configure(crate::console::routes)
            .service(
                web::scope("/admin")
                    .wrap(from_fn(auth::require_admin))
                    .configure(crate::admin::routes),
            )
            // The default connection at /scim/v2, every other at /scim/{connection}/v2.
            .service(
                web::scope(SCIM_PATH)
                    .wrap(from_fn(auth::require_bearer))
                    .wrap(from_fn(auth::count_inbound))
                    .wrap(from_fn(observe::count_scim_request))
                    .configure(scim_routes(bulk_payload_limit)),
            )
            .service(
                web::scope(CONNECTION_SCIM_PATH)
                    .wrap(from_fn(auth::require_bearer))
                    .wrap(from_fn(auth::count_inbound))
                    .wrap(from_fn(observe::count_scim_request))
                    .configure(scim_routes(bulk_payload_limit)),
            );
    }
}

/// The SCIM endpoints of one connection.
fn scim_routes(bulk_payload_limit: usize) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::resource("/Users")
                .route(web::get().to(resources::list::<Users>))
                .route(web::post().to(resources::create::<Users>)),
        )
        .service(web::resource("/Users/.search").route(web::post().to(resources::search::<Users>)))
        .service(web::resource("/.search").route(web::post().to(resources::search_all)))
        .service(
            web::resource("/Users/{id}")
                .route(web::get().to(resources::get::<Users>))
                .route(web::put().to(resources::change::<Users>))
                .route(web::patch().to(resources::change::<Users>))
                .route(web::delete().to(resources::delete::<Users>)),
        )
        .service(
            web::resource("/Groups")
                .route(web::get().to(resources::list::<Groups>))
                .route(web::post().to(resources::create::<Groups>)),
        )
        .service(
            web::resource("/Groups/.search").route(web::post().to(resources::search::<Groups>)),
        )
        .service(
            web::resource("/Groups/{id}")
                .route(web::get().to(resources::get::<Groups>))
                .route(web::put().to(resources::change::<Groups>))
                .route(web::patch().to(resources::change::<Groups>))
                .route(web::delete().to(resources::delete::<Groups>)),
        )
        .service(
            web::resource("/Bulk")
                .app_data(web::PayloadConfig::new(bulk_payload_limit))
                .route(web::post().to(bulk::bulk)),
        )
        .service(
            web::resource("/ServiceProviderConfig")
                .route(web::get().to(discovery::service_provider_config)),
        )
        .service(web::resource("/ResourceTypes").route(web::get().to(discovery::resource_types)))
        .service(
            web::resource("/ResourceTypes/{id}").route(web::get().to(discovery::resource_type)),
        )
        .service(web::resource("/Schemas").route(web::get().to(discovery::schemas)))
        .service(web::resource("/Schemas/{id}").route(web::get().to(discovery::schema)));
    }
}

/// Starts the HTTP server on an already bound listener.
pub fn serve(
    listener: TcpListener,
    state: AppState,
    admin: crate::admin::AdminState,
    polls: set_poll::PollState,
    observed: observe::Observed,
) -> std::io::Result<(Server, SocketAddr)> {
    let addr = listener.local_addr()?;
    let observed = web::Data::new(observed);
    let state = web::Data::new(state);
    let admin = web::Data::new(admin);
    let polls = web::Data::new(polls);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(admin.clone())
            .app_data(polls.clone())
            .app_data(observed.clone())
            .service(web::resource("/events/{name}").route(web::post().to(set_poll::poll)))
            .wrap(ErrorHandlers::new().default_handler(error::scim_error_body))
            // Inside the request's span, so its line carries the request id.
            .wrap(from_fn(observe::access_log))
            .wrap(tracing_actix_web::TracingLogger::default())
            .configure(configure(state.clone()))
            .default_service(web::to(|| async { HttpResponse::NotFound().finish() }))
    })
    .listen(listener)?
    .run();
    Ok((server, addr))
}

/// `/readyz`: 200 when the database answers now, else 503 with `Retry-After` (a load balancer
/// takes the instance out until it is back). `/healthz` only says the process is alive.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let directory = state.directory.clone();
    match web::block(move || directory.ready()).await {
        Ok(Ok(())) => HttpResponse::Ok().body("ready"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            let why = match e {
                crate::identity::IdentityError::Storage(crate::storage::StoreError::Migration(
                    _,
                )) => "the database schema is missing migrations of this version",
                _ => "the database is unavailable",
            };
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(serde_json::json!({"ready": false, "detail": why}))
        }
        Err(_) => HttpResponse::ServiceUnavailable().body("busy"),
    }
}
