//! LDAP failures in the engine's terms: worth a retry, or permanent with the server's own
//! diagnostic. Result codes the engine acts on are given their HTTP equivalents (32 noSuchObject
//! as 404, 68 entryAlreadyExists as 409), so correlation and re-provisioning work as for SCIM.

use ldap3::{LdapError, LdapResult};

use crate::connectors::ConnectorError;

/// RFC 4511 result codes by name, for messages an operator can act on.
fn code_name(rc: u32) -> &'static str {
    match rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        8 => "strongerAuthRequired",
        11 => "adminLimitExceeded",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        54 => "loopDetect",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        80 => "other",
        _ => "error",
    }
}

/// Result codes that may clear up by themselves: the server is busy, down or slow, or the
/// bind credentials are being rotated.
fn transient(rc: u32) -> bool {
    matches!(rc, 3 | 11 | 49 | 51 | 52 | 80)
}

pub fn from_result(result: &LdapResult, doing: &str) -> ConnectorError {
    let mut message = format!("{doing}: LDAP {} {}", result.rc, code_name(result.rc));
    if !result.text.is_empty() {
        message.push_str(": ");
        message.push_str(&result.text);
    }
    if !result.matched.is_empty() {
        message.push_str(&format!(" (matched {})", result.matched));
    }
    if transient(result.rc) {
        return ConnectorError::Retryable {
            message,
            status: None,
            retry_after: None,
        };
    }
    let status = match result.rc {
        32 => Some(404),
        68 => Some(409),
        _ => None,
    };
    ConnectorError::Permanent { message, status }
}

pub fn from_error(error: LdapError, doing: &str) -> ConnectorError {
    match error {
        LdapError::LdapResult { result } => from_result(&result, doing),
        // Connection trouble, timeouts, a dropped connection: the pool reconnects next time.
        other => ConnectorError::Retryable {
            message: format!("{doing}: {other}"),
            status: None,
            retry_after: None,
        },
    }
}

pub fn timed_out(doing: &str) -> ConnectorError {
    ConnectorError::Retryable {
        message: format!("{doing}: the directory did not answer in time"),
        status: None,
        retry_after: None,
    }
}
