//! Reads of single users by id on PostgreSQL, coalesced: the GETs that arrive while a batch
//! is being read are read together, in one statement, so a burst of GETs pays the round trip
//! and the statement's start-up once per batch instead of once per request. A lone read goes
//! at once, as a batch of one: nothing waits for company.
//!
//! One reader thread per database reads the batches; it starts with the first read and ends
//! after a while without any. Callers await a one-shot answer without holding a thread, so a
//! GET costs one hand-off to the reader per batch and one wake-up per answer, where reading on
//! the blocking pool took a thread hand-off and a round trip per request.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, Text};
use diesel::RunQueryDsl;
use tokio::sync::oneshot;

use super::direct_groups::direct_groups_column;
use super::users::{
    find_with_groups, memberships_from, DirectGroups, GroupMembership, StoredUser, UserWithGroups,
};
use super::writer_queue::WriterQueue;
use super::{Backend, Db, DbConnection, StoreError};

/// At most this many reads share a statement.
const MAX_BATCH: usize = 128;

/// How long the reader thread waits for another read before it ends.
const READER_IDLE: Duration = Duration::from_millis(500);

/// A user as a GET renders it: its row, and its groups (direct and inherited).
pub type Found = Option<(StoredUser, Vec<GroupMembership>)>;

struct Waiting {
    id: String,
    answer: oneshot::Sender<Result<Found, StoreError>>,
}

/// The single-user reads of one database waiting to be made; shared by every clone of its
/// [`Db`].
#[derive(Default)]
pub struct ReadQueue {
    queue: WriterQueue<Waiting>,
}

/// The user with this id and its groups, read with whatever other reads are waiting.
/// PostgreSQL only: elsewhere (SQLite reads in the process) it reads the user alone.
pub async fn find_with_memberships(db: &Db, id: String) -> Result<Found, StoreError> {
    if db.backend() != Backend::Postgres {
        let db = db.clone();
        return tokio::task::spawn_blocking(move || db.read(|conn| read_batch(conn, &[id])))
            .await
            .map_err(|e| StoreError::Aborted(format!("the read stopped: {e}")))?
            .map(|mut found| found.pop().flatten());
    }
    let (answer, outcome) = oneshot::channel();
    let queue = db.user_reads();
    if queue.queue.push(Waiting { id, answer }) {
        let reader_db = db.clone();
        let started = std::thread::Builder::new()
            .name("scimgate-user-reads".into())
            .spawn(move || reader_db.user_reads().read_until_idle(&reader_db));
        if let Err(e) = started {
            for w in queue.queue.abandon() {
                let _ = w.answer.send(Err(StoreError::Aborted(format!(
                    "could not start the user reader: {e}"
                ))));
            }
        }
    }
    outcome
        .await
        .unwrap_or_else(|_| Err(StoreError::Aborted("the user reader stopped".into())))
}

impl ReadQueue {
    /// The reader thread: reads batches in arrival order, answering each read, until none has
    /// come for [`READER_IDLE`].
    fn read_until_idle(&self, db: &Db) {
        while let Some(batch) = self.queue.next_batch(MAX_BATCH, READER_IDLE) {
            let ids: Vec<String> = batch.iter().map(|w| w.id.clone()).collect();
            let read = catch_unwind(AssertUnwindSafe(|| db.read(|conn| read_batch(conn, &ids))))
                .unwrap_or_else(|_| Err(StoreError::Aborted("the read panicked".into())));
            match read {
                Ok(found) => {
                    for (waiting, found) in batch.into_iter().zip(found) {
                        // A caller that stopped waiting (its client went away) needs no answer.
                        let _ = waiting.answer.send(Ok(found));
                    }
                }
                Err(error) => {
                    let unavailable = error.is_unavailable();
                    for waiting in batch {
                        let _ = waiting.answer.send(Err(same_error(&error)));
                    }
                    if unavailable {
                        // Reads queued meanwhile have waited as long already: answer them now.
                        for waiting in self.queue.take_all() {
                            let _ = waiting.answer.send(Err(same_error(&error)));
                        }
                    }
                }
            }
        }
    }
}

/// One batch's error, for each of its reads.
fn same_error(error: &StoreError) -> StoreError {
    if error.is_unavailable() {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Aborted(error.to_string())
    }
}

/// The users with these ids and their groups, one answer per id, in order.
fn read_batch(conn: &mut DbConnection, ids: &[String]) -> Result<Vec<Found>, StoreError> {
    let rows: Vec<(StoredUser, DirectGroups)> = match conn {
        DbConnection::Postgresql(pg) => UsersById::new(ids)
            .load::<UserWithGroups>(pg)?
            .into_iter()
            .map(|row| (row.user, DirectGroups(row.direct_groups)))
            .collect(),
        DbConnection::Sqlite(_) => {
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                rows.extend(find_with_groups(conn, id)?);
            }
            rows
        }
    };
    let direct: Vec<(String, DirectGroups)> = rows
        .iter()
        .map(|(user, direct)| (user.id.clone(), direct.clone()))
        .collect();
    let mut groups = memberships_from(conn, direct)?;
    let mut users: HashMap<String, StoredUser> = rows
        .into_iter()
        .map(|(user, _)| (user.id.clone(), user))
        .collect();
    let mut asked: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
    for id in ids {
        *asked.entry(id.as_str()).or_default() += 1;
    }
    Ok(ids
        .iter()
        .map(|id| {
            // An id asked for more than once in a batch is handed over to its last asker.
            let left = asked.get_mut(id.as_str()).map_or(0, |n| {
                *n -= 1;
                *n
            });
            let (user, groups) = match left {
                0 => (users.remove(id), groups.remove(id)),
                _ => (users.get(id).cloned(), groups.get(id).cloned()),
            };
            user.map(|user| (user, groups.unwrap_or_default()))
        })
        .collect())
}

/// The users with these ids and their direct groups, as one statement whose text is the same
/// for any number of ids (they travel as an array).
struct UsersById<'a> {
    ids: &'a [String],
}

impl<'a> UsersById<'a> {
    fn new(ids: &'a [String]) -> UsersById<'a> {
        UsersById { ids }
    }
}

impl QueryFragment<diesel::pg::Pg> for UsersById<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> diesel::QueryResult<()> {
        out.push_sql(&format!(
            "SELECT u.id AS id, u.user_name AS user_name, u.external_id AS external_id, \
             u.data AS data, u.version AS version, u.created_at AS created_at, \
             u.last_modified AS last_modified, u.connection AS connection, \
             {} AS direct_groups FROM scim_users u WHERE u.id = ANY(",
            direct_groups_column(Backend::Postgres, "u.id")
        ));
        out.push_bind_param::<Array<Text>, _>(self.ids)?;
        out.push_sql(")");
        Ok(())
    }
}

/// Identifies the statement's (fixed) text to diesel's prepared-statement cache.
struct UsersByIdId;

impl QueryId for UsersById<'_> {
    type QueryId = UsersByIdId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for UsersById<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl RunQueryDsl<diesel::PgConnection> for UsersById<'_> {}
