//! Orders per target and state, kept as orders move, so the console and the metrics read a
//! few rows instead of counting every order. Each committed write that moves orders appends
//! its net changes (`order_tally_changes`, appends only, so writers on several instances never
//! wait for each other on a counter row); every [`FOLD_EVERY`]th such write also folds the
//! changes into `order_tallies`. A read sums both in one statement, so it sees one snapshot.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::observer::OrderMove;
use super::schema::order_tally_changes;
use super::{advisory, DbConnection, Micros, StoreError, WriteTx};

/// How many tallying writes of one process pass between folds.
pub const FOLD_EVERY: u64 = 256;

#[derive(Insertable)]
#[diesel(table_name = order_tally_changes)]
struct Change<'a> {
    target: &'a str,
    state: &'a str,
    delta: i64,
    entered_at: Option<Micros>,
}

/// Appends the net changes of one transaction's moves.
pub(crate) fn record(tx: &mut WriteTx<'_>, moves: &[OrderMove]) -> Result<(), StoreError> {
    // Ordered, so concurrent writers touch rows in the same order.
    let mut net: BTreeMap<(&str, &str), (i64, bool)> = BTreeMap::new();
    for m in moves {
        if m.from.as_deref() == Some(m.to) {
            continue;
        }
        let entered = net.entry((m.target.as_str(), m.to)).or_default();
        entered.0 += 1;
        entered.1 = true;
        if let Some(from) = &m.from {
            net.entry((m.target.as_str(), from.as_str())).or_default().0 -= 1;
        }
    }
    let now = tx.now();
    let rows: Vec<Change<'_>> = net
        .into_iter()
        .filter(|(_, (delta, entered))| *delta != 0 || *entered)
        .map(|((target, state), (delta, entered))| Change {
            target,
            state,
            delta,
            entered_at: entered.then_some(now),
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    super::insert_rows!(tx, order_tally_changes::table, &rows);
    Ok(())
}

/// Folds the changes appended so far into the tallies. On PostgreSQL one instance folds at a
/// time (the others skip), and the changes are deleted and added in one statement, so a
/// change committed meanwhile is neither lost nor counted twice.
pub(crate) fn fold(tx: &mut WriteTx<'_>) -> Result<(), StoreError> {
    match tx.conn() {
        DbConnection::Postgresql(pg) => {
            #[derive(QueryableByName)]
            struct Got {
                #[diesel(sql_type = diesel::sql_types::Bool)]
                locked: bool,
            }
            let got: Got = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
                .bind::<BigInt, _>(advisory::key("order_tallies", "fold"))
                .get_result(pg)?;
            if got.locked {
                diesel::sql_query(
                    "WITH folded AS (DELETE FROM order_tally_changes
                                     RETURNING target, state, delta, entered_at)
                     INSERT INTO order_tallies (target, state, orders, last_entered_at)
                     SELECT target, state, SUM(delta), MAX(entered_at) FROM folded
                     GROUP BY target, state ORDER BY target, state
                     ON CONFLICT (target, state) DO UPDATE SET
                         orders = order_tallies.orders + EXCLUDED.orders,
                         last_entered_at = GREATEST(order_tallies.last_entered_at,
                                                    EXCLUDED.last_entered_at)",
                )
                .execute(pg)?;
            }
        }
        // SQLite has one writer at a time: nothing commits between the two statements.
        DbConnection::Sqlite(lite) => {
            diesel::sql_query(
                "INSERT INTO order_tallies (target, state, orders, last_entered_at)
                 SELECT target, state, SUM(delta), MAX(entered_at) FROM order_tally_changes
                 WHERE true GROUP BY target, state
                 ON CONFLICT (target, state) DO UPDATE SET
                     orders = order_tallies.orders + excluded.orders,
                     last_entered_at = MAX(COALESCE(order_tallies.last_entered_at, 0),
                                           COALESCE(excluded.last_entered_at, 0))",
            )
            .execute(lite)?;
            diesel::sql_query("DELETE FROM order_tally_changes").execute(lite)?;
        }
    }
    Ok(())
}

/// One state's tally for a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub state: String,
    pub orders: i64,
    /// When an order last entered the state.
    pub last_entered_at: Option<Micros>,
}

#[derive(QueryableByName)]
struct TallyRow {
    #[diesel(sql_type = Text)]
    target: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_entered_at: Option<Micros>,
}

const TALLIES: &str = "SELECT target, state, CAST(SUM(n) AS BIGINT) AS orders,
        MAX(at) AS last_entered_at
    FROM (SELECT target, state, orders AS n, last_entered_at AS at FROM order_tallies {where}
          UNION ALL
          SELECT target, state, delta, entered_at FROM order_tally_changes {where}) tallied
    GROUP BY target, state";

fn rows(conn: &mut DbConnection, target: Option<&str>) -> Result<Vec<TallyRow>, StoreError> {
    Ok(match (conn, target) {
        (DbConnection::Postgresql(pg), Some(target)) => {
            diesel::sql_query(TALLIES.replace("{where}", "WHERE target = $1"))
                .bind::<Text, _>(target)
                .load(pg)?
        }
        (DbConnection::Sqlite(lite), Some(target)) => {
            diesel::sql_query(TALLIES.replace("{where}", "WHERE target = ?1"))
                .bind::<Text, _>(target)
                .load(lite)?
        }
        (conn, None) => diesel::sql_query(TALLIES.replace("{where}", "")).load(conn)?,
    })
}

fn tally(row: TallyRow) -> Tally {
    Tally {
        state: row.state,
        orders: row.orders,
        last_entered_at: row.last_entered_at,
    }
}

/// The target's tallies, one per state it has had orders in.
pub fn of_target(conn: &mut DbConnection, target: &str) -> Result<Vec<Tally>, StoreError> {
    Ok(rows(conn, Some(target))?.into_iter().map(tally).collect())
}

/// Every target's tallies.
pub fn all(conn: &mut DbConnection) -> Result<BTreeMap<String, Vec<Tally>>, StoreError> {
    let mut all: BTreeMap<String, Vec<Tally>> = BTreeMap::new();
    for row in rows(conn, None)? {
        all.entry(row.target.clone()).or_default().push(tally(row));
    }
    Ok(all)
}

/// Where the tallies and the orders disagree: (target, state, tallied minus counted). Empty
/// when every move was tallied. One statement, so one snapshot on either backend.
pub fn discrepancies(conn: &mut DbConnection) -> Result<Vec<(String, String, i64)>, StoreError> {
    #[derive(QueryableByName)]
    struct Off {
        #[diesel(sql_type = Text)]
        target: String,
        #[diesel(sql_type = Text)]
        state: String,
        #[diesel(sql_type = BigInt)]
        off: i64,
    }
    let off: Vec<Off> = diesel::sql_query(
        "SELECT target, state, CAST(SUM(n) AS BIGINT) AS off FROM (
             SELECT target, state, -COUNT(*) AS n FROM orders GROUP BY target, state
             UNION ALL SELECT target, state, orders FROM order_tallies
             UNION ALL SELECT target, state, delta FROM order_tally_changes) compared
         GROUP BY target, state HAVING SUM(n) <> 0",
    )
    .load(conn)?;
    Ok(off
        .into_iter()
        .map(|o| (o.target, o.state, o.off))
        .collect())
}
