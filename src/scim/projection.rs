//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9), honouring each attribute's
//! `returned` characteristic (RFC 7643 §2.4).

use serde_json::{Map, Value};

use super::error::{ScimError, ScimType};
use super::filter::AttrPath;
use super::resource_type::ResourceType;
use super::schema::{AttributeDef, Returned, SchemaDef};

/// Which attributes a response carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    attributes: Vec<AttrPath>,
    excluded: Vec<AttrPath>,
    /// Answering a POST, PUT or PATCH: `returned: request` attributes come back without being
    /// asked for (RFC 7643 §7: the client sent them).
    after_write: bool,
}

impl Projection {
    /// Reads the comma-separated parameter values; names are checked later, against the
    /// resource type (an unknown name just selects nothing).
    pub fn parse(
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Projection, ScimError> {
        let list = |raw: Option<&str>| -> Result<Vec<AttrPath>, ScimError> {
            raw.map(|r| {
                r.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        AttrPath::parse(s).map_err(|_| {
                            ScimError::bad_request(
                                ScimType::InvalidValue,
                                format!("'{s}' is not an attribute name"),
                            )
                        })
                    })
                    .collect()
            })
            .transpose()
            .map(Option::unwrap_or_default)
        };
        Ok(Projection {
            attributes: list(attributes)?,
            excluded: list(excluded)?,
            after_write: false,
        })
    }

    /// This projection, for the answer to a write.
    pub fn after_write(self) -> Projection {
        Projection {
            after_write: true,
            ..self
        }
    }

    pub fn is_default(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// Whether the response will carry this core attribute at all, so the caller can skip
    /// loading expensive derived values (a large group's members).
    pub fn wants(&self, rt: &ResourceType, attribute: &str) -> bool {
        let names = |p: &AttrPath| {
            p.attribute.eq_ignore_ascii_case(attribute)
                && p.schema
                    .as_deref()
                    .is_none_or(|s| s.eq_ignore_ascii_case(rt.core.id))
        };
        if !self.attributes.is_empty() {
            return self.attributes.iter().any(names);
        }
        !self
            .excluded
            .iter()
            .any(|p| names(p) && p.sub_attribute.is_none())
    }

    /// Applies the projection to a rendered resource.
    pub fn apply(&self, rt: &ResourceType, resource: Value) -> Value {
        if self.is_default() && (self.after_write || !rt.returns_on_request) {
            return resource;
        }
        let Value::Object(mut fields) = resource else {
            return resource;
        };
        let mut out = Map::new();
        for (name, value) in std::mem::take(&mut fields) {
            if name == "schemas" || name == "id" {
                out.insert(name, value);
                continue;
            }
            if let Some(ext) = rt.extension(&name) {
                if let Value::Object(ext_fields) = value {
                    let kept = self.filter_object(ext, Some(ext.id), ext_fields);
                    if !kept.is_empty() {
                        out.insert(name, Value::Object(kept));
                    }
                }
                continue;
            }
            let def = rt.core.attribute(&name).or_else(|| common(&name));
            if let Some(kept) = def.and_then(|d| self.filter_attribute(d, rt.core.id, None, value))
            {
                out.insert(name, kept);
            }
        }
        // `schemas` lists only the extensions still present.
        let present: Vec<Value> = std::iter::once(Value::String(rt.core.id.to_string()))
            .chain(
                rt.extensions
                    .iter()
                    .filter(|e| out.contains_key(e.id))
                    .map(|e| Value::String(e.id.to_string())),
            )
            .collect();
        out.insert("schemas".into(), Value::Array(present));
        Value::Object(out)
    }

    fn filter_object(
        &self,
        schema: &SchemaDef,
        urn: Option<&str>,
        fields: Map<String, Value>,
    ) -> Map<String, Value> {
        let mut kept = Map::new();
        for (name, value) in fields {
            if let Some(def) = schema.attribute(&name) {
                if let Some(v) = self.filter_attribute(def, schema.id, urn, value) {
                    kept.insert(name, v);
                }
            }
        }
        kept
    }

    fn filter_attribute(
        &self,
        def: &AttributeDef,
        schema: &str,
        ext_urn: Option<&str>,
        value: Value,
    ) -> Option<Value> {
        let matches = |p: &AttrPath, sub: Option<&str>| {
            let schema_ok = match (&p.schema, ext_urn) {
                (Some(s), _) => s.eq_ignore_ascii_case(schema),
                (None, Some(_)) => false,
                (None, None) => true,
            };
            let whole_extension = ext_urn.is_some_and(|u| {
                // `attributes=urn:...:User` names the whole extension: parsed as schema-less
                // attribute with the URN's last segment; compare the joined form instead.
                let joined = match &p.schema {
                    Some(s) => format!("{s}:{}", p.attribute),
                    None => p.attribute.clone(),
                };
                joined.eq_ignore_ascii_case(u)
            });
            whole_extension
                || (schema_ok
                    && p.attribute.eq_ignore_ascii_case(def.name)
                    && match (sub, &p.sub_attribute) {
                        (_, None) => true,
                        (Some(s), Some(ps)) => ps.eq_ignore_ascii_case(s),
                        (None, Some(_)) => true,
                    })
        };
        match def.returned {
            Returned::Never => return None,
            Returned::Always => return Some(value),
            Returned::Default | Returned::Request => {}
        }
        if !self.attributes.is_empty() {
            if !self.attributes.iter().any(|p| matches(p, None)) {
                return None;
            }
            let whole = self
                .attributes
                .iter()
                .any(|p| matches(p, None) && p.sub_attribute.is_none());
            if whole || def.sub_attributes.is_empty() {
                return Some(self.strip_excluded_subs(def, value, &matches));
            }
            let wanted: Vec<&str> = def
                .sub_attributes
                .iter()
                .filter(|s| {
                    s.returned == Returned::Always
                        || self
                            .attributes
                            .iter()
                            .any(|p| matches(p, Some(s.name)) && p.sub_attribute.is_some())
                })
                .map(|s| s.name)
                .collect();
            return keep_subs(value, |name| {
                wanted.iter().any(|w| w.eq_ignore_ascii_case(name))
            });
        }
        if def.returned == Returned::Request && !self.after_write {
            return None;
        }
        if self
            .excluded
            .iter()
            .any(|p| matches(p, None) && p.sub_attribute.is_none())
        {
            return None;
        }
        Some(self.strip_excluded_subs(def, value, &matches))
    }

    fn strip_excluded_subs(
        &self,
        def: &AttributeDef,
        value: Value,
        matches: &dyn Fn(&AttrPath, Option<&str>) -> bool,
    ) -> Value {
        let excluded: Vec<&str> = def
            .sub_attributes
            .iter()
            .filter(|s| {
                s.returned != Returned::Always
                    && self
                        .excluded
                        .iter()
                        .any(|p| p.sub_attribute.is_some() && matches(p, Some(s.name)))
            })
            .map(|s| s.name)
            .collect();
        if excluded.is_empty() {
            return value;
        }
        keep_subs(value.clone(), |name| {
            !excluded.iter().any(|e| e.eq_ignore_ascii_case(name))
        })
        .unwrap_or(value)
    }
}

fn common(name: &str) -> Option<&'static AttributeDef> {
    super::schema::COMMON_ATTRIBUTES
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Keeps only the sub-attributes `keep` accepts, in single or multi-valued complex values.
fn keep_subs(value: Value, keep: impl Fn(&str) -> bool) -> Option<Value> {
    let filter = |v: Value| match v {
        Value::Object(fields) => {
            let kept: Map<String, Value> = fields.into_iter().filter(|(k, _)| keep(k)).collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other),
    };
    match value {
        Value::Array(items) => {
            let kept: Vec<Value> = items.into_iter().filter_map(filter).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        single => filter(single),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::registry;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "id": "1",
            "userName": "u",
            "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": "a@b", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D", "costCenter": "C"},
            "meta": {"resourceType": "User"}
        })
    }

    #[test]
    fn attributes_select_and_keep_always_returned() {
        let p =
            Projection::parse(Some("userName,name.givenName,emails.value"), None).expect("parse");
        let out = p.apply(registry::user(), user());
        assert_eq!(
            out,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "1", "userName": "u", "name": {"givenName": "G"}, "emails": [{"value": "a@b"}]})
        );
    }

    #[test]
    fn excluded_attributes_drop_and_extensions_by_urn() {
        let p = Projection::parse(None, Some("name,emails.type,meta,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")).expect("parse");
        let out = p.apply(registry::user(), user());
        assert!(out.get("name").is_none());
        assert!(out.get("meta").is_none());
        assert_eq!(out["emails"], json!([{"value": "a@b"}]));
        assert_eq!(
            out["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            json!({"costCenter": "C"})
        );
        let p = Projection::parse(
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
            None,
        )
        .expect("parse");
        let out = p.apply(registry::user(), user());
        assert_eq!(
            out["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
            "D"
        );
        assert!(out.get("userName").is_none());
        let p = Projection::parse(None, Some("id")).expect("parse");
        assert_eq!(
            p.apply(registry::user(), user())["id"],
            "1",
            "id is always returned"
        );
    }

    #[test]
    fn wants_tells_whether_to_load_derived_attributes() {
        assert!(Projection::default().wants(registry::group(), "members"));
        assert!(!Projection::parse(None, Some("members"))
            .expect("p")
            .wants(registry::group(), "members"));
        assert!(!Projection::parse(Some("displayName"), None)
            .expect("p")
            .wants(registry::group(), "members"));
        assert!(Projection::parse(Some("members.value"), None)
            .expect("p")
            .wants(registry::group(), "members"));
    }
}
