//! Connections: one per upstream identity provider, with its own SCIM endpoint, tokens and
//! settings. The default connection (`/scim/v2`) always exists.

use diesel::prelude::*;

use super::schema::{api_tokens, connections, scim_groups, scim_users};
use super::{DbConnection, Micros, StoreError, WriteTx};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = connections)]
pub struct ConnectionRow {
    pub name: String,
    pub enabled: bool,
    /// Its own settings, as JSON.
    pub settings: String,
    pub version: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
}

pub fn find(conn: &mut DbConnection, name: &str) -> Result<Option<ConnectionRow>, StoreError> {
    Ok(connections::table
        .find(name)
        .select(ConnectionRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<ConnectionRow>, StoreError> {
    Ok(connections::table
        .order(connections::name.asc())
        .select(ConnectionRow::as_select())
        .load(conn)?)
}

/// Adds a connection; `None` when one of that name exists.
pub fn insert(
    tx: &mut WriteTx<'_>,
    name: &str,
    enabled: bool,
    settings: &str,
) -> Result<Option<ConnectionRow>, StoreError> {
    let now = tx.now();
    if find(tx.conn(), name)?.is_some() {
        return Ok(None);
    }
    diesel::insert_into(connections::table)
        .values((
            connections::name.eq(name),
            connections::enabled.eq(enabled),
            connections::settings.eq(settings),
            connections::version.eq(1i64),
            connections::created_at.eq(now),
            connections::updated_at.eq(now),
        ))
        .execute(tx.conn())?;
    find(tx.conn(), name)
}

/// Changes a connection if it is still at `version`; `None` when it changed or is gone.
pub fn update(
    tx: &mut WriteTx<'_>,
    name: &str,
    version: i64,
    enabled: bool,
    settings: &str,
) -> Result<Option<ConnectionRow>, StoreError> {
    let now = tx.now();
    let changed = diesel::update(
        connections::table
            .filter(connections::name.eq(name))
            .filter(connections::version.eq(version)),
    )
    .set((
        connections::enabled.eq(enabled),
        connections::settings.eq(settings),
        connections::version.eq(version + 1),
        connections::updated_at.eq(now),
    ))
    .execute(tx.conn())?;
    if changed == 0 {
        return Ok(None);
    }
    find(tx.conn(), name)
}

/// How many users and groups the connection owns.
pub fn resources(conn: &mut DbConnection, name: &str) -> Result<(i64, i64), StoreError> {
    let users: i64 = scim_users::table
        .filter(scim_users::connection.eq(name))
        .count()
        .get_result(conn)?;
    let groups: i64 = scim_groups::table
        .filter(scim_groups::connection.eq(name))
        .count()
        .get_result(conn)?;
    Ok((users, groups))
}

/// The connection each of the given users (`groups`: groups) belongs to, by id.
pub fn owners(
    conn: &mut DbConnection,
    ids: &[String],
    groups: bool,
) -> Result<std::collections::HashMap<String, String>, StoreError> {
    let mut owners = std::collections::HashMap::new();
    for chunk in ids.chunks(super::BIND_CHUNK) {
        let rows: Vec<(String, String)> = if groups {
            scim_groups::table
                .filter(scim_groups::id.eq_any(chunk))
                .select((scim_groups::id, scim_groups::connection))
                .load(conn)?
        } else {
            scim_users::table
                .filter(scim_users::id.eq_any(chunk))
                .select((scim_users::id, scim_users::connection))
                .load(conn)?
        };
        owners.extend(rows);
    }
    Ok(owners)
}

/// Up to `limit` ids of the connection's users and of its groups.
pub fn resource_ids(
    conn: &mut DbConnection,
    name: &str,
    limit: i64,
) -> Result<(Vec<String>, Vec<String>), StoreError> {
    let users = scim_users::table
        .filter(scim_users::connection.eq(name))
        .select(scim_users::id)
        .limit(limit)
        .load(conn)?;
    let groups = scim_groups::table
        .filter(scim_groups::connection.eq(name))
        .select(scim_groups::id)
        .limit(limit)
        .load(conn)?;
    Ok((users, groups))
}

/// Deletes a connection that owns nothing, revoking its tokens; whether it was there.
pub fn delete(tx: &mut WriteTx<'_>, name: &str) -> Result<bool, StoreError> {
    let now = tx.now();
    diesel::update(
        api_tokens::table
            .filter(api_tokens::connection.eq(name))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Some(now)))
    .execute(tx.conn())?;
    Ok(diesel::delete(connections::table.find(name)).execute(tx.conn())? > 0)
}
