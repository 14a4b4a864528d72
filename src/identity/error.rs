//! The identity layer's error type; the HTTP edge maps it to SCIM errors.

use crate::scim::ScimError;
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The request breaks the protocol or a schema rule; carries its SCIM error.
    #[error(transparent)]
    Invalid(#[from] ScimError),
    #[error("{0}")]
    NotFound(String),
    /// A uniqueness rule would be broken.
    #[error("{0}")]
    Conflict(String),
    #[error("the resource has changed: its current version is {current}")]
    PreconditionFailed { current: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Storage(StoreError),
}

impl From<StoreError> for IdentityError {
    fn from(e: StoreError) -> Self {
        if e.is_external_id_taken() {
            IdentityError::Conflict(
                "externalId is already used by another resource of this connection".into(),
            )
        } else if e.is_extension_value_taken() {
            let attribute = crate::extensions::taken_attribute(&e)
                .unwrap_or_else(|| "a unique extension attribute".into());
            IdentityError::Conflict(format!(
                "{attribute} is unique, and another resource holds that value"
            ))
        } else if e.is_unique_violation() {
            // The pre-check passed but a concurrent writer took the value first.
            IdentityError::Conflict(
                "a resource with the same unique attribute value was just created".into(),
            )
        } else {
            IdentityError::Storage(e)
        }
    }
}

impl crate::storage::group_commit::GroupedError for IdentityError {
    fn is_retryable(&self) -> bool {
        matches!(self, IdentityError::Storage(e) if e.is_deadlock_or_serialization())
    }
}
