//! How a SCIM target's answers are classed: one table, read by every request the connector
//! makes. The README's "Error classes" section is this table in words.
//!
//! | answer                                   | class          | quarantine? |
//! |------------------------------------------|----------------|-------------|
//! | no answer (connect, TLS, timeout, reset) | retry          | yes         |
//! | 408, 500, 502, 503, 504, other 5xx       | retry          | yes         |
//! | 429                                      | retry, slower  | no          |
//! | 501                                      | not supported  | no          |
//! | 405                                      | not supported  | no          |
//! | 404 on an endpoint (`/Users`, `/ServiceProviderConfig`) | not supported | no |
//! | 404 on an object (`/Users/{id}`)         | permanent (gone) | no        |
//! | 401                                      | auth refresh, then permanent | no |
//! | 400, 403, 409, 412, other 4xx            | permanent      | no          |
//!
//! *Retry*: the order is tried again with backoff (`Retry-After` honoured). *Not supported*:
//! the feature is missing on that target for good; the connector falls back (PUT for PATCH,
//! index paging for cursors, one lookup at a time for `or` filters) and only an order with no
//! fallback left ends in `error`. *Auth refresh*: with OAuth client credentials a new token is
//! fetched and the request sent once more. *Quarantine*: only failures that say the target is
//! unwell count toward pausing it.

use std::time::Duration;

use crate::connectors::ConnectorError;

/// What a failed answer means for what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Worth trying again later; the target may be unwell.
    Retry,
    /// Worth trying again later; the target is well but asks us to slow down.
    Throttled,
    /// The target does not offer what was asked, for good: fall back.
    NotSupported,
    /// The credentials were refused: renew them (OAuth) and try once more.
    AuthRefresh,
    /// Trying again will not help.
    Permanent,
}

/// What a request addressed: a collection or service endpoint, or one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressed {
    Endpoint,
    Object,
}

/// The table above, for an HTTP status.
pub fn classify(status: u16, addressed: Addressed) -> FailureClass {
    match status {
        429 => FailureClass::Throttled,
        501 | 405 => FailureClass::NotSupported,
        404 if addressed == Addressed::Endpoint => FailureClass::NotSupported,
        401 => FailureClass::AuthRefresh,
        408 | 500..=599 => FailureClass::Retry,
        _ => FailureClass::Permanent,
    }
}

/// The connector's error for a failed answer.
pub fn error_for(
    status: u16,
    addressed: Addressed,
    message: String,
    retry_after: Option<Duration>,
) -> ConnectorError {
    let status_code = Some(status);
    match classify(status, addressed) {
        FailureClass::Retry | FailureClass::Throttled => ConnectorError::Retryable {
            message,
            status: status_code,
            retry_after,
        },
        FailureClass::NotSupported => ConnectorError::Unsupported {
            message,
            status: status_code,
        },
        // The OAuth path renews its token on a 401 before this error is final.
        FailureClass::AuthRefresh | FailureClass::Permanent => ConnectorError::Permanent {
            message,
            status: status_code,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        use Addressed::*;
        use FailureClass::*;
        let rows = [
            (408, Object, Retry),
            (500, Object, Retry),
            (502, Endpoint, Retry),
            (503, Object, Retry),
            (504, Object, Retry),
            (429, Object, Throttled),
            (501, Endpoint, NotSupported),
            (501, Object, NotSupported),
            (405, Object, NotSupported),
            (404, Endpoint, NotSupported),
            (404, Object, Permanent),
            (401, Object, AuthRefresh),
            (400, Endpoint, Permanent),
            (403, Object, Permanent),
            (409, Endpoint, Permanent),
            (412, Object, Permanent),
        ];
        for (status, addressed, class) in rows {
            assert_eq!(classify(status, addressed), class, "{status} {addressed:?}");
        }
    }

    #[test]
    fn only_unwell_targets_count_toward_quarantine() {
        let err = |s| error_for(s, Addressed::Object, String::new(), None);
        assert!(err(503).counts_against_health());
        assert!(!err(429).counts_against_health());
        assert!(!err(501).counts_against_health());
        assert!(!err(400).counts_against_health());
        assert!(matches!(err(501), ConnectorError::Unsupported { .. }));
    }
}
