//! Mapping rules as written in a target's settings (`[[targets.mapping]]`); the provisioning
//! engine compiles and applies them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One mapping rule as written in the configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingRule {
    /// Target attribute: `title`, `name.familyName`, or `urn:...:User:department`.
    pub target: String,
    /// Source attribute, with an optional value selector: `emails[primary].value`,
    /// `phoneNumbers[type eq "work"].value`.
    pub source: Option<String>,
    pub constant: Option<String>,
    pub template: Option<String>,
    /// `lower`, `upper` or `trim`.
    pub transform: Option<String>,
    /// Tried in order when the computed value is empty: source paths, or templates (text with
    /// `{...}`). Directories need values for attributes like `cn` and `sn` even when the
    /// source has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<String>,
    /// Replaces computed values, e.g. `{ "true" = "512", "false" = "514" }` for Active
    /// Directory's `userAccountControl` from `active`. Values not listed go out unchanged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
}
