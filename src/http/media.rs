//! SCIM media types, request bodies and JSON responses with ETags.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value};

use crate::identity::Rendered;
use crate::scim::input::parse_object;
use crate::scim::ScimError;

pub const SCIM_JSON: &str = "application/scim+json";

/// Reads a JSON object body sent as `application/scim+json` or `application/json` (RFC 7644
/// §3.1). A missing Content-Type is tolerated, as some IdPs omit it; any other is 415.
pub fn json_body(req: &HttpRequest, body: &[u8]) -> Result<Map<String, Value>, ScimError> {
    if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != SCIM_JSON && essence != "application/json" {
            return Err(ScimError::new(
                415,
                None,
                format!("Content-Type '{essence}' is not supported: use application/scim+json"),
            ));
        }
    }
    parse_object(body)
}

pub fn scim_json(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, SCIM_JSON))
        .body(body.to_string())
}

/// A single resource with its `ETag` (and `Location` when created).
pub fn resource(status: StatusCode, rendered: &Rendered) -> HttpResponse {
    let mut response = scim_json(status, &rendered.body);
    if let Ok(etag) = HeaderValue::from_str(&crate::scim::output::etag(rendered.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if status == StatusCode::CREATED {
        if let Some(Ok(location)) = rendered.body["meta"]["location"]
            .as_str()
            .map(HeaderValue::from_str)
        {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    response
}
