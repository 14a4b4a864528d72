//! Identity links, the one record of which remote object stands for which local resource on a
//! target: written with an order's outcome or by correlation, read by delivery and reconciliation.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::schema::identity_links;
use super::{on_backend, DbConnection, StoreError, WriteTx, BIND_CHUNK};

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

/// The remote object `source_id` is linked to on `target`, if any.
pub fn link(
    conn: &mut DbConnection,
    target: &str,
    resource_type: &str,
    source_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(identity_links::table
        .find((target, resource_type, source_id))
        .select(identity_links::remote_id)
        .first(conn)
        .optional()?)
}

/// The links of these resources on `target`: local id → remote id.
pub fn links(
    conn: &mut DbConnection,
    target: &str,
    resource_type: &str,
    source_ids: &[String],
) -> Result<HashMap<String, String>, StoreError> {
    let mut out = HashMap::new();
    for chunk in source_ids.chunks(BIND_CHUNK) {
        let rows: Vec<(String, String)> = identity_links::table
            .filter(identity_links::target.eq(target))
            .filter(identity_links::resource_type.eq(resource_type))
            .filter(identity_links::source_id.eq_any(chunk))
            .select((identity_links::source_id, identity_links::remote_id))
            .load(conn)?;
        out.extend(rows);
    }
    Ok(out)
}

/// Links `source_id` to `remote` on `target`, or unlinks it (`None`), in the caller's
/// transaction (an order's outcome, recorded with it).
pub fn set(
    tx: &mut WriteTx<'_>,
    target: &str,
    resource_type: &str,
    source_id: &str,
    remote: Option<&str>,
) -> Result<(), StoreError> {
    diesel::delete(identity_links::table.find((target, resource_type, source_id)))
        .execute(tx.conn())?;
    if let Some(remote) = remote {
        let now = tx.now();
        diesel::insert_into(identity_links::table)
            .values((
                identity_links::target.eq(target),
                identity_links::resource_type.eq(resource_type),
                identity_links::source_id.eq(source_id),
                identity_links::remote_id.eq(remote),
                identity_links::linked_at.eq(now),
            ))
            .execute(tx.conn())?;
    }
    Ok(())
}

/// One link to set (`Some` remote id) or remove (`None`).
#[derive(Debug, Clone, Copy)]
pub struct LinkUpdate<'a> {
    pub target: &'a str,
    pub resource_type: &'a str,
    pub source_id: &'a str,
    pub remote: Option<&'a str>,
}

/// Sets or removes many links, as [`set`] does one by one (the last word on a resource
/// wins): a delete per target and resource type for the links removed, and one upsert of
/// the links that stay (a delivery's new link costs one index write, not a probe and two).
pub fn set_many(tx: &mut WriteTx<'_>, updates: &[LinkUpdate<'_>]) -> Result<(), StoreError> {
    let mut last: HashMap<(&str, &str, &str), Option<&str>> = HashMap::new();
    for u in updates {
        last.insert((u.target, u.resource_type, u.source_id), u.remote);
    }
    let mut removed: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for ((target, kind, source), remote) in &last {
        if remote.is_none() {
            removed.entry((target, kind)).or_default().push(source);
        }
    }
    for ((target, kind), sources) in &removed {
        for chunk in sources.chunks(BIND_CHUNK) {
            diesel::delete(
                identity_links::table
                    .filter(identity_links::target.eq(target))
                    .filter(identity_links::resource_type.eq(kind))
                    .filter(identity_links::source_id.eq_any(chunk)),
            )
            .execute(tx.conn())?;
        }
    }
    let now = tx.now();
    let rows: Vec<_> = last
        .iter()
        .filter_map(|((target, kind, source), remote)| {
            Some((
                identity_links::target.eq(*target),
                identity_links::resource_type.eq(*kind),
                identity_links::source_id.eq(*source),
                identity_links::remote_id.eq((*remote)?),
                identity_links::linked_at.eq(now),
            ))
        })
        .collect();
    // Each backend's own connection: diesel's MultiBackend has no ON CONFLICT.
    for chunk in rows.chunks(BIND_CHUNK / 5) {
        on_backend!(tx.conn(), |c| diesel::insert_into(identity_links::table)
            .values(chunk)
            .on_conflict((
                identity_links::target,
                identity_links::resource_type,
                identity_links::source_id,
            ))
            .do_update()
            .set((
                identity_links::remote_id.eq(excluded(identity_links::remote_id)),
                identity_links::linked_at.eq(excluded(identity_links::linked_at)),
            ))
            .execute(c))?;
    }
    Ok(())
}

/// Removes every link of a deleted target.
pub fn delete_target(tx: &mut WriteTx<'_>, target: &str) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(identity_links::table.filter(identity_links::target.eq(target)))
            .execute(tx.conn())?,
    )
}
