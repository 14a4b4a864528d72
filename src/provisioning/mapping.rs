//! Attribute mapping: which attributes of a source User go to a target, under which names, and
//! how they are computed (a source path, a constant, or a template such as
//! `{name.givenName}.{name.familyName}`, optionally lower-cased, upper-cased or trimmed).
//!
//! The result names every attribute the target's mapping manages: a value, or `null` when the
//! source has none, so updates can remove what the source no longer has without touching
//! attributes scimgate does not manage.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::config::ConfigError;
use crate::scim::filter::{self, Filter};
use crate::scim::filter_eval;
use crate::scim::registry;
use crate::scim::schema::{self, AttributeDef};
use crate::targets::mapping::MappingRule;

#[derive(Debug, Clone)]
enum Computed {
    Source(SourcePath),
    Constant(String),
    Template(Vec<TemplatePart>),
}

#[derive(Debug, Clone)]
enum TemplatePart {
    Text(String),
    Field(SourcePath),
}

/// `attr`, `attr.sub`, `attr[filter].sub`, `urn:...:attr`.
#[derive(Debug, Clone)]
struct SourcePath {
    extension: Option<&'static str>,
    attribute: &'static AttributeDef,
    filter: Option<Filter>,
    sub: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Transform {
    Lower,
    Upper,
    Trim,
}

#[derive(Debug, Clone)]
struct Rule {
    target: Vec<String>,
    computed: Computed,
    fallbacks: Vec<Computed>,
    transform: Option<Transform>,
    values: BTreeMap<String, String>,
}

/// A target's user mapping; without rules, every User attribute goes out as it is.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    rules: Vec<Rule>,
    /// Directory targets get exactly the mapped attributes: no SCIM `schemas` or `externalId`.
    directory: bool,
    /// Top-level targets computed from the password (see [`Mapping::secret_targets`]).
    secrets: Vec<String>,
}

fn bad(target: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError::from_message(format!("mapping for {target:?}: {why}"))
}

fn parse_source(text: &str, rule: &str) -> Result<SourcePath, ConfigError> {
    // `[primary]` is shorthand for `[primary eq true]`.
    let text = text.trim().replace("[primary]", "[primary eq true]");
    let (head, filter, sub) = match text.find('[') {
        Some(open) => {
            let close = text.rfind(']').ok_or_else(|| bad(rule, "unbalanced '['"))?;
            let f = filter::parse(&text[open + 1..close]).map_err(|e| bad(rule, e.detail))?;
            let rest = text[close + 1..].trim_start_matches('.');
            (
                text[..open].to_string(),
                Some(f),
                (!rest.is_empty()).then(|| rest.to_string()),
            )
        }
        None => (text.clone(), None, None),
    };
    let path = filter::AttrPath::parse(&head).map_err(|e| bad(rule, e.detail))?;
    let (extension, attribute) = match path.schema.as_deref() {
        None => (None, registry::user().core.attribute(&path.attribute)),
        Some(urn) if urn.eq_ignore_ascii_case(schema::USER_SCHEMA) => {
            (None, registry::user().core.attribute(&path.attribute))
        }
        Some(urn) => match registry::user().extension(urn) {
            Some(ext) => (Some(ext.id), ext.attribute(&path.attribute)),
            None => (None, None),
        },
    };
    let attribute =
        attribute.ok_or_else(|| bad(rule, format!("{head:?} is not a User attribute")))?;
    Ok(SourcePath {
        extension,
        attribute,
        filter,
        sub: sub.or(path.sub_attribute),
    })
}

fn parse_template(text: &str, rule: &str) -> Result<Vec<TemplatePart>, ConfigError> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(TemplatePart::Text(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| bad(rule, "unclosed '{' in template"))?
            + open;
        parts.push(TemplatePart::Field(parse_source(
            &rest[open + 1..close],
            rule,
        )?));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_string()));
    }
    Ok(parts)
}

/// `urn:...:User:department` → [urn, department]; `name.familyName` → [name, familyName].
fn target_path(text: &str) -> Result<Vec<String>, ConfigError> {
    let path = filter::AttrPath::parse(text).map_err(|e| bad(text, e.detail))?;
    let mut out = Vec::new();
    if let Some(urn) = path
        .schema
        .filter(|u| !u.eq_ignore_ascii_case(schema::USER_SCHEMA))
    {
        out.push(urn);
    }
    out.push(path.attribute);
    out.extend(path.sub_attribute);
    Ok(out)
}

impl Mapping {
    /// A mapping for a directory (LDAP) target: rule targets are attribute names, and the
    /// object holds nothing else.
    pub fn for_directory(rules: &[MappingRule]) -> Result<Mapping, ConfigError> {
        Ok(Mapping {
            directory: true,
            ..Mapping::from_rules(rules)?
        })
    }

    pub fn from_rules(rules: &[MappingRule]) -> Result<Mapping, ConfigError> {
        let mut out = Vec::with_capacity(rules.len());
        for r in rules {
            let computed = match (&r.source, &r.constant, &r.template) {
                (Some(s), None, None) => Computed::Source(parse_source(s, &r.target)?),
                (None, Some(c), None) => Computed::Constant(c.clone()),
                (None, None, Some(t)) => Computed::Template(parse_template(t, &r.target)?),
                _ => {
                    return Err(bad(
                        &r.target,
                        "give exactly one of source, constant, template",
                    ))
                }
            };
            let transform = match r.transform.as_deref() {
                None => None,
                Some("lower") => Some(Transform::Lower),
                Some("upper") => Some(Transform::Upper),
                Some("trim") => Some(Transform::Trim),
                Some(other) => return Err(bad(&r.target, format!("unknown transform {other:?}"))),
            };
            let fallbacks = r
                .fallback
                .iter()
                .map(|f| {
                    if f.contains('{') {
                        parse_template(f, &r.target).map(Computed::Template)
                    } else {
                        parse_source(f, &r.target).map(Computed::Source)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.push(Rule {
                target: target_path(&r.target)?,
                computed,
                fallbacks,
                transform,
                values: r.values.clone(),
            });
        }
        let secrets = secret_targets(&out);
        Ok(Mapping {
            rules: out,
            directory: false,
            secrets,
        })
    }

    /// Top-level attributes computed from the user's password. They go out only when an
    /// account is created (a password cannot be read back to tell whether it changed), and
    /// verification skips them.
    pub fn secret_targets(&self) -> &[String] {
        &self.secrets
    }

    /// The top-level attributes the mapping sets, password-derived ones aside (what a full sync
    /// compares); empty when the mapping sends every User attribute.
    pub fn compared_attributes(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .rules
            .iter()
            .filter_map(|r| r.target.first().cloned())
            .filter(|name| !self.secrets.contains(name))
            .collect();
        names.dedup();
        names
    }

    /// What to read of a user for this mapping: memberships (`groups`) are the costly part,
    /// read only when a rule uses them.
    pub fn user_projection(&self) -> crate::scim::projection::Projection {
        use crate::scim::projection::Projection;
        if self.reads_groups() {
            Projection::default()
        } else {
            Projection::parse(None, Some("groups")).unwrap_or_default()
        }
    }

    /// Whether any rule reads the user's `groups`; without rules, `groups` is not sent.
    fn reads_groups(&self) -> bool {
        let reads = |c: &Computed| {
            match c {
            Computed::Source(path) => path.extension.is_none() && path.attribute.name == "groups",
            Computed::Template(parts) => parts.iter().any(|p| {
                matches!(p, TemplatePart::Field(path) if path.extension.is_none() && path.attribute.name == "groups")
            }),
            Computed::Constant(_) => false,
        }
        };
        self.rules
            .iter()
            .any(|r| reads(&r.computed) || r.fallbacks.iter().any(reads))
    }

    /// The object to send for a user (`resource` as scimgate renders it).
    pub fn user(&self, resource: &Value, source_id: &str) -> Value {
        let mut out = Map::new();
        if self.rules.is_empty() {
            // Every attribute of the User schema and its extensions, null where absent.
            for def in registry::user().core.attributes {
                if !matches!(def.name, "groups" | "password") {
                    out.insert(
                        def.name.to_string(),
                        resource.get(def.name).cloned().unwrap_or(Value::Null),
                    );
                }
            }
            for ext in registry::user().extensions {
                let mut fields = Map::new();
                for def in ext.attributes {
                    fields.insert(
                        def.name.to_string(),
                        resource[ext.id]
                            .get(def.name)
                            .cloned()
                            .unwrap_or(Value::Null),
                    );
                }
                out.insert(ext.id.to_string(), Value::Object(fields));
            }
        } else {
            for rule in &self.rules {
                let value = std::iter::once(&rule.computed)
                    .chain(&rule.fallbacks)
                    .find_map(|c| compute(resource, c).filter(|v| !is_empty(v)));
                let value = value.map(|v| match rule.values.get(&plain_text(&v)) {
                    Some(replacement) => Value::String(replacement.clone()),
                    None => v,
                });
                let value = match (value, rule.transform) {
                    (Some(Value::String(s)), Some(t)) => Some(Value::String(match t {
                        Transform::Lower => s.to_lowercase(),
                        Transform::Upper => s.to_uppercase(),
                        Transform::Trim => s.trim().to_string(),
                    })),
                    (v, _) => v,
                };
                // A single value for a multi-valued attribute goes out as a one-element list.
                let multi = !self.directory
                    && rule.target.len() == 1
                    && registry::user()
                        .core
                        .attribute(&rule.target[0])
                        .is_some_and(|d| d.multi_valued);
                let value = match value {
                    Some(v) if multi && !v.is_array() => Value::Array(vec![v]),
                    Some(v) => v,
                    None => Value::Null,
                };
                set(&mut out, &rule.target, value);
            }
        }
        if self.directory {
            return Value::Object(out);
        }
        let mut schemas = vec![Value::String(schema::USER_SCHEMA.into())];
        for ext in registry::user().extensions {
            if out.get(ext.id).is_some_and(|v| {
                v.as_object()
                    .is_some_and(|m| m.values().any(|x| !x.is_null()))
            }) {
                schemas.push(Value::String(ext.id.into()));
            }
        }
        out.insert("schemas".into(), Value::Array(schemas));
        out.entry("externalId").or_insert(Value::Null);
        if out["externalId"].is_null() {
            out.insert("externalId".into(), Value::String(source_id.to_string()));
        }
        Value::Object(out)
    }
}

fn secret_targets(rules: &[Rule]) -> Vec<String> {
    let reads_password = |c: &Computed| match c {
        Computed::Source(p) => p.attribute.name == "password",
        Computed::Template(parts) => parts
            .iter()
            .any(|part| matches!(part, TemplatePart::Field(p) if p.attribute.name == "password")),
        Computed::Constant(_) => false,
    };
    rules
        .iter()
        .filter(|r| {
            std::iter::once(&r.computed)
                .chain(&r.fallbacks)
                .any(reads_password)
        })
        .filter_map(|r| r.target.first().cloned())
        .collect()
}

fn compute(resource: &Value, computed: &Computed) -> Option<Value> {
    match computed {
        Computed::Source(p) => read(resource, p),
        Computed::Constant(c) => Some(Value::String(c.clone())),
        Computed::Template(parts) => template(resource, parts).map(Value::String),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// The text a value is looked up by in a rule's `values`: strings as they are, others as JSON.
fn plain_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn read(resource: &Value, path: &SourcePath) -> Option<Value> {
    let holder = match path.extension {
        Some(urn) => resource.get(urn)?,
        None => resource,
    };
    let value = holder.get(path.attribute.name)?;
    let value = match (&path.filter, value) {
        (Some(f), Value::Array(items)) => items
            .iter()
            .find(|v| filter_eval::matches(f, v, path.attribute))?,
        // `[primary]` on a list without a primary value: the first value stands in.
        (None, Value::Array(items)) if path.sub.is_some() => items.first()?,
        (_, v) => v,
    };
    let value = match &path.sub {
        Some(sub) => value.get(sub.as_str())?,
        None => value,
    };
    (!value.is_null()).then(|| value.clone())
}

fn template(resource: &Value, parts: &[TemplatePart]) -> Option<String> {
    let mut out = String::new();
    for part in parts {
        match part {
            TemplatePart::Text(t) => out.push_str(t),
            TemplatePart::Field(p) => match read(resource, p)? {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Some(out)
}

fn set(out: &mut Map<String, Value>, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            out.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = out
                .entry(first.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(inner) = entry {
                set(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(
        target: &str,
        source: Option<&str>,
        constant: Option<&str>,
        template: Option<&str>,
        transform: Option<&str>,
    ) -> MappingRule {
        MappingRule {
            target: target.into(),
            source: source.map(Into::into),
            constant: constant.map(Into::into),
            template: template.map(Into::into),
            transform: transform.map(Into::into),
            ..MappingRule::default()
        }
    }

    #[test]
    fn rules_compute_the_target_object() {
        let mapping = Mapping::from_rules(&[
            rule(
                "userName",
                None,
                None,
                Some("{name.givenName}.{name.familyName}@corp.example"),
                Some("lower"),
            ),
            rule("emails", None, None, None, None).with_source("emails[type eq \"work\"]"),
            rule(
                "title",
                Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
                None,
                None,
                Some("upper"),
            ),
            rule("userType", None, Some("Employee"), None, None),
            rule("nickName", Some("emails[primary].value"), None, None, None),
            rule("displayName", Some("nickName"), None, None, None),
        ])
        .expect("valid rules");
        let user = json!({
            "userName": "bj",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "home@x", "type": "home"}, {"value": "work@x", "type": "work", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Tours"}
        });
        let out = mapping.user(&user, "src-1");
        assert_eq!(out["userName"], "barbara.jensen@corp.example");
        assert_eq!(
            out["emails"],
            json!([{"value": "work@x", "type": "work", "primary": true}])
        );
        assert_eq!(out["title"], "TOURS");
        assert_eq!(out["userType"], "Employee");
        assert_eq!(out["nickName"], "work@x");
        assert_eq!(
            out["displayName"],
            Value::Null,
            "managed but absent: null, so it is removed"
        );
        assert_eq!(out["externalId"], "src-1");
    }

    #[test]
    fn directory_mappings_fall_back_and_translate_values() {
        let mut cn = rule("cn", Some("displayName"), None, None, None);
        cn.fallback = vec![
            "{name.givenName} {name.familyName}".into(),
            "userName".into(),
        ];
        let mut control = rule("userAccountControl", Some("active"), None, None, None);
        control.values = [("true", "512"), ("false", "514")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mapping = Mapping::for_directory(&[
            cn,
            control,
            rule("uid", Some("userName"), None, None, None),
            rule("mail", Some("emails[primary].value"), None, None, None),
        ])
        .expect("valid rules");
        let named = mapping.user(
            &json!({"userName": "bj", "name": {"givenName": "Barbara", "familyName": "Jensen"}, "active": false}),
            "src-1",
        );
        assert_eq!(
            named,
            json!({"cn": "Barbara Jensen", "userAccountControl": "514", "uid": "bj", "mail": null}),
            "a directory object holds exactly the mapped attributes"
        );
        let bare = mapping.user(
            &json!({"userName": "bj", "displayName": " ", "active": true}),
            "src-1",
        );
        assert_eq!(
            bare["cn"], "bj",
            "an empty value and a half-filled template fall through"
        );
        assert_eq!(bare["userAccountControl"], "512");
    }

    #[test]
    fn bad_rules_are_configuration_errors() {
        assert!(Mapping::from_rules(&[rule("title", Some("shoeSize"), None, None, None)]).is_err());
        assert!(
            Mapping::from_rules(&[rule("title", Some("title"), Some("x"), None, None)]).is_err()
        );
        assert!(
            Mapping::from_rules(&[rule("title", None, None, Some("{name.givenName"), None)])
                .is_err()
        );
        assert!(
            Mapping::from_rules(&[rule("title", Some("title"), None, None, Some("reverse"))])
                .is_err()
        );
    }

    trait WithSource {
        fn with_source(self, s: &str) -> Self;
    }
    impl WithSource for MappingRule {
        fn with_source(mut self, s: &str) -> Self {
            self.source = Some(s.into());
            self
        }
    }
}
