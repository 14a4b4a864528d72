//! The storage layer's error type.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database connection error: {0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("connection pool error: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("migration error: {0}")]
    Migration(String),
    #[error("write abandoned: {0}")]
    Aborted(String),
    /// The database could not be reached (shared by the writes of one failed batch).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Secrets(#[from] super::secrets::SecretError),
    #[error(
        "unsupported database URL {0:?}: expected sqlite://PATH, a file path, or postgres://..."
    )]
    UnsupportedUrl(String),
}

impl StoreError {
    /// True when the database could not be reached (no connection within the pool's wait, or
    /// the connection was lost mid-request): worth a `503` and a retry, not a `500`.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        matches!(
            self,
            StoreError::Pool(_)
                | StoreError::Connection(_)
                | StoreError::Unavailable(_)
                | StoreError::Query(
                    Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
                        | Error::BrokenTransactionManager
                )
        )
    }

    /// True when a unique index rejected the write: a concurrent writer won a race the
    /// pre-check could not see.
    /// Whether a write broke the uniqueness of `externalId` within a connection.
    pub fn is_external_id_taken(&self) -> bool {
        self.is_unique_violation() && self.to_string().contains("external_id_key")
    }

    /// Whether a write repeated the value of a declared attribute whose `uniqueness` a unique
    /// index enforces.
    pub fn is_extension_value_taken(&self) -> bool {
        self.is_unique_violation()
            && super::extension_indexes::is_extension_index(&self.to_string())
    }

    /// A deadlock or serialization failure: another transaction held what this one needed;
    /// the same write on its own may well succeed.
    pub fn is_deadlock_or_serialization(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            StoreError::Query(Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => {
                true
            }
            StoreError::Query(Error::DatabaseError(_, info)) => {
                info.message().contains("deadlock detected")
            }
            _ => false,
        }
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}
