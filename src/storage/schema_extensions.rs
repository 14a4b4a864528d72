//! Extension schema declarations made through the admin API, stored as JSON.

use diesel::prelude::*;

use super::schema::schema_extensions;
use super::{DbConnection, Micros, StoreError, WriteTx};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = schema_extensions)]
pub struct StoredExtension {
    pub urn: String,
    /// The declaration, as JSON in RFC 7643 §7 form.
    pub declaration: String,
    pub version: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<StoredExtension>, StoreError> {
    Ok(schema_extensions::table
        .order(schema_extensions::created_at.asc())
        .then_order_by(schema_extensions::urn.asc())
        .select(StoredExtension::as_select())
        .load(conn)?)
}

pub fn find(conn: &mut DbConnection, urn: &str) -> Result<Option<StoredExtension>, StoreError> {
    Ok(schema_extensions::table
        .find(urn)
        .select(StoredExtension::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert(tx: &mut WriteTx<'_>, urn: &str, declaration: &str) -> Result<(), StoreError> {
    let now = tx.now();
    diesel::insert_into(schema_extensions::table)
        .values((
            schema_extensions::urn.eq(urn),
            schema_extensions::declaration.eq(declaration),
            schema_extensions::version.eq(1i64),
            schema_extensions::created_at.eq(now),
            schema_extensions::updated_at.eq(now),
        ))
        .execute(tx.conn())?;
    Ok(())
}

/// Replaces a declaration if it is still at `version`; false when it changed or is gone.
pub fn update(
    tx: &mut WriteTx<'_>,
    urn: &str,
    version: i64,
    declaration: &str,
) -> Result<bool, StoreError> {
    let now = tx.now();
    let changed = diesel::update(
        schema_extensions::table
            .filter(schema_extensions::urn.eq(urn))
            .filter(schema_extensions::version.eq(version)),
    )
    .set((
        schema_extensions::declaration.eq(declaration),
        schema_extensions::version.eq(version + 1),
        schema_extensions::updated_at.eq(now),
    ))
    .execute(tx.conn())?;
    Ok(changed == 1)
}

pub fn delete(tx: &mut WriteTx<'_>, urn: &str) -> Result<bool, StoreError> {
    let gone = diesel::delete(schema_extensions::table.find(urn)).execute(tx.conn())?;
    Ok(gone == 1)
}

/// Serializes declaration changes across instances, so each sees the set the last one left.
pub fn lock(tx: &mut WriteTx<'_>) -> Result<(), StoreError> {
    super::advisory::hold_until_commit(tx, super::advisory::key("schema", "extensions"))
}

/// How many resources in `table` hold a value for the extension `urn`.
pub fn carriers(
    conn: &mut DbConnection,
    table: super::query::Table,
    urn: &str,
) -> Result<i64, StoreError> {
    use super::query::{Cond, Expr};
    let present = Cond::Present(Expr::Json(vec![urn.to_string()]));
    let page = super::search::search(
        conn,
        &super::search::PageQuery {
            table,
            cond: &present,
            after: None,
            sort: None,
            offset: 0,
            limit: 0,
            fetch: super::search::Fetch::Ids,
        },
    )?;
    Ok(page.total)
}
