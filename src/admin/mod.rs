//! The admin API (`/admin`): operators see and act on provisioning orders and targets. JSON,
//! authenticated with admin tokens only (`scimgate token create --admin`).

mod approvals;
mod changes;
mod connections;
mod error;
mod on_demand;
mod orders;
mod query;
mod schemas;
mod subscriptions;
mod syncs;
mod target_changes;
mod target_check;
mod target_view;
mod targets;
mod work_items;

use actix_web::http::Method;
use actix_web::web;

use crate::auth::Role;
use crate::storage::Db;
use crate::targets::TargetConfig;

pub use error::AdminError;

/// What the admin handlers read.
pub struct AdminState {
    pub db: Db,
    /// The identities with the provisioning store, for what reads or plans them (provision
    /// on demand, full sync).
    pub directory: crate::provisioning::Context,
    /// The config file's targets (read-only here); the others are in the database.
    pub targets: Vec<TargetConfig>,
    /// The `[events]` settings subscriptions are checked against.
    pub events: std::sync::Arc<crate::events::EventsConfig>,
    /// The config file's extension schemas (read-only here); the others are in the database.
    pub schema_extensions:
        std::sync::Arc<Vec<crate::scim::schema::declaration::ExtensionDeclaration>>,
}

/// Registers the admin routes (inside a scope the caller protects).
/// The role a request to the admin API needs: reading needs `viewer`; changing targets needs
/// `admin`; every other action (retry, cancel, approve, decline, work items, on-demand
/// provisioning, connection tests, aggregation and sync) needs `operator`.
pub fn needed_role(method: &Method, path: &str) -> Role {
    if matches!(*method, Method::GET | Method::HEAD) {
        return Role::Viewer;
    }
    let path = path.trim_start_matches("/admin").trim_end_matches('/');
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["targets"] | ["targets", _] | ["targets", _, "enable" | "disable"] => Role::Admin,
        ["connections"] | ["connections", _] | ["connections", _, "enable" | "disable"] => {
            Role::Admin
        }
        ["schemas"] | ["schemas", _] => Role::Admin,
        ["subscriptions"]
        | ["subscriptions", _]
        | ["subscriptions", _, "enable" | "disable" | "rotate-secret"] => Role::Admin,
        _ => Role::Operator,
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/orders").route(web::get().to(orders::list)))
        // Before `/orders/{id}`, which would take these paths and answer 405.
        .service(web::resource("/orders/approve").route(web::post().to(approvals::approve_all)))
        .service(web::resource("/orders/decline").route(web::post().to(approvals::decline_all)))
        .service(web::resource("/orders/{id}").route(web::get().to(orders::get)))
        .service(web::resource("/orders/{id}/retry").route(web::post().to(orders::retry)))
        .service(web::resource("/orders/{id}/cancel").route(web::post().to(orders::cancel)))
        .service(web::resource("/orders/{id}/approve").route(web::post().to(approvals::approve)))
        .service(web::resource("/orders/{id}/decline").route(web::post().to(approvals::decline)))
        .service(web::resource("/provision-on-demand").route(web::post().to(on_demand::run)))
        .service(web::resource("/work-items").route(web::get().to(work_items::list)))
        .service(web::resource("/work-items/{id}").route(web::get().to(work_items::get)))
        .service(
            web::resource("/work-items/{id}/complete").route(web::post().to(work_items::complete)),
        )
        .service(web::resource("/work-items/{id}/fail").route(web::post().to(work_items::fail)))
        .service(
            web::resource("/targets")
                .route(web::get().to(targets::list))
                .route(web::post().to(target_changes::create)),
        )
        .service(
            web::resource("/targets/{name}")
                .route(web::get().to(targets::get))
                .route(web::put().to(target_changes::replace))
                .route(web::delete().to(target_changes::delete)),
        )
        .service(
            web::resource("/targets/{name}/enable").route(web::post().to(target_changes::enable)),
        )
        .service(
            web::resource("/targets/{name}/disable").route(web::post().to(target_changes::disable)),
        )
        .service(web::resource("/targets/{name}/test").route(web::post().to(target_check::test)))
        .service(web::resource("/targets/{name}/status").route(web::get().to(targets::status)))
        .service(web::resource("/targets/{name}/aggregate").route(web::post().to(syncs::aggregate)))
        .service(web::resource("/targets/{name}/sync").route(web::post().to(syncs::sync)))
        .service(web::resource("/targets/{name}/syncs").route(web::get().to(syncs::list)))
        .service(web::resource("/targets/{name}/syncs/{id}").route(web::get().to(syncs::get)))
        .service(web::resource("/targets/{name}/accounts").route(web::get().to(syncs::accounts)))
        .service(
            web::resource("/resources/{type}/{id}/orders")
                .route(web::get().to(orders::of_resource)),
        )
        .service(web::resource("/changes").route(web::get().to(changes::changes)))
        .service(web::resource("/events").route(web::get().to(changes::list_events)))
        .configure(subscription_routes)
        .configure(connection_routes)
        .configure(schema_routes);
}

fn schema_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/schemas")
            .route(web::get().to(schemas::list))
            .route(web::post().to(schemas::create)),
    )
    .service(
        web::resource("/schemas/{urn}")
            .route(web::get().to(schemas::get))
            .route(web::put().to(schemas::replace))
            .route(web::delete().to(schemas::delete)),
    );
}

fn connection_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/connections")
            .route(web::get().to(connections::list))
            .route(web::post().to(connections::create)),
    )
    .service(
        web::resource("/connections/{name}")
            .route(web::get().to(connections::get))
            .route(web::put().to(connections::replace))
            .route(web::delete().to(connections::delete)),
    )
    .service(web::resource("/connections/{name}/enable").route(web::post().to(connections::enable)))
    .service(
        web::resource("/connections/{name}/disable").route(web::post().to(connections::disable)),
    );
}

fn subscription_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/subscriptions")
            .route(web::get().to(subscriptions::list))
            .route(web::post().to(subscriptions::create)),
    )
    .service(
        web::resource("/subscriptions/{name}")
            .route(web::get().to(subscriptions::get))
            .route(web::put().to(subscriptions::replace))
            .route(web::delete().to(subscriptions::delete)),
    )
    .service(
        web::resource("/subscriptions/{name}/enable").route(web::post().to(subscriptions::enable)),
    )
    .service(
        web::resource("/subscriptions/{name}/disable")
            .route(web::post().to(subscriptions::disable)),
    )
    .service(
        web::resource("/subscriptions/{name}/rotate-secret")
            .route(web::post().to(subscriptions::rotate_secret)),
    )
    .service(web::resource("/subscriptions/{name}/test").route(web::post().to(subscriptions::test)))
    .service(
        web::resource("/subscriptions/{name}/replay").route(web::post().to(subscriptions::replay)),
    )
    .service(
        web::resource("/subscriptions/{name}/deliveries")
            .route(web::get().to(subscriptions::deliveries)),
    )
    .service(
        web::resource("/subscriptions/{name}/deliveries/{id}")
            .route(web::get().to(subscriptions::delivery)),
    )
    .service(
        web::resource("/subscriptions/{name}/deliveries/{id}/replay")
            .route(web::post().to(subscriptions::replay_delivery)),
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
