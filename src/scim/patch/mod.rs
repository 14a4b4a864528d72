//! PATCH (RFC 7644 §3.5.2): parsing operations and applying them to a resource's canonical
//! JSON. Group membership operations are split off so the store can add and remove single
//! membership rows instead of rewriting a member list.
//!
//! Accepted as IdPs send them: `op` in any case (`"Replace"`), `Operations` in any case, values
//! without a path whose keys are dotted (`"name.givenName"`) or extension-qualified, booleans as
//! strings, and removal of members by value (`{"op":"Remove","path":"members","value":[...]}`).

use serde_json::{Map, Value};

use super::error::{ScimError, ScimType};
use super::filter::{self, AttrPath, Filter};

pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Replace,
    Remove,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    pub kind: OpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// `attrPath`, `attrPath[filter]` or `attrPath[filter].subAttr`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    pub sub_attribute: Option<String>,
}

fn invalid_path(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidPath, detail)
}

fn no_target(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::NoTarget, detail)
}

impl PatchPath {
    pub fn parse(text: &str) -> Result<PatchPath, ScimError> {
        let text = text.trim();
        let Some(open) = text.find('[') else {
            return Ok(PatchPath {
                attr: AttrPath::parse(text)
                    .map_err(|_| invalid_path(format!("'{text}' is not a valid path")))?,
                filter: None,
                sub_attribute: None,
            });
        };
        let close = text
            .rfind(']')
            .filter(|&c| c > open)
            .ok_or_else(|| invalid_path(format!("'{text}': unbalanced '['")))?;
        let attr = AttrPath::parse(&text[..open])
            .map_err(|_| invalid_path(format!("'{text}' is not a valid path")))?;
        if attr.sub_attribute.is_some() {
            return Err(invalid_path(format!(
                "'{text}': a filter applies to a multi-valued attribute"
            )));
        }
        let filter = filter::parse(&text[open + 1..close])
            .map_err(|e| invalid_path(format!("'{text}': {}", e.detail)))?;
        let rest = &text[close + 1..];
        let sub_attribute = match rest {
            "" => None,
            r => Some(
                r.strip_prefix('.')
                    .filter(|s| {
                        !s.is_empty()
                            && s.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                    })
                    .ok_or_else(|| {
                        invalid_path(format!("'{text}': unexpected '{r}' after the filter"))
                    })?
                    .to_string(),
            ),
        };
        Ok(PatchPath {
            attr,
            filter: Some(filter),
            sub_attribute,
        })
    }
}

/// Reads a PatchOp request body.
pub fn parse_request(body: &Map<String, Value>) -> Result<Vec<PatchOp>, ScimError> {
    let get = |name: &str| {
        body.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    if let Some(schemas) = get("schemas") {
        let ok = schemas.as_array().is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
            })
        });
        if !ok {
            return Err(ScimError::invalid_value(format!(
                "a PATCH request's schemas must be [\"{PATCH_OP_SCHEMA}\"]"
            )));
        }
    }
    let Some(Value::Array(ops)) = get("Operations") else {
        return Err(ScimError::invalid_syntax(
            "a PATCH request needs an 'Operations' array",
        ));
    };
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax("'Operations' is empty"));
    }
    ops.iter().map(parse_op).collect()
}

fn parse_op(op: &Value) -> Result<PatchOp, ScimError> {
    let Value::Object(fields) = op else {
        return Err(ScimError::invalid_syntax(
            "each operation must be a JSON object",
        ));
    };
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let kind = match get("op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => OpKind::Add,
        Some("replace") => OpKind::Replace,
        Some("remove") => OpKind::Remove,
        Some(other) => {
            return Err(ScimError::invalid_syntax(format!(
                "unknown PATCH op '{other}'"
            )))
        }
        None => return Err(ScimError::invalid_syntax("each operation needs an 'op'")),
    };
    let path = match get("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.trim().is_empty() => None,
        Some(Value::String(p)) => Some(PatchPath::parse(p)?),
        Some(_) => return Err(invalid_path("'path' must be a string")),
    };
    let value = get("value").filter(|v| !v.is_null()).cloned();
    match (kind, &path, &value) {
        (OpKind::Add | OpKind::Replace, _, None) => {
            return Err(ScimError::invalid_syntax(
                "'add' and 'replace' need a 'value'",
            ))
        }
        (OpKind::Remove, None, _) => return Err(no_target("'remove' needs a 'path'")),
        (OpKind::Add | OpKind::Replace, None, Some(v)) if !v.is_object() => {
            return Err(ScimError::invalid_syntax(
                "without a 'path', 'value' must be an object of attributes",
            ))
        }
        _ => {}
    }
    Ok(PatchOp { kind, path, value })
}

mod apply;
mod members;

pub use apply::apply;
pub use members::{split_member_ops, MemberChange};
