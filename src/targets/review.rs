//! Which orders of a target wait for an operator's approval (`[targets.review]`); the
//! provisioning engine applies the rules.

use serde::{Deserialize, Serialize};

/// `[targets.review]`: which orders of the target wait for approval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewRules {
    /// Every order.
    pub all: bool,
    /// Orders that delete or deactivate something on the target (a deleted user, a user leaving
    /// `users_filter`, an orphan account).
    pub deprovisioning: bool,
    /// Sensitive entitlements: orders for these groups (by displayName), which carry every
    /// change of their membership.
    pub groups: Vec<String>,
    /// Orders for users matching this SCIM filter, e.g. `title eq "CFO"`.
    pub filter: Option<String>,
}

impl ReviewRules {
    pub fn is_default(&self) -> bool {
        self == &ReviewRules::default()
    }
}
