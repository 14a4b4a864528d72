//! Entries as the connector sees them: DNs built from templates, the attribute values an
//! object should have, and the smallest modification that gets an entry there.

use std::collections::{BTreeMap, HashSet};

use ldap3::Mod;
use serde_json::Value;

/// Attribute name (as configured) → values. Names compare case-insensitively, as in LDAP.
pub type Attributes = BTreeMap<String, Vec<String>>;

/// A DN template such as `uid={uid},ou=people,{base_dn}`.
#[derive(Debug, Clone)]
pub struct DnTemplate {
    text: String,
}

impl DnTemplate {
    pub fn new(template: &str, base_dn: &str) -> Result<DnTemplate, String> {
        let text = template.replace("{base_dn}", base_dn);
        if !text.contains('{') {
            return Err(format!(
                "DN template {template:?} names no attribute; entries would all get one DN"
            ));
        }
        Ok(DnTemplate { text })
    }

    /// Fills the template from `attributes`, escaping each value (RFC 4514).
    pub fn render(&self, attributes: &Attributes) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..]
                .find('}')
                .map(|c| c + open)
                .ok_or_else(|| format!("unclosed '{{' in DN template {:?}", self.text))?;
            let name = &rest[open + 1..close];
            let value = get(attributes, name)
                .and_then(|v| v.first())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    format!("the DN template needs '{name}', which the mapping leaves empty")
                })?;
            out.push_str(&ldap3::dn_escape(value.as_str()));
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The values of `name`, matching the attribute name case-insensitively.
pub fn get<'a>(attributes: &'a Attributes, name: &str) -> Option<&'a Vec<String>> {
    attributes
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// `(first RDN, parent DN)`, splitting at the first comma that is not escaped.
pub fn split_dn(dn: &str) -> (&str, &str) {
    let bytes = dn.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b',' => return (dn[..i].trim(), dn[i + 1..].trim()),
            _ => i += 1,
        }
    }
    (dn.trim(), "")
}

/// The value of a DN's first RDN (`uid=bjensen,ou=people` → `bjensen`), unescaped.
pub fn rdn_value(dn: &str) -> String {
    let rdn = split_dn(dn).0;
    let raw = rdn.split_once('=').map(|(_, v)| v).unwrap_or(rdn);
    let mut out = Vec::with_capacity(raw.len());
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(bytes[i + 1]);
                    i += 2;
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// DNs compare without regard to case or the spaces after separators.
pub fn same_dn(a: &str, b: &str) -> bool {
    normal_dn(a) == normal_dn(b)
}

pub fn normal_dn(dn: &str) -> String {
    dn.split(',')
        .map(|part| part.trim().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

/// The values a JSON value stands for: nothing for null, each element of a list.
pub fn values_of(value: &Value) -> Vec<String> {
    match value {
        Value::Null => Vec::new(),
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(values_of).collect(),
        // `{"value": ...}` complex values (SCIM style) carry their value.
        Value::Object(fields) => fields.get("value").map(values_of).unwrap_or_default(),
        other => vec![other.to_string()],
    }
}

/// The mapped object as attributes; `null` means "should have no value".
pub fn attributes_of(object: &Value) -> Attributes {
    object
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .map(|(name, value)| (name.clone(), values_of(value)))
                .collect()
        })
        .unwrap_or_default()
}

/// Modifications that turn `current` into `desired` for every attribute `desired` names.
/// `members` (the group's member attribute) changes by adding and deleting only the values
/// that differ, so a large group is never rewritten.
pub fn changes(
    current: &Attributes,
    desired: &Attributes,
    members: Option<&str>,
) -> Vec<Mod<String>> {
    let mut mods = Vec::new();
    for (name, wanted) in desired {
        let have = get(current, name).cloned().unwrap_or_default();
        if members.is_some_and(|m| m.eq_ignore_ascii_case(name)) {
            let key = |v: &String| normal_dn(v);
            let have_keys: HashSet<String> = have.iter().map(key).collect();
            let wanted_keys: HashSet<String> = wanted.iter().map(key).collect();
            let added: HashSet<String> = wanted
                .iter()
                .filter(|v| !have_keys.contains(&key(v)))
                .cloned()
                .collect();
            let removed: HashSet<String> = have
                .iter()
                .filter(|v| !wanted_keys.contains(&key(v)))
                .cloned()
                .collect();
            // Adding first keeps a group that needs a member valid at every step.
            if !added.is_empty() {
                mods.push(Mod::Add(name.clone(), added));
            }
            if !removed.is_empty() {
                mods.push(Mod::Delete(name.clone(), removed));
            }
            continue;
        }
        let have_set: HashSet<&String> = have.iter().collect();
        let wanted_set: HashSet<&String> = wanted.iter().collect();
        if have_set == wanted_set {
            continue;
        }
        if wanted.is_empty() {
            mods.push(Mod::Delete(name.clone(), HashSet::new()));
        } else {
            mods.push(Mod::Replace(name.clone(), wanted.iter().cloned().collect()));
        }
    }
    mods
}

/// Every attribute whose values differ: its name, the values wanted and the values held.
pub fn differences(
    current: &Attributes,
    desired: &Attributes,
    members: Option<&str>,
) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut names: Vec<String> = Vec::new();
    for change in changes(current, desired, members) {
        let name = match change {
            Mod::Add(n, _) | Mod::Delete(n, _) | Mod::Replace(n, _) | Mod::Increment(n, _) => n,
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let wanted = get(desired, &name).cloned().unwrap_or_default();
            let have = get(current, &name).cloned().unwrap_or_default();
            (name, wanted, have)
        })
        .collect()
}

/// The first attribute whose values differ, in words (`None`: the entry matches).
pub fn difference(
    current: &Attributes,
    desired: &Attributes,
    members: Option<&str>,
) -> Option<String> {
    changes(current, desired, members)
        .into_iter()
        .next()
        .map(|change| {
            let name = match &change {
                Mod::Add(n, _) | Mod::Delete(n, _) | Mod::Replace(n, _) | Mod::Increment(n, _) => {
                    n.clone()
                }
            };
            let have = get(current, &name).cloned().unwrap_or_default();
            let wanted = get(desired, &name).cloned().unwrap_or_default();
            if members.is_some_and(|m| m.eq_ignore_ascii_case(&name)) {
                format!(
                    "drift: '{name}' has {} values on the target, {} were sent",
                    have.len(),
                    wanted.len()
                )
            } else {
                format!("drift: '{name}' is {have:?} on the target, {wanted:?} was sent")
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(pairs: &[(&str, &[&str])]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn templates_escape_values_and_name_their_container() {
        let t = DnTemplate::new("uid={uid},ou=people,{base_dn}", "dc=example,dc=org").expect("ok");
        let dn = t
            .render(&attrs(&[("UID", &["smith, john+x"])]))
            .expect("rendered");
        assert_eq!(dn, "uid=smith\\2c john\\2bx,ou=people,dc=example,dc=org");
        assert_eq!(split_dn(&dn).1, "ou=people,dc=example,dc=org");
        assert_eq!(rdn_value(&dn), "smith, john+x");
        assert!(t.render(&attrs(&[("cn", &["x"])])).is_err());
        assert!(DnTemplate::new("ou=people,{base_dn}", "dc=x").is_err());
        assert!(same_dn("UID=a, ou=People,dc=x", "uid=a,ou=people,dc=x"));
    }

    #[test]
    fn changes_touch_only_what_differs_and_members_by_delta() {
        let current = attrs(&[
            ("cn", &["Ann"]),
            ("mail", &["a@x"]),
            ("title", &["Boss"]),
            ("member", &["uid=a,dc=x", "uid=b,dc=x"]),
        ]);
        let desired = attributes_of(&json!({
            "cn": "Ann", "mail": ["a@y"], "title": null, "telephoneNumber": null,
            "member": ["UID=a,dc=x", "uid=c,dc=x"]
        }));
        let mods = changes(&current, &desired, Some("member"));
        let described: Vec<String> = mods
            .iter()
            .map(|m| match m {
                Mod::Add(n, v) => format!("add {n} {}", v.len()),
                Mod::Delete(n, v) => format!("delete {n} {}", v.len()),
                Mod::Replace(n, v) => format!("replace {n} {:?}", v.iter().collect::<Vec<_>>()),
                Mod::Increment(n, _) => format!("increment {n}"),
            })
            .collect();
        assert_eq!(
            described,
            vec![
                "replace mail [\"a@y\"]",
                "add member 1",
                "delete member 1",
                "delete title 0"
            ]
        );
        assert!(difference(&current, &desired, Some("member")).is_some());
        assert_eq!(difference(&current, &current, Some("member")), None);
    }
}
