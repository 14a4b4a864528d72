//! Why a declaration change was refused.

use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ExtensionError {
    /// The declaration is wrong in itself or clashes with another schema.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// It would contradict stored data or another change.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Storage(#[from] StoreError),
}
