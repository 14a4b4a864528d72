//! Aggregation from a SCIM target: every User or Group, page by page. Cursor paging (RFC 9865)
//! when the target offers it, since index paging (RFC 7644 §3.4.2.4) makes many targets skip
//! over all earlier rows for every page; a target that rejects or ignores `cursor` is paged by
//! index.

use reqwest::Method;
use serde_json::Value;

use super::ScimConnector;
use crate::connectors::{ConnectorError, ObjectKind, PageSink, RemoteObject};

/// Resources asked for per page; a target may return fewer.
const PAGE: usize = 1_000;

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
        let mut read = 0u64;
        let mut next = match self.page(kind, &[("cursor", String::new())]).await {
            Ok(body) => {
                read += self.forward(&body, sink).await?;
                after(&body, 1)
            }
            // Cursors are not understood here.
            Err(ConnectorError::Permanent {
                status: Some(400 | 403 | 501),
                ..
            }) => Next::Index(1),
            Err(e) => return Err(e),
        };
        loop {
            let body = match &next {
                Next::Done => return Ok(read),
                Next::Cursor(cursor) => self.page(kind, &[("cursor", cursor.clone())]).await?,
                Next::Index(start) => {
                    self.page(kind, &[("startIndex", start.to_string())])
                        .await?
                }
            };
            read += self.forward(&body, sink).await?;
            next = match next {
                Next::Index(start) => after(&body, start),
                _ => after(&body, 1),
            };
        }
    }

    async fn page(&self, kind: ObjectKind, at: &[(&str, String)]) -> Result<Value, ConnectorError> {
        let builder = self
            .request(Method::GET, Self::endpoint(kind))
            .query(at)
            .query(&[("count", PAGE.to_string())]);
        Ok(self.send(builder, None).await?.1)
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

/// The page after `body`, which started at index `start` when index-paged.
fn after(body: &Value, start: u64) -> Next {
    if let Some(cursor) = body["nextCursor"].as_str().filter(|c| !c.is_empty()) {
        return Next::Cursor(cursor.to_string());
    }
    let returned = body["Resources"].as_array().map_or(0, Vec::len) as u64;
    // Without a cursor, an answer with `startIndex` is index paging (the target ignored
    // `cursor`); one without is the last cursor page.
    let index_paged = body.get("startIndex").is_some();
    let total = body["totalResults"].as_u64().unwrap_or(0);
    let first = body["startIndex"].as_u64().unwrap_or(start);
    if index_paged && returned > 0 && first + returned <= total {
        Next::Index(first + returned)
    } else {
        Next::Done
    }
}
