//! Group commit for user creates: creates that arrive while another batch is being written
//! are written together, in one statement (PostgreSQL) or one transaction (SQLite), so a
//! provisioning burst pays the per-statement and per-commit cost once per batch rather than
//! once per user. A lone create is written at once, as a batch of one: nothing waits for
//! company.
//!
//! One writer thread per database writes the batches; it starts with the first create and
//! ends after a while without any. Callers hand it their create and wait on a one-shot
//! answer: an HTTP handler awaits it without holding a thread, so a create costs one
//! hand-off to the writer per batch and one wake-up per answer, instead of a blocking-pool
//! thread per request parked on a lock.
//!
//! Every create keeps its own outcome. A batch that fails (one taken userName fails the whole
//! statement) is written again one create at a time, so each gets its own answer.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};
use diesel::RunQueryDsl;
use tokio::sync::oneshot;

use super::events::{self, IdentityDetail};
use super::pg_arrays::{array, UserRows};
use super::users::{insert, StoredUser, UserRecord};
use super::writer_queue::WriterQueue;
use super::{Backend, Db, DbConnection, Micros, StoreError};

/// At most this many creates share a statement.
const MAX_BATCH: usize = 128;

/// How long the writer thread waits for another create before it ends.
const WRITER_IDLE: Duration = Duration::from_millis(500);

/// Creates a user with its e-mail rows and change-log row, atomically. Concurrent creates
/// are written together (see `user_creates`): provisioning bursts are insert-bound.
/// Blocking; async code calls [`create_queued`].
pub fn create(db: &Db, record: &UserRecord, actor: &str) -> Result<StoredUser, StoreError> {
    let (record, at) = db.user_creates().create(db, record, actor)?;
    Ok(StoredUser::created(record, at))
}

/// [`create`] for async callers: waits for the create writer without holding a thread.
pub async fn create_queued(
    db: &Db,
    record: UserRecord,
    actor: String,
) -> Result<StoredUser, StoreError> {
    let job = Job { record, actor };
    let (record, at) = db.user_creates().create_async(db, job).await?;
    Ok(StoredUser::created(record, at))
}

/// One create: the user and who asked.
pub struct Job {
    pub record: UserRecord,
    pub actor: String,
}

/// A written create gives back its record with its creation time.
pub type Outcome = Result<(UserRecord, Micros), StoreError>;

struct Waiting {
    job: Job,
    answer: oneshot::Sender<Outcome>,
}

/// The creates of one database waiting to be written; shared by every clone of its [`Db`].
#[derive(Default)]
pub struct CreateQueue {
    queue: WriterQueue<Waiting>,
}

impl CreateQueue {
    /// Queues a create and returns where its outcome will arrive: the record with its
    /// creation time, or why it failed. Starts the writer thread if none is running.
    pub fn submit(&self, db: &Db, job: Job) -> oneshot::Receiver<Outcome> {
        let (answer, outcome) = oneshot::channel();
        if self.queue.push(Waiting { job, answer }) {
            let writer_db = db.clone();
            let started = std::thread::Builder::new()
                .name("scimgate-user-creates".into())
                .spawn(move || writer_db.user_creates().write_until_idle(&writer_db));
            if let Err(e) = started {
                self.fail_all(&format!("could not start the create writer: {e}"));
            }
        }
        outcome
    }

    /// Writes a create and waits for it, blocking the calling thread (not for async code).
    pub fn create(&self, db: &Db, record: &UserRecord, actor: &str) -> Outcome {
        let job = Job {
            record: record.clone(),
            actor: actor.to_string(),
        };
        self.submit(db, job)
            .blocking_recv()
            .unwrap_or_else(|_| Err(writer_gone()))
    }

    /// Writes a create and awaits it.
    pub async fn create_async(&self, db: &Db, job: Job) -> Outcome {
        self.submit(db, job)
            .await
            .unwrap_or_else(|_| Err(writer_gone()))
    }

    /// The writer thread: writes batches in arrival order, answering each create, until no
    /// create has come for [`WRITER_IDLE`].
    fn write_until_idle(&self, db: &Db) {
        while let Some(batch) = self.queue.next_batch(MAX_BATCH, WRITER_IDLE) {
            let (jobs, answers): (Vec<Job>, Vec<oneshot::Sender<Outcome>>) =
                batch.into_iter().map(|w| (w.job, w.answer)).unzip();
            let outcomes = catch_unwind(AssertUnwindSafe(|| write_batch(db, &jobs)))
                .unwrap_or_else(|_| {
                    jobs.iter()
                        .map(|_| Err(StoreError::Aborted("the write panicked".into())))
                        .collect()
                });
            let created = outcomes.iter().filter(|o| o.is_ok()).count();
            db.created_rows().count(db, created as u64);
            let unreachable = outcomes
                .iter()
                .find_map(|o| o.as_ref().err().filter(|e| e.is_unavailable()))
                .map(|e| e.to_string());
            for ((job, answer), outcome) in jobs.into_iter().zip(answers).zip(outcomes) {
                // A caller that stopped waiting (its client went away) needs no answer; the
                // create stands either way.
                let _ = answer.send(outcome.map(|at| (job.record, at)));
            }
            if let Some(why) = unreachable {
                // Creates queued while this batch waited for the database have waited as long
                // already: answer them now (503) rather than make them wait once more.
                self.answer_waiting(&why);
            }
        }
    }

    /// Answers every create waiting now with "database unavailable".
    fn answer_waiting(&self, why: &str) {
        for w in self.queue.take_all() {
            let _ = w.answer.send(Err(StoreError::Unavailable(why.to_string())));
        }
    }

    /// Answers every waiting create with `why` and marks the writer stopped.
    fn fail_all(&self, why: &str) {
        for w in self.queue.abandon() {
            let _ = w.answer.send(Err(StoreError::Aborted(why.to_string())));
        }
    }
}

fn writer_gone() -> StoreError {
    StoreError::Aborted("the create writer stopped before answering".into())
}

/// Writes a batch of creates and returns each one's outcome, in order: its creation time, or
/// why it failed. A failed batch is written again one create at a time.
pub fn write_batch(db: &Db, batch: &[Job]) -> Vec<Result<Micros, StoreError>> {
    let jobs: Vec<&Job> = batch.iter().collect();
    match write_together(db, &jobs) {
        Ok(created) => batch.iter().map(|_| Ok(created)).collect(),
        Err(error) if batch.len() == 1 => vec![Err(error)],
        // Without a database, one at a time would fail the same way, each after its own wait.
        Err(error) if error.is_unavailable() => batch
            .iter()
            .map(|_| Err(StoreError::Unavailable(error.to_string())))
            .collect(),
        Err(_) => batch.iter().map(|job| write_together(db, &[job])).collect(),
    }
}

/// Writes the jobs atomically: all of them, or none.
fn write_together(db: &Db, jobs: &[&Job]) -> Result<Micros, StoreError> {
    // Passwords have their own table, which the one-statement insert leaves out.
    if db.backend() == Backend::Postgres && jobs.iter().all(|job| job.record.password.is_none()) {
        let now = db.clock().now_micros();
        let statement = NewUsers::of(jobs, now);
        let written = db.read(|conn| match conn {
            DbConnection::Postgresql(pg) => statement
                .execute(pg)
                .map(|_| true)
                .map_err(StoreError::from),
            DbConnection::Sqlite(_) => Ok(false),
        })?;
        if written {
            db.committed().notify_waiters();
            return Ok(now);
        }
    }
    db.write(|tx| {
        for job in jobs {
            insert(tx, &job.record, &job.actor)?;
        }
        Ok(tx.now())
    })
}

/// Users with their e-mail rows and change-log entries as one statement. Data-modifying CTEs
/// run as one statement: all rows or none; foreign keys are checked at its end, when the user
/// rows exist. Its text is the same for any number of users (they travel as arrays), so each
/// connection prepares it once.
struct NewUsers<'a> {
    users: UserRows<'a>,
    connections: Vec<&'a str>,
    actors: Vec<&'a str>,
    event_ids: Vec<String>,
    event_data: Vec<String>,
    email_users: Vec<&'a str>,
    email_positions: Vec<i32>,
    email_keys: Vec<String>,
    email_types: Vec<Option<&'a str>>,
    email_primaries: Vec<bool>,
    now: Micros,
}

impl<'a> NewUsers<'a> {
    fn of(jobs: &[&'a Job], now: Micros) -> NewUsers<'a> {
        let mut statement = NewUsers {
            users: UserRows::with_capacity(jobs.len()),
            connections: Vec::with_capacity(jobs.len()),
            actors: Vec::with_capacity(jobs.len()),
            event_ids: Vec::with_capacity(jobs.len()),
            event_data: Vec::with_capacity(jobs.len()),
            email_users: Vec::new(),
            email_positions: Vec::new(),
            email_keys: Vec::new(),
            email_types: Vec::new(),
            email_primaries: Vec::new(),
            now,
        };
        for job in jobs {
            let record = &job.record;
            statement.users.push(record);
            statement.connections.push(&record.connection);
            statement.actors.push(&job.actor);
            let event = events::identity_event(
                "User",
                &record.id,
                &record.connection,
                "create",
                1,
                &job.actor,
                &IdentityDetail::created(&record.data),
            );
            statement.event_ids.push(events::new_id());
            statement.event_data.push(event.data.to_string());
            for (position, email) in record.emails.iter().enumerate() {
                statement.email_users.push(&record.id);
                statement.email_positions.push(position as i32);
                statement.email_keys.push(email.value.to_lowercase());
                statement.email_types.push(email.email_type.as_deref());
                statement.email_primaries.push(email.primary);
            }
        }
        statement
    }
}

impl QueryFragment<diesel::pg::Pg> for NewUsers<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> diesel::QueryResult<()> {
        let out = &mut out;
        out.push_sql("WITH input AS (SELECT * FROM unnest(");
        self.users.bind(out)?;
        array::<Array<Text>, _>(out, &self.connections, "text[], ")?;
        array::<Array<Text>, _>(out, &self.actors, "text[], ")?;
        array::<Array<Text>, _>(out, &self.event_ids, "text[], ")?;
        array::<Array<Text>, _>(out, &self.event_data, "text[]")?;
        out.push_sql(
            ") WITH ORDINALITY AS i(id, user_name, user_name_key, external_id, \
             display_name, active, data, connection, actor, event_id, event_data, n)), \
             new_users AS (INSERT INTO scim_users (id, user_name, user_name_key, external_id, \
             external_id_key, display_name, active, data, connection, version, created_at, \
             last_modified) \
             SELECT id, user_name, user_name_key, external_id, external_id, display_name, \
             active, data, connection, 1, ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(
            " FROM input ORDER BY n), \
             new_emails AS (INSERT INTO scim_user_emails (user_id, position, value_key, \
             email_type, is_primary) SELECT * FROM unnest(",
        );
        array::<Array<Text>, _>(out, &self.email_users, "text[], ")?;
        array::<Array<Integer>, _>(out, &self.email_positions, "integer[], ")?;
        array::<Array<Text>, _>(out, &self.email_keys, "text[], ")?;
        array::<Array<Nullable<Text>>, _>(out, &self.email_types, "text[], ")?;
        array::<Array<Bool>, _>(out, &self.email_primaries, "boolean[]")?;
        out.push_sql(
            ")), new_events AS (INSERT INTO events (id, event_type, resource_type, resource_id, \
             resource_seq, actor, occurred_at, data) SELECT event_id, 'user.created', 'User', id, \
             1, actor, ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(
            ", event_data FROM input ORDER BY n) \
             INSERT INTO change_log (resource_type, resource_id, operation, version, actor, \
             occurred_at, connection) SELECT 'User', id, 'create', 1, actor, ",
        );
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(", connection FROM input ORDER BY n");
        Ok(())
    }
}

/// Identifies the statement's (fixed) text to diesel's prepared-statement cache.
struct NewUsersId;

impl QueryId for NewUsers<'_> {
    type QueryId = NewUsersId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl RunQueryDsl<diesel::PgConnection> for NewUsers<'_> {}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::storage::users::UserRecord;

    fn job(n: usize) -> Job {
        Job {
            record: UserRecord {
                id: format!("id-{n}"),
                user_name: format!("user{n}"),
                external_id: None,
                display_name: None,
                active: Some(true),
                data: format!("{{\"userName\":\"user{n}\"}}"),
                emails: Vec::new(),
                password: None,
                connection: "default".into(),
            },
            actor: "test".into(),
        }
    }

    fn writer_running(db: &Db) -> bool {
        db.user_creates().queue.writer_running()
    }

    /// The writer thread starts with the first create, ends after a quiet spell (so a
    /// dropped database does not keep a thread and its connections), and a create after
    /// that starts a new one; async and blocking callers both get their answers.
    #[test]
    fn the_writer_ends_when_idle_and_starts_again_for_the_next_create() {
        let (_dir, db) = crate::storage::temp_sqlite(2);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");

        let (record, first_at) = runtime
            .block_on(db.user_creates().create_async(&db, job(1)))
            .expect("first create");
        assert_eq!(record.user_name, "user1");
        assert!(writer_running(&db), "the writer waits for more work");

        let deadline = Instant::now() + WRITER_IDLE * 10;
        while writer_running(&db) {
            assert!(Instant::now() < deadline, "the idle writer never ended");
            std::thread::sleep(WRITER_IDLE / 5);
        }

        let (record, second_at) = db
            .user_creates()
            .create(&db, &job(2).record, "test")
            .expect("second create");
        assert_eq!(record.id, "id-2");
        assert!(second_at >= first_at);
        let taken = db.user_creates().create(&db, &job(2).record, "test");
        assert!(taken.is_err_and(|e| e.is_unique_violation()));
        let count = db.read(crate::storage::users::count).expect("count");
        assert_eq!(count, 2);
    }
}
