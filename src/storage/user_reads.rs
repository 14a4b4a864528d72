//! Reads of single users on PostgreSQL, coalesced: the GETs (by id, or `filter=userName eq`)
//! that arrive while a batch is being read are read together, in one statement, so a burst of
//! GETs pays the round trip and the statement's start-up once per batch instead of once per
//! request. A lone read goes at once, as a batch of one: nothing waits for company.
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

use super::users::{
    find_with_groups, id_by_user_name, memberships_from, select_with_groups, user_name_key,
    DirectGroups, GroupMembership, StoredUser, UserWithGroups,
};
use super::writer_queue::WriterQueue;
use super::{Backend, Db, DbConnection, StoreError};

/// At most this many reads share a statement.
const MAX_BATCH: usize = 128;

/// How long the reader thread waits for another read before it ends.
const READER_IDLE: Duration = Duration::from_millis(500);

/// A user as a GET renders it: its row, and its groups (direct and inherited).
pub type Found = Option<(StoredUser, Vec<GroupMembership>)>;

/// How a read names its user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Id(String),
    /// The userName's key (see `users::user_name_key`): `filter=userName eq "…"`.
    UserName(String),
}

struct Waiting {
    key: Key,
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
    read(db, Key::Id(id)).await
}

/// The user with this userName (compared as `filter=userName eq` compares it) and its
/// groups, read with whatever other reads are waiting.
pub async fn find_by_user_name(db: &Db, user_name: &str) -> Result<Found, StoreError> {
    read(db, Key::UserName(user_name_key(user_name))).await
}

async fn read(db: &Db, key: Key) -> Result<Found, StoreError> {
    if db.backend() != Backend::Postgres {
        let db = db.clone();
        return tokio::task::spawn_blocking(move || db.read(|conn| read_batch(conn, &[key])))
            .await
            .map_err(|e| StoreError::Aborted(format!("the read stopped: {e}")))?
            .map(|mut found| found.pop().flatten());
    }
    let (answer, outcome) = oneshot::channel();
    let queue = db.user_reads();
    if queue.queue.push(Waiting { key, answer }) {
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
            let keys: Vec<Key> = batch.iter().map(|w| w.key.clone()).collect();
            let read = catch_unwind(AssertUnwindSafe(|| db.read(|conn| read_batch(conn, &keys))))
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

/// The users these keys name and their groups, one answer per key, in order.
fn read_batch(conn: &mut DbConnection, keys: &[Key]) -> Result<Vec<Found>, StoreError> {
    let rows: Vec<(StoredUser, DirectGroups)> = match conn {
        DbConnection::Postgresql(pg) => {
            let (mut ids, mut names) = (Vec::new(), Vec::new());
            for key in keys {
                match key {
                    Key::Id(id) => ids.push(id.as_str()),
                    Key::UserName(name) => names.push(name.as_str()),
                }
            }
            UsersByKey { ids, names }
                .load::<UserWithGroups>(pg)?
                .into_iter()
                .map(|row| (row.user, DirectGroups(row.direct_groups)))
                .collect()
        }
        DbConnection::Sqlite(_) => {
            let mut rows = Vec::with_capacity(keys.len());
            for key in keys {
                let id = match key {
                    Key::Id(id) => Some(id.clone()),
                    Key::UserName(name) => id_by_user_name(conn, name)?,
                };
                if let Some(id) = id {
                    rows.extend(find_with_groups(conn, &id)?);
                }
            }
            rows
        }
    };
    let direct: Vec<(String, DirectGroups)> = rows
        .iter()
        .map(|(user, direct)| (user.id.clone(), direct.clone()))
        .collect();
    let mut groups = memberships_from(conn, direct)?;
    // Each user once, found by either key; handed over to the last key asking for it.
    let mut index: HashMap<Key, usize> = HashMap::with_capacity(rows.len() * 2);
    for (at, (user, _)) in rows.iter().enumerate() {
        index.insert(Key::Id(user.id.clone()), at);
        index.insert(Key::UserName(user_name_key(&user.user_name)), at);
    }
    let mut asked = vec![0usize; rows.len()];
    for at in keys.iter().filter_map(|key| index.get(key)) {
        asked[*at] += 1;
    }
    let mut found: Vec<Option<(StoredUser, Vec<GroupMembership>)>> = rows
        .into_iter()
        .map(|(user, _)| {
            let groups = groups.remove(&user.id).unwrap_or_default();
            Some((user, groups))
        })
        .collect();
    Ok(keys
        .iter()
        .map(|key| {
            let at = *index.get(key)?;
            asked[at] -= 1;
            match asked[at] {
                0 => found[at].take(),
                _ => found[at].clone(),
            }
        })
        .collect())
}

/// The users with these ids or userName keys, with their direct groups, as one statement
/// whose text is the same for any number of either (they travel as arrays).
struct UsersByKey<'a> {
    ids: Vec<&'a str>,
    names: Vec<&'a str>,
}

impl QueryFragment<diesel::pg::Pg> for UsersByKey<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> diesel::QueryResult<()> {
        out.push_sql(select_with_groups(Backend::Postgres));
        out.push_sql(" WHERE u.id = ANY(");
        out.push_bind_param::<Array<Text>, _>(&self.ids)?;
        out.push_sql(") OR u.user_name_key = ANY(");
        out.push_bind_param::<Array<Text>, _>(&self.names)?;
        out.push_sql(")");
        Ok(())
    }
}

/// Identifies the statement's (fixed) text to diesel's prepared-statement cache.
struct UsersByKeyId;

impl QueryId for UsersByKey<'_> {
    type QueryId = UsersByKeyId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for UsersByKey<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl RunQueryDsl<diesel::PgConnection> for UsersByKey<'_> {}
