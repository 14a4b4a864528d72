//! Which connection a SCIM request is served for: the default one at `/scim/v2`, or the one
//! its path names (`/scim/{connection}/v2`). The bearer check puts it in the request (only a
//! token of that connection gets this far); handlers take it as an argument and work through
//! its directory, which sees only the connection's resources.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use super::error::internal;
use crate::connections::ConnectionSettings;
use crate::identity::{Directory, DEFAULT_CONNECTION};
use crate::scim::ScimError;

/// The connection a request is served for.
#[derive(Clone)]
pub struct Served {
    /// The connection's SCIM base URL, for `meta.location` and discovery.
    pub base_url: Arc<str>,
    /// The store as this connection sees it.
    pub directory: Directory,
    /// Answer a successful PATCH with 204 (the connection's setting, else the server's).
    pub patch_returns_no_content: bool,
}

impl Served {
    /// `name`'s endpoint under the server's base URL: `…/scim/v2` for the default
    /// connection, `…/scim/{name}/v2` for the others.
    pub fn new(
        everything: &Directory,
        base_url: &str,
        name: &str,
        settings: &ConnectionSettings,
        patch_returns_no_content: bool,
    ) -> Served {
        let base_url = base_url.trim_end_matches('/');
        let own = if name == DEFAULT_CONNECTION {
            base_url.to_string()
        } else {
            match base_url.strip_suffix("/v2") {
                Some(root) => format!("{root}/{name}/v2"),
                None => format!("{base_url}/{name}"),
            }
        };
        Served {
            directory: everything
                .for_connection(name, &own)
                .guarding_deletes(settings.max_user_deletes_per_hour),
            base_url: Arc::from(own),
            patch_returns_no_content,
        }
    }
}

/// The last segment of a SCIM path (`/Users/{id}`, `/Schemas/{id}`, `/ResourceTypes/{id}`),
/// by name: a connection's paths hold its name too, which a plain `Path<String>` would refuse.
#[derive(serde::Deserialize)]
pub struct Named {
    pub id: String,
}

/// The connection named by the request's path.
pub fn named_in(req: &HttpRequest) -> &str {
    req.match_info()
        .get("connection")
        .unwrap_or(DEFAULT_CONNECTION)
}

impl FromRequest for Served {
    type Error = ScimError;
    type Future = Ready<Result<Served, ScimError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Served>()
                .cloned()
                .ok_or_else(|| internal("the request's connection was not resolved")),
        )
    }
}
