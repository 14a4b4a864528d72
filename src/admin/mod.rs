//! The admin API (`/admin`): operators see and act on provisioning orders and targets. JSON,
//! authenticated with admin tokens only (`scimgate token create --admin`).

mod error;
mod orders;
mod targets;

use actix_web::web;

use crate::config::TargetConfig;
use crate::storage::Db;

pub use error::AdminError;

/// What the admin handlers read.
pub struct AdminState {
    pub db: Db,
    pub targets: Vec<TargetConfig>,
    /// This process's view of target health.
    pub quarantine: std::sync::Arc<crate::provisioning::quarantine::QuarantineBoard>,
}

/// Registers the admin routes (inside a scope the caller protects).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/orders").route(web::get().to(orders::list)))
        .service(web::resource("/orders/{id}").route(web::get().to(orders::get)))
        .service(web::resource("/orders/{id}/retry").route(web::post().to(orders::retry)))
        .service(web::resource("/orders/{id}/cancel").route(web::post().to(orders::cancel)))
        .service(web::resource("/targets").route(web::get().to(targets::list)))
        .service(web::resource("/targets/{name}/status").route(web::get().to(targets::status)))
        .service(
            web::resource("/resources/{type}/{id}/orders")
                .route(web::get().to(orders::of_resource)),
        );
}

/// Runs blocking store work for a handler.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AdminError> + Send + 'static,
) -> Result<T, AdminError> {
    web::block(work)
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))?
}

fn time(micros: i64) -> String {
    crate::scim::output::format_time(micros)
}
