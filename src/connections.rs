//! A connection's own settings: how its identity provider's dialect is answered. Kept as JSON
//! with the connection; a setting left out follows the server's.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    /// Answer a successful PATCH with 204 and no body instead of 200 and the resource (some
    /// IdPs expect it); unset: the server's `patch_returns_no_content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_returns_no_content: Option<bool>,
    /// At most this many SCIM requests a second from the connection, per instance, in bursts
    /// of up to one second's worth; beyond it, `429` with `Retry-After`. Unset: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_second: Option<f64>,
    /// The inbound mass-delete guard: at most this many users deleted through the connection
    /// in any hour; beyond it, its deletions are refused (`403`, nothing deleted) until an
    /// operator raises the limit. Unset: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_user_deletes_per_hour: Option<u64>,
}

impl ConnectionSettings {
    /// Reads settings as stored or sent; the message says what is wrong.
    pub fn parse(text: &str) -> Result<ConnectionSettings, String> {
        let settings: ConnectionSettings =
            serde_json::from_str(text).map_err(|e| format!("invalid connection settings: {e}"))?;
        if settings
            .max_requests_per_second
            .is_some_and(|rate| !(rate.is_finite() && rate > 0.0))
        {
            return Err("max_requests_per_second: a number above 0".into());
        }
        Ok(settings)
    }
}
