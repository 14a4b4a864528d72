//! Arrays as statement parameters on PostgreSQL: a batch of rows travels as one array per
//! column, so the statement's text is the same whatever the batch's size.

use diesel::query_builder::AstPass;

/// Binds an array parameter cast to its element type (`cast`, then what follows it), so
/// `unnest` knows its column types.
pub(super) fn array<'b, T, U>(
    out: &mut AstPass<'_, 'b, diesel::pg::Pg>,
    values: &'b U,
    cast: &str,
) -> diesel::QueryResult<()>
where
    diesel::pg::Pg: diesel::sql_types::HasSqlType<T>,
    U: diesel::serialize::ToSql<T, diesel::pg::Pg>,
{
    out.push_bind_param::<T, U>(values)?;
    out.push_sql("::");
    out.push_sql(cast);
    Ok(())
}
