//! A connection's own settings: how its identity provider's dialect is answered. Kept as JSON
//! with the connection; a setting left out follows the server's.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    /// Answer a successful PATCH with 204 and no body instead of 200 and the resource (some
    /// IdPs expect it); unset: the server's `patch_returns_no_content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_returns_no_content: Option<bool>,
}

impl ConnectionSettings {
    /// Reads settings as stored or sent; the message says what is wrong.
    pub fn parse(text: &str) -> Result<ConnectionSettings, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid connection settings: {e}"))
    }
}
