//! Arrays as statement parameters on PostgreSQL: a batch of rows travels as one array per
//! column, so the statement's text is the same whatever the batch's size.

use diesel::query_builder::AstPass;
use diesel::sql_types::{Array, Bool, Nullable, Text};

use super::users::{user_name_key, UserRecord};

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

/// The columns of user rows as arrays, in the order the create and change statements both
/// send them first: `id, user_name, user_name_key, external_id, display_name, active, data`.
pub(super) struct UserRows<'a> {
    ids: Vec<&'a str>,
    user_names: Vec<&'a str>,
    user_name_keys: Vec<String>,
    external_ids: Vec<Option<&'a str>>,
    display_names: Vec<Option<&'a str>>,
    active: Vec<Option<bool>>,
    data: Vec<&'a str>,
}

impl<'a> UserRows<'a> {
    pub fn with_capacity(rows: usize) -> UserRows<'a> {
        UserRows {
            ids: Vec::with_capacity(rows),
            user_names: Vec::with_capacity(rows),
            user_name_keys: Vec::with_capacity(rows),
            external_ids: Vec::with_capacity(rows),
            display_names: Vec::with_capacity(rows),
            active: Vec::with_capacity(rows),
            data: Vec::with_capacity(rows),
        }
    }

    pub fn push(&mut self, record: &'a UserRecord) {
        self.ids.push(&record.id);
        self.user_names.push(&record.user_name);
        self.user_name_keys.push(user_name_key(&record.user_name));
        self.external_ids.push(record.external_id.as_deref());
        self.display_names.push(record.display_name.as_deref());
        self.active.push(record.active);
        self.data.push(&record.data);
    }

    /// Binds the seven arrays, each cast and followed by a comma.
    pub fn bind<'b>(
        &'b self,
        out: &mut AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> diesel::QueryResult<()> {
        array::<Array<Text>, _>(out, &self.ids, "text[], ")?;
        array::<Array<Text>, _>(out, &self.user_names, "text[], ")?;
        array::<Array<Text>, _>(out, &self.user_name_keys, "text[], ")?;
        array::<Array<Nullable<Text>>, _>(out, &self.external_ids, "text[], ")?;
        array::<Array<Nullable<Text>>, _>(out, &self.display_names, "text[], ")?;
        array::<Array<Nullable<Bool>>, _>(out, &self.active, "boolean[], ")?;
        array::<Array<Text>, _>(out, &self.data, "text[], ")
    }
}
