//! The change log: one row per accepted write, in commit order, for the outbound provisioner.

use diesel::prelude::*;

use super::events::{self, IdentityDetail};
use super::schema::change_log;
use super::{on_backend, DbConnection, Micros, StoreError, WriteTx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Replace,
    Modify,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Replace => "replace",
            Operation::Modify => "modify",
            Operation::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = change_log)]
pub struct ChangeEntry {
    pub seq: i64,
    pub resource_type: String,
    pub resource_id: String,
    pub operation: String,
    pub version: i64,
    pub actor: String,
    pub occurred_at: Micros,
    /// The connection of the resource it changed.
    pub connection: String,
}

/// Logs a change, and records its event, in the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub(super) fn append(
    tx: &mut WriteTx<'_>,
    kind: ResourceKind,
    id: &str,
    connection: &str,
    operation: Operation,
    version: i64,
    actor: &str,
    detail: &IdentityDetail,
) -> Result<(), StoreError> {
    let now = tx.now();
    on_backend!(tx.conn(), |c| diesel::insert_into(change_log::table)
        .values((
            change_log::resource_type.eq(kind.as_str()),
            change_log::resource_id.eq(id),
            change_log::operation.eq(operation.as_str()),
            change_log::version.eq(version),
            change_log::actor.eq(actor),
            change_log::occurred_at.eq(now),
            change_log::connection.eq(connection),
        ))
        .execute(c))?;
    let event = events::identity_event(
        kind.as_str(),
        id,
        connection,
        operation.as_str(),
        version,
        actor,
        detail,
    );
    events::append(tx, &[event])
}

/// How many users the connection deleted since `since` (its inbound mass-delete guard).
pub fn user_deletions_since(
    conn: &mut DbConnection,
    connection: &str,
    since: Micros,
) -> Result<i64, StoreError> {
    Ok(change_log::table
        .filter(change_log::connection.eq(connection))
        .filter(change_log::occurred_at.gt(since))
        .filter(change_log::operation.eq(Operation::Delete.as_str()))
        .filter(change_log::resource_type.eq(ResourceKind::User.as_str()))
        .count()
        .get_result(conn)?)
}

/// Who made each of the changes `seqs` and when, by change number.
pub fn authors(
    conn: &mut DbConnection,
    seqs: &[i64],
) -> Result<std::collections::HashMap<i64, (String, Micros)>, StoreError> {
    if seqs.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(i64, String, Micros)> = change_log::table
        .filter(change_log::seq.eq_any(seqs))
        .select((change_log::seq, change_log::actor, change_log::occurred_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(seq, actor, at)| (seq, (actor, at)))
        .collect())
}

/// Entries after `after_seq`, oldest first.
pub fn since(
    conn: &mut DbConnection,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<ChangeEntry>, StoreError> {
    Ok(change_log::table
        .filter(change_log::seq.gt(after_seq))
        .order(change_log::seq.asc())
        .limit(limit)
        .select(ChangeEntry::as_select())
        .load(conn)?)
}

/// Up to `limit` entries after `after`, stopping before a number that may still be written
/// (see [`super::holes`]): a reader moving its cursor past what it got never misses a change.
pub fn readable_since(
    db: &super::Db,
    after: i64,
    limit: i64,
) -> Result<Vec<ChangeEntry>, StoreError> {
    db.read(|conn| {
        let mut entries = since(conn, after, limit)?;
        let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
        let now = db.clock().now_micros();
        let usable = db
            .holes()
            .readable(conn, super::holes::Log::Changes, after, &seqs, now)?;
        entries.truncate(usable);
        Ok(entries)
    })
}
