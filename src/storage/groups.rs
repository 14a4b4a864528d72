//! Group rows and their membership rows (one row per member, never a rewritten list).

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use super::change_log::{self, Operation, ResourceKind};
use super::events::IdentityDetail;
use super::schema::{scim_group_members, scim_groups, scim_users};
use super::{insert_rows, on_backend, DbConnection, Micros, StoreError, WriteTx, BIND_CHUNK};

#[derive(Debug, Clone)]
pub struct GroupRecord {
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub data: String,
    /// The connection it belongs to (set when created, never changed).
    pub connection: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "User",
            MemberKind::Group => "Group",
        }
    }

    fn parse(s: &str) -> MemberKind {
        if s == "Group" {
            MemberKind::Group
        } else {
            MemberKind::User
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberRef {
    pub id: String,
    pub kind: MemberKind,
    /// The label the client gave the member, kept as sent.
    pub display: Option<String>,
}

pub type Member = MemberRef;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = scim_groups)]
pub struct StoredGroup {
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub data: String,
    pub version: i64,
    pub created_at: Micros,
    pub last_modified: Micros,
    /// The connection that created it.
    pub connection: String,
}

impl StoredGroup {
    /// The group a search found, when the search fetched its record.
    pub fn found(row: super::search::FoundRow) -> Option<StoredGroup> {
        let record = row.record?;
        Some(StoredGroup {
            id: row.id,
            display_name: record.name,
            external_id: record.external_id,
            data: record.data,
            version: record.version,
            created_at: row.created_at,
            last_modified: record.last_modified,
            connection: record.connection,
        })
    }
}

/// Group displayName uniqueness is case-insensitive, as directories downstream compare it so.
pub fn display_name_key(display_name: &str) -> String {
    display_name.to_lowercase()
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<StoredGroup>, StoreError> {
    // Built in each arm: the selection is typed by its backend.
    Ok(on_backend!(conn, |c| scim_groups::table
        .find(id)
        .select(StoredGroup::as_select())
        .first(c)
        .optional())?)
}

/// The group to change in this write transaction, its row locked until the transaction ends
/// (PostgreSQL; SQLite's write transaction already excludes other writers), so a
/// read-modify-write never starts from a version another writer is replacing.
pub fn find_for_update(tx: &mut WriteTx<'_>, id: &str) -> Result<Option<StoredGroup>, StoreError> {
    match tx.conn() {
        DbConnection::Postgresql(pg) => Ok(scim_groups::table
            .find(id)
            .select(StoredGroup::as_select())
            .for_update()
            .first(pg)
            .optional()?),
        sqlite => find(sqlite, id),
    }
}

pub fn id_by_display_name(
    conn: &mut DbConnection,
    display_name: &str,
) -> Result<Option<String>, StoreError> {
    Ok(scim_groups::table
        .filter(scim_groups::display_name_key.eq(display_name_key(display_name)))
        .select(scim_groups::id)
        .first(conn)
        .optional()?)
}

pub fn insert(
    tx: &mut WriteTx<'_>,
    record: &GroupRecord,
    members: &[MemberRef],
    actor: &str,
) -> Result<StoredGroup, StoreError> {
    let now = tx.now();
    diesel::insert_into(scim_groups::table)
        .values((
            scim_groups::id.eq(&record.id),
            scim_groups::display_name.eq(&record.display_name),
            scim_groups::display_name_key.eq(display_name_key(&record.display_name)),
            scim_groups::external_id.eq(&record.external_id),
            scim_groups::external_id_key.eq(&record.external_id),
            scim_groups::data.eq(&record.data),
            scim_groups::version.eq(1i64),
            scim_groups::created_at.eq(now),
            scim_groups::last_modified.eq(now),
            scim_groups::connection.eq(&record.connection),
        ))
        .execute(tx.conn())?;
    add_member_rows(tx, &record.id, members)?;
    let mut detail = IdentityDetail::created(&record.data);
    if !members.is_empty() {
        detail.attributes.push("members".into());
    }
    change_log::append(
        tx,
        ResourceKind::Group,
        &record.id,
        &record.connection,
        Operation::Create,
        1,
        actor,
        &detail,
    )?;
    Ok(StoredGroup {
        id: record.id.clone(),
        display_name: record.display_name.clone(),
        external_id: record.external_id.clone(),
        data: record.data.clone(),
        version: 1,
        created_at: now,
        last_modified: now,
        connection: record.connection.clone(),
    })
}

/// What a group's write does to its members.
#[derive(Debug, Clone, Copy)]
pub enum MembersWrite<'a> {
    /// The membership becomes this (PUT): only the rows that differ are added or removed.
    Replaced(&'a [MemberRef]),
    /// The caller changed membership rows in this transaction (PATCH).
    Edited,
    Untouched,
}

/// Overwrites a group's attributes, and writes its members as `members` says.
pub fn update(
    tx: &mut WriteTx<'_>,
    current: &StoredGroup,
    record: &GroupRecord,
    members: MembersWrite<'_>,
    operation: Operation,
    actor: &str,
) -> Result<StoredGroup, StoreError> {
    let now = tx.now();
    let version = current.version + 1;
    diesel::update(scim_groups::table.find(&record.id))
        .set((
            scim_groups::display_name.eq(&record.display_name),
            scim_groups::display_name_key.eq(display_name_key(&record.display_name)),
            scim_groups::external_id.eq(&record.external_id),
            scim_groups::external_id_key.eq(&record.external_id),
            scim_groups::data.eq(&record.data),
            scim_groups::version.eq(version),
            scim_groups::last_modified.eq(now),
        ))
        .execute(tx.conn())?;
    let mut detail = IdentityDetail::between(&current.data, &record.data);
    match members {
        MembersWrite::Replaced(wanted) => {
            set_members(tx, &record.id, wanted)?;
            detail.attributes.push("members".into());
        }
        MembersWrite::Edited => detail.attributes.push("members".into()),
        MembersWrite::Untouched => {}
    }
    detail.attributes.sort();
    change_log::append(
        tx,
        ResourceKind::Group,
        &record.id,
        &current.connection,
        operation,
        version,
        actor,
        &detail,
    )?;
    Ok(StoredGroup {
        id: record.id.clone(),
        display_name: record.display_name.clone(),
        external_id: record.external_id.clone(),
        data: record.data.clone(),
        version,
        created_at: current.created_at,
        last_modified: now,
        connection: current.connection.clone(),
    })
}

/// Makes the membership equal to `wanted`, touching only the rows that differ.
pub fn set_members(
    tx: &mut WriteTx<'_>,
    group_id: &str,
    wanted: &[MemberRef],
) -> Result<(), StoreError> {
    let existing: HashMap<String, Option<String>> = scim_group_members::table
        .filter(scim_group_members::group_id.eq(group_id))
        .select((scim_group_members::member_id, scim_group_members::display))
        .load::<(String, Option<String>)>(tx.conn())?
        .into_iter()
        .collect();
    let wanted_ids: HashSet<&str> = wanted.iter().map(|m| m.id.as_str()).collect();
    let to_remove: Vec<String> = existing
        .keys()
        .filter(|id| !wanted_ids.contains(id.as_str()))
        .cloned()
        .collect();
    let to_add: Vec<MemberRef> = wanted
        .iter()
        .filter(|m| !existing.contains_key(&m.id))
        .cloned()
        .collect();
    remove_member_rows(tx, group_id, &to_remove)?;
    add_member_rows(tx, group_id, &to_add)?;
    for member in wanted {
        if matches!(existing.get(&member.id), Some(old) if *old != member.display) {
            diesel::update(
                scim_group_members::table
                    .filter(scim_group_members::group_id.eq(group_id))
                    .filter(scim_group_members::member_id.eq(&member.id)),
            )
            .set(scim_group_members::display.eq(&member.display))
            .execute(tx.conn())?;
        }
    }
    Ok(())
}

/// Which of `candidates` are members of the group already (an indexed lookup per chunk).
pub fn existing_member_ids(
    conn: &mut DbConnection,
    group_id: &str,
    candidates: &[String],
) -> Result<HashSet<String>, StoreError> {
    let mut found = HashSet::new();
    for chunk in candidates.chunks(BIND_CHUNK) {
        let rows: Vec<String> = scim_group_members::table
            .filter(scim_group_members::group_id.eq(group_id))
            .filter(scim_group_members::member_id.eq_any(chunk))
            .select(scim_group_members::member_id)
            .load(conn)?;
        found.extend(rows);
    }
    Ok(found)
}

pub fn remove_all_member_rows(tx: &mut WriteTx<'_>, group_id: &str) -> Result<(), StoreError> {
    diesel::delete(scim_group_members::table.filter(scim_group_members::group_id.eq(group_id)))
        .execute(tx.conn())?;
    Ok(())
}

/// Inserts membership rows in batches; the caller guarantees they are not present yet.
pub fn add_member_rows(
    tx: &mut WriteTx<'_>,
    group_id: &str,
    members: &[MemberRef],
) -> Result<(), StoreError> {
    for chunk in members.chunks(500) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|m| {
                (
                    scim_group_members::group_id.eq(group_id),
                    scim_group_members::member_id.eq(m.id.as_str()),
                    scim_group_members::member_type.eq(m.kind.as_str()),
                    scim_group_members::display.eq(m.display.as_deref()),
                )
            })
            .collect();
        insert_rows!(tx, scim_group_members::table, rows);
    }
    Ok(())
}

pub fn remove_member_rows(
    tx: &mut WriteTx<'_>,
    group_id: &str,
    member_ids: &[String],
) -> Result<(), StoreError> {
    for chunk in member_ids.chunks(BIND_CHUNK) {
        diesel::delete(
            scim_group_members::table
                .filter(scim_group_members::group_id.eq(group_id))
                .filter(scim_group_members::member_id.eq_any(chunk)),
        )
        .execute(tx.conn())?;
    }
    Ok(())
}

/// Removes a resource being deleted from every group holding it; each such group changes.
pub(super) fn remove_member_everywhere(
    tx: &mut WriteTx<'_>,
    member_id: &str,
    actor: &str,
) -> Result<(), StoreError> {
    let holders: Vec<(String, i64, Option<String>, String)> = scim_group_members::table
        .inner_join(scim_groups::table)
        .filter(scim_group_members::member_id.eq(member_id))
        .select((
            scim_groups::id,
            scim_groups::version,
            scim_groups::external_id,
            scim_groups::connection,
        ))
        .load(tx.conn())?;
    if holders.is_empty() {
        return Ok(());
    }
    diesel::delete(scim_group_members::table.filter(scim_group_members::member_id.eq(member_id)))
        .execute(tx.conn())?;
    let now = tx.now();
    for (group_id, version, external_id, group_connection) in holders {
        diesel::update(scim_groups::table.find(&group_id))
            .set((
                scim_groups::version.eq(version + 1),
                scim_groups::last_modified.eq(now),
            ))
            .execute(tx.conn())?;
        change_log::append(
            tx,
            ResourceKind::Group,
            &group_id,
            &group_connection,
            Operation::Modify,
            version + 1,
            actor,
            &IdentityDetail {
                external_id,
                attributes: vec!["members".into()],
                active: None,
            },
        )?;
    }
    Ok(())
}

pub fn delete(tx: &mut WriteTx<'_>, current: &StoredGroup, actor: &str) -> Result<(), StoreError> {
    remove_member_everywhere(tx, &current.id, actor)?;
    diesel::delete(scim_group_members::table.filter(scim_group_members::group_id.eq(&current.id)))
        .execute(tx.conn())?;
    diesel::delete(scim_groups::table.find(&current.id)).execute(tx.conn())?;
    change_log::append(
        tx,
        ResourceKind::Group,
        &current.id,
        &current.connection,
        Operation::Delete,
        current.version + 1,
        actor,
        &IdentityDetail {
            external_id: current.external_id.clone(),
            ..Default::default()
        },
    )?;
    Ok(())
}

/// How many groups there are.
pub fn count(conn: &mut DbConnection) -> Result<u64, StoreError> {
    let n: i64 = scim_groups::table.count().get_result(conn)?;
    Ok(n as u64)
}

/// Up to `limit` group ids after `after`, in id order (walking every group in pages).
pub fn ids_after(
    conn: &mut DbConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(scim_groups::table
        .filter(scim_groups::id.gt(after))
        .order(scim_groups::id)
        .limit(limit)
        .select(scim_groups::id)
        .load(conn)?)
}

/// Members of each given group, in a stable order.
pub fn members_of(
    conn: &mut DbConnection,
    group_ids: &[String],
) -> Result<HashMap<String, Vec<Member>>, StoreError> {
    let mut result: HashMap<String, Vec<Member>> = HashMap::new();
    for chunk in group_ids.chunks(BIND_CHUNK) {
        let rows: Vec<(String, String, String, Option<String>)> = scim_group_members::table
            .filter(scim_group_members::group_id.eq_any(chunk))
            .order((scim_group_members::group_id, scim_group_members::member_id))
            .select((
                scim_group_members::group_id,
                scim_group_members::member_id,
                scim_group_members::member_type,
                scim_group_members::display,
            ))
            .load(conn)?;
        for (group_id, member_id, kind, display) in rows {
            result.entry(group_id).or_default().push(Member {
                id: member_id,
                kind: MemberKind::parse(&kind),
                display,
            });
        }
    }
    Ok(result)
}

/// Which of the given ids name an existing User or Group, and the connection it belongs to.
pub fn resolve_kinds(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<HashMap<String, (MemberKind, String)>, StoreError> {
    // One id, the common case, is compared as a value: PostgreSQL plans an array parameter
    // anew for each array's size (51 µs of planning per member add), a value once.
    macro_rules! owners {
        ($table:ident, $chunk:expr) => {
            match $chunk {
                [one] => $table::table
                    .filter($table::id.eq(one))
                    .select(($table::id, $table::connection))
                    .load::<(String, String)>(conn)?,
                many => $table::table
                    .filter($table::id.eq_any(many))
                    .select(($table::id, $table::connection))
                    .load::<(String, String)>(conn)?,
            }
        };
    }
    let mut kinds = HashMap::new();
    for chunk in ids.chunks(BIND_CHUNK) {
        kinds.extend(
            owners!(scim_users, chunk)
                .into_iter()
                .map(|(id, owner)| (id, (MemberKind::User, owner))),
        );
        // Ids are unique across users and groups: only those no user has can be groups
        // (most members are users, and then this is one round trip less).
        let rest: Vec<String> = chunk
            .iter()
            .filter(|id| !kinds.contains_key(*id))
            .cloned()
            .collect();
        if rest.is_empty() {
            continue;
        }
        kinds.extend(
            owners!(scim_groups, rest.as_slice())
                .into_iter()
                .map(|(id, owner)| (id, (MemberKind::Group, owner))),
        );
    }
    Ok(kinds)
}
