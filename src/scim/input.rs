//! Reading resource bodies that clients send (RFC 7643 §2, RFC 7644 §3.3, §3.5.1).
//!
//! Identity providers send names in any case, booleans as `"False"` and extension attributes
//! as fully qualified keys. All of that is accepted and brought into one canonical form: names spelt as the schema spells them, values of the
//! declared type, read-only attributes and unassigned (`null`) values dropped.
//!
//! The tolerances, all of them (the README's "Input limits" lists them too); anything else
//! that does not fit the schema is `400 invalidValue`:
//!
//! | sent | becomes | who sends it |
//! |---|---|---|
//! | `"True"` / `"False"` (any case) for a boolean | `true` / `false` | Microsoft Entra ID |
//! | a JSON number for a string (`employeeNumber: 701984`) | its decimal text | Okta, HR systems |
//! | a numeric string for an integer or decimal | the number | generic SCIM clients |
//! | a bare value for a complex attribute with `value` (`manager: "id"`) | `{"value": ...}` | Entra ID (`manager`), clients sending e-mails as strings |
//! | an extension attribute as a qualified key (`urn:...:User:department`) | inside its extension | Entra ID |
//! | attribute names in any case | the schema's spelling | every IdP |
//! | read-only attributes (`id`, `meta`, `groups`) in a body | ignored (RFC 7644 §3.5.1) | Okta |
//! | core attributes the server does not define | ignored | IdPs sending extras |
//!
//! Not tolerated: a body without `schemas` (RFC 7644 §3.3: `400 invalidSyntax`), a single value
//! where the schema says multi-valued (`400 invalidValue`: send an array).

use base64::Engine;
use serde_json::{Map, Value};

use super::error::ScimError;
use super::resource_type::ResourceType;
use super::schema::{AttrType, AttributeDef, Mutability, SchemaDef, COMMON_ATTRIBUTES};

/// Parses a request body; anything but a JSON object is `invalidSyntax`.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ScimError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ScimError::invalid_syntax(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ScimError::invalid_syntax(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// [`canonicalize`] for a resource body a client sent (POST, PUT): `schemas` is required
/// (RFC 7643 §3, RFC 7644 §3.3) and must name the endpoint's resource type.
pub fn canonicalize_request(
    rt: &ResourceType,
    body: &Map<String, Value>,
) -> Result<Map<String, Value>, ScimError> {
    if !body.keys().any(|k| k.eq_ignore_ascii_case("schemas")) {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' is required: send [\"{}\"]",
            rt.core.id
        )));
    }
    canonicalize(rt, body)
}

/// How unknown names are treated: core resources ignore what IdPs send in excess; a declared
/// extension schema is a contract, so unknown names in it are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strictness {
    IgnoreUnknown,
    RejectUnknown,
}

/// Brings a resource body into canonical form (see the module docs). The result holds
/// `externalId`, core attributes, and one object per extension URN; never `schemas`, `id` or
/// `meta`.
pub fn canonicalize(
    rt: &ResourceType,
    body: &Map<String, Value>,
) -> Result<Map<String, Value>, ScimError> {
    check_schemas(rt, body)?;
    let mut out = Map::new();
    for (key, value) in body {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(common) = COMMON_ATTRIBUTES
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(key))
        {
            put(
                &mut out,
                common,
                value,
                Strictness::IgnoreUnknown,
                common.name,
            )?;
        } else if let Some(def) = rt.core.attribute(key) {
            put(&mut out, def, value, Strictness::IgnoreUnknown, def.name)?;
        } else if let Some(ext) = rt.extension(key) {
            merge_extension(&mut out, ext, value)?;
        } else if let Some((ext, name)) = qualified_extension_attribute(rt, key) {
            let mut partial = Map::new();
            partial.insert(name.to_string(), value.clone());
            merge_extension(&mut out, ext, &Value::Object(partial))?;
        }
        // Anything else is an attribute we do not serve; IdPs send extras, so it is ignored.
    }
    Ok(out)
}

/// `schemas`, when sent, must be an array of strings naming the resource's core schema. Other
/// URNs are ignored: Entra ID adds its own (`http://schemas.microsoft.com/...`) to groups.
/// Clients that omit `schemas` are served anyway.
fn check_schemas(rt: &ResourceType, body: &Map<String, Value>) -> Result<(), ScimError> {
    let Some((_, schemas)) = body.iter().find(|(k, _)| k.eq_ignore_ascii_case("schemas")) else {
        return Ok(());
    };
    let urns: Option<Vec<&str>> = schemas
        .as_array()
        .and_then(|list| list.iter().map(Value::as_str).collect());
    let Some(urns) = urns else {
        return Err(ScimError::invalid_syntax(
            "'schemas' must be an array of schema URNs",
        ));
    };
    if !urns.iter().any(|u| u.eq_ignore_ascii_case(rt.core.id)) {
        return Err(ScimError::invalid_value(format!(
            "'schemas' must include '{}' for the {} resource type",
            rt.core.id, rt.name
        )));
    }
    Ok(())
}

/// `urn:...:enterprise:2.0:User:employeeNumber` → (enterprise schema, `employeeNumber`).
fn qualified_extension_attribute<'k>(
    rt: &ResourceType,
    key: &'k str,
) -> Option<(&'static SchemaDef, &'k str)> {
    rt.extensions.iter().copied().find_map(|ext| {
        let prefix = key.get(..ext.id.len())?;
        let rest = key.get(ext.id.len()..)?;
        if prefix.eq_ignore_ascii_case(ext.id) {
            rest.strip_prefix(':').map(|name| (ext, name))
        } else {
            None
        }
    })
}

fn merge_extension(
    out: &mut Map<String, Value>,
    ext: &'static SchemaDef,
    value: &Value,
) -> Result<(), ScimError> {
    let fields = match value {
        Value::Null => return Ok(()),
        Value::Object(fields) => fields,
        _ => {
            return Err(ScimError::invalid_syntax(format!(
                "extension '{}' must be a JSON object",
                ext.id
            )))
        }
    };
    let mut target = match out.remove(ext.id) {
        Some(Value::Object(existing)) => existing,
        _ => Map::new(),
    };
    // Some client libraries repeat `schemas` inside an extension object.
    for (key, value) in fields
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
    {
        let Some(def) = ext.attribute(key) else {
            return Err(ScimError::invalid_value(format!(
                "attribute '{key}' is not defined by schema '{}'",
                ext.id
            )));
        };
        put(&mut target, def, value, Strictness::RejectUnknown, def.name)?;
    }
    if !target.is_empty() {
        out.insert(ext.id.to_string(), Value::Object(target));
    }
    Ok(())
}

fn put(
    out: &mut Map<String, Value>,
    def: &AttributeDef,
    value: &Value,
    strictness: Strictness,
    path: &str,
) -> Result<(), ScimError> {
    // Read-only attributes are the server's; RFC 7644 §3.5.1 says clients' values are ignored.
    if def.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    if let Some(v) = coerce(def, value, strictness, path)? {
        out.insert(def.name.to_string(), v);
    }
    Ok(())
}

fn coerce(
    def: &AttributeDef,
    value: &Value,
    strictness: Strictness,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    if !def.multi_valued {
        return coerce_single(def, value, strictness, path);
    }
    let items: &[Value] = match value {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        _ => {
            return Err(ScimError::invalid_value(format!(
                "'{path}' is multi-valued: send its values as an array"
            )))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some(v) = coerce_single(def, item, strictness, path)? {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    let primaries = out
        .iter()
        .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(ScimError::invalid_value(format!(
            "at most one value of '{path}' may have primary set to true"
        )));
    }
    Ok(Some(Value::Array(out)))
}

fn coerce_single(
    def: &AttributeDef,
    value: &Value,
    strictness: Strictness,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    let wrong_type = |expected: &str| {
        ScimError::invalid_value(format!(
            "attribute '{path}' must be {expected}, got {value}"
        ))
    };
    let coerced = match (def.kind, value) {
        (_, Value::Null) => return Ok(None),
        (AttrType::String, Value::String(s)) | (AttrType::Reference, Value::String(s)) => {
            if super::text::has_forbidden_control(s) {
                return Err(ScimError::invalid_value(format!(
                    "attribute '{path}' holds a control character; only tab, carriage return \
                     and newline are allowed"
                )));
            }
            check_length(def, s, path)?;
            value.clone()
        }
        // Employee numbers and the like arrive as JSON numbers from some IdPs.
        (AttrType::String, Value::Number(n)) => Value::String(n.to_string()),
        (AttrType::String, _) => return Err(wrong_type("a string")),
        (AttrType::Reference, _) => return Err(wrong_type("a URI string")),
        (AttrType::Boolean, Value::Bool(_)) => value.clone(),
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Value::Bool(true)
        }
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Value::Bool(false)
        }
        (AttrType::Boolean, _) => return Err(wrong_type("a boolean")),
        (AttrType::Integer, Value::Number(n)) if n.is_i64() => value.clone(),
        (AttrType::Integer, Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => return Err(wrong_type("an integer")),
        },
        (AttrType::Integer, _) => return Err(wrong_type("an integer")),
        (AttrType::Decimal, Value::Number(_)) => value.clone(),
        (AttrType::Decimal, Value::String(s)) => match s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            Some(n) => Value::Number(n),
            None => return Err(wrong_type("a decimal number")),
        },
        (AttrType::Decimal, _) => return Err(wrong_type("a decimal number")),
        (AttrType::DateTime, Value::String(s)) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(_) => value.clone(),
            Err(_) => {
                return Err(wrong_type(
                    "an xsd:dateTime string such as 2026-01-01T00:00:00Z",
                ))
            }
        },
        (AttrType::DateTime, _) => return Err(wrong_type("an xsd:dateTime string")),
        (AttrType::Binary, Value::String(s)) => {
            check_length(def, s, path)?;
            let engine = base64::engine::general_purpose::STANDARD;
            if engine.decode(s.trim()).is_err() {
                return Err(wrong_type("base64-encoded binary"));
            }
            value.clone()
        }
        (AttrType::Binary, _) => return Err(wrong_type("base64-encoded binary")),
        (AttrType::Complex, Value::Object(fields)) => {
            let mut out = Map::new();
            for (key, sub_value) in fields {
                let Some(sub) = def.sub_attribute(key) else {
                    if strictness == Strictness::RejectUnknown {
                        return Err(ScimError::invalid_value(format!(
                            "'{key}' is not a sub-attribute of '{path}'"
                        )));
                    }
                    continue;
                };
                if sub.mutability == Mutability::ReadOnly {
                    continue;
                }
                let sub_path = format!("{path}.{}", sub.name);
                if let Some(v) = coerce(sub, sub_value, strictness, &sub_path)? {
                    out.insert(sub.name.to_string(), v);
                }
            }
            if let Some(missing) = def
                .sub_attributes
                .iter()
                .find(|s| s.required && !out.contains_key(s.name))
            {
                return Err(ScimError::invalid_value(format!(
                    "'{path}.{}' is required in every value of '{path}'",
                    missing.name
                )));
            }
            if out.is_empty() {
                return Ok(None);
            }
            Value::Object(out)
        }
        // A bare value where a complex one with a `value` sub-attribute is due: Entra ID sends
        // `manager` as a plain id, some clients send e-mails as plain strings.
        (AttrType::Complex, Value::String(_) | Value::Number(_))
            if def.sub_attribute("value").is_some() =>
        {
            let mut out = Map::new();
            let value_def = def.sub_attribute("value").copied();
            if let Some(value_def) = value_def {
                if let Some(v) =
                    coerce_single(&value_def, value, strictness, &format!("{path}.value"))?
                {
                    out.insert("value".to_string(), v);
                }
            }
            Value::Object(out)
        }
        (AttrType::Complex, _) => return Err(wrong_type("a JSON object")),
    };
    Ok(Some(coerced))
}

/// The longest text an attribute takes, in characters: identifiers (`userName`, `externalId`,
/// `displayName`) 256, binary values (certificates, as base64) 65,536, any other string 2,048.
pub fn max_chars(def: &AttributeDef) -> usize {
    match (def.kind, def.name) {
        (AttrType::Binary, _) => 65_536,
        (_, "userName" | "externalId" | "displayName") => 256,
        _ => 2_048,
    }
}

fn check_length(def: &AttributeDef, text: &str, path: &str) -> Result<(), ScimError> {
    let limit = max_chars(def);
    // Bytes bound characters from above: count only when the bytes could exceed the limit.
    if text.len() > limit && text.chars().count() > limit {
        return Err(ScimError::invalid_value(format!(
            "attribute '{path}' is longer than {limit} characters"
        )));
    }
    Ok(())
}

/// RFC 7643 §2.2 `required`: every required attribute is present, in the core schema, its
/// extensions, and inside every complex value given.
pub fn check_required(rt: &ResourceType, data: &Map<String, Value>) -> Result<(), ScimError> {
    check_required_in(rt.core.attributes, data, "")?;
    for ext in rt.extensions {
        match data.get(ext.id) {
            Some(Value::Object(fields)) => check_required_in(ext.attributes, fields, ext.id)?,
            _ if rt.requires(ext.id) => {
                return Err(ScimError::invalid_value(format!(
                    "extension '{}' is required for the {} resource type",
                    ext.id, rt.name
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_required_in(
    defs: &[AttributeDef],
    data: &Map<String, Value>,
    prefix: &str,
) -> Result<(), ScimError> {
    for def in defs {
        let path = if prefix.is_empty() {
            def.name.to_string()
        } else {
            format!("{prefix}:{}", def.name)
        };
        let value = data.get(def.name);
        let missing = match value {
            None => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(_) => false,
        };
        if def.required && def.mutability != Mutability::ReadOnly && missing {
            return Err(ScimError::invalid_value(format!(
                "attribute '{path}' is required"
            )));
        }
        if def.kind == AttrType::Complex {
            let values: Vec<&Value> = match value {
                Some(Value::Array(items)) => items.iter().collect(),
                Some(v) => vec![v],
                None => vec![],
            };
            for v in values {
                if let Value::Object(fields) = v {
                    check_required_in(def.sub_attributes, fields, &path)?;
                }
            }
        }
    }
    Ok(())
}

/// Applies RFC 7644 §3.5.1 replace semantics against the stored state: immutable attributes
/// may be set once and then only repeated; write-only secrets not resent are kept.
pub fn carry_over_on_replace(
    rt: &ResourceType,
    stored: &Map<String, Value>,
    replacement: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    carry_over_in(rt.core.attributes, stored, replacement, "")?;
    for ext in rt.extensions {
        let stored_ext = match stored.get(ext.id) {
            Some(Value::Object(fields)) => fields.clone(),
            _ => Map::new(),
        };
        let mut new_ext = match replacement.remove(ext.id) {
            Some(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        carry_over_in(ext.attributes, &stored_ext, &mut new_ext, ext.id)?;
        if !new_ext.is_empty() {
            replacement.insert(ext.id.to_string(), Value::Object(new_ext));
        }
    }
    Ok(())
}

fn carry_over_in(
    defs: &[AttributeDef],
    stored: &Map<String, Value>,
    replacement: &mut Map<String, Value>,
    prefix: &str,
) -> Result<(), ScimError> {
    for def in defs {
        let Some(old) = stored.get(def.name) else {
            continue;
        };
        match (def.mutability, replacement.get(def.name)) {
            (Mutability::Immutable, Some(new)) if new != old => {
                let path = if prefix.is_empty() {
                    def.name.to_string()
                } else {
                    format!("{prefix}:{}", def.name)
                };
                return Err(ScimError::mutability(format!(
                    "attribute '{path}' is immutable and already has a value"
                )));
            }
            (Mutability::Immutable | Mutability::WriteOnly, None) => {
                replacement.insert(def.name.to_string(), old.clone());
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::error::ScimType;
    use crate::scim::schema::{AttributeDef, SchemaDef};
    use serde_json::json;

    const ATTRS: [AttributeDef; 3] = [
        AttributeDef::string("badge").immutable(),
        AttributeDef::string("secret").write_only(),
        AttributeDef::string("nick"),
    ];
    static CORE: SchemaDef = SchemaDef {
        id: "urn:example:Thing",
        name: "Thing",
        description: "",
        attributes: &ATTRS,
    };
    static THING: ResourceType = ResourceType {
        name: "Thing",
        endpoint: "/Things",
        description: "",
        core: &CORE,
        extensions: &[],
        required_extensions: &[],
        returns_on_request: false,
    };

    fn map(v: serde_json::Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn immutable_attributes_may_be_repeated_but_not_changed() {
        let stored = map(json!({"badge": "B-1", "secret": "s", "nick": "n"}));
        let mut same = map(json!({"badge": "B-1"}));
        carry_over_on_replace(&THING, &stored, &mut same).expect("repeating is fine");
        assert_eq!(
            same.get("secret"),
            Some(&json!("s")),
            "write-only values are kept"
        );
        assert!(
            same.get("nick").is_none(),
            "read-write values not resent are cleared"
        );

        let mut omitted = Map::new();
        carry_over_on_replace(&THING, &stored, &mut omitted).expect("omitting is fine");
        assert_eq!(omitted.get("badge"), Some(&json!("B-1")));

        let mut changed = map(json!({"badge": "B-2"}));
        let err =
            carry_over_on_replace(&THING, &stored, &mut changed).expect_err("changing is not");
        assert_eq!(err.scim_type, Some(ScimType::Mutability));

        let mut first = map(json!({"badge": "B-9"}));
        carry_over_on_replace(&THING, &Map::new(), &mut first).expect("setting once is fine");
    }
}
