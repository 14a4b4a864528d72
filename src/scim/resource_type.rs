//! The resource types served (RFC 7643 §6): which schema and extensions each endpoint speaks.
//! Their extensions include those operators declared, so the ones served come from the
//! [registry](super::registry).

use super::schema::{AttributeDef, Returned, SchemaDef};

#[derive(Debug)]
pub struct ResourceType {
    /// `meta.resourceType` and the `/ResourceTypes/{name}` key.
    pub name: &'static str,
    /// Path below the SCIM base, e.g. `/Users`.
    pub endpoint: &'static str,
    pub description: &'static str,
    pub core: &'static SchemaDef,
    pub extensions: &'static [&'static SchemaDef],
    /// The URNs of the extensions every resource of this type must carry (RFC 7643 §6).
    pub required_extensions: &'static [&'static str],
    /// Whether some attribute is returned only on request (only declared extensions have
    /// such), so even a default read must filter what it returns.
    pub returns_on_request: bool,
}

impl ResourceType {
    pub fn extension(&self, urn: &str) -> Option<&'static SchemaDef> {
        self.extensions
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Is `urn` one of the schemas this resource type may carry?
    pub fn knows_schema(&self, urn: &str) -> bool {
        self.core.id.eq_ignore_ascii_case(urn) || self.extension(urn).is_some()
    }

    /// Whether some attribute of `core` or `extensions` is `returned: request`.
    pub fn any_returned_on_request(core: &SchemaDef, extensions: &[&'static SchemaDef]) -> bool {
        let on_request = |defs: &[AttributeDef]| {
            defs.iter().any(|d| {
                d.returned == Returned::Request
                    || d.sub_attributes
                        .iter()
                        .any(|s| s.returned == Returned::Request)
            })
        };
        on_request(core.attributes) || extensions.iter().any(|e| on_request(e.attributes))
    }

    /// Must every resource of this type carry the extension `urn`?
    pub fn requires(&self, urn: &str) -> bool {
        self.required_extensions
            .iter()
            .any(|r| r.eq_ignore_ascii_case(urn))
    }
}
