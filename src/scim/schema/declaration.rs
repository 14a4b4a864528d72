//! Extension schemas declared by operators (config file or admin API), in the vocabulary of
//! RFC 7643 §7 so a `/Schemas` document can be pasted back, and their checks.
//!
//! A checked declaration becomes a [`SchemaDef`] like the built-in ones, so validation, output,
//! filters, sorting and PATCH treat custom attributes exactly as they treat the enterprise
//! extension's. Definitions are leaked into `'static` data: they change only when an operator
//! changes them, and every layer keeps reading plain `&'static` references.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AttrType, AttributeDef, Mutability, Returned, SchemaDef, Uniqueness};

/// One extension schema as an operator declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtensionDeclaration {
    /// The schema URN, e.g. `urn:example:params:scim:schemas:extension:acme:2.0:User`.
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The resource types that carry it, and whether each requires it (RFC 7643 §6).
    #[serde(alias = "resource_types")]
    pub resource_types: Vec<Carrier>,
    pub attributes: Vec<AttributeDeclaration>,
    /// Accepted and ignored, so a `/Schemas/{id}` document can be sent back as it was served.
    #[serde(default, skip_serializing)]
    pub schemas: Option<Value>,
    #[serde(default, skip_serializing)]
    pub meta: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Carrier {
    /// `User` or `Group`.
    #[serde(alias = "resource_type")]
    pub resource_type: String,
    #[serde(default)]
    pub required: bool,
}

/// One attribute, with the characteristics of RFC 7643 §7 and scimgate's `indexed` flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeDeclaration {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttrType,
    #[serde(default, alias = "multi_valued")]
    pub multi_valued: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default, alias = "case_exact")]
    pub case_exact: bool,
    #[serde(default = "read_write")]
    pub mutability: Mutability,
    #[serde(default = "returned_by_default")]
    pub returned: Returned,
    #[serde(default = "not_unique")]
    pub uniqueness: Uniqueness,
    #[serde(
        default,
        alias = "canonical_values",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub canonical_values: Vec<String>,
    #[serde(
        default,
        alias = "reference_types",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reference_types: Vec<String>,
    #[serde(
        default,
        alias = "sub_attributes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sub_attributes: Vec<AttributeDeclaration>,
    /// Keep a database index on the value, so filters and sorts on it stay fast at scale.
    /// Implied by `uniqueness` other than `none`, which is enforced by a unique index.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub indexed: bool,
}

fn read_write() -> Mutability {
    Mutability::ReadWrite
}
fn returned_by_default() -> Returned {
    Returned::Default
}
fn not_unique() -> Uniqueness {
    Uniqueness::None
}

/// The resource types an extension may extend.
pub const EXTENSIBLE: [&str; 2] = ["User", "Group"];

/// A declared attribute the database keeps an index on.
#[derive(Debug, Clone)]
pub struct IndexedAttribute {
    pub resource_type: &'static str,
    pub schema: &'static str,
    pub attribute: &'static AttributeDef,
    pub unique: bool,
}

impl ExtensionDeclaration {
    /// Reads a declaration from JSON, with a message naming what is wrong.
    pub fn from_json(value: Value) -> Result<ExtensionDeclaration, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    /// Checks the declaration on its own (RFC 7643 §2.1, §7); clashes with other schemas are
    /// the registry's to check.
    pub fn check(&self) -> Result<(), String> {
        if !self.id.to_ascii_lowercase().starts_with("urn:") || self.id.ends_with(':') {
            return Err(format!("schema id {:?} must be a URN (urn:...)", self.id));
        }
        if self
            .id
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'')
        {
            return Err(format!(
                "schema id {:?} must not contain spaces or quotes",
                self.id
            ));
        }
        if self.resource_types.is_empty() {
            return Err("resourceTypes must name at least one of User, Group".into());
        }
        for (i, carrier) in self.resource_types.iter().enumerate() {
            if !EXTENSIBLE
                .iter()
                .any(|rt| rt.eq_ignore_ascii_case(&carrier.resource_type))
            {
                return Err(format!(
                    "resourceTypes: {:?} is not a resource type (User, Group)",
                    carrier.resource_type
                ));
            }
            if self.resource_types[..i]
                .iter()
                .any(|c| c.resource_type.eq_ignore_ascii_case(&carrier.resource_type))
            {
                return Err(format!(
                    "resourceTypes: {:?} is named twice",
                    carrier.resource_type
                ));
            }
        }
        if self.attributes.is_empty() {
            return Err("attributes must declare at least one attribute".into());
        }
        check_attributes(&self.attributes, None)
    }

    /// The checked declaration as a schema definition (leaked: see the module docs).
    pub fn build(&self) -> Result<&'static SchemaDef, String> {
        self.check()?;
        let name = if self.name.trim().is_empty() {
            self.id.rsplit(':').next().unwrap_or(&self.id).to_string()
        } else {
            self.name.clone()
        };
        Ok(Box::leak(Box::new(SchemaDef {
            id: leak(&self.id),
            name: leak(&name),
            description: leak(&self.description),
            attributes: build_attributes(&self.attributes),
        })))
    }

    /// Does `resource_type` carry this extension, and is it required there?
    pub fn carried_by(&self, resource_type: &str) -> Option<bool> {
        self.resource_types
            .iter()
            .find(|c| c.resource_type.eq_ignore_ascii_case(resource_type))
            .map(|c| c.required)
    }
}

fn check_attributes(attrs: &[AttributeDeclaration], parent: Option<&str>) -> Result<(), String> {
    for (i, a) in attrs.iter().enumerate() {
        let path = match parent {
            Some(p) => format!("{p}.{}", a.name),
            None => a.name.clone(),
        };
        if !is_attribute_name(&a.name) {
            return Err(format!(
                "attribute name {:?} is not valid: a letter, then letters, digits, '_' or '-'",
                a.name
            ));
        }
        if attrs[..i]
            .iter()
            .any(|b| b.name.eq_ignore_ascii_case(&a.name))
        {
            return Err(format!("attribute {path:?} is declared twice"));
        }
        match (a.kind, a.sub_attributes.is_empty()) {
            (AttrType::Complex, true) => {
                return Err(format!(
                    "complex attribute {path:?} needs subAttributes"
                ))
            }
            (AttrType::Complex, false) if parent.is_some() => {
                return Err(format!(
                    "{path:?}: a complex attribute's sub-attributes cannot be complex (RFC 7643 §2.3.8)"
                ))
            }
            (AttrType::Complex, false) => check_attributes(&a.sub_attributes, Some(&path))?,
            (_, false) => {
                return Err(format!(
                    "{path:?} has subAttributes but is not of type complex"
                ))
            }
            (_, true) => {}
        }
        if a.kind == AttrType::Reference && a.reference_types.is_empty() {
            return Err(format!(
                "reference attribute {path:?} needs referenceTypes, e.g. [\"external\"]"
            ));
        }
        if a.kind != AttrType::Reference && !a.reference_types.is_empty() {
            return Err(format!(
                "{path:?} has referenceTypes but is not of type reference"
            ));
        }
        if !a.canonical_values.is_empty() && a.kind != AttrType::String {
            return Err(format!(
                "{path:?}: canonicalValues are for string attributes"
            ));
        }
        let wants_index = a.indexed || a.uniqueness != Uniqueness::None;
        if wants_index
            && (parent.is_some()
                || a.multi_valued
                || matches!(a.kind, AttrType::Complex | AttrType::Binary))
        {
            return Err(format!(
                "{path:?}: indexes and uniqueness are kept for single-valued top-level attributes that are not complex or binary"
            ));
        }
    }
    Ok(())
}

/// RFC 7643 §2.1: ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA.
fn is_attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn leak(text: &str) -> &'static str {
    Box::leak(text.to_string().into_boxed_str())
}

fn build_attributes(attrs: &[AttributeDeclaration]) -> &'static [AttributeDef] {
    let built: Vec<AttributeDef> = attrs
        .iter()
        .map(|a| {
            let canonical: Vec<&'static str> = a.canonical_values.iter().map(|v| leak(v)).collect();
            let references: Vec<&'static str> = a.reference_types.iter().map(|v| leak(v)).collect();
            AttributeDef {
                name: leak(&a.name),
                kind: a.kind,
                multi_valued: a.multi_valued,
                description: leak(&a.description),
                required: a.required,
                case_exact: a.case_exact,
                mutability: a.mutability,
                returned: a.returned,
                uniqueness: a.uniqueness,
                canonical_values: Box::leak(canonical.into_boxed_slice()),
                reference_types: Box::leak(references.into_boxed_slice()),
                sub_attributes: build_attributes(&a.sub_attributes),
            }
        })
        .collect();
    Box::leak(built.into_boxed_slice())
}

/// The attributes of `schema` the database indexes for `resource_type`.
pub fn indexed_attributes(
    declaration: &ExtensionDeclaration,
    schema: &'static SchemaDef,
    resource_type: &'static str,
) -> Vec<IndexedAttribute> {
    declaration
        .attributes
        .iter()
        .filter(|a| a.indexed || a.uniqueness != Uniqueness::None)
        .filter_map(|a| schema.attribute(&a.name))
        .map(|attribute| IndexedAttribute {
            resource_type,
            schema: schema.id,
            attribute,
            unique: attribute.uniqueness != Uniqueness::None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn declaration(attributes: Value) -> Result<ExtensionDeclaration, String> {
        ExtensionDeclaration::from_json(json!({
            "id": "urn:example:params:scim:schemas:extension:acme:2.0:User",
            "resourceTypes": [{"resourceType": "User"}],
            "attributes": attributes,
        }))
    }

    #[test]
    fn a_declaration_in_rfc_form_builds() {
        let d = declaration(json!([
            {"name": "badge", "type": "string", "uniqueness": "server"},
            {"name": "clearance", "type": "integer"},
            {"name": "office", "type": "complex", "subAttributes": [
                {"name": "building", "type": "string"},
                {"name": "floor", "type": "integer"}
            ]},
            {"name": "homepage", "type": "reference", "referenceTypes": ["external"]}
        ]))
        .unwrap();
        let schema = d.build().unwrap();
        assert_eq!(schema.name, "User");
        assert_eq!(schema.attributes.len(), 4);
        let office = schema.attribute("OFFICE").unwrap();
        assert_eq!(
            office.sub_attribute("floor").unwrap().kind,
            AttrType::Integer
        );
        let indexed = indexed_attributes(&d, schema, "User");
        assert_eq!(indexed.len(), 1);
        assert!(indexed[0].unique);
    }

    #[test]
    fn bad_declarations_are_refused_with_the_reason() {
        let cases = [
            (json!([{"name": "9lives", "type": "string"}]), "not valid"),
            (
                json!([{"name": "a", "type": "complex"}]),
                "needs subAttributes",
            ),
            (
                json!([{"name": "a", "type": "complex", "subAttributes": [
                    {"name": "b", "type": "complex", "subAttributes": [{"name": "c", "type": "string"}]}
                ]}]),
                "cannot be complex",
            ),
            (
                json!([{"name": "a", "type": "reference"}]),
                "referenceTypes",
            ),
            (
                json!([{"name": "a", "type": "string", "multiValued": true, "indexed": true}]),
                "single-valued",
            ),
            (
                json!([{"name": "a", "type": "string"}, {"name": "A", "type": "string"}]),
                "twice",
            ),
            (
                json!([{"name": "a", "type": "integer", "canonicalValues": ["1"]}]),
                "canonicalValues",
            ),
        ];
        for (attributes, why) in cases {
            let error = declaration(attributes.clone())
                .unwrap()
                .check()
                .unwrap_err();
            assert!(error.contains(why), "{attributes}: {error}");
        }
        let unknown_type = declaration(json!([{"name": "a", "type": "text"}])).unwrap_err();
        assert!(unknown_type.contains("unknown variant"), "{unknown_type}");
        let not_a_urn = ExtensionDeclaration::from_json(json!({
            "id": "acme", "resourceTypes": [{"resourceType": "User"}],
            "attributes": [{"name": "a", "type": "string"}]
        }))
        .unwrap();
        assert!(not_a_urn.check().unwrap_err().contains("URN"));
    }
}
