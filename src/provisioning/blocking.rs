//! Blocking store work from async delivery code.

use crate::connectors::ConnectorError;

/// Runs blocking store work off the async workers; store trouble is worth a retry.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ConnectorError> {
    let retryable = |message: String| ConnectorError::Retryable {
        message,
        status: None,
        retry_after: None,
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(retryable),
        Err(e) => Err(retryable(format!("internal task failed: {e}"))),
    }
}
