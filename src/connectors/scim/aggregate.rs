//! Aggregation from a SCIM target: every User or Group, by index paging (RFC 7644 §3.4.2.4).

use reqwest::Method;
use serde_json::Value;

use super::ScimConnector;
use crate::connectors::{ConnectorError, ObjectKind, PageSink, RemoteObject};

/// Resources asked for per page; a target may return fewer.
const PAGE: usize = 1_000;

impl ScimConnector {
    pub(super) async fn aggregate_resources(
        &self,
        kind: ObjectKind,
        sink: &PageSink,
    ) -> Result<u64, ConnectorError> {
        let mut start_index: u64 = 1;
        let mut read = 0u64;
        loop {
            let builder = self.request(Method::GET, Self::endpoint(kind)).query(&[
                ("startIndex", start_index.to_string()),
                ("count", PAGE.to_string()),
            ]);
            let (_, body) = self.send(builder, None).await?;
            let resources = match body.get("Resources") {
                Some(Value::Array(list)) => list.clone(),
                _ => Vec::new(),
            };
            let total = body["totalResults"].as_u64().unwrap_or(0);
            if resources.is_empty() {
                return Ok(read);
            }
            let count = resources.len() as u64;
            let page: Vec<RemoteObject> = resources
                .into_iter()
                .filter_map(|resource| {
                    let remote_id = resource["id"].as_str()?.to_string();
                    Some(RemoteObject {
                        remote_id,
                        attributes: resource,
                    })
                })
                .collect();
            read += page.len() as u64;
            if sink.send(page).await.is_err() {
                return Err(ConnectorError::Permanent {
                    message: "the aggregation was stopped".into(),
                    status: None,
                });
            }
            start_index += count;
            if start_index > total {
                return Ok(read);
            }
        }
    }
}
