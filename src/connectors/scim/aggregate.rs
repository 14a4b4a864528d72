//! Aggregation from a SCIM target: every User or Group, page by page. Cursor paging (RFC 9865)
//! when the target offers it, since index paging (RFC 7644 §3.4.2.4) makes many targets skip
//! over all earlier rows for every page; a target that rejects or ignores `cursor` is paged by
//! index.

use std::sync::atomic::Ordering;

use reqwest::Method;
use serde_json::Value;

use super::capabilities::Refused;
use super::status::Addressed;
use super::ScimConnector;
use crate::connectors::{ConnectorError, ObjectKind, PageSink, RemoteObject};

/// Resources asked for per page; a target may return fewer.
const PAGE: u64 = 1_000;

/// Where the next page starts.
enum Next {
    Cursor(String),
    Index(u64),
    Done,
}

impl ScimConnector {
    pub(super) async fn aggregate_resources(
        &self,
        kind: ObjectKind,
        sink: &PageSink,
    ) -> Result<u64, ConnectorError> {
        let capabilities = self.capabilities().await?;
        let size = capabilities.page_size(PAGE);
        let cursors =
            capabilities.cursor != Some(false) && !self.refused.cursor.load(Ordering::Relaxed);
        let mut read = 0u64;
        let mut next = Next::Index(1);
        if cursors {
            match self.page(kind, &[("cursor", String::new())], size).await {
                Ok(body) => {
                    read += self.forward(&body, sink).await?;
                    next = after(&body, None);
                }
                // Cursors are not offered here (whatever was announced): page by index.
                Err(ConnectorError::Unsupported { .. })
                | Err(ConnectorError::Permanent {
                    status: Some(400 | 403),
                    ..
                }) => Refused::mark(&self.refused.cursor),
                Err(e) => return Err(e),
            }
        }
        loop {
            let body = match &next {
                Next::Done => return Ok(read),
                Next::Cursor(cursor) => {
                    self.page(kind, &[("cursor", cursor.clone())], size).await?
                }
                Next::Index(start) => {
                    self.page(kind, &[("startIndex", start.to_string())], size)
                        .await?
                }
            };
            read += self.forward(&body, sink).await?;
            next = match next {
                Next::Index(start) => after(&body, Some(start)),
                _ => after(&body, None),
            };
        }
    }

    async fn page(
        &self,
        kind: ObjectKind,
        at: &[(&str, String)],
        size: u64,
    ) -> Result<Value, ConnectorError> {
        let builder = self
            .request(Method::GET, Self::endpoint(kind))
            .query(at)
            .query(&[("count", size.to_string())]);
        Ok(self.send_to(Addressed::Endpoint, builder, None).await?.1)
    }

    /// Hands a page's resources to the aggregation; returns how many.
    async fn forward(&self, body: &Value, sink: &PageSink) -> Result<u64, ConnectorError> {
        let page: Vec<RemoteObject> = body["Resources"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|resource| {
                        Some(RemoteObject {
                            remote_id: resource["id"].as_str()?.to_string(),
                            attributes: resource.clone(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let count = page.len() as u64;
        if count > 0 && sink.send(page).await.is_err() {
            return Err(ConnectorError::Permanent {
                message: "the aggregation was stopped".into(),
                status: None,
            });
        }
        Ok(count)
    }
}

/// The page after `body`: asked by index from `start`, or by cursor (`None`).
fn after(body: &Value, start: Option<u64>) -> Next {
    if let Some(cursor) = body["nextCursor"].as_str().filter(|c| !c.is_empty()) {
        return Next::Cursor(cursor.to_string());
    }
    // Asked by cursor, an answer with `startIndex` is index paging (the target ignored
    // `cursor`); one without is the last cursor page.
    let first = match (start, body["startIndex"].as_u64()) {
        (_, Some(given)) => given.max(1),
        (Some(asked), None) => asked,
        (None, None) => return Next::Done,
    };
    let returned = body["Resources"].as_array().map_or(0, Vec::len) as u64;
    let total = body["totalResults"].as_u64().unwrap_or(0);
    if returned > 0 && first + returned <= total {
        Next::Index(first + returned)
    } else {
        Next::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index(next: Next) -> Option<u64> {
        match next {
            Next::Index(n) => Some(n),
            _ => None,
        }
    }

    #[test]
    fn pages_follow_cursors_then_indexes_within_what_the_target_returns() {
        let two = json!([{"id": "a"}, {"id": "b"}]);
        assert!(matches!(
            after(&json!({"Resources": two, "nextCursor": "c2"}), None),
            Next::Cursor(c) if c == "c2"
        ));
        // Cursor ignored: index paging from what came back (a target capping `count` at 2).
        assert_eq!(
            index(after(
                &json!({"Resources": two, "startIndex": 1, "totalResults": 5}),
                None
            )),
            Some(3)
        );
        // Index paging without `startIndex` in the answer: from where we asked.
        assert_eq!(
            index(after(
                &json!({"Resources": two, "totalResults": 5}),
                Some(3)
            )),
            Some(5)
        );
        assert!(matches!(
            after(&json!({"Resources": two, "totalResults": 6}), Some(5)),
            Next::Done
        ));
        assert!(matches!(after(&json!({"Resources": []}), None), Next::Done));
    }
}
