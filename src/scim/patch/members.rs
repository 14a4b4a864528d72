//! Group membership operations, split off so the store can add and remove single membership
//! rows instead of rewriting a member list.

use serde_json::Value;

use super::{OpKind, PatchOp};
use crate::scim::error::ScimError;
use crate::scim::filter::{AttrPath, CompareOp, Filter, Literal};
use crate::scim::resource_type::ResourceType;
use crate::scim::text::has_forbidden_control;

/// A change to a group's membership, applied row by row by the store.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    /// Member values to add (objects with `value`, maybe `type`).
    Add(Vec<Value>),
    Remove(Vec<String>),
    RemoveWhere(Filter),
    RemoveAll,
    Replace(Vec<Value>),
}

/// Does `path` name the group's `members` (plain or qualified with the core schema URN)?
/// Members are stored as rows, not in the document, so their operations must be split off.
pub(super) fn names_members(rt: &ResourceType, path: &AttrPath) -> bool {
    rt.core.attribute("members").is_some()
        && path.attribute.eq_ignore_ascii_case("members")
        && path
            .schema
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case(rt.core.id))
}

/// Splits membership operations off a group's operation list.
pub fn split_member_ops(
    rt: &ResourceType,
    ops: Vec<PatchOp>,
) -> Result<(Vec<PatchOp>, Vec<MemberChange>), ScimError> {
    let is_members = |p: &AttrPath| names_members(rt, p);
    let as_list = |v: Value| match v {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut others = Vec::new();
    let mut changes = Vec::new();
    for op in ops {
        match (&op.path, op.kind) {
            (None, _) => {
                let Some(Value::Object(mut fields)) = op.value else {
                    continue;
                };
                let keys: Vec<String> = fields
                    .keys()
                    .filter(|k| AttrPath::parse(k).is_ok_and(|p| is_members(&p)))
                    .cloned()
                    .collect();
                for members in keys.iter().filter_map(|k| fields.remove(k)) {
                    changes.push(match op.kind {
                        OpKind::Replace => MemberChange::Replace(as_list(members)),
                        _ => MemberChange::Add(as_list(members)),
                    });
                }
                if !fields.is_empty() {
                    others.push(PatchOp {
                        kind: op.kind,
                        path: None,
                        value: Some(Value::Object(fields)),
                    });
                }
            }
            (Some(path), kind) if is_members(&path.attr) => {
                if path.attr.sub_attribute.is_some() || path.sub_attribute.is_some() {
                    return Err(ScimError::mutability(
                        "member values are immutable: add or remove members instead",
                    ));
                }
                let value = op.value.clone();
                changes.push(match (kind, &path.filter, value) {
                    (OpKind::Add, None, Some(v)) => MemberChange::Add(as_list(v)),
                    (OpKind::Replace, None, Some(v)) => MemberChange::Replace(as_list(v)),
                    (OpKind::Remove, None, Some(v)) => MemberChange::Remove(
                        as_list(v)
                            .iter()
                            .filter_map(|m| match m {
                                Value::String(id) => Some(id.clone()),
                                other => other
                                    .get("value")
                                    .and_then(Value::as_str)
                                    .map(str::to_string),
                            })
                            .collect(),
                    ),
                    (OpKind::Remove, None, None) => MemberChange::RemoveAll,
                    (OpKind::Remove, Some(f), _) => match value_eq_ids(f) {
                        Some(ids) => MemberChange::Remove(ids),
                        None => MemberChange::RemoveWhere(f.clone()),
                    },
                    _ => {
                        return Err(ScimError::mutability(
                            "member values are immutable: add or remove members instead",
                        ))
                    }
                });
            }
            _ => others.push(op),
        }
    }
    for change in &changes {
        let clean = match change {
            MemberChange::Add(list) | MemberChange::Replace(list) => {
                list.iter().all(|m| !holds_forbidden_control(m))
            }
            MemberChange::Remove(ids) => ids.iter().all(|id| !has_forbidden_control(id)),
            MemberChange::RemoveWhere(_) | MemberChange::RemoveAll => true,
        };
        if !clean {
            return Err(ScimError::invalid_value(
                "a member holds a control character; only tab, carriage return and newline are \
                 allowed",
            ));
        }
    }
    Ok((others, changes))
}

/// Does any string in `value` hold a forbidden control character?
fn holds_forbidden_control(value: &Value) -> bool {
    match value {
        Value::String(s) => has_forbidden_control(s),
        Value::Array(items) => items.iter().any(holds_forbidden_control),
        Value::Object(fields) => fields
            .iter()
            .any(|(k, v)| has_forbidden_control(k) || holds_forbidden_control(v)),
        _ => false,
    }
}

/// `value eq "a" or value eq "b"` → the ids, so they can be removed without reading the list.
fn value_eq_ids(filter: &Filter) -> Option<Vec<String>> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Literal::String(id),
        } if path.attribute.eq_ignore_ascii_case("value") && path.sub_attribute.is_none() => {
            Some(vec![id.clone()])
        }
        Filter::Or(a, b) => {
            let mut ids = value_eq_ids(a)?;
            ids.extend(value_eq_ids(b)?);
            Some(ids)
        }
        _ => None,
    }
}
