//! `POST /Bulk` (RFC 7644 §3.7): many operations in one request, each in its own transaction,
//! with `bulkId` references resolved across them and `failOnErrors` honoured.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::connection::Served;
use super::error::internal;
use super::media::{json_body, scim_json};
use super::AppState;
use crate::auth::Principal;
use crate::identity::{Change, Directory, IfMatch, Kind, Rendered};
use crate::scim::output::etag;
use crate::scim::projection::Projection;
use crate::scim::{ScimError, ScimType};

pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

#[derive(Debug, Clone)]
struct Operation {
    method: String,
    path: String,
    bulk_id: Option<String>,
    version: Option<String>,
    data: Option<Value>,
}

/// The outcome of one operation, as the response lists it.
struct Outcome {
    location: Option<String>,
    version: Option<i64>,
    status: u16,
    error: Option<ScimError>,
}

pub async fn bulk(
    state: web::Data<AppState>,
    served: Served,
    principal: Principal,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ScimError> {
    let limits = state.settings.bulk;
    if body.len() as i64 > limits.max_payload_size {
        return Err(ScimError::new(
            413,
            None,
            format!(
                "the bulk request is larger than maxPayloadSize ({} bytes)",
                limits.max_payload_size
            ),
        ));
    }
    let body = json_body(&req, &body)?;
    let (operations, fail_on_errors) = parse(&body)?;
    if operations.len() as i64 > limits.max_operations {
        return Err(ScimError::new(
            413,
            None,
            format!(
                "the bulk request has more than maxOperations ({}) operations",
                limits.max_operations
            ),
        ));
    }
    let directory = served.directory.clone();
    let base_url = served.base_url.to_string();
    let results = web::block(move || {
        execute(
            &directory,
            &base_url,
            operations,
            fail_on_errors,
            &principal.actor,
        )
    })
    .await
    .map_err(internal)?;
    Ok(scim_json(
        StatusCode::OK,
        &json!({"schemas": [BULK_RESPONSE_SCHEMA], "Operations": results}),
    ))
}

/// Reads a Bulk request as the endpoint does, without running it: how many operations it
/// holds, or why it is refused. The fuzz target and its regression test drive the parser here.
pub fn check_request(body: &Map<String, Value>) -> Result<usize, ScimError> {
    parse(body).map(|(operations, _)| operations.len())
}

fn parse(body: &Map<String, Value>) -> Result<(Vec<Operation>, Option<usize>), ScimError> {
    let get = |m: &Map<String, Value>, name: &str| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if let Some(Value::Array(schemas)) = get(body, "schemas") {
        if !schemas.iter().any(|s| {
            s.as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(BULK_REQUEST_SCHEMA))
        }) {
            return Err(ScimError::invalid_value(format!(
                "a bulk request's schemas must be [\"{BULK_REQUEST_SCHEMA}\"]"
            )));
        }
    }
    let fail_on_errors = match get(body, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => {
            n.as_u64().map(|n| n as usize)
        }
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "failOnErrors must be a positive integer, got {other}"
            )))
        }
    };
    let Some(Value::Array(ops)) = get(body, "Operations") else {
        return Err(ScimError::invalid_syntax(
            "a bulk request needs an 'Operations' array",
        ));
    };
    let mut seen_bulk_ids = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let Value::Object(fields) = op else {
            return Err(ScimError::invalid_syntax(
                "each bulk operation must be a JSON object",
            ));
        };
        let text = |name: &str| get(&fields, name).and_then(|v| v.as_str().map(str::to_string));
        let method = text("method")
            .map(|m| m.to_ascii_uppercase())
            .ok_or_else(|| ScimError::invalid_syntax("each bulk operation needs a 'method'"))?;
        let path = text("path")
            .ok_or_else(|| ScimError::invalid_syntax("each bulk operation needs a 'path'"))?;
        let bulk_id = text("bulkId");
        if method == "POST" && bulk_id.is_none() {
            return Err(ScimError::invalid_syntax("a bulk POST needs a 'bulkId'"));
        }
        if let Some(b) = &bulk_id {
            if !seen_bulk_ids.insert(b.clone()) {
                return Err(ScimError::invalid_value(format!(
                    "bulkId '{b}' is used twice"
                )));
            }
        }
        out.push(Operation {
            method,
            path,
            bulk_id,
            version: text("version"),
            data: get(&fields, "data"),
        });
    }
    Ok((out, fail_on_errors))
}

/// Runs the operations in order. An operation referring to a `bulkId` created later waits
/// until that resource exists (RFC 7644 §3.7.2 lets the server reorder).
fn execute(
    directory: &Directory,
    base_url: &str,
    operations: Vec<Operation>,
    fail_on_errors: Option<usize>,
    actor: &str,
) -> Vec<Value> {
    let mut created: HashMap<String, String> = HashMap::new();
    let mut results: Vec<Option<Value>> = vec![None; operations.len()];
    let mut done = vec![false; operations.len()];
    let mut errors = 0usize;
    // Can `bulk_id` still be created by an operation that has not run yet?
    let still_to_come = |done: &[bool], me: usize, bulk_id: &str| {
        operations
            .iter()
            .enumerate()
            .any(|(j, op)| j != me && !done[j] && op.bulk_id.as_deref() == Some(bulk_id))
    };
    loop {
        let mut progressed = false;
        for i in 0..operations.len() {
            if done[i] {
                continue;
            }
            let op = &operations[i];
            let unresolved: Vec<String> = references(op)
                .into_iter()
                .filter(|r| !created.contains_key(r))
                .collect();
            if unresolved.iter().any(|r| still_to_come(&done, i, r)) {
                continue;
            }
            let outcome = match unresolved.first() {
                Some(r) => refused(format!(
                    "bulkId '{r}' does not name a resource created in this request"
                )),
                None => run(directory, base_url, op, &created, actor),
            };
            if let (Some(bulk_id), Some(location), None) =
                (&op.bulk_id, &outcome.location, &outcome.error)
            {
                if let Some(id) = location.rsplit('/').next() {
                    created.insert(bulk_id.clone(), id.to_string());
                }
            }
            errors += usize::from(outcome.error.is_some());
            results[i] = Some(respond(op, outcome));
            done[i] = true;
            progressed = true;
            if fail_on_errors.is_some_and(|max| errors >= max) {
                return results.into_iter().flatten().collect();
            }
        }
        if done.iter().all(|d| *d) {
            break;
        }
        if !progressed {
            // What is left waits on itself: a cycle of references.
            for (i, op) in operations.iter().enumerate().filter(|(i, _)| !done[*i]) {
                results[i] = Some(respond(op, refused("circular bulkId references".into())));
            }
            break;
        }
    }
    results.into_iter().flatten().collect()
}

fn refused(detail: String) -> Outcome {
    Outcome {
        location: None,
        version: None,
        status: 409,
        error: Some(ScimError::new(409, Some(ScimType::InvalidValue), detail)),
    }
}

fn respond(op: &Operation, outcome: Outcome) -> Value {
    let mut r = Map::new();
    if let Some(location) = outcome.location {
        r.insert("location".into(), Value::String(location));
    }
    r.insert("method".into(), Value::String(op.method.clone()));
    if let Some(b) = &op.bulk_id {
        r.insert("bulkId".into(), Value::String(b.clone()));
    }
    if let Some(v) = outcome.version {
        r.insert("version".into(), Value::String(etag(v)));
    }
    r.insert("status".into(), Value::String(outcome.status.to_string()));
    if let Some(e) = outcome.error {
        r.insert("response".into(), e.to_json());
    }
    Value::Object(r)
}

/// `bulkId:X` references in the path and anywhere in the data.
fn references(op: &Operation) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => {
                if let Some(id) = s.strip_prefix("bulkId:") {
                    out.push(id.to_string());
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(fields) => fields.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for seg in op.path.split('/') {
        if let Some(id) = seg.strip_prefix("bulkId:") {
            out.push(id.to_string());
        }
    }
    if let Some(d) = &op.data {
        walk(d, &mut out);
    }
    out
}

fn substitute(v: &Value, created: &HashMap<String, String>) -> Value {
    match v {
        Value::String(s) => match s.strip_prefix("bulkId:").and_then(|id| created.get(id)) {
            Some(id) => Value::String(id.clone()),
            None => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|i| substitute(i, created)).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, i)| (k.clone(), substitute(i, created)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn run(
    directory: &Directory,
    base_url: &str,
    op: &Operation,
    created: &HashMap<String, String>,
    actor: &str,
) -> Outcome {
    match dispatch(directory, base_url, op, created, actor) {
        Ok((status, rendered, location)) => Outcome {
            location,
            version: rendered.map(|r| r.version),
            status,
            error: None,
        },
        Err(e) => Outcome {
            location: None,
            version: None,
            status: e.status,
            error: Some(e),
        },
    }
}

type Dispatched = (u16, Option<Rendered>, Option<String>);

fn dispatch(
    directory: &Directory,
    base_url: &str,
    op: &Operation,
    created: &HashMap<String, String>,
    actor: &str,
) -> Result<Dispatched, ScimError> {
    let path: String = op
        .path
        .split('/')
        .map(
            |seg| match seg.strip_prefix("bulkId:").and_then(|b| created.get(b)) {
                Some(id) => id.clone(),
                None => seg.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/");
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let Some(id) = segments
        .get(1)
        .filter(|id| crate::scim::text::has_forbidden_control(id))
    {
        // No resource can have such an id (PostgreSQL cannot even compare it).
        return Err(ScimError::not_found(format!(
            "no resource has the id {}",
            id.escape_debug()
        )));
    }
    let data = || -> Result<Map<String, Value>, ScimError> {
        match op.data.as_ref().map(|d| substitute(d, created)) {
            Some(Value::Object(m)) => Ok(m),
            _ => Err(ScimError::invalid_syntax(format!(
                "{} {} needs a 'data' object",
                op.method, op.path
            ))),
        }
    };
    let condition = op.version.as_deref().map(IfMatch::parse);
    let none = Projection::default();
    let location = |endpoint: &str, id: &str| format!("{base_url}/{endpoint}/{id}");
    let kind = match segments.first() {
        Some(s) if s.eq_ignore_ascii_case("Users") => Kind::User,
        Some(s) if s.eq_ignore_ascii_case("Groups") => Kind::Group,
        _ => {
            return Err(ScimError::bad_request(
                ScimType::InvalidPath,
                format!("'{}' is not a /Users or /Groups path", op.path),
            ))
        }
    };
    let endpoint = kind.endpoint();
    let result = match (op.method.as_str(), segments.get(1)) {
        ("POST", None) => directory.create(kind, &data()?, &none, actor).map(|r| {
            let id = r.body["id"].as_str().unwrap_or_default().to_string();
            (201, Some(r), Some(location(endpoint, &id)))
        }),
        (method @ ("PUT" | "PATCH"), Some(id)) => {
            let body = data()?;
            let change = if method == "PUT" {
                Change::Replace(&body)
            } else {
                Change::Patch(&body)
            };
            directory
                .change(kind, id, change, condition.as_ref(), &none, actor)
                .map(|r| (200, Some(r), Some(location(endpoint, id))))
        }
        ("DELETE", Some(id)) => directory
            .delete(kind, id, condition.as_ref(), actor)
            .map(|()| (204, None, Some(location(endpoint, id)))),
        (method, _) => {
            return Err(ScimError::new(
                405,
                None,
                format!("{method} {} is not a bulk operation", op.path),
            ));
        }
    };
    result.map_err(ScimError::from)
}
