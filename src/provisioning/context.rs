//! What provisioning and reconciliation work with: the identity service (users and groups, as
//! the SCIM layer sees them) and the store of orders, links and runs. The identity service
//! hands out no database handle of its own; the store comes in here, beside it.

use std::ops::Deref;

use crate::identity::Directory;
use crate::storage::Db;

#[derive(Clone)]
pub struct Context {
    directory: Directory,
    db: Db,
}

impl Context {
    pub fn new(directory: Directory, db: Db) -> Context {
        Context { directory, db }
    }

    /// The store of orders, identity links, accounts and sync runs.
    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }
}

/// Reading users and groups is what provisioning does most: the identity service's methods
/// are the context's.
impl Deref for Context {
    type Target = Directory;

    fn deref(&self) -> &Directory {
        &self.directory
    }
}
