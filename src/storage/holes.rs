//! Reading an append-only numbered table (the change log, the event outbox) in number order
//! without ever passing a number that is still being written.
//!
//! PostgreSQL numbers a row when it is inserted, not when its transaction commits, so row 20
//! may still be uncommitted while 21 is visible: a reader that moved its position past 20
//! would lose it for good. A hole in the numbers therefore stops a reader until every
//! transaction running when the hole was first seen has ended; a hole still there then was a
//! rolled-back write, and is passed. Transaction ids are the whole server's, so a session left
//! open elsewhere (an idle `psql` in a transaction) would hold every reader: a hole is passed
//! after [`HOLE_WAIT`] whatever, with a warning, since scimgate's own writes take
//! milliseconds. SQLite writes one transaction at a time, in number order: it has no such
//! holes.
//!
//! A hole is a fact about the table, not about one reader, so the first sighting is shared by
//! every reader of this process (the planner, event fan-out, change-feed requests).

use std::collections::HashMap;
use std::sync::Mutex;

use diesel::prelude::*;

use super::{DbConnection, Micros, StoreError};

/// The longest a reader waits on a hole.
pub const HOLE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The tables read this way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Log {
    Changes,
    Events,
}

/// A hole in a log's numbers, and the transaction horizon it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hole {
    /// `pg_snapshot_xmax` when it was first seen: once every transaction below it has ended,
    /// the hole is final.
    horizon: i64,
    seen_at: Micros,
}

/// The holes this process has seen, by log and first missing number.
#[derive(Debug, Default)]
pub struct Holes {
    seen: Mutex<HashMap<(Log, i64), Hole>>,
}

/// Sightings older than this are forgotten (they were passed long ago, or are seen anew).
const FORGET_AFTER: i64 = 10 * 60 * 1_000_000;

impl Holes {
    /// How many of `seqs` (numbers after `position`, ascending) can be read: up to the first
    /// hole that may still be filled. Always all of them on SQLite.
    pub fn readable(
        &self,
        conn: &mut DbConnection,
        log: Log,
        position: i64,
        seqs: &[i64],
        now: Micros,
    ) -> Result<usize, StoreError> {
        let DbConnection::Postgresql(pg) = conn else {
            return Ok(seqs.len());
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, hole| now - hole.seen_at < FORGET_AFTER);
        // Read lazily and at most once per call: xmax before xmin, so that holes first seen
        // now are settled at once when no transaction was running (the idle case).
        let mut xmax = None;
        let mut xmin = None;
        let mut expected = position + 1;
        for (i, &seq) in seqs.iter().enumerate() {
            if seq != expected {
                let hole = match seen.get(&(log, expected)) {
                    Some(hole) => *hole,
                    None => {
                        let horizon = match xmax {
                            Some(h) => h,
                            None => *xmax.insert(snapshot_bound(pg, "xmax")?),
                        };
                        let hole = Hole {
                            horizon,
                            seen_at: now,
                        };
                        seen.insert((log, expected), hole);
                        hole
                    }
                };
                let waited = now - hole.seen_at > HOLE_WAIT.as_micros() as i64;
                let oldest_running = match xmin {
                    Some(x) => x,
                    None => *xmin.insert(snapshot_bound(pg, "xmin")?),
                };
                if waited {
                    tracing::warn!(
                        ?log,
                        seq = expected,
                        "hole in the numbers passed after a minute: a transaction elsewhere \
                         on the server stayed open"
                    );
                } else if oldest_running < hole.horizon {
                    return Ok(i);
                }
            }
            expected = seq + 1;
        }
        Ok(seqs.len())
    }
}

#[derive(QueryableByName)]
struct Bound {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn snapshot_bound(pg: &mut diesel::PgConnection, which: &str) -> Result<i64, StoreError> {
    let row: Bound = diesel::sql_query(format!(
        "SELECT pg_snapshot_{which}(pg_current_snapshot())::text::bigint AS n"
    ))
    .get_result(pg)?;
    Ok(row.n)
}
