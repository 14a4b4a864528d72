//! A user's direct groups, read in the statement that reads the user: a GET or a search takes
//! one round trip for a user and its groups, not two.

use super::Backend;

/// A user's direct groups as read with the user, in the same statement: each group's id,
/// its display name, and whether the group is itself a member of a group (then the user's
/// inherited groups take a walk up the nesting). `None` or an empty list when the user is in
/// no group (PostgreSQL aggregates no rows to NULL, SQLite to `[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectGroups(pub Option<String>);

/// The SQL expression of a user's [`DirectGroups`], for the user whose id is `user_id`.
pub fn direct_groups_column(backend: Backend, user_id: &str) -> String {
    let (aggregate, triple, as_text) = match backend {
        Backend::Postgres => ("json_agg", "json_build_array", "::text"),
        Backend::Sqlite => ("json_group_array", "json_array", ""),
    };
    format!(
        "(SELECT {aggregate}({triple}(g.id, g.display_name, EXISTS (SELECT 1 FROM \
         scim_group_members n WHERE n.member_id = g.id AND n.member_type = 'Group'))){as_text} \
         FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id \
         WHERE m.member_id = {user_id})"
    )
}
