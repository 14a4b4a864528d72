//! The attribute characteristics of RFC 7643 §2.2 and §7, as const-buildable data.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

/// One attribute definition. Built with the const constructors below, e.g.
/// `AttributeDef::string("userName").required().unique_server()`.
#[derive(Debug, Clone, Copy)]
pub struct AttributeDef {
    pub name: &'static str,
    pub kind: AttrType,
    pub multi_valued: bool,
    pub description: &'static str,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [AttributeDef],
}

impl AttributeDef {
    pub const fn new(name: &'static str, kind: AttrType) -> Self {
        AttributeDef {
            name,
            kind,
            multi_valued: false,
            description: "",
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
        }
    }
    pub const fn string(name: &'static str) -> Self {
        Self::new(name, AttrType::String)
    }
    pub const fn boolean(name: &'static str) -> Self {
        Self::new(name, AttrType::Boolean)
    }
    pub const fn integer(name: &'static str) -> Self {
        Self::new(name, AttrType::Integer)
    }
    pub const fn decimal(name: &'static str) -> Self {
        Self::new(name, AttrType::Decimal)
    }
    pub const fn date_time(name: &'static str) -> Self {
        Self::new(name, AttrType::DateTime)
    }
    pub const fn binary(name: &'static str) -> Self {
        Self::new(name, AttrType::Binary)
    }
    pub const fn reference(name: &'static str, types: &'static [&'static str]) -> Self {
        let mut a = Self::new(name, AttrType::Reference);
        a.reference_types = types;
        a
    }
    pub const fn complex(name: &'static str, subs: &'static [AttributeDef]) -> Self {
        let mut a = Self::new(name, AttrType::Complex);
        a.sub_attributes = subs;
        a
    }
    pub const fn describe(mut self, text: &'static str) -> Self {
        self.description = text;
        self
    }
    pub const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    pub const fn read_only(mut self) -> Self {
        self.mutability = Mutability::ReadOnly;
        self
    }
    pub const fn immutable(mut self) -> Self {
        self.mutability = Mutability::Immutable;
        self
    }
    pub const fn write_only(mut self) -> Self {
        self.mutability = Mutability::WriteOnly;
        self
    }
    pub const fn returned(mut self, returned: Returned) -> Self {
        self.returned = returned;
        self
    }
    pub const fn unique_server(mut self) -> Self {
        self.uniqueness = Uniqueness::Server;
        self
    }
    pub const fn unique_global(mut self) -> Self {
        self.uniqueness = Uniqueness::Global;
        self
    }
    pub const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }

    /// Sub-attribute lookup by name, case-insensitively.
    pub fn sub_attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// RFC 7643 §3.1 common attributes.
pub(super) const COMMON: [AttributeDef; 3] = [
    AttributeDef::string("id")
        .describe("Unique identifier for the SCIM resource as defined by the service provider.")
        .case_exact()
        .read_only()
        .returned(Returned::Always)
        .unique_server(),
    AttributeDef::string("externalId")
        .describe("Identifier for the resource as defined by the provisioning client.")
        .case_exact(),
    AttributeDef::complex("meta", &META_SUBS)
        .describe("Resource metadata.")
        .read_only(),
];

const META_SUBS: [AttributeDef; 5] = [
    AttributeDef::string("resourceType")
        .describe("The name of the resource type of the resource.")
        .case_exact()
        .read_only(),
    AttributeDef::date_time("created")
        .describe("The DateTime that the resource was added to the service provider.")
        .read_only(),
    AttributeDef::date_time("lastModified")
        .describe("The most recent DateTime that the details of this resource were updated.")
        .read_only(),
    AttributeDef::reference("location", &["uri"])
        .describe("The URI of the resource being returned.")
        .case_exact()
        .read_only(),
    AttributeDef::string("version")
        .describe("The version of the resource being returned (a weak entity tag).")
        .case_exact()
        .read_only(),
];
