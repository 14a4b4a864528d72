//! The core Group schema (RFC 7643 §4.2, §8.7.1).
//!
//! Unlike the RFC's sample representation, `displayName` is required and unique here (groups
//! are provisioned into directories where the name is the key), and every member needs its
//! `value`.

use super::{AttributeDef, SchemaDef};

const MEMBER_SUBS: [AttributeDef; 4] = [
    AttributeDef::string("value")
        .describe("Identifier of the member of this Group.")
        .required()
        .immutable(),
    AttributeDef::reference("$ref", &["User", "Group"])
        .describe("The URI corresponding to a SCIM resource that is a member of this Group.")
        .immutable(),
    AttributeDef::string("display")
        .describe("A human-readable name for the member, kept as the client sent it."),
    AttributeDef::string("type")
        .describe("A label indicating the type of resource, e.g., 'User' or 'Group'.")
        .canonical(&["User", "Group"])
        .immutable(),
];

const ATTRIBUTES: [AttributeDef; 2] = [
    AttributeDef::string("displayName")
        .describe("A human-readable name for the Group.")
        .required()
        .unique_server(),
    AttributeDef::complex("members", &MEMBER_SUBS)
        .describe("A list of members of the Group.")
        .multi(),
];

pub(super) const SCHEMA: SchemaDef = SchemaDef {
    id: super::GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: &ATTRIBUTES,
};
