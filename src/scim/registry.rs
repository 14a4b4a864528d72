//! The schemas and resource types served now: the built-in ones (RFC 7643 §4) and the extension
//! schemas operators declared, in the config file or through the admin API.
//!
//! One registry is current per process. Installing a new set of declarations builds a new
//! registry and leaks it, so the `&'static` references handed out earlier stay valid; that
//! costs a few kilobytes per operator change, and nothing when a refresh finds the same set.

use std::sync::{OnceLock, RwLock};

use super::resource_type::ResourceType;
use super::schema::declaration::{indexed_attributes, ExtensionDeclaration, IndexedAttribute};
use super::schema::{self, SchemaDef};

pub struct Registry {
    user: ResourceType,
    group: ResourceType,
    /// Every schema served: the built-in ones, then the declared ones.
    schemas: Vec<&'static SchemaDef>,
    declarations: Vec<ExtensionDeclaration>,
    indexed: Vec<IndexedAttribute>,
}

static INSTALLED: RwLock<Option<&'static Registry>> = RwLock::new(None);
static BUILT_IN: OnceLock<Registry> = OnceLock::new();

/// The registry requests are served with.
pub fn current() -> &'static Registry {
    let installed = *INSTALLED.read().unwrap_or_else(|p| p.into_inner());
    installed.unwrap_or_else(|| {
        BUILT_IN.get_or_init(|| Registry::build(Vec::new()).unwrap_or_else(|_| Registry::empty()))
    })
}

/// The User resource type as served now.
pub fn user() -> &'static ResourceType {
    current().user()
}

/// The Group resource type as served now.
pub fn group() -> &'static ResourceType {
    current().group()
}

/// Both resource types as served now.
pub fn resource_types() -> [&'static ResourceType; 2] {
    current().resource_types()
}

/// Every schema served, declared extensions included, in the order `/Schemas` lists them.
pub fn schemas() -> &'static [&'static SchemaDef] {
    current().schemas()
}

/// A schema served, by URN (case-insensitively).
pub fn schema(urn: &str) -> Option<&'static SchemaDef> {
    current().schema(urn)
}

/// Checks a whole set of declarations against the built-in schemas and each other.
pub fn check(declarations: &[ExtensionDeclaration]) -> Result<(), String> {
    for declaration in declarations {
        declaration.check()?;
    }
    let built_in = [
        schema::USER_SCHEMA,
        schema::GROUP_SCHEMA,
        schema::ENTERPRISE_USER_SCHEMA,
    ];
    for (i, d) in declarations.iter().enumerate() {
        let others = built_in
            .iter()
            .copied()
            .chain(declarations[..i].iter().map(|o| o.id.as_str()));
        for other in others {
            if clashes(&d.id, other) || clashes(other, &d.id) {
                return Err(format!(
                    "schema id {:?} clashes with {other:?}: one names the other or an attribute of it",
                    d.id
                ));
            }
        }
    }
    Ok(())
}

/// `a` is `b`, or a path inside `b` (`b:attr`), compared as URNs are (case-insensitively).
fn clashes(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || (a.len() > b.len()
            && a.get(..b.len()).is_some_and(|h| h.eq_ignore_ascii_case(b))
            && a.as_bytes()[b.len()] == b':')
}

/// Serves `declarations` from now on. Returns false (and builds nothing) when they are the
/// ones served already.
pub fn install(declarations: Vec<ExtensionDeclaration>) -> Result<bool, String> {
    if current().declarations == declarations {
        return Ok(false);
    }
    let registry: &'static Registry = Box::leak(Box::new(Registry::build(declarations)?));
    *INSTALLED.write().unwrap_or_else(|p| p.into_inner()) = Some(registry);
    Ok(true)
}

impl Registry {
    fn empty() -> Registry {
        Registry {
            user: built_in_type(
                "User",
                "/Users",
                "User Account",
                &schema::USER,
                &[(&schema::ENTERPRISE_USER, false)],
            ),
            group: built_in_type("Group", "/Groups", "Group", &schema::GROUP, &[]),
            schemas: built_in_schemas(),
            declarations: Vec::new(),
            indexed: Vec::new(),
        }
    }

    /// A registry for the given (unchecked) declarations.
    pub fn build(declarations: Vec<ExtensionDeclaration>) -> Result<Registry, String> {
        check(&declarations)?;
        let mut declared = Vec::with_capacity(declarations.len());
        for d in &declarations {
            declared.push(d.build()?);
        }
        let carried = |rt: &str| -> Vec<(&'static SchemaDef, bool)> {
            declarations
                .iter()
                .zip(&declared)
                .filter_map(|(d, s)| d.carried_by(rt).map(|required| (*s, required)))
                .collect()
        };
        let mut user_extensions = vec![(&schema::ENTERPRISE_USER, false)];
        user_extensions.extend(carried("User"));
        let user = built_in_type(
            "User",
            "/Users",
            "User Account",
            &schema::USER,
            &user_extensions,
        );
        let group = built_in_type(
            "Group",
            "/Groups",
            "Group",
            &schema::GROUP,
            &carried("Group"),
        );
        let mut indexed = Vec::new();
        for (d, s) in declarations.iter().zip(&declared) {
            for rt in ["User", "Group"] {
                if d.carried_by(rt).is_some() {
                    indexed.extend(indexed_attributes(d, s, rt));
                }
            }
        }
        Ok(Registry {
            user,
            group,
            schemas: built_in_schemas().into_iter().chain(declared).collect(),
            declarations,
            indexed,
        })
    }

    pub fn user(&self) -> &ResourceType {
        &self.user
    }

    pub fn group(&self) -> &ResourceType {
        &self.group
    }

    pub fn resource_types(&self) -> [&ResourceType; 2] {
        [&self.user, &self.group]
    }

    /// Every schema served, in the order `/Schemas` lists them.
    pub fn schemas(&self) -> &[&'static SchemaDef] {
        &self.schemas
    }

    pub fn schema(&self, urn: &str) -> Option<&'static SchemaDef> {
        self.schemas
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// The declarations in force, as operators wrote them.
    pub fn declarations(&self) -> &[ExtensionDeclaration] {
        &self.declarations
    }

    /// Declared attributes the database keeps an index on.
    pub fn indexed(&self) -> &[IndexedAttribute] {
        &self.indexed
    }
}

fn built_in_schemas() -> Vec<&'static SchemaDef> {
    vec![&schema::USER, &schema::GROUP, &schema::ENTERPRISE_USER]
}

fn built_in_type(
    name: &'static str,
    endpoint: &'static str,
    description: &'static str,
    core: &'static SchemaDef,
    extensions: &[(&'static SchemaDef, bool)],
) -> ResourceType {
    let schemas: Vec<&'static SchemaDef> = extensions.iter().map(|(s, _)| *s).collect();
    let required: Vec<&'static str> = extensions
        .iter()
        .filter(|(_, required)| *required)
        .map(|(s, _)| s.id)
        .collect();
    ResourceType {
        name,
        endpoint,
        description,
        returns_on_request: ResourceType::any_returned_on_request(core, &schemas),
        core,
        extensions: Box::leak(schemas.into_boxed_slice()),
        required_extensions: Box::leak(required.into_boxed_slice()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn declared(id: &str) -> ExtensionDeclaration {
        ExtensionDeclaration::from_json(json!({
            "id": id,
            "resourceTypes": [{"resourceType": "User", "required": true}, {"resourceType": "Group"}],
            "attributes": [{"name": "badge", "type": "string", "indexed": true}]
        }))
        .unwrap()
    }

    #[test]
    fn declared_extensions_join_the_resource_types() {
        let registry = Registry::build(vec![declared("urn:acme:2.0:User")]).unwrap();
        assert_eq!(registry.user().extensions.len(), 2);
        assert!(registry.user().requires("URN:ACME:2.0:USER"));
        assert!(!registry.group().requires("urn:acme:2.0:User"));
        assert!(registry.schema("urn:acme:2.0:User").is_some());
        assert_eq!(registry.indexed().len(), 2);
    }

    #[test]
    fn clashing_urns_are_refused() {
        for set in [
            vec![declared(schema::USER_SCHEMA)],
            vec![declared(&format!(
                "{}:badge",
                schema::ENTERPRISE_USER_SCHEMA
            ))],
            vec![declared("urn:acme:1"), declared("URN:ACME:1")],
            vec![declared("urn:acme:1"), declared("urn:acme:1:x")],
        ] {
            assert!(check(&set).is_err(), "{:?}", set[set.len() - 1].id);
        }
        assert!(check(&[declared("urn:acme:1"), declared("urn:acme:10")]).is_ok());
    }
}
