//! The console's static files, embedded in the binary: no front-end build, nothing fetched
//! from elsewhere (the Content-Security-Policy allows only this server's own scripts).

use actix_web::{web, HttpResponse};

/// htmx 2.0.11 (BSD Zero Clause License), from the npm registry's `htmx.org` package.
const HTMX: &[u8] = include_bytes!("assets/htmx.min.js");
const CSS: &[u8] = include_bytes!("assets/console.css");

pub async fn serve(file: web::Path<String>) -> HttpResponse {
    let (body, content_type) = match file.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "console.css" => (CSS, "text/css; charset=utf-8"),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(content_type)
        // Overrides the console's no-store: these change only with the binary.
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(body)
}
