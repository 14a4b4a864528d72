//! Statements the query builder assembles at run time (SCIM filters, sorts, pages), made
//! cacheable by their text. A `sql_query` is parsed and planned by the database on every
//! call; these are prepared once per connection and shape, and a filter asked a thousand
//! times with different values costs one plan. The number of shapes admitted to the cache is
//! capped, so clients inventing filters cannot grow every connection's cache without bound.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, OnceLock};

use diesel::backend::Backend as DieselBackend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, Double, HasSqlType, Text, Untyped};
use diesel::QueryResult;

/// Distinct statement texts admitted to the prepared-statement caches.
const MAX_SHAPES: usize = 512;

/// A bind value.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    Bool(bool),
    Int(i64),
    Float(f64),
}

/// SQL text with its binds; each bind goes at its byte offset in the text.
#[derive(Debug, Default)]
pub(crate) struct Statement {
    text: String,
    binds: Vec<(usize, Bind)>,
}

impl Statement {
    /// The SQL text, binds left out.
    #[cfg(test)]
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn push(&mut self, sql: &str) {
        self.text.push_str(sql);
    }

    pub(crate) fn bind(&mut self, value: Bind) {
        self.binds.push((self.text.len(), value));
    }

    /// The statement, cached by its text when its shape is admitted.
    pub(crate) fn prepared(&self) -> Prepared<'_> {
        Prepared {
            statement: self,
            cacheable: admit(&self.text),
        }
    }
}

fn admit(text: &str) -> bool {
    static ADMITTED: OnceLock<Mutex<HashSet<u64>>> = OnceLock::new();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    let shape = hasher.finish();
    let Ok(mut admitted) = ADMITTED.get_or_init(Default::default).lock() else {
        return false;
    };
    if admitted.contains(&shape) {
        return true;
    }
    admitted.len() < MAX_SHAPES && admitted.insert(shape)
}

/// A [`Statement`] ready to run.
pub(crate) struct Prepared<'a> {
    statement: &'a Statement,
    cacheable: bool,
}

impl<DB> QueryFragment<DB> for Prepared<'_>
where
    DB: DieselBackend
        + HasSqlType<Text>
        + HasSqlType<Bool>
        + HasSqlType<BigInt>
        + HasSqlType<Double>,
    String: ToSql<Text, DB>,
    bool: ToSql<Bool, DB>,
    i64: ToSql<BigInt, DB>,
    f64: ToSql<Double, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cacheable {
            out.unsafe_to_cache_prepared();
        }
        let text = &self.statement.text;
        let mut from = 0;
        for (at, bind) in &self.statement.binds {
            out.push_sql(&text[from..*at]);
            match bind {
                Bind::Text(v) => out.push_bind_param::<Text, _>(v)?,
                Bind::Bool(v) => out.push_bind_param::<Bool, _>(v)?,
                Bind::Int(v) => out.push_bind_param::<BigInt, _>(v)?,
                Bind::Float(v) => out.push_bind_param::<Double, _>(v)?,
            }
            from = *at;
        }
        out.push_sql(&text[from..]);
        Ok(())
    }
}

/// No static id: diesel's cache keys these by their text.
impl QueryId for Prepared<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl<Conn> diesel::RunQueryDsl<Conn> for Prepared<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_take_the_backends_placeholders_where_they_were_bound() {
        let mut statement = Statement::default();
        statement.push("SELECT id FROM scim_users r WHERE r.user_name_key = ");
        statement.bind(Bind::Text("bjensen".into()));
        statement.push(" AND r.active = ");
        statement.bind(Bind::Bool(true));
        statement.push(" LIMIT ");
        statement.bind(Bind::Int(10));
        let prepared = statement.prepared();
        let pg = diesel::debug_query::<diesel::pg::Pg, _>(&prepared).to_string();
        assert!(
            pg.starts_with(
                "SELECT id FROM scim_users r WHERE r.user_name_key = $1 AND r.active = $2 LIMIT $3"
            ),
            "{pg}"
        );
        let sqlite = diesel::debug_query::<diesel::sqlite::Sqlite, _>(&prepared).to_string();
        assert!(
            sqlite.starts_with(
                "SELECT id FROM scim_users r WHERE r.user_name_key = ? AND r.active = ? LIMIT ?"
            ),
            "{sqlite}"
        );
    }

    #[test]
    fn only_so_many_shapes_are_cached() {
        let known = "SELECT 1 -- a shape asked for again and again";
        assert!(admit(known));
        assert!(admit(known), "an admitted shape stays admitted");
        for n in 0..MAX_SHAPES {
            admit(&format!("SELECT {n} -- one of many invented shapes"));
        }
        assert!(!admit("SELECT 'one shape too many'"));
        assert!(admit(known));
    }
}
