//! Group commit for user changes on PostgreSQL. A PUT or PATCH is computed from a plain read
//! and written only while the user is still at the version it was computed from (see
//! `user_changes`); the writes that arrive while another batch is being written go together,
//! as one statement, so a burst of changes pays the round trip, the statement's start-up and
//! the commit once per batch instead of once per change.
//!
//! Each change keeps its own outcome: written, or not written because the user changed after
//! its read (the caller computes it again). A user appears at most once in a statement; a
//! second change of it waits for the next one, so each statement's version guard sees the
//! version the one before it wrote. A statement that fails (a taken userName fails all of
//! it) is written again one change at a time, so each gets its own answer.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Text};
use diesel::RunQueryDsl;
use tokio::sync::oneshot;

use super::pg_arrays::{array, UserRows};
use super::users::UserRecord;
use super::writer_queue::WriterQueue;
use super::{Db, DbConnection, Micros, StoreError};

/// At most this many changes share a statement.
const MAX_BATCH: usize = 128;

/// How long the writer thread waits for another change before it ends.
const WRITER_IDLE: Duration = Duration::from_millis(500);

/// One change to write: the user's new record, written if the user is still at `was`.
pub struct Change {
    pub record: UserRecord,
    /// The version the change was computed from; it writes `was + 1`.
    pub was: i64,
    pub operation: &'static str,
    pub actor: String,
    pub event_id: String,
    pub event_type: &'static str,
    pub event_data: String,
}

/// What came of one change: when it was written, or `None` when the user was no longer at
/// the version it was computed from (nothing was written).
pub type Written = Result<Option<Micros>, StoreError>;

struct Waiting {
    change: Change,
    answer: oneshot::Sender<(Change, Written)>,
}

/// The user changes of one database waiting to be written; shared by every clone of its
/// [`Db`].
#[derive(Default)]
pub struct ChangeQueue {
    queue: WriterQueue<Waiting>,
}

impl ChangeQueue {
    /// Writes `change` with whatever else is waiting, blocking the calling thread (not for
    /// async code); gives the change back with when it was written (`None`: the user had
    /// changed since the change's read, and nothing was written).
    pub fn write(&self, db: &Db, change: Change) -> Result<(Change, Option<Micros>), StoreError> {
        let (answer, outcome) = oneshot::channel();
        if self.queue.push(Waiting { change, answer }) {
            let writer_db = db.clone();
            let started = std::thread::Builder::new()
                .name("scimgate-user-changes".into())
                .spawn(move || writer_db.user_change_queue().write_until_idle(&writer_db));
            if let Err(e) = started {
                self.fail_all(&format!("could not start the change writer: {e}"));
            }
        }
        let (change, written) = outcome.blocking_recv().map_err(|_| {
            StoreError::Aborted("the change writer stopped before answering".into())
        })?;
        Ok((change, written?))
    }

    /// The writer thread: writes batches in arrival order, answering each change, until none
    /// has come for [`WRITER_IDLE`].
    fn write_until_idle(&self, db: &Db) {
        while let Some(batch) = self.queue.next_batch(MAX_BATCH, WRITER_IDLE) {
            let mut rest = batch;
            while !rest.is_empty() {
                let (now, later) = one_per_user(rest);
                rest = later;
                let changes: Vec<&Change> = now.iter().map(|w| &w.change).collect();
                let outcomes = catch_unwind(AssertUnwindSafe(|| write_batch(db, &changes)))
                    .unwrap_or_else(|_| {
                        changes
                            .iter()
                            .map(|_| Err(StoreError::Aborted("the write panicked".into())))
                            .collect()
                    });
                for (waiting, outcome) in now.into_iter().zip(outcomes) {
                    // A caller that stopped waiting needs no answer; a written change stands.
                    let _ = waiting.answer.send((waiting.change, outcome));
                }
            }
        }
    }

    /// Answers every waiting change with `why` and marks the writer stopped.
    fn fail_all(&self, why: &str) {
        for w in self.queue.abandon() {
            let _ = w
                .answer
                .send((w.change, Err(StoreError::Aborted(why.to_string()))));
        }
    }
}

/// The batch split in two: the first change of each user, in arrival order, and the rest.
fn one_per_user(batch: Vec<Waiting>) -> (Vec<Waiting>, Vec<Waiting>) {
    let mut users = HashSet::with_capacity(batch.len());
    batch
        .into_iter()
        .partition(|w| users.insert(w.change.record.id.clone()))
}

/// Writes changes of distinct users and returns each one's outcome, in order. A failed
/// statement is written again one change at a time.
pub fn write_batch(db: &Db, changes: &[&Change]) -> Vec<Written> {
    match write_together(db, changes) {
        Ok(written) => written,
        Err(error) if changes.len() == 1 => vec![Err(error)],
        // Without a database, one at a time would fail the same way, each after its own wait.
        Err(error) if error.is_unavailable() => changes
            .iter()
            .map(|_| Err(StoreError::Unavailable(error.to_string())))
            .collect(),
        Err(_) => changes
            .iter()
            .map(|change| match write_together(db, &[change]) {
                Ok(mut written) => written.pop().unwrap_or(Ok(None)),
                Err(error) => Err(error),
            })
            .collect(),
    }
}

/// Writes the changes in one statement: each user whose version is still the one its
/// change was computed from, with its change-log entry and its event.
fn write_together(db: &Db, changes: &[&Change]) -> Result<Vec<Written>, StoreError> {
    let now = db.clock().now_micros();
    let statement = ChangedUsers::of(changes, now);
    let written: Vec<String> = db.read(|conn| match conn {
        DbConnection::Postgresql(pg) => Ok(statement.load(pg)?),
        DbConnection::Sqlite(_) => Err(StoreError::Aborted(
            "user changes are written together on PostgreSQL only".into(),
        )),
    })?;
    if !written.is_empty() {
        db.after_commit(&[]);
    }
    let written: HashSet<String> = written.into_iter().collect();
    Ok(changes
        .iter()
        .map(|c| Ok(written.contains(&c.record.id).then_some(now)))
        .collect())
}

/// The users' rows, their change-log entries and their events as one statement, each row
/// updated only at its change's `was` version (the entries are made from the updated rows,
/// so none without one). Its text is the same for any number of changes (they travel as
/// arrays), so each connection prepares it once. Returns the ids of the users written.
struct ChangedUsers<'a> {
    users: UserRows<'a>,
    was: Vec<i64>,
    operations: Vec<&'a str>,
    actors: Vec<&'a str>,
    event_ids: Vec<&'a str>,
    event_types: Vec<&'a str>,
    event_data: Vec<&'a str>,
    now: Micros,
}

impl<'a> ChangedUsers<'a> {
    fn of(changes: &[&'a Change], now: Micros) -> ChangedUsers<'a> {
        let column = |f: fn(&'a Change) -> &'a str| changes.iter().map(|c| f(c)).collect();
        let mut users = UserRows::with_capacity(changes.len());
        for change in changes {
            users.push(&change.record);
        }
        ChangedUsers {
            users,
            was: changes.iter().map(|c| c.was).collect(),
            operations: column(|c| c.operation),
            actors: column(|c| &c.actor),
            event_ids: column(|c| &c.event_id),
            event_types: column(|c| c.event_type),
            event_data: column(|c| &c.event_data),
            now,
        }
    }
}

impl QueryFragment<diesel::pg::Pg> for ChangedUsers<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> diesel::QueryResult<()> {
        let out = &mut out;
        out.push_sql("WITH input AS (SELECT * FROM unnest(");
        self.users.bind(out)?;
        array::<Array<BigInt>, _>(out, &self.was, "bigint[], ")?;
        array::<Array<Text>, _>(out, &self.operations, "text[], ")?;
        array::<Array<Text>, _>(out, &self.actors, "text[], ")?;
        array::<Array<Text>, _>(out, &self.event_ids, "text[], ")?;
        array::<Array<Text>, _>(out, &self.event_types, "text[], ")?;
        array::<Array<Text>, _>(out, &self.event_data, "text[]")?;
        out.push_sql(
            ") WITH ORDINALITY AS i(id, user_name, user_name_key, external_id, display_name, \
             active, data, was, operation, actor, event_id, event_type, event_data, n)), \
             changed AS (UPDATE scim_users AS u SET user_name = i.user_name, \
             user_name_key = i.user_name_key, external_id = i.external_id, \
             external_id_key = i.external_id, display_name = i.display_name, \
             active = i.active, data = i.data, version = i.was + 1, last_modified = ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(
            " FROM input AS i WHERE u.id = i.id AND u.version = i.was \
             RETURNING u.id, u.version, u.connection), \
             logged AS (INSERT INTO change_log (resource_type, resource_id, operation, version, \
             actor, occurred_at, connection) SELECT 'User', c.id, i.operation, c.version, \
             i.actor, ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(
            ", c.connection FROM changed AS c JOIN input AS i ON i.id = c.id ORDER BY i.n), \
             evented AS (INSERT INTO events (id, event_type, resource_type, resource_id, \
             resource_seq, target, actor, occurred_at, data) SELECT i.event_id, i.event_type, \
             'User', c.id, c.version, NULL, i.actor, ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(
            ", i.event_data FROM changed AS c JOIN input AS i ON i.id = c.id ORDER BY i.n) \
             SELECT id FROM changed",
        );
        Ok(())
    }
}

/// Identifies the statement's (fixed) text to diesel's prepared-statement cache.
struct ChangedUsersId;

impl QueryId for ChangedUsers<'_> {
    type QueryId = ChangedUsersId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for ChangedUsers<'_> {
    type SqlType = Text;
}

impl RunQueryDsl<diesel::PgConnection> for ChangedUsers<'_> {}
