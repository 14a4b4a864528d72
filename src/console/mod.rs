//! The operators' console in the browser, at `/ui`: server-rendered pages (askama templates,
//! checked at compile time; htmx and the stylesheet embedded in the binary) over the same
//! services as the admin API. Sign-in exchanges an admin-API token for a server-side session;
//! every form carries the session's CSRF token, and every page a strict Content-Security-Policy.

mod approvals;
mod assets;
mod chart;
mod pages;
mod people;
mod reconcile;
mod session;
mod target_form;
mod targets;
mod work_items;

use actix_web::middleware::DefaultHeaders;
use actix_web::web;

/// Registers `/ui` and everything under it.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/ui")
            .wrap(
                DefaultHeaders::new()
                    .add((
                        "Content-Security-Policy",
                        "default-src 'none'; script-src 'self'; style-src 'self'; \
                         img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                         frame-ancestors 'none'; base-uri 'none'",
                    ))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "no-referrer"))
                    .add(("X-Frame-Options", "DENY"))
                    .add(("Cache-Control", "no-store")),
            )
            .route("", web::get().to(pages::overview))
            .route("/", web::get().to(pages::overview))
            .route("/login", web::get().to(session::login_form))
            .route("/login", web::post().to(session::login))
            .route("/logout", web::post().to(session::logout))
            .route("/orders", web::get().to(pages::orders))
            .route("/approvals", web::get().to(approvals::page))
            .route("/approvals", web::post().to(approvals::decide))
            .route("/people", web::get().to(people::search))
            .route("/people/users/{id}", web::get().to(people::user))
            .route(
                "/people/users/{id}/provision/{target}",
                web::post().to(people::provision),
            )
            .route("/work-items", web::get().to(work_items::page))
            .route("/work-items/{id}/{how}", web::post().to(work_items::close))
            .route("/reconcile", web::get().to(reconcile::page))
            .route("/reconcile/{target}/sync", web::post().to(reconcile::start))
            .route(
                "/reconcile/{target}/runs/{id}",
                web::get().to(reconcile::run),
            )
            .route("/orders/{id}", web::get().to(pages::order))
            .route("/orders/{id}/{action}", web::post().to(pages::order_action))
            .route("/targets", web::get().to(targets::page))
            .route("/targets", web::post().to(target_form::create))
            .route("/targets/new", web::get().to(target_form::new_form))
            .route("/targets/{name}", web::post().to(target_form::save))
            .route(
                "/targets/{name}/edit",
                web::get().to(target_form::edit_form),
            )
            .route("/targets/{name}/{action}", web::post().to(targets::act))
            .route("/static/{file}", web::get().to(assets::serve)),
    );
}
