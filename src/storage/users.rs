//! User rows, their indexed e-mail values, and the group memberships derived for them.

use std::collections::{HashMap, HashSet, VecDeque};

use diesel::prelude::*;
use serde_json::Value;

use super::change_log::{self, Operation, ResourceKind};
use super::direct_groups::direct_groups_column;
pub use super::direct_groups::DirectGroups;
use super::events::IdentityDetail;
use super::passwords::{self, NewPassword};
use super::schema::{scim_user_emails, scim_users};
use super::statement::{Bind, Statement};
use super::user_update::UpdateUserRow;
use super::{groups, on_backend, Backend, DbConnection, Micros, StoreError, WriteTx, BIND_CHUNK};

/// What the identity layer writes for one user: the canonical JSON plus the columns that are
/// searched on and indexed.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: String,
    pub user_name: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub active: Option<bool>,
    pub data: String,
    pub emails: Vec<EmailKey>,
    /// A password given with this write; `None` keeps the stored one.
    pub password: Option<NewPassword>,
    /// The connection it belongs to (set when created, never changed).
    pub connection: String,
}

#[derive(Debug, Clone)]
pub struct EmailKey {
    pub value: String,
    pub email_type: Option<String>,
    pub primary: bool,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = scim_users)]
pub struct StoredUser {
    pub id: String,
    pub user_name: String,
    pub external_id: Option<String>,
    pub data: String,
    pub version: i64,
    pub created_at: Micros,
    pub last_modified: Micros,
    /// The connection that created it.
    pub connection: String,
}

impl StoredUser {
    /// The row `record` becomes when created at `at`.
    pub(super) fn created(record: UserRecord, at: Micros) -> StoredUser {
        StoredUser {
            id: record.id,
            user_name: record.user_name,
            external_id: record.external_id,
            data: record.data,
            version: 1,
            created_at: at,
            last_modified: at,
            connection: record.connection,
        }
    }

    /// The row `record` becomes when it replaces `current` as `version` at `at`.
    pub(super) fn updated(
        record: &UserRecord,
        current: &StoredUser,
        version: i64,
        at: Micros,
    ) -> StoredUser {
        StoredUser {
            id: record.id.clone(),
            user_name: record.user_name.clone(),
            external_id: record.external_id.clone(),
            data: record.data.clone(),
            version,
            created_at: current.created_at,
            last_modified: at,
            connection: current.connection.clone(),
        }
    }

    /// The user a search found, when the search fetched its record.
    pub fn found(row: super::search::FoundRow) -> Option<StoredUser> {
        let record = row.record?;
        Some(StoredUser {
            id: row.id,
            user_name: record.name,
            external_id: record.external_id,
            data: record.data,
            version: record.version,
            created_at: row.created_at,
            last_modified: record.last_modified,
            connection: record.connection,
        })
    }
}

/// A group a user belongs to, directly or through nested groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembership {
    pub group_id: String,
    pub display_name: String,
    pub direct: bool,
}

/// userName uniqueness is case-insensitive; this is the key the unique index holds.
pub fn user_name_key(user_name: &str) -> String {
    user_name.to_lowercase()
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<StoredUser>, StoreError> {
    // Built in each arm: the selection is typed by its backend.
    Ok(on_backend!(conn, |c| scim_users::table
        .find(id)
        .select(StoredUser::as_select())
        .first(c)
        .optional())?)
}

/// The user to change in this write transaction, its row locked until the transaction ends
/// (PostgreSQL; SQLite's write transaction already excludes other writers), so a
/// read-modify-write never starts from a version another writer is replacing.
pub fn find_for_update(tx: &mut WriteTx<'_>, id: &str) -> Result<Option<StoredUser>, StoreError> {
    match tx.conn() {
        DbConnection::Postgresql(pg) => Ok(scim_users::table
            .find(id)
            .select(StoredUser::as_select())
            .for_update()
            .first(pg)
            .optional()?),
        sqlite => find(sqlite, id),
    }
}

/// The id of the user holding this userName (case-insensitively), if any.
pub fn id_by_user_name(
    conn: &mut DbConnection,
    user_name: &str,
) -> Result<Option<String>, StoreError> {
    Ok(scim_users::table
        .filter(scim_users::user_name_key.eq(user_name_key(user_name)))
        .select(scim_users::id)
        .first(conn)
        .optional()?)
}

/// Inserts a new user with its e-mail rows and change-log entry, in the caller's transaction.
pub fn insert(tx: &mut WriteTx<'_>, record: &UserRecord, actor: &str) -> Result<(), StoreError> {
    let now = tx.now();
    diesel::insert_into(scim_users::table)
        .values((
            scim_users::id.eq(&record.id),
            scim_users::user_name.eq(&record.user_name),
            scim_users::user_name_key.eq(user_name_key(&record.user_name)),
            scim_users::external_id.eq(&record.external_id),
            scim_users::external_id_key.eq(&record.external_id),
            scim_users::display_name.eq(&record.display_name),
            scim_users::active.eq(record.active),
            scim_users::data.eq(&record.data),
            scim_users::version.eq(1i64),
            scim_users::created_at.eq(now),
            scim_users::last_modified.eq(now),
            scim_users::connection.eq(&record.connection),
        ))
        .execute(tx.conn())?;
    insert_emails(tx, &record.id, &record.emails)?;
    if let Some(password) = &record.password {
        passwords::set(tx, &record.id, password)?;
    }
    change_log::append(
        tx,
        ResourceKind::User,
        &record.id,
        &record.connection,
        Operation::Create,
        1,
        actor,
        &IdentityDetail::created(&record.data),
    )?;
    Ok(())
}

/// What a user's write changes besides its row (its e-mail rows, its event's detail), worked
/// out from its stored documents before and after, each parsed once.
#[derive(Debug, Clone)]
pub(super) struct UserDelta {
    pub emails_changed: bool,
    /// Whether a column some index is on changes (userName, externalId, displayName).
    pub keys_changed: bool,
    pub detail: IdentityDetail,
}

impl UserDelta {
    pub fn between(before: &str, after: &str) -> UserDelta {
        let parse = |doc: &str| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(doc).ok()
        };
        match (parse(before), parse(after)) {
            (Some(before), Some(after)) => UserDelta {
                emails_changed: before.get("emails") != after.get("emails"),
                keys_changed: ["userName", "externalId", "displayName"]
                    .iter()
                    .any(|key| before.get(*key) != after.get(*key)),
                detail: IdentityDetail::between_documents(&before, &after),
            },
            // Not an object (never written so): everything is rewritten to be sure.
            _ => UserDelta {
                emails_changed: true,
                keys_changed: true,
                detail: IdentityDetail::between(before, after),
            },
        }
    }
}

/// Overwrites a user's state; the caller has read `current` in this transaction.
pub fn update(
    tx: &mut WriteTx<'_>,
    current: &StoredUser,
    record: &UserRecord,
    operation: Operation,
    actor: &str,
) -> Result<StoredUser, StoreError> {
    let now = tx.now();
    let version = current.version + 1;
    let delta = UserDelta::between(&current.data, &record.data);
    let user_name_key = user_name_key(&record.user_name);
    let row = UpdateUserRow {
        id: &record.id,
        user_name: &record.user_name,
        user_name_key: &user_name_key,
        external_id: &record.external_id,
        display_name: &record.display_name,
        active: &record.active,
        data: &record.data,
        version,
        now,
    };
    // Most changes leave the indexed columns as they were; setting them anyway would
    // rewrite an entry in each of their indexes (a page apiece in SQLite's WAL).
    if delta.keys_changed {
        on_backend!(tx.conn(), |c| row.with_keys().execute(c))?;
    } else {
        on_backend!(tx.conn(), |c| row.document_only().execute(c))?;
    }
    // Most changes leave the e-mails as they were: their rows stay.
    if delta.emails_changed {
        diesel::delete(scim_user_emails::table.filter(scim_user_emails::user_id.eq(&record.id)))
            .execute(tx.conn())?;
        insert_emails(tx, &record.id, &record.emails)?;
    }
    if let Some(password) = &record.password {
        passwords::set(tx, &record.id, password)?;
    }
    change_log::append(
        tx,
        ResourceKind::User,
        &record.id,
        &current.connection,
        operation,
        version,
        actor,
        &delta.detail,
    )?;
    Ok(StoredUser::updated(record, current, version, now))
}

fn insert_emails(
    tx: &mut WriteTx<'_>,
    user_id: &str,
    emails: &[EmailKey],
) -> Result<(), StoreError> {
    if emails.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = emails
        .iter()
        .enumerate()
        .map(|(position, email)| {
            (
                scim_user_emails::user_id.eq(user_id),
                scim_user_emails::position.eq(position as i32),
                scim_user_emails::value_key.eq(email.value.to_lowercase()),
                scim_user_emails::email_type.eq(email.email_type.clone()),
                scim_user_emails::is_primary.eq(email.primary),
            )
        })
        .collect();
    // Row-by-row: MultiBackend has no batch insert, and users carry a handful of e-mails.
    for row in rows {
        diesel::insert_into(scim_user_emails::table)
            .values(row)
            .execute(tx.conn())?;
    }
    Ok(())
}

/// Deletes a user and its memberships; each group it left gets a new version and a log row.
pub fn delete(tx: &mut WriteTx<'_>, current: &StoredUser, actor: &str) -> Result<(), StoreError> {
    groups::remove_member_everywhere(tx, &current.id, actor)?;
    diesel::delete(scim_user_emails::table.filter(scim_user_emails::user_id.eq(&current.id)))
        .execute(tx.conn())?;
    diesel::delete(scim_users::table.find(&current.id)).execute(tx.conn())?;
    change_log::append(
        tx,
        ResourceKind::User,
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

/// How many users there are.
pub fn count(conn: &mut DbConnection) -> Result<u64, StoreError> {
    let n: i64 = scim_users::table.count().get_result(conn)?;
    Ok(n as u64)
}

/// Up to `limit` user ids after `after`, in id order (walking every user in pages).
pub fn ids_after(
    conn: &mut DbConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(scim_users::table
        .filter(scim_users::id.gt(after))
        .order(scim_users::id)
        .limit(limit)
        .select(scim_users::id)
        .load(conn)?)
}

/// Every user's (id, userName, externalId), in no particular order, handed to `each` as the
/// rows stream in: one pass over the table, without an index lookup per row.
pub fn each_name(
    conn: &mut DbConnection,
    mut each: impl FnMut(&str, &str, Option<&str>),
) -> Result<(), StoreError> {
    let rows = scim_users::table
        .select((
            scim_users::id,
            scim_users::user_name,
            scim_users::external_id,
        ))
        .load_iter::<(String, String, Option<String>), diesel::connection::DefaultLoadingMode>(
            conn,
        )?;
    for row in rows {
        let (id, user_name, external_id) = row?;
        each(&id, &user_name, external_id.as_deref());
    }
    Ok(())
}

/// Up to `limit` user rows after id `after`, in id order.
pub fn rows_after(
    conn: &mut DbConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredUser>, StoreError> {
    Ok(scim_users::table
        .filter(scim_users::id.gt(after))
        .order(scim_users::id)
        .limit(limit)
        .select(StoredUser::as_select())
        .load(conn)?)
}

/// A user read with its direct groups (see `direct_groups`).
#[derive(QueryableByName)]
pub(super) struct UserWithGroups {
    #[diesel(embed)]
    pub user: StoredUser,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub direct_groups: Option<String>,
}

/// `SELECT` of [`UserWithGroups`] from `scim_users u`, for a `WHERE` to follow. Written once
/// per backend: reads by id run it on every GET.
pub(super) fn select_with_groups(backend: Backend) -> &'static str {
    static TEXT: [std::sync::OnceLock<String>; 2] =
        [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    let slot = match backend {
        Backend::Sqlite => &TEXT[0],
        Backend::Postgres => &TEXT[1],
    };
    slot.get_or_init(|| {
        format!(
            "SELECT u.id AS id, u.user_name AS user_name, u.external_id AS external_id, \
             u.data AS data, u.version AS version, u.created_at AS created_at, \
             u.last_modified AS last_modified, u.connection AS connection, \
             {} AS direct_groups FROM scim_users u",
            direct_groups_column(backend, "u.id")
        )
    })
}

/// The user with this id and its direct groups, in one statement.
pub fn find_with_groups(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Option<(StoredUser, DirectGroups)>, StoreError> {
    let mut statement = Statement::default();
    statement.push(select_with_groups(Backend::of(conn)));
    statement.push(" WHERE u.id = ");
    statement.bind(Bind::Text(id.to_string()));
    let prepared = statement.prepared();
    let rows = on_backend!(conn, |c| prepared.load::<UserWithGroups>(c))?;
    Ok(rows
        .into_iter()
        .next()
        .map(|row| (row.user, DirectGroups(row.direct_groups))))
}

/// Each user's groups (RFC 7643 §4.1.2) from the direct groups read with it. Only users in a
/// nested group need another statement, one for all of them.
pub fn memberships_from(
    conn: &mut DbConnection,
    found: Vec<(String, DirectGroups)>,
) -> Result<HashMap<String, Vec<GroupMembership>>, StoreError> {
    let mut result = HashMap::with_capacity(found.len());
    let mut nested = Vec::new();
    for (user, DirectGroups(text)) in found {
        let Some(text) = text else { continue };
        let triples: Vec<(String, String, Value)> = serde_json::from_str(&text)
            .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
        // SQLite's EXISTS is 0 or 1, PostgreSQL's a boolean.
        let is_member = |v: &Value| v.as_bool().unwrap_or(false) || v.as_i64().unwrap_or(0) != 0;
        if triples.iter().any(|(_, _, member)| is_member(member)) {
            nested.push(user);
            continue;
        }
        let mut groups: Vec<GroupMembership> = triples
            .into_iter()
            .map(|(group_id, display_name, _)| GroupMembership {
                group_id,
                display_name,
                direct: true,
            })
            .collect();
        if groups.is_empty() {
            continue;
        }
        groups.sort_by(|a, b| a.display_name.cmp(&b.display_name));
        result.insert(user, groups);
    }
    if !nested.is_empty() {
        result.extend(memberships(conn, &nested)?);
    }
    Ok(result)
}

/// The rows with these ids, in the order given (missing ones skipped).
pub fn find_many(conn: &mut DbConnection, ids: &[String]) -> Result<Vec<StoredUser>, StoreError> {
    let mut by_id: HashMap<String, StoredUser> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(BIND_CHUNK) {
        let rows: Vec<StoredUser> = scim_users::table
            .filter(scim_users::id.eq_any(chunk))
            .select(StoredUser::as_select())
            .load(conn)?;
        by_id.extend(rows.into_iter().map(|r| (r.id.clone(), r)));
    }
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// The groups of each given user, direct and inherited through nested groups (RFC 7643 §4.1.2).
pub fn memberships(
    conn: &mut DbConnection,
    user_ids: &[String],
) -> Result<HashMap<String, Vec<GroupMembership>>, StoreError> {
    let users: HashSet<&str> = user_ids.iter().map(String::as_str).collect();
    // parents[g] = the groups holding group g; direct[u] = the groups holding user u.
    let mut direct: HashMap<String, Vec<String>> = HashMap::new();
    let mut parents: HashMap<String, Vec<String>> = HashMap::new();
    let mut names: HashMap<String, String> = HashMap::new();
    for chunk in user_ids.chunks(BIND_CHUNK) {
        for edge in membership_edges(conn, chunk)? {
            let holders = if users.contains(edge.member.as_str()) {
                &mut direct
            } else {
                &mut parents
            };
            holders
                .entry(edge.member)
                .or_default()
                .push(edge.group.clone());
            names.insert(edge.group, edge.display_name);
        }
    }
    if direct.is_empty() {
        return Ok(HashMap::new());
    }

    let mut result = HashMap::new();
    for (user, direct_groups) in direct {
        let mut out: Vec<GroupMembership> = Vec::new();
        let mut included: HashSet<String> = HashSet::new();
        let mut queue: VecDeque<String> = VecDeque::new();
        let membership = |group: &String, direct: bool| GroupMembership {
            group_id: group.clone(),
            display_name: names.get(group).cloned().unwrap_or_default(),
            direct,
        };
        // Direct memberships first, so a group reachable both ways is reported as direct.
        for group in direct_groups {
            if included.insert(group.clone()) {
                out.push(membership(&group, true));
                queue.push_back(group);
            }
        }
        while let Some(group) = queue.pop_front() {
            for parent in parents.get(&group).into_iter().flatten() {
                if included.insert(parent.clone()) {
                    out.push(membership(parent, false));
                    queue.push_back(parent.clone());
                }
            }
        }
        out.sort_by(|a, b| {
            b.direct
                .cmp(&a.direct)
                .then(a.display_name.cmp(&b.display_name))
        });
        result.insert(user, out);
    }
    Ok(result)
}

/// A group holding a member: one of the users asked about, or a group holding them.
#[derive(QueryableByName)]
struct MembershipEdge {
    #[diesel(sql_type = diesel::sql_types::Text)]
    member: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    group: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    display_name: String,
}

/// Every group holding one of `users`, and every group holding those, up the nesting, in
/// one statement: a user in a nested group took three round trips or more (its groups, each
/// level of nesting, their names), and a GET or PATCH paid them on every request. Prepared
/// once per number of users (a GET, a write's answer: one).
fn membership_edges(
    conn: &mut DbConnection,
    users: &[String],
) -> Result<Vec<MembershipEdge>, StoreError> {
    let mut statement = Statement::default();
    statement.push(
        "WITH RECURSIVE holding(member, grp) AS (\
         SELECT member_id, group_id FROM scim_group_members WHERE member_id IN (",
    );
    for (n, user) in users.iter().enumerate() {
        if n > 0 {
            statement.push(", ");
        }
        statement.bind(Bind::Text(user.clone()));
    }
    // UNION, not UNION ALL: a cycle of nested groups yields no new row and ends the walk.
    statement.push(
        ") UNION SELECT m.member_id, m.group_id FROM scim_group_members m \
         JOIN holding h ON m.member_id = h.grp WHERE m.member_type = 'Group') \
         SELECT h.member AS member, h.grp AS \"group\", g.display_name AS display_name \
         FROM holding h JOIN scim_groups g ON g.id = h.grp",
    );
    let prepared = statement.prepared();
    Ok(on_backend!(conn, |c| prepared.load::<MembershipEdge>(c))?)
}
