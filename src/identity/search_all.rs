//! Root-level search (RFC 7644 §3.4.3, `POST /.search`): Users, then Groups, paged as one
//! list. Each type is paged in the database; only the page's resources are read.

use super::{Directory, IdentityError, Page, Query};
use crate::scim::list::Paging;

impl Directory {
    /// Users and Groups matching `query`, Users first, with the page `paging` takes of them.
    pub fn search_all(&self, query: &Query, paging: Paging) -> Result<Page, IdentityError> {
        let offset = paging.offset().max(0);
        let count = paging.count.max(0);
        let users = self.search_users(&Query {
            paging: Some(Paging {
                start_index: offset + 1,
                count,
            }),
            cursor: None,
            ..query.clone()
        })?;
        // The page continues into Groups where the matching Users end.
        let taken = users.resources.len() as i64;
        let groups = self.search_groups(&Query {
            paging: Some(Paging {
                start_index: (offset - users.total).max(0) + 1,
                count: count - taken,
            }),
            cursor: None,
            ..query.clone()
        })?;
        let mut resources = users.resources;
        resources.extend(groups.resources);
        Ok(Page {
            total: users.total + groups.total,
            resources,
            next_cursor: None,
        })
    }
}
