//! Query parameters shared by the admin list endpoints: the pairs themselves, page sizes and
//! keyset positions, each refused with a 400 that names the parameter.

use actix_web::{web, HttpRequest};

use super::AdminError;

/// The query string's pairs, in order.
pub fn params(req: &HttpRequest) -> Result<Vec<(String, String)>, AdminError> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .map_err(|e| AdminError::BadRequest(format!("malformed query string: {e}")))
}

/// A page size, brought within 1..=`max`.
pub fn limit(raw: &str, max: i64) -> Result<i64, AdminError> {
    raw.parse::<i64>()
        .map(|n| n.clamp(1, max))
        .map_err(|_| AdminError::BadRequest("limit must be a number".into()))
}

/// The id a keyset page continues after; `what` names the thing the id is of.
pub fn after_id(raw: &str, what: &str) -> Result<i64, AdminError> {
    raw.parse()
        .map_err(|_| AdminError::BadRequest(format!("after must be {what} id")))
}

/// A parameter the endpoint does not take.
pub fn unknown(name: &str) -> AdminError {
    AdminError::BadRequest(format!("unknown parameter {name:?}"))
}

/// Where the next page starts: after the last item of a full page; `None` after the last page.
pub fn next_after<T>(page: &[T], limit: i64, id: impl Fn(&T) -> i64) -> Option<i64> {
    (page.len() as i64 == limit)
        .then(|| page.last().map(id))
        .flatten()
}
