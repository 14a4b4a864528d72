//! The SCIM protocol vocabulary (RFC 7643, RFC 7644): schemas, resource types, the JSON shapes
//! of requests and responses, and protocol errors. No I/O here.

pub mod cursor;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod filter_eval;
pub mod input;
pub mod list;
pub mod output;
pub mod patch;
pub mod projection;
pub mod registry;
pub mod resource_type;
pub mod schema;
pub mod text;

pub use error::{ScimError, ScimType};
