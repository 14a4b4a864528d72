//! The Users and Groups service as one interface: each operation takes the resource type and
//! goes to that type's implementation. The SCIM handlers and Bulk speak only this.

use serde_json::{Map, Value};

use super::search::Query;
use super::{Directory, IdentityError, IfMatch, Page, Rendered};
use crate::scim::projection::Projection;
use crate::storage::Backend;

/// The resource types served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    /// The endpoint's name: `Users`, `Groups`.
    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
        }
    }
}

/// How an existing resource is changed: its request body.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// PUT: the body is the resource's new state.
    Replace(&'a Map<String, Value>),
    /// PATCH: the body is a `PatchOp` request.
    Patch(&'a Map<String, Value>),
}

impl Directory {
    /// Creates a resource. Blocking; async callers use [`Directory::create_async`].
    pub fn create(
        &self,
        kind: Kind,
        body: &Map<String, Value>,
        projection: &Projection,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        match kind {
            Kind::User => self.create_user(body, projection, actor),
            Kind::Group => self.create_group(body, projection, actor),
        }
    }

    /// Creates a resource without holding the caller's thread: a user create awaits the
    /// group-commit writer (creates are the bulk of a provisioning burst); a group create runs
    /// on the blocking pool.
    pub async fn create_async(
        &self,
        kind: Kind,
        body: Map<String, Value>,
        projection: Projection,
        actor: String,
    ) -> Result<Rendered, IdentityError> {
        match kind {
            Kind::User => self.create_user_async(&body, &projection, &actor).await,
            Kind::Group => {
                let directory = self.clone();
                tokio::task::spawn_blocking(move || {
                    directory.create_group(&body, &projection, &actor)
                })
                .await
                .map_err(|e| IdentityError::Corrupt(format!("create stopped: {e}")))?
            }
        }
    }

    /// [`Directory::get`] for async callers: users on PostgreSQL are read with the other
    /// GETs waiting; the rest on the blocking pool.
    pub async fn get_async(
        &self,
        kind: Kind,
        id: String,
        projection: Projection,
    ) -> Result<Rendered, IdentityError> {
        match kind {
            Kind::User if self.db.backend() == Backend::Postgres => {
                self.get_user_async(&id, &projection).await
            }
            _ => {
                let directory = self.clone();
                tokio::task::spawn_blocking(move || directory.get(kind, &id, &projection))
                    .await
                    .map_err(|e| IdentityError::Corrupt(format!("read stopped: {e}")))?
            }
        }
    }

    /// [`Directory::search`] for async callers (see [`Directory::search_users_async`]).
    pub async fn search_async(&self, kind: Kind, query: Query) -> Result<Page, IdentityError> {
        match kind {
            Kind::User => self.search_users_async(query).await,
            Kind::Group => {
                let directory = self.clone();
                tokio::task::spawn_blocking(move || directory.search(kind, &query))
                    .await
                    .map_err(|e| IdentityError::Corrupt(format!("search stopped: {e}")))?
            }
        }
    }

    pub fn get(
        &self,
        kind: Kind,
        id: &str,
        projection: &Projection,
    ) -> Result<Rendered, IdentityError> {
        match kind {
            Kind::User => self.get_user(id, projection),
            Kind::Group => self.get_group(id, projection),
        }
    }

    /// Changes an existing resource: PUT (RFC 7644 §3.5.1) or PATCH (§3.5.2).
    pub fn change(
        &self,
        kind: Kind,
        id: &str,
        change: Change<'_>,
        condition: Option<&IfMatch>,
        projection: &Projection,
        actor: &str,
    ) -> Result<Rendered, IdentityError> {
        match (kind, change) {
            (Kind::User, Change::Replace(body)) => {
                self.replace_user(id, body, condition, projection, actor)
            }
            (Kind::User, Change::Patch(body)) => {
                self.patch_user(id, body, condition, projection, actor)
            }
            (Kind::Group, Change::Replace(body)) => {
                self.replace_group(id, body, condition, projection, actor)
            }
            (Kind::Group, Change::Patch(body)) => {
                self.patch_group(id, body, condition, projection, actor)
            }
        }
    }

    pub fn delete(
        &self,
        kind: Kind,
        id: &str,
        condition: Option<&IfMatch>,
        actor: &str,
    ) -> Result<(), IdentityError> {
        match kind {
            Kind::User => self.delete_user(id, condition, actor),
            Kind::Group => self.delete_group(id, condition, actor),
        }
    }

    pub fn search(&self, kind: Kind, query: &Query) -> Result<Page, IdentityError> {
        match kind {
            Kind::User => self.search_users(query),
            Kind::Group => self.search_groups(query),
        }
    }
}
