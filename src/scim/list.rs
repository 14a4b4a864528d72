//! List responses and index-based paging (RFC 7644 §3.4.2, §3.4.2.4).

use serde_json::{json, Value};

use super::error::ScimError;

pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// A requested page: `start_index` is 1-based, as in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub start_index: i64,
    pub count: i64,
}

impl Paging {
    /// Reads `startIndex` and `count`. Per §3.4.2.4 a `startIndex` below 1 means 1 and a
    /// negative `count` means 0; a `count` above the server's maximum is lowered to it.
    pub fn from_params(
        start_index: Option<&str>,
        count: Option<&str>,
        default_count: i64,
        max_count: i64,
    ) -> Result<Paging, ScimError> {
        let parse = |name: &str, raw: Option<&str>| -> Result<Option<i64>, ScimError> {
            raw.map(|r| {
                r.trim().parse::<i64>().map_err(|_| {
                    ScimError::invalid_value(format!("'{name}' must be an integer, got '{r}'"))
                })
            })
            .transpose()
        };
        let start_index = parse("startIndex", start_index)?.unwrap_or(1).max(1);
        let count = parse("count", count)?
            .unwrap_or(default_count)
            .clamp(0, max_count);
        Ok(Paging { start_index, count })
    }

    pub fn offset(&self) -> i64 {
        self.start_index - 1
    }
}

/// A cursor-paged list response (RFC 9865 §2.2): no `startIndex`; `nextCursor` while more remain.
pub fn cursor_list_response(
    total_results: i64,
    next_cursor: Option<String>,
    resources: Vec<Value>,
) -> Value {
    let mut body = json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total_results,
        "itemsPerPage": resources.len(),
    });
    if let Some(next) = next_cursor {
        body["nextCursor"] = Value::String(next);
    }
    body["Resources"] = Value::Array(resources);
    body
}

pub fn list_response(total_results: i64, paging: Paging, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total_results,
        "startIndex": paging.start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_and_clamps() {
        let p = Paging::from_params(None, None, 100, 1000).expect("defaults");
        assert_eq!(
            p,
            Paging {
                start_index: 1,
                count: 100
            }
        );
        let p = Paging::from_params(Some("0"), Some("-5"), 100, 1000).expect("clamped");
        assert_eq!(
            p,
            Paging {
                start_index: 1,
                count: 0
            }
        );
        let p = Paging::from_params(Some("11"), Some("5000"), 100, 1000).expect("max");
        assert_eq!(
            p,
            Paging {
                start_index: 11,
                count: 1000
            }
        );
        assert_eq!(p.offset(), 10);
    }

    #[test]
    fn paging_rejects_non_integers() {
        let err = Paging::from_params(Some("x"), None, 100, 1000).expect_err("not a number");
        assert_eq!(err.status, 400);
    }
}
