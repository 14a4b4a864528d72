//! Writing resources out in strict RFC form: canonical names in schema order, `schemas`,
//! `meta`, and nothing whose `returned` characteristic is `never`.

use chrono::{SecondsFormat, TimeZone, Utc};
use serde_json::{json, Map, Value};

use super::resource_type::ResourceType;
use super::schema::{AttributeDef, Returned};

/// Resource metadata (RFC 7643 §3.1).
#[derive(Debug, Clone)]
pub struct Meta {
    pub created: i64,
    pub last_modified: i64,
    pub location: String,
    pub version: i64,
}

/// The weak entity tag for a resource version (RFC 7644 §3.14).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// RFC 3339 UTC with milliseconds, from stored microseconds.
pub fn format_time(micros: i64) -> String {
    match Utc.timestamp_micros(micros).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => String::new(),
    }
}

/// Renders a resource. `derived` holds server-computed core attributes (a User's `groups`, a
/// Group's `members`), placed where the schema lists them.
pub fn render(
    rt: &ResourceType,
    id: &str,
    data: &Map<String, Value>,
    derived: &Map<String, Value>,
    meta: &Meta,
) -> Value {
    let mut out = Map::new();
    let mut schemas = vec![Value::String(rt.core.id.to_string())];
    for ext in rt.extensions {
        if data.contains_key(ext.id) {
            schemas.push(Value::String(ext.id.to_string()));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(id.to_string()));
    if let Some(external_id) = data.get("externalId") {
        out.insert("externalId".into(), external_id.clone());
    }
    for def in rt.core.attributes {
        let value = derived.get(def.name).or_else(|| data.get(def.name));
        if let Some(value) = value.and_then(|v| returnable(def, v)) {
            out.insert(def.name.to_string(), value);
        }
    }
    for ext in rt.extensions {
        if let Some(Value::Object(fields)) = data.get(ext.id) {
            let mut ext_out = Map::new();
            for def in ext.attributes {
                if let Some(value) = fields.get(def.name).and_then(|v| returnable(def, v)) {
                    ext_out.insert(def.name.to_string(), value);
                }
            }
            out.insert(ext.id.to_string(), Value::Object(ext_out));
        }
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": rt.name,
            "created": format_time(meta.created),
            "lastModified": format_time(meta.last_modified),
            "location": meta.location,
            "version": etag(meta.version),
        }),
    );
    Value::Object(out)
}

/// The value as it may be returned by default: `never` attributes and sub-attributes removed.
fn returnable(def: &AttributeDef, value: &Value) -> Option<Value> {
    if def.returned == Returned::Never {
        return None;
    }
    if def.sub_attributes.is_empty() {
        return Some(value.clone());
    }
    let strip = |v: &Value| match v {
        Value::Object(fields) => {
            let mut kept = Map::new();
            for sub in def.sub_attributes {
                if sub.returned != Returned::Never {
                    if let Some(sv) = fields.get(sub.name) {
                        kept.insert(sub.name.to_string(), sv.clone());
                    }
                }
            }
            Value::Object(kept)
        }
        other => other.clone(),
    };
    Some(match value {
        Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
        single => strip(single),
    })
}
