//! Identity links in bulk, for reconciliation: every link of a target, and links made by
//! correlation.

use std::collections::HashMap;

use diesel::prelude::*;

use super::schema::identity_links;
use super::{DbConnection, StoreError, WriteTx};

/// Every link of one resource type on a target: local id → remote id.
pub fn all_of(
    conn: &mut DbConnection,
    target: &str,
    resource_type: &str,
) -> Result<HashMap<String, String>, StoreError> {
    let rows: Vec<(String, String)> = identity_links::table
        .filter(identity_links::target.eq(target))
        .filter(identity_links::resource_type.eq(resource_type))
        .select((identity_links::source_id, identity_links::remote_id))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// Links correlated accounts to their identities; a link provisioning recorded meanwhile wins.
pub fn add_missing(
    tx: &mut WriteTx<'_>,
    target: &str,
    resource_type: &str,
    pairs: &[(String, String)],
) -> Result<(), StoreError> {
    let now = tx.now();
    for chunk in pairs.chunks(500) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(source, remote)| {
                (
                    identity_links::target.eq(target),
                    identity_links::resource_type.eq(resource_type),
                    identity_links::source_id.eq(source),
                    identity_links::remote_id.eq(remote),
                    identity_links::linked_at.eq(now),
                )
            })
            .collect();
        match tx.conn() {
            DbConnection::Sqlite(c) => diesel::insert_or_ignore_into(identity_links::table)
                .values(rows)
                .execute(c)?,
            DbConnection::Postgresql(c) => diesel::insert_into(identity_links::table)
                .values(rows)
                .on_conflict_do_nothing()
                .execute(c)?,
        };
    }
    Ok(())
}
