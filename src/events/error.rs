//! The events layer's one error type; the admin API maps it to statuses.

use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// Settings or a request that cannot be used (400).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with what exists (409).
    #[error("{0}")]
    Conflict(String),
    /// Secrets cannot be sealed: no key is configured.
    #[error("{0}")]
    NoKey(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
}
