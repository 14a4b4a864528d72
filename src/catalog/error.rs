//! Why the catalogue refused or failed a change; each caller says it in its own terms (the
//! admin API as JSON with a status, the console on the page).

use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The settings are wrong; the message says which and why.
    #[error("{0}")]
    Invalid(String),
    /// No target of that name.
    #[error("{0}")]
    NotFound(String),
    /// The name is taken, the target is the config file's, or it changed meanwhile.
    #[error("{0}")]
    Conflict(String),
    #[error("the database is unavailable; try again shortly")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for CatalogError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            CatalogError::Unavailable(e.to_string())
        } else {
            CatalogError::Internal(e.to_string())
        }
    }
}

impl CatalogError {
    pub fn not_found(name: &str) -> Self {
        CatalogError::NotFound(format!("no target named {name:?}"))
    }
}
