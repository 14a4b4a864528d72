//! What to take as given of a SCIM target whatever it announces (`[targets.capabilities]`).

use serde::{Deserialize, Serialize};

/// Settings that override what a target announces (`[targets.capabilities]`), for targets whose
/// ServiceProviderConfig is missing or wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapabilityOverrides {
    pub patch: Option<bool>,
    pub filter: Option<bool>,
    /// RFC 9865 cursor paging.
    pub cursor: Option<bool>,
    /// Most resources asked for in one page.
    pub max_page_size: Option<u64>,
}

impl CapabilityOverrides {
    pub fn is_default(&self) -> bool {
        *self == CapabilityOverrides::default()
    }
}
