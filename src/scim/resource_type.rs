//! The resource types served (RFC 7643 §6): which schema and extensions each endpoint speaks.

use super::schema::{self, SchemaDef};

#[derive(Debug)]
pub struct ResourceType {
    /// `meta.resourceType` and the `/ResourceTypes/{name}` key.
    pub name: &'static str,
    /// Path below the SCIM base, e.g. `/Users`.
    pub endpoint: &'static str,
    pub description: &'static str,
    pub core: &'static SchemaDef,
    pub extensions: &'static [&'static SchemaDef],
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
}

pub static USER: ResourceType = ResourceType {
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    core: &schema::USER,
    extensions: &[&schema::ENTERPRISE_USER],
};

pub static GROUP: ResourceType = ResourceType {
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    core: &schema::GROUP,
    extensions: &[],
};

pub fn all() -> [&'static ResourceType; 2] {
    [&USER, &GROUP]
}
