//! The Enterprise User extension (RFC 7643 §4.3).

use super::{AttributeDef, SchemaDef};

const MANAGER_SUBS: [AttributeDef; 3] = [
    AttributeDef::string("value")
        .describe("The id of the SCIM resource representing the User's manager."),
    AttributeDef::reference("$ref", &["User"])
        .describe("The URI of the SCIM resource representing the User's manager."),
    AttributeDef::string("displayName")
        .describe("The displayName of the User's manager.")
        .read_only(),
];

const ATTRIBUTES: [AttributeDef; 6] = [
    AttributeDef::string("employeeNumber")
        .describe("Numeric or alphanumeric identifier assigned to a person by the organization."),
    AttributeDef::string("costCenter").describe("Identifies the name of a cost center."),
    AttributeDef::string("organization").describe("Identifies the name of an organization."),
    AttributeDef::string("division").describe("Identifies the name of a division."),
    AttributeDef::string("department").describe("Identifies the name of a department."),
    AttributeDef::complex("manager", &MANAGER_SUBS).describe("The User's manager."),
];

pub(super) const SCHEMA: SchemaDef = SchemaDef {
    id: super::ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &ATTRIBUTES,
};
