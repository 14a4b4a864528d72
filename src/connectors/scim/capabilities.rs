//! What a SCIM target can do, read from its ServiceProviderConfig (RFC 7643 §5, pagination by
//! RFC 9865) before anything is guessed, with the target's config overrides on top. Read once
//! per connector (a target's connector is rebuilt when its settings change); what a target
//! refuses at run time (501, 405) is learnt on top, so errors remain the fallback, not the plan.

use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

use super::status::Addressed;
use super::ScimConnector;
use crate::connectors::ConnectorError;
use crate::targets::capabilities::CapabilityOverrides;

/// What is known of a target: `None` where it announced nothing (then the connector tries and
/// falls back on a "not supported" answer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Whether a ServiceProviderConfig was read, or why not.
    pub source: String,
    pub patch: Option<bool>,
    pub bulk: Option<bool>,
    pub filter: Option<bool>,
    pub filter_max_results: Option<u64>,
    pub sort: Option<bool>,
    pub etag: Option<bool>,
    pub cursor: Option<bool>,
    pub index: Option<bool>,
    pub max_page_size: Option<u64>,
}

impl Capabilities {
    /// Reads a ServiceProviderConfig document.
    pub fn announced(spc: &Value) -> Capabilities {
        let flag = |name: &str| spc[name]["supported"].as_bool();
        let pagination = &spc["pagination"];
        Capabilities {
            source: "ServiceProviderConfig".into(),
            patch: flag("patch"),
            bulk: flag("bulk"),
            filter: flag("filter"),
            filter_max_results: spc["filter"]["maxResults"].as_u64().filter(|n| *n > 0),
            sort: flag("sort"),
            etag: flag("etag"),
            cursor: pagination["cursor"].as_bool(),
            index: pagination["index"].as_bool(),
            max_page_size: pagination["maxPageSize"].as_u64().filter(|n| *n > 0),
        }
    }

    /// Nothing announced: every feature is tried, and given up on when refused.
    pub fn unknown(why: String) -> Capabilities {
        Capabilities {
            source: why,
            ..Capabilities::default()
        }
    }

    pub fn with_overrides(mut self, o: &CapabilityOverrides) -> Capabilities {
        self.patch = o.patch.or(self.patch);
        self.filter = o.filter.or(self.filter);
        self.cursor = o.cursor.or(self.cursor);
        self.max_page_size = o.max_page_size.or(self.max_page_size);
        self
    }

    /// The page size to ask for: ours, within what the target allows.
    pub fn page_size(&self, wanted: u64) -> u64 {
        [self.max_page_size, self.filter_max_results]
            .into_iter()
            .flatten()
            .fold(wanted, u64::min)
            .max(1)
    }

    pub fn report(&self) -> Value {
        json!(self)
    }
}

/// Features a target refused at run time, so they are not asked for again.
#[derive(Debug, Default)]
pub struct Refused {
    pub patch: AtomicBool,
    pub cursor: AtomicBool,
}

impl Refused {
    pub fn mark(flag: &AtomicBool) {
        flag.store(true, Ordering::Relaxed);
    }
}

impl ScimConnector {
    /// The target's capabilities, read on first use. A target that cannot be reached is asked
    /// again next time; one without a ServiceProviderConfig is taken as announcing nothing.
    pub(super) async fn capabilities(&self) -> Result<Capabilities, ConnectorError> {
        if let Some(known) = self.capabilities.get() {
            return Ok(known.clone());
        }
        let request = self.request(Method::GET, "ServiceProviderConfig");
        let read = match self.send_to(Addressed::Endpoint, request, None).await {
            Ok((_, spc)) if spc.is_object() => Capabilities::announced(&spc),
            Ok(_) => Capabilities::unknown("the ServiceProviderConfig is not a JSON object".into()),
            Err(ConnectorError::Unsupported { message, .. })
            | Err(ConnectorError::Permanent { message, .. }) => {
                Capabilities::unknown(format!("no ServiceProviderConfig: {message}"))
            }
            Err(e) => return Err(e),
        };
        let known = read.with_overrides(&self.overrides);
        Ok(self
            .capabilities
            .get_or_init(|| async { known })
            .await
            .clone())
    }

    /// Whether to update by PATCH: announced (or not denied) and never refused.
    pub(super) async fn patch_supported(&self) -> Result<bool, ConnectorError> {
        if self.refused.patch.load(Ordering::Relaxed) {
            return Ok(false);
        }
        Ok(self.capabilities().await?.patch != Some(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rfc_7643_and_rfc_9865_announcements() {
        let spc = json!({
            "patch": {"supported": false},
            "bulk": {"supported": true, "maxOperations": 10},
            "filter": {"supported": true, "maxResults": 200},
            "sort": {"supported": false},
            "etag": {"supported": true},
            "pagination": {"cursor": false, "index": true, "maxPageSize": 500}
        });
        let caps = Capabilities::announced(&spc);
        assert_eq!(caps.patch, Some(false));
        assert_eq!(caps.bulk, Some(true));
        assert_eq!(caps.filter, Some(true));
        assert_eq!(caps.cursor, Some(false));
        assert_eq!(caps.index, Some(true));
        assert_eq!(caps.page_size(1000), 200);
        let overridden = caps.with_overrides(&CapabilityOverrides {
            patch: Some(true),
            max_page_size: Some(50),
            ..Default::default()
        });
        assert_eq!(overridden.patch, Some(true));
        assert_eq!(overridden.page_size(1000), 50);
        // Without pagination, nothing is assumed.
        let bare = Capabilities::announced(&json!({"patch": {"supported": true}}));
        assert_eq!(bare.cursor, None);
        assert_eq!(bare.page_size(1000), 1000);
    }
}
