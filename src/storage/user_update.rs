//! The statement that overwrites a user's row, in a form diesel's prepared-statement cache
//! keeps. diesel never caches its own UPDATE statements (a changeset may skip columns, so
//! their text can vary), and every PUT and PATCH paid a fresh prepare of this one inside
//! the writer's turn; its text here is one of two fixed ones.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, HasSqlType, Nullable, Text};
use diesel::RunQueryDsl;

use super::Micros;

/// One user's new row.
pub(super) struct UpdateUserRow<'a> {
    pub id: &'a str,
    pub user_name: &'a str,
    pub user_name_key: &'a str,
    pub external_id: &'a Option<String>,
    pub display_name: &'a Option<String>,
    pub active: &'a Option<bool>,
    pub data: &'a str,
    pub version: i64,
    pub now: Micros,
}

impl<'a> UpdateUserRow<'a> {
    /// Every column, the indexed ones (userName, externalId, displayName) included.
    pub fn with_keys(&self) -> Update<'_, 'a, true> {
        Update(self)
    }

    /// The document, `active` and the version only: for a change that leaves the indexed
    /// columns as they are.
    pub fn document_only(&self) -> Update<'_, 'a, false> {
        Update(self)
    }
}

/// `UPDATE scim_users SET … WHERE id = …`, with the indexed columns when `KEYS`.
pub(super) struct Update<'r, 'a, const KEYS: bool>(&'r UpdateUserRow<'a>);

impl<DB, const KEYS: bool> QueryFragment<DB> for Update<'_, '_, KEYS>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<Bool> + HasSqlType<BigInt>,
    str: ToSql<Text, DB>,
    String: ToSql<Text, DB>,
    Option<String>: ToSql<Nullable<Text>, DB>,
    Option<bool>: ToSql<Nullable<Bool>, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        let row = self.0;
        out.push_sql("UPDATE scim_users SET ");
        if KEYS {
            out.push_sql("user_name = ");
            out.push_bind_param::<Text, _>(row.user_name)?;
            out.push_sql(", user_name_key = ");
            out.push_bind_param::<Text, _>(row.user_name_key)?;
            out.push_sql(", external_id = ");
            out.push_bind_param::<Nullable<Text>, _>(row.external_id)?;
            out.push_sql(", external_id_key = ");
            out.push_bind_param::<Nullable<Text>, _>(row.external_id)?;
            out.push_sql(", display_name = ");
            out.push_bind_param::<Nullable<Text>, _>(row.display_name)?;
            out.push_sql(", ");
        }
        out.push_sql("active = ");
        out.push_bind_param::<Nullable<Bool>, _>(row.active)?;
        out.push_sql(", data = ");
        out.push_bind_param::<Text, _>(row.data)?;
        out.push_sql(", version = ");
        out.push_bind_param::<BigInt, _>(&row.version)?;
        out.push_sql(", last_modified = ");
        out.push_bind_param::<BigInt, _>(&row.now)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(row.id)?;
        Ok(())
    }
}

/// Identifies each of the statement's two fixed texts to diesel's prepared-statement cache.
pub(super) struct UpdateId<const KEYS: bool>;

impl<const KEYS: bool> QueryId for Update<'_, '_, KEYS> {
    type QueryId = UpdateId<KEYS>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Conn, const KEYS: bool> RunQueryDsl<Conn> for Update<'_, '_, KEYS> {}
