//! Opaque API tokens: only their SHA-256 hash is stored.

use diesel::prelude::*;

use super::schema::api_tokens;
use super::{DbConnection, Micros, StoreError, WriteTx};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub token_hash: String,
    pub created_at: Micros,
    pub revoked_at: Option<Micros>,
    /// `scim` (identity providers) or an admin-API role.
    pub role: String,
    /// When it stops working (`None`: when it is revoked).
    pub expires_at: Option<Micros>,
    /// When it was last used (recorded at most once a minute per instance).
    pub last_used_at: Option<Micros>,
    /// The connection an identity provider's token serves (`None` for admin tokens).
    pub connection: Option<String>,
}

impl TokenRow {
    /// `active`, `revoked` or `expired`, at `now`.
    pub fn state(&self, now: Micros) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        }
    }
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
            api_tokens::expires_at.eq(row.expires_at),
            api_tokens::connection.eq(&row.connection),
        ))
        .execute(conn)?;
    Ok(())
}

/// The token with this hash if it works at `now`: not revoked, not expired.
pub fn find_active_by_hash(
    conn: &mut DbConnection,
    hash: &str,
    now: Micros,
) -> Result<Option<TokenRow>, StoreError> {
    Ok(api_tokens::table
        .filter(api_tokens::token_hash.eq(hash))
        .filter(api_tokens::revoked_at.is_null())
        .filter(
            api_tokens::expires_at
                .is_null()
                .or(api_tokens::expires_at.gt(now)),
        )
        .select(TokenRow::as_select())
        .first(conn)
        .optional()?)
}

/// Records that the token was used at `now`.
pub fn used(tx: &mut WriteTx<'_>, id: &str) -> Result<(), StoreError> {
    let now = tx.now();
    diesel::update(api_tokens::table.find(id))
        .set(api_tokens::last_used_at.eq(Some(now)))
        .execute(tx.conn())?;
    Ok(())
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
