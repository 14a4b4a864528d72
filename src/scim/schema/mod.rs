//! SCIM schema definitions (RFC 7643 §2, §7): the attribute model every other layer reads.
//!
//! The built-in definitions are static data and declared extensions are leaked into the same
//! shape, so one table drives input validation, output filtering, filters and `/Schemas`.

mod attribute;
pub mod declaration;
mod enterprise;
mod group;
mod user;

pub use attribute::{AttrType, AttributeDef, Mutability, Returned, Uniqueness};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// One schema: a URN and its attributes.
#[derive(Debug)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttributeDef],
}

impl SchemaDef {
    /// Looks an attribute up by name, case-insensitively (RFC 7643 §2.1).
    pub fn attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

pub static USER: SchemaDef = user::SCHEMA;
pub static GROUP: SchemaDef = group::SCHEMA;
pub static ENTERPRISE_USER: SchemaDef = enterprise::SCHEMA;

/// The attributes common to every resource (RFC 7643 §3.1). Like the RFC's own schema
/// representations (§8.7), `/Schemas` does not list them under each resource schema.
pub static COMMON_ATTRIBUTES: &[AttributeDef] = &attribute::COMMON;
