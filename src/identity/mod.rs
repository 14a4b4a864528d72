//! The identity store's service layer: Users and Groups as the SCIM protocol defines them,
//! on top of storage. Validates input, enforces uniqueness, mutability and preconditions, and
//! performs every write in one transaction with its change-log row.

mod conditions;
mod error;
mod groups;
mod passwords;
mod precondition;
mod resources;
mod search;
mod search_all;
mod users;
mod write_request;

use std::sync::Arc;

use serde_json::{Map, Value};

pub use error::IdentityError;
pub use precondition::{strip_weak as precondition_strip_weak, IfMatch};
pub use resources::{Change, Kind};
pub use search::Query;

use crate::scim::output::Meta;
use crate::storage::{Db, Micros};

/// A resource rendered for a response, with the version its ETag names.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Value,
    pub version: i64,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    pub total: i64,
    pub resources: Vec<Value>,
    /// Set when cursor paging was asked for and more results follow.
    pub next_cursor: Option<String>,
}

/// The connection resources belong to when none is named: the one served at `/scim/v2`.
pub const DEFAULT_CONNECTION: &str = "default";

/// Users and Groups. Cheap to clone; blocking (call it off the async executor).
#[derive(Clone)]
pub struct Directory {
    db: Db,
    /// The SCIM base URL, e.g. `https://idm.example.com/scim/v2`, for `meta.location` and `$ref`.
    base_url: Arc<str>,
    /// The connection this directory serves: it sees, changes and creates only that
    /// connection's resources. `None`: every connection's (operators, the engine), creating
    /// in the default one.
    connection: Option<Arc<str>>,
    /// The connection's inbound mass-delete guard: at most this many users deleted in any
    /// hour; beyond it, deletions are refused (`403`) until an operator raises it.
    delete_guard: Option<u64>,
}

impl Directory {
    pub fn new(db: Db, base_url: &str) -> Directory {
        Directory {
            db,
            base_url: Arc::from(base_url.trim_end_matches('/')),
            connection: None,
            delete_guard: None,
        }
    }

    /// The same store as one connection sees it, at that connection's base URL.
    pub fn for_connection(&self, connection: &str, base_url: &str) -> Directory {
        Directory {
            db: self.db.clone(),
            base_url: Arc::from(base_url.trim_end_matches('/')),
            connection: Some(Arc::from(connection)),
            delete_guard: None,
        }
    }

    /// This directory, refusing user deletions beyond `per_hour` in any hour (`None`: no
    /// limit).
    pub fn guarding_deletes(mut self, per_hour: Option<u64>) -> Directory {
        self.delete_guard = per_hour;
        self
    }

    /// The connection this directory serves, if one.
    pub fn connection(&self) -> Option<&str> {
        self.connection.as_deref()
    }

    /// The connection each of the given resources belongs to, by id (operators see every
    /// connection's resources, and which one each came from).
    pub fn connections_of(
        &self,
        kind: Kind,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>, IdentityError> {
        Ok(self
            .db
            .read(|c| crate::storage::connections::owners(c, ids, kind == Kind::Group))?)
    }

    /// Whether a resource of `owner` is visible here.
    fn sees(&self, owner: &str) -> bool {
        self.connection.as_deref().is_none_or(|c| c == owner)
    }

    /// The connection a resource created here belongs to.
    fn creating_in(&self) -> String {
        self.connection
            .as_deref()
            .unwrap_or(DEFAULT_CONNECTION)
            .to_string()
    }

    /// Whether the store answers now (`/readyz`).
    pub fn ready(&self) -> Result<(), IdentityError> {
        Ok(self.db.ready()?)
    }

    fn location(&self, endpoint: &str, id: &str) -> String {
        format!("{}{endpoint}/{id}", self.base_url)
    }

    fn meta(
        &self,
        endpoint: &str,
        id: &str,
        version: i64,
        created: Micros,
        last_modified: Micros,
    ) -> Meta {
        Meta {
            created,
            last_modified,
            location: self.location(endpoint, id),
            version,
        }
    }
}

/// A new resource's id: a UUIDv7, which orders by creation time. New rows then land at the
/// end of every index keyed by resource id (users, groups, identity links) instead of on a
/// random page each, which kept a growing directory's inserts reading and writing pages all
/// over its indexes. The time it shows is already in `meta.created`.
fn new_resource_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Stored resource JSON back into a map; the storage layer only ever holds what we wrote.
fn stored_data(data: &str) -> Result<Map<String, Value>, IdentityError> {
    match serde_json::from_str::<Value>(data) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(IdentityError::Corrupt(
            "stored resource is not a JSON object".into(),
        )),
        Err(e) => Err(IdentityError::Corrupt(format!(
            "stored resource is not JSON: {e}"
        ))),
    }
}

fn string_attr(data: &Map<String, Value>, name: &str) -> Option<String> {
    data.get(name).and_then(Value::as_str).map(str::to_string)
}
