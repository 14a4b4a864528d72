//! A write's request as owned values. Writes on SQLite run on the database's writer thread
//! (see `storage::group_commit`), beyond the borrows of the call that asked for them.

use super::{Directory, IfMatch};
use crate::scim::projection::Projection;

pub(super) struct WriteRequest {
    /// The directory, as the caller's connection sees it.
    pub this: Directory,
    pub id: String,
    pub condition: Option<IfMatch>,
    pub projection: Projection,
    pub actor: String,
}

impl WriteRequest {
    pub fn of(
        this: &Directory,
        id: &str,
        condition: Option<&IfMatch>,
        projection: &Projection,
        actor: &str,
    ) -> WriteRequest {
        WriteRequest {
            this: this.clone(),
            id: id.to_string(),
            condition: condition.cloned(),
            projection: projection.clone(),
            actor: actor.to_string(),
        }
    }
}
