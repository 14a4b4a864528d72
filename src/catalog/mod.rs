//! The catalogue of targets: adding, changing, enabling, disabling, removing and testing the
//! targets kept in the database, with the same checks whoever asks (the admin API or the
//! console). Targets declared in the config file are read-only here.

mod changes;
mod connection_check;
mod error;
mod redaction;
mod validation;

pub use changes::{create, delete, replace, set_enabled, stored};
pub use connection_check::{test_connection, ConnectionTest};
pub use error::CatalogError;
pub use redaction::{masked_url, redacted};
pub use validation::{check, keep_secrets, parse, refuse_markers, REDACTED};
