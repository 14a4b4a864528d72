//! Opaque API tokens: only their SHA-256 hash is stored.

use diesel::prelude::*;

use super::schema::api_tokens;
use super::{DbConnection, Micros, StoreError};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub token_hash: String,
    pub created_at: Micros,
    pub revoked_at: Option<Micros>,
    /// `scim` (identity providers) or `admin` (the admin API).
    pub role: String,
}

pub fn insert(conn: &mut DbConnection, row: &TokenRow) -> Result<(), StoreError> {
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(&row.id),
            api_tokens::name.eq(&row.name),
            api_tokens::token_hash.eq(&row.token_hash),
            api_tokens::created_at.eq(row.created_at),
            api_tokens::revoked_at.eq(row.revoked_at),
            api_tokens::role.eq(&row.role),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find_active_by_hash(
    conn: &mut DbConnection,
    hash: &str,
) -> Result<Option<TokenRow>, StoreError> {
    Ok(api_tokens::table
        .filter(api_tokens::token_hash.eq(hash))
        .filter(api_tokens::revoked_at.is_null())
        .select(TokenRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<TokenRow>, StoreError> {
    Ok(api_tokens::table
        .order(api_tokens::created_at.asc())
        .select(TokenRow::as_select())
        .load(conn)?)
}

/// Revokes every active token with this name; returns how many.
pub fn revoke_by_name(
    conn: &mut DbConnection,
    name: &str,
    now: Micros,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        api_tokens::table
            .filter(api_tokens::name.eq(name))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Some(now)))
    .execute(conn)?)
}
