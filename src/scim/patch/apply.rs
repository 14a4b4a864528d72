//! Applying PATCH operations to a resource's canonical JSON: paths resolved against the schema,
//! value filters, and the Entra ID case of a filter that matches nothing.

use serde_json::{Map, Value};

use super::members::names_members;
use super::{invalid_path, no_target, OpKind, PatchOp, PatchPath};
use crate::scim::error::ScimError;
use crate::scim::filter::{AttrPath, CompareOp, Filter, Literal};
use crate::scim::filter_eval;
use crate::scim::resource_type::ResourceType;
use crate::scim::schema::{AttrType, AttributeDef, Mutability, COMMON_ATTRIBUTES};

/// The extension URN a path names as a whole, if it does. Such a path parses as schema
/// `urn:...:2.0` with attribute `User`.
fn whole_extension(rt: &ResourceType, path: &PatchPath) -> Option<&'static str> {
    let schema = path.attr.schema.as_deref()?;
    if path.filter.is_some() || path.attr.sub_attribute.is_some() {
        return None;
    }
    let joined = format!("{schema}:{}", path.attr.attribute);
    rt.extensions
        .iter()
        .find(|e| e.id.eq_ignore_ascii_case(&joined))
        .map(|e| e.id)
}

/// Where a path points inside the canonical JSON.
struct Target {
    /// `None` for the core schema, else the extension URN holding the attribute.
    extension: Option<&'static str>,
    def: &'static AttributeDef,
}

/// Whether `path` is a core attribute of the resource type, or names another schema (whose
/// attributes [`resolve`] checks itself).
fn defined_in_core(rt: &ResourceType, path: &AttrPath) -> bool {
    let core = path
        .schema
        .as_deref()
        .is_none_or(|s| s.eq_ignore_ascii_case(rt.core.id));
    !core
        || names_members(rt, path)
        || COMMON_ATTRIBUTES
            .iter()
            .any(|a| a.name.eq_ignore_ascii_case(&path.attribute))
        || rt.core.attribute(&path.attribute).is_some()
}

/// Where `path` points. Every path resolves or is an error: an operation on an attribute the
/// server does not keep would change nothing, and must not be answered with a success.
fn resolve(rt: &ResourceType, path: &AttrPath) -> Result<Target, ScimError> {
    let core = path
        .schema
        .as_deref()
        .is_none_or(|s| s.eq_ignore_ascii_case(rt.core.id));
    if core {
        if names_members(rt, path) {
            // Only reachable if an operation escaped `split_member_ops`: refuse, never drop.
            return Err(invalid_path(
                "'members' is changed through membership operations",
            ));
        }
        if let Some(common) = COMMON_ATTRIBUTES
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(&path.attribute))
        {
            return Ok(Target {
                extension: None,
                def: common,
            });
        }
        return rt
            .core
            .attribute(&path.attribute)
            .map(|def| Target {
                extension: None,
                def,
            })
            .ok_or_else(|| {
                invalid_path(format!(
                    "attribute '{}' is not defined by schema '{}'",
                    path.attribute, rt.core.id
                ))
            });
    }
    let schema = path.schema.as_deref().unwrap_or_default();
    let ext = rt.extension(schema).ok_or_else(|| {
        invalid_path(format!(
            "schema '{schema}' is not supported by the {} resource type",
            rt.name
        ))
    })?;
    let def = ext.attribute(&path.attribute).ok_or_else(|| {
        invalid_path(format!(
            "attribute '{}' is not defined by schema '{}'",
            path.attribute, ext.id
        ))
    })?;
    Ok(Target {
        extension: Some(ext.id),
        def,
    })
}

fn is_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Applies one operation to a resource's canonical JSON. The caller re-validates the result.
pub fn apply(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    op: &PatchOp,
) -> Result<(), ScimError> {
    let Some(path) = &op.path else {
        // No path: each key of the value is a path of its own (dotted and URN keys included).
        let Some(Value::Object(fields)) = &op.value else {
            return Err(ScimError::invalid_syntax(
                "without a 'path', 'value' must be an object of attributes",
            ));
        };
        let mut applied = 0usize;
        let mut unknown: Vec<&str> = Vec::new();
        for (key, value) in fields {
            if key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            if key.eq_ignore_ascii_case(rt.core.id) {
                // `{"urn:...:core:2.0:User": {"displayName": ...}}`: the core attributes.
                let Value::Object(core_fields) = value else {
                    return Err(ScimError::invalid_syntax(format!(
                        "'{}' must be a JSON object",
                        rt.core.id
                    )));
                };
                apply(
                    rt,
                    doc,
                    &PatchOp {
                        kind: op.kind,
                        path: None,
                        value: Some(Value::Object(core_fields.clone())),
                    },
                )?;
                applied += 1;
                continue;
            }
            if let Some(ext) = rt.extension(key) {
                let Value::Object(ext_fields) = value else {
                    return Err(ScimError::invalid_syntax(format!(
                        "extension '{}' must be a JSON object",
                        ext.id
                    )));
                };
                for (name, v) in ext_fields
                    .iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
                {
                    let path = PatchPath::parse(&format!("{}:{name}", ext.id))?;
                    apply(
                        rt,
                        doc,
                        &PatchOp {
                            kind: op.kind,
                            path: Some(path),
                            value: Some(v.clone()),
                        },
                    )?;
                }
                applied += 1;
                continue;
            }
            let path = PatchPath::parse(key)?;
            // As in a PUT body: attributes the server does not keep are ignored, and so are
            // read-only ones (Okta repeats `id`, others send `meta`).
            if !defined_in_core(rt, &path.attr) {
                unknown.push(key.as_str());
                continue;
            }
            if resolve(rt, &path.attr)?.def.mutability == Mutability::ReadOnly {
                continue;
            }
            applied += 1;
            apply(
                rt,
                doc,
                &PatchOp {
                    kind: op.kind,
                    path: Some(path),
                    value: Some(value.clone()),
                },
            )?;
        }
        if applied == 0 && !unknown.is_empty() {
            return Err(invalid_path(format!(
                "the operation names no attribute this server keeps ({}): nothing would change",
                unknown.join(", ")
            )));
        }
        return Ok(());
    };
    if let Some(ext) = whole_extension(rt, path) {
        // The path names a whole extension (`urn:...:enterprise:2.0:User`).
        if op.kind != OpKind::Add {
            doc.remove(ext);
        }
        if op.kind == OpKind::Remove {
            return Ok(());
        }
        let Some(Value::Object(fields)) = &op.value else {
            return Err(ScimError::invalid_syntax(format!(
                "extension '{ext}' must be a JSON object"
            )));
        };
        for (name, v) in fields
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
        {
            let path = PatchPath::parse(&format!("{ext}:{name}"))?;
            apply(
                rt,
                doc,
                &PatchOp {
                    kind: OpKind::Add,
                    path: Some(path),
                    value: Some(v.clone()),
                },
            )?;
        }
        return Ok(());
    }
    let target = resolve(rt, &path.attr)?;
    let def = target.def;
    if def.mutability == Mutability::ReadOnly {
        return Err(ScimError::mutability(format!(
            "attribute '{}' is read-only",
            def.name
        )));
    }
    let sub_def =
        match &path.attr.sub_attribute {
            Some(s) => Some(def.sub_attribute(s).ok_or_else(|| {
                invalid_path(format!("'{}' has no sub-attribute '{s}'", def.name))
            })?),
            None => None,
        };
    if sub_def.is_some_and(|s| s.mutability == Mutability::ReadOnly) {
        return Err(ScimError::mutability(format!(
            "'{}.{}' is read-only",
            def.name,
            path.attr.sub_attribute.as_deref().unwrap_or_default()
        )));
    }
    // An extension's attributes live in their own object; work on it, then put it back.
    let mut extension = target.extension.map(|urn| match doc.remove(urn) {
        Some(Value::Object(fields)) => fields,
        _ => Map::new(),
    });
    let result = {
        let holder: &mut Map<String, Value> = match extension.as_mut() {
            Some(fields) => fields,
            None => &mut *doc,
        };
        apply_to(holder, def, sub_def, path, op)
    };
    if let (Some(urn), Some(fields)) = (target.extension, extension) {
        if !fields.is_empty() {
            doc.insert(urn.to_string(), Value::Object(fields));
        }
    }
    result
}

fn apply_to(
    doc: &mut Map<String, Value>,
    def: &AttributeDef,
    sub_def: Option<&AttributeDef>,
    path: &PatchPath,
    op: &PatchOp,
) -> Result<(), ScimError> {
    let name = def.name.to_string();
    if def.mutability == Mutability::Immutable && op.kind != OpKind::Add && doc.contains_key(&name)
    {
        let unchanged = op.kind == OpKind::Replace && doc.get(&name) == op.value.as_ref();
        if !unchanged {
            return Err(ScimError::mutability(format!(
                "attribute '{}' is immutable",
                def.name
            )));
        }
    }
    match &path.filter {
        Some(filter) => apply_filtered(doc, def, &name, filter, path.sub_attribute.as_deref(), op),
        None => apply_plain(doc, def, &name, sub_def, op),
    }
}

fn apply_plain(
    doc: &mut Map<String, Value>,
    def: &AttributeDef,
    name: &str,
    sub_def: Option<&AttributeDef>,
    op: &PatchOp,
) -> Result<(), ScimError> {
    let value = op.value.clone().unwrap_or(Value::Null);
    match (op.kind, sub_def) {
        (OpKind::Remove, Some(sub)) => {
            match doc.get_mut(name) {
                Some(Value::Object(fields)) => {
                    fields.remove(sub.name);
                }
                Some(Value::Array(items)) => {
                    for item in items.iter_mut().filter_map(Value::as_object_mut) {
                        item.remove(sub.name);
                    }
                }
                _ => {}
            }
            Ok(())
        }
        (OpKind::Remove, None) => {
            match (op.value.as_ref(), def.multi_valued) {
                // Remove only the given values (how Entra ID removes members and the like).
                (Some(given), true) => {
                    let given: Vec<Value> = match given {
                        Value::Array(items) => items.clone(),
                        other => vec![other.clone()],
                    };
                    if let Some(Value::Array(items)) = doc.get_mut(name) {
                        items.retain(|item| !given.iter().any(|g| same_value(def, item, g)));
                    }
                }
                _ => {
                    doc.remove(name);
                }
            }
            Ok(())
        }
        (_, Some(sub)) => {
            let entry = doc
                .entry(name.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            match entry {
                Value::Object(fields) => {
                    fields.insert(sub.name.to_string(), value);
                }
                Value::Array(items) => {
                    // `emails.value` on a multi-valued attribute: RFC 7644 asks for a filter.
                    if items.is_empty() {
                        let mut fields = Map::new();
                        fields.insert(sub.name.to_string(), value);
                        items.push(Value::Object(fields));
                    } else {
                        return Err(invalid_path(format!(
                            "use a filter to choose which '{name}' value to change"
                        )));
                    }
                }
                other => {
                    let mut fields = Map::new();
                    fields.insert(sub.name.to_string(), value);
                    *other = Value::Object(fields);
                }
            }
            Ok(())
        }
        (kind, None) if def.multi_valued => {
            let mut new_items: Vec<Value> = match value {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                single => vec![single],
            };
            let existing = match (kind, doc.remove(name)) {
                (OpKind::Add, Some(Value::Array(items))) => items,
                (OpKind::Add, Some(single)) => vec![single],
                _ => Vec::new(),
            };
            let new_primary = new_items
                .iter()
                .any(|v| v.get("primary").is_some_and(is_true));
            let mut merged: Vec<Value> = existing
                .into_iter()
                .map(|mut v| {
                    if new_primary {
                        if let Some(fields) = v.as_object_mut() {
                            fields.remove("primary");
                        }
                    }
                    v
                })
                .collect();
            new_items.retain(|n| !merged.contains(n));
            merged.extend(new_items);
            doc.insert(name.to_string(), Value::Array(merged));
            Ok(())
        }
        (_, None) if def.kind == AttrType::Complex => {
            // Complex single-valued: the given sub-attributes replace or add, others stay.
            match (doc.get_mut(name), value) {
                (Some(Value::Object(existing)), Value::Object(given)) => {
                    for (k, v) in given {
                        existing.insert(k, v);
                    }
                }
                (_, given) => {
                    doc.insert(name.to_string(), given);
                }
            }
            Ok(())
        }
        (_, None) => {
            doc.insert(name.to_string(), value);
            Ok(())
        }
    }
}

/// Do two values of a multi-valued attribute denote the same value?
fn same_value(def: &AttributeDef, item: &Value, given: &Value) -> bool {
    let key = |v: &Value| -> Option<String> {
        match v {
            Value::Object(fields) => fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("value"))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string),
            Value::String(s) => Some(s.clone()),
            _ => None,
        }
    };
    let case_exact = def.sub_attribute("value").is_some_and(|v| v.case_exact);
    match (key(item), key(given)) {
        (Some(a), Some(b)) if case_exact => a == b,
        (Some(a), Some(b)) => a.to_lowercase() == b.to_lowercase(),
        _ => item == given,
    }
}

fn apply_filtered(
    doc: &mut Map<String, Value>,
    def: &AttributeDef,
    name: &str,
    filter: &Filter,
    sub: Option<&str>,
    op: &PatchOp,
) -> Result<(), ScimError> {
    if !def.multi_valued {
        return Err(invalid_path(format!(
            "'{name}' is not multi-valued; a filter cannot select its values"
        )));
    }
    let sub_name = match sub {
        Some(s) => Some(
            def.sub_attribute(s)
                .ok_or_else(|| invalid_path(format!("'{name}' has no sub-attribute '{s}'")))?
                .name,
        ),
        None => None,
    };
    let value = op.value.clone().unwrap_or(Value::Null);
    let mut items = match doc.remove(name) {
        Some(Value::Array(items)) => items,
        Some(single) => vec![single],
        None => Vec::new(),
    };
    let matched: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, v)| filter_eval::matches(filter, v, def))
        .map(|(i, _)| i)
        .collect();
    let result = match op.kind {
        OpKind::Remove => {
            match sub_name {
                Some(s) => {
                    for &i in &matched {
                        if let Some(fields) = items[i].as_object_mut() {
                            fields.remove(s);
                        }
                    }
                }
                None => {
                    let mut i = 0;
                    items.retain(|_| {
                        let keep = !matched.contains(&i);
                        i += 1;
                        keep
                    });
                }
            }
            Ok(())
        }
        OpKind::Add | OpKind::Replace => {
            if matched.is_empty() {
                // Entra ID sets `emails[type eq "work"].value` on users that have no work
                // address yet: create the value the filter describes.
                match (eq_fields(filter), sub_name) {
                    (Some(mut fields), Some(s)) => {
                        fields.insert(s.to_string(), value.clone());
                        items.push(Value::Object(fields));
                        Ok(())
                    }
                    (Some(mut fields), None) => match &value {
                        Value::Object(given) => {
                            fields.extend(given.clone());
                            items.push(Value::Object(fields));
                            Ok(())
                        }
                        _ => Err(ScimError::invalid_value(format!(
                            "values of '{name}' are objects"
                        ))),
                    },
                    (None, _) => Err(no_target(format!(
                        "no value of '{name}' matches the filter"
                    ))),
                }
            } else {
                for &i in &matched {
                    match (sub_name, &mut items[i]) {
                        (Some(s), Value::Object(fields)) => {
                            fields.insert(s.to_string(), value.clone());
                        }
                        (None, item) => match (op.kind, item, &value) {
                            (OpKind::Add, Value::Object(fields), Value::Object(given)) => {
                                fields.extend(given.clone())
                            }
                            (_, item, v) => *item = v.clone(),
                        },
                        _ => {}
                    }
                }
                Ok(())
            }
        }
    };
    if let Some(s) = sub_name {
        if s == "primary" && is_true(&value) && op.kind != OpKind::Remove {
            let selected: Vec<usize> = if matched.is_empty() {
                vec![items.len().saturating_sub(1)]
            } else {
                matched.clone()
            };
            for (i, item) in items.iter_mut().enumerate() {
                if !selected.contains(&i) {
                    if let Some(fields) = item.as_object_mut() {
                        fields.remove("primary");
                    }
                }
            }
        }
    }
    if !items.is_empty() {
        doc.insert(name.to_string(), Value::Array(items));
    }
    result
}

/// `type eq "work" and display eq "x"` → {"type": "work", "display": "x"}.
fn eq_fields(filter: &Filter) -> Option<Map<String, Value>> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.sub_attribute.is_none() => {
            let v = match value {
                Literal::String(s) => Value::String(s.clone()),
                Literal::Bool(b) => Value::Bool(*b),
                Literal::Number(n) => Value::Number(n.clone()),
                Literal::Null => return None,
            };
            let mut m = Map::new();
            m.insert(path.attribute.clone(), v);
            Some(m)
        }
        Filter::And(a, b) => {
            let mut m = eq_fields(a)?;
            m.extend(eq_fields(b)?);
            Some(m)
        }
        _ => None,
    }
}
