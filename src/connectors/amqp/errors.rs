//! What a broker's answers mean for an order: refusals that trying again cannot change are
//! permanent, everything else (a broker that is down, restarting, blocked or slow) is
//! retryable, so the usual backoff and quarantine apply.

use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::ErrorKind;

use crate::connectors::ConnectorError;

pub fn retryable(message: impl Into<String>) -> ConnectorError {
    ConnectorError::Retryable {
        message: message.into(),
        status: None,
        retry_after: None,
    }
}

/// A lapin error as an order's error; `doing` says what was being done.
pub fn from_lapin(doing: &str, error: &lapin::Error) -> ConnectorError {
    let message = format!("{doing}: {error}");
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => {
            let code = amqp.get_id();
            let refused = matches!(
                amqp.kind(),
                AMQPErrorKind::Soft(
                    AMQPSoftError::ACCESSREFUSED
                        | AMQPSoftError::NOTFOUND
                        | AMQPSoftError::PRECONDITIONFAILED
                        | AMQPSoftError::CONTENTTOOLARGE
                )
            );
            let message = format!("{doing}: the broker answered {code} {}", amqp.get_message());
            // The reply code stays in the message: an order's status column is for HTTP.
            if refused {
                ConnectorError::Permanent {
                    message,
                    status: None,
                }
            } else {
                ConnectorError::Retryable {
                    message,
                    status: None,
                    retry_after: None,
                }
            }
        }
        // A refused login is a setting to fix, not a broker to wait for.
        ErrorKind::AuthProviderError(_) => ConnectorError::Permanent {
            message,
            status: None,
        },
        _ => retryable(message),
    }
}
