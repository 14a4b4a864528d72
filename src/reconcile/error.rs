//! The reconciliation layer's error type.

use crate::connectors::ConnectorError;
use crate::identity::IdentityError;
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the identities failed: {0}")]
    Identity(String),
    #[error("the target failed: {0}")]
    Target(#[from] ConnectorError),
    /// The target's settings do not allow it (a bad correlation rule).
    #[error("{0}")]
    Config(String),
    /// Another full sync holds the target.
    #[error("{0}")]
    Busy(String),
    #[error("internal task failed: {0}")]
    Task(String),
}

impl From<IdentityError> for ReconcileError {
    fn from(e: IdentityError) -> Self {
        ReconcileError::Identity(e.to_string())
    }
}

/// Runs blocking store work off the async runtime.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ReconcileError> + Send + 'static,
) -> Result<T, ReconcileError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ReconcileError::Task(e.to_string()))?
}
