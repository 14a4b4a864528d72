//! `If-Match` preconditions (RFC 7644 §3.14, RFC 7232 §3.1), checked inside the write
//! transaction so no other write can slip between the check and the change.

use super::IdentityError;
use crate::scim::output::etag;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    Any,
    /// Entity tags as sent; compared weakly (the `W/` prefix is ignored).
    Tags(Vec<String>),
}

impl IfMatch {
    /// Parses an `If-Match` header value.
    pub fn parse(header: &str) -> IfMatch {
        let header = header.trim();
        if header == "*" {
            return IfMatch::Any;
        }
        IfMatch::Tags(
            header
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    pub fn matches(&self, version: i64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => {
                let current = etag(version);
                tags.iter().any(|t| strip_weak(t) == strip_weak(&current))
            }
        }
    }
}

pub fn strip_weak(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

pub(super) fn check(condition: Option<&IfMatch>, version: i64) -> Result<(), IdentityError> {
    match condition {
        Some(c) if !c.matches(version) => Err(IdentityError::PreconditionFailed {
            current: etag(version),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_comparison_and_lists() {
        assert!(IfMatch::parse("W/\"3\"").matches(3));
        assert!(IfMatch::parse("\"3\"").matches(3));
        assert!(IfMatch::parse("W/\"1\", W/\"3\"").matches(3));
        assert!(!IfMatch::parse("W/\"2\"").matches(3));
        assert!(IfMatch::parse("*").matches(42));
    }
}
