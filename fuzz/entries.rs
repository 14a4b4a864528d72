//! What each fuzz target does with its input, shared by the targets (`cargo +nightly fuzz run
//! NAME`) and by the stable test suite, which replays the kept corpus and crash inputs through
//! the same functions. Every input must end in `Ok` or a SCIM error: never a panic, never a
//! stack overflow.

use serde_json::{json, Map, Value};

use scimgate::scim::registry;
use scimgate::scim::{filter, filter_eval, input, patch, schema};

/// The filter parser, and the in-memory evaluator on what it parsed.
pub fn filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = filter::parse(text) {
        if let Some(emails) = schema::USER.attribute("emails") {
            let value = json!({"value": "a@b.example", "type": "work", "primary": true});
            filter_eval::matches(&parsed, &value, emails);
        }
    }
}

/// The PATCH path parser.
pub fn patch_path(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = patch::PatchPath::parse(text);
    }
}

/// A PATCH request read and applied to a user and to a group, then checked as the server
/// checks the result.
pub fn patch_apply(data: &[u8]) {
    let Ok(body) = input::parse_object(data) else {
        return;
    };
    let Ok(ops) = patch::parse_request(&body) else {
        return;
    };
    let mut user = object(json!({"userName": "fuzz", "name": {"givenName": "F"},
        "emails": [{"value": "f@x.example", "type": "work", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D"}}));
    for op in &ops {
        if patch::apply(registry::user(), &mut user, op).is_err() {
            break;
        }
    }
    let _ = input::canonicalize(registry::user(), &user);
    if let Ok((others, _members)) = patch::split_member_ops(registry::group(), ops) {
        let mut group = object(json!({"displayName": "G"}));
        for op in &others {
            if patch::apply(registry::group(), &mut group, op).is_err() {
                break;
            }
        }
        let _ = input::canonicalize(registry::group(), &group);
    }
}

/// A resource body canonicalised as a user and as a group.
pub fn canonicalize(data: &[u8]) {
    if let Ok(body) = input::parse_object(data) {
        let _ = input::canonicalize(registry::user(), &body);
        let _ = input::canonicalize(registry::group(), &body);
    }
}

/// A Bulk request read as the endpoint reads it.
pub fn bulk(data: &[u8]) {
    if let Ok(body) = input::parse_object(data) {
        let _ = scimgate::http::bulk::check_request(&body);
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(fields) => fields,
        _ => Map::new(),
    }
}
