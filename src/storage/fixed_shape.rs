//! Statements whose SQL their Rust type fixes, prepared once per connection.
//!
//! Diesel prepares every UPDATE, upsert and `IN (...)` statement anew on each call, because
//! such builders *can* produce a different text under one type (optional changeset fields, a
//! list's length). A statement on the hot path whose every assignment and condition is always
//! present does not vary: wrapping it here, under a marker type naming the call site, lets
//! the connection's statement cache keep it, and a delivery's outcome stops paying SQLite's
//! parser and planner (a third of recording it). Multi-row INSERTs get the same by going in
//! chunks of a few fixed sizes ([`insert_in_fixed_chunks`]).

use std::marker::PhantomData;

use diesel::backend::Backend as DieselBackend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::QueryResult;

/// `query`, cached under `Site`: one marker type per statement, used nowhere else.
///
/// Only for statements that render one text whatever their values: no optional changeset
/// fields, no `eq_any`, no batch of rows. Two texts under one marker would run the first
/// one's prepared statement with the second one's binds.
pub(crate) struct FixedShape<Site, Q> {
    query: Q,
    site: PhantomData<Site>,
}

impl<Site, Q> FixedShape<Site, Q> {
    pub(crate) fn new(query: Q) -> Self {
        FixedShape {
            query,
            site: PhantomData,
        }
    }
}

impl<Site: 'static, Q> QueryId for FixedShape<Site, Q> {
    type QueryId = Site;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB, Site, Q> QueryFragment<DB> for FixedShape<Site, Q>
where
    DB: DieselBackend,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Site, Q: Query> Query for FixedShape<Site, Q> {
    type SqlType = Q::SqlType;
}

impl<Conn, Site, Q> diesel::RunQueryDsl<Conn> for FixedShape<Site, Q> {}

/// Inserts `rows` (a `Vec` of insertable rows) in fixed-size chunks of 64, 16, 4 and 1 rows.
/// Diesel keeps a fixed-size array's INSERT prepared, its text set by the array's length; a
/// `Vec`'s multi-row INSERT it renders, parses and plans anew on every call, since its text
/// varies with the row count. Batches of outcomes and events pay four shapes, not one per size.
macro_rules! insert_in_fixed_chunks {
    ($tx:expr, $table:expr, $rows:expr) => {{
        let mut rest = $rows;
        while !rest.is_empty() {
            let size = match rest.len() {
                64.. => 64,
                16.. => 16,
                4.. => 4,
                _ => 1,
            };
            let tail = rest.split_off(size);
            let chunk = std::mem::replace(&mut rest, tail);
            $crate::storage::fixed_shape::insert_fixed_chunk!(
                $tx,
                $table,
                chunk,
                size,
                [64, 16, 4, 1]
            );
        }
    }};
}
pub(crate) use insert_in_fixed_chunks;

/// One chunk of [`insert_in_fixed_chunks`] as an array of its size.
macro_rules! insert_fixed_chunk {
    ($tx:expr, $table:expr, $chunk:expr, $size:expr, [$($n:literal),*]) => {
        match $size {
            $($n => match <[_; $n]>::try_from($chunk) {
                Ok(array) => $crate::storage::insert_rows!($tx, $table, array),
                // Never: the chunk was split off at this size. Inserted as it is.
                Err(rows) => $crate::storage::insert_rows!($tx, $table, rows),
            },)*
            _ => $crate::storage::insert_rows!($tx, $table, $chunk),
        }
    };
}
pub(crate) use insert_fixed_chunk;

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{InstrumentationEvent, SimpleConnection};
    use diesel::prelude::*;

    use super::FixedShape;

    diesel::table! {
        tickets (id) {
            id -> BigInt,
            state -> Text,
            note -> Nullable<Text>,
        }
    }

    struct SetState;

    /// Statements the connection put in its cache, by text.
    fn cached_statements(conn: &mut SqliteConnection) -> Arc<Mutex<Vec<String>>> {
        let cached = Arc::new(Mutex::new(Vec::new()));
        let seen = cached.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                seen.lock().expect("cache log").push(sql.to_string());
            }
        });
        cached
    }

    fn set_state(conn: &mut SqliteConnection, id: i64, state: &str, note: Option<&str>) -> String {
        let statement = FixedShape::<SetState, _>::new(
            diesel::update(tickets::table.filter(tickets::id.eq(id)))
                .set((tickets::state.eq(state), tickets::note.eq(note)))
                .returning(tickets::state),
        );
        statement.get_result(conn).expect("update")
    }

    #[test]
    fn a_fixed_update_is_prepared_once_and_runs_with_each_calls_values() {
        let mut conn = SqliteConnection::establish(":memory:").expect("sqlite");
        conn.batch_execute(
            "CREATE TABLE tickets (id BIGINT PRIMARY KEY, state TEXT NOT NULL, note TEXT);
             INSERT INTO tickets (id, state) VALUES (1, 'open'), (2, 'open'), (3, 'open');",
        )
        .expect("schema");
        let cached = cached_statements(&mut conn);

        assert_eq!(set_state(&mut conn, 1, "closed", Some("done")), "closed");
        assert_eq!(set_state(&mut conn, 2, "held", None), "held");
        assert_eq!(set_state(&mut conn, 3, "closed", Some("late")), "closed");

        let rows: Vec<(i64, String, Option<String>)> = tickets::table
            .order(tickets::id)
            .load(&mut conn)
            .expect("rows");
        assert_eq!(
            rows,
            vec![
                (1, "closed".into(), Some("done".into())),
                (2, "held".into(), None),
                (3, "closed".into(), Some("late".into())),
            ]
        );
        let updates: Vec<String> = cached
            .lock()
            .expect("cache log")
            .iter()
            .filter(|sql| sql.starts_with("UPDATE"))
            .cloned()
            .collect();
        assert_eq!(
            updates.len(),
            1,
            "prepared once for three calls: {updates:?}"
        );
    }

    /// What `insert_in_fixed_chunks` needs of a write transaction: its connection.
    struct Tx(crate::storage::DbConnection);

    impl Tx {
        fn conn(&mut self) -> &mut crate::storage::DbConnection {
            &mut self.0
        }
    }

    fn insert_tickets(tx: &mut Tx, ids: std::ops::Range<i64>) -> Result<(), diesel::result::Error> {
        let rows: Vec<_> = ids
            .map(|id| (tickets::id.eq(id), tickets::state.eq(format!("s{id}"))))
            .collect();
        super::insert_in_fixed_chunks!(tx, tickets::table, rows);
        Ok(())
    }

    #[test]
    fn rows_go_in_chunks_of_four_sizes_each_prepared_once() {
        let mut conn = SqliteConnection::establish(":memory:").expect("sqlite");
        conn.batch_execute(
            "CREATE TABLE tickets (id BIGINT PRIMARY KEY, state TEXT NOT NULL, note TEXT);",
        )
        .expect("schema");
        let cached = cached_statements(&mut conn);
        let mut tx = Tx(crate::storage::DbConnection::Sqlite(conn));

        // 149 = 2 x 64 + 16 + 4 + 1: every size; then 70 = 64 + 4 + 1 + 1 again.
        insert_tickets(&mut tx, 0..149).expect("first batch");
        insert_tickets(&mut tx, 149..219).expect("second batch");
        insert_tickets(&mut tx, 219..219).expect("no rows");

        let crate::storage::DbConnection::Sqlite(conn) = tx.conn() else {
            panic!("the test's connection is SQLite")
        };
        let rows: Vec<(i64, String)> = tickets::table
            .select((tickets::id, tickets::state))
            .order(tickets::id)
            .load(conn)
            .expect("rows");
        let expected: Vec<(i64, String)> = (0..219).map(|id| (id, format!("s{id}"))).collect();
        assert_eq!(rows, expected);
        let inserts = cached
            .lock()
            .expect("cache log")
            .iter()
            .filter(|sql| sql.starts_with("INSERT"))
            .count();
        assert_eq!(inserts, 4, "one prepared INSERT per chunk size");
    }

    #[test]
    fn without_the_wrapper_diesel_prepares_an_update_on_every_call() {
        let mut conn = SqliteConnection::establish(":memory:").expect("sqlite");
        conn.batch_execute(
            "CREATE TABLE tickets (id BIGINT PRIMARY KEY, state TEXT NOT NULL, note TEXT);",
        )
        .expect("schema");
        let cached = cached_statements(&mut conn);
        for id in 0..3_i64 {
            diesel::update(tickets::table.filter(tickets::id.eq(id)))
                .set(tickets::state.eq("closed"))
                .execute(&mut conn)
                .expect("update");
        }
        assert!(cached.lock().expect("cache log").is_empty());
    }
}
