//! PATCHes that only add, or only remove, members of a group, written on PostgreSQL as one
//! statement: the group's new version, the membership rows, the change-log entries and the
//! events, committing by itself.
//!
//! Member adds to one group all change the group's row, so they take turns on its row lock,
//! which a transaction holds until its COMMIT has reached the disk. Written as a locked
//! transaction (BEGIN, the locking read, the member checks, the inserts, the group UPDATE,
//! the change log, the event, COMMIT), each add held the lock for ten round trips: 530-730
//! adds/s on one group, whatever the number of clients. As one statement, 1,300-1,490/s.
//! So edits of one group that arrive while another is being written wait, and are then
//! written together, in one statement (group commit per group): the first edit writes, and
//! whoever arrives meanwhile queues; when the writer is done, the first of those writes
//! everything queued by then, and so on. Edits of different groups never wait for each
//! other. Each edit keeps its own version, change-log entry, event and answer, in arrival
//! order; versions are taken from the row as it is updated, not from an earlier read, so
//! edits never retry on each other. A batch that fails is written again one edit at a time.
//! SQLite, which has no data-modifying statements of this kind, writes member changes in its
//! writer's turn (see `group_commit`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Mutex};

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::RunQueryDsl;
use serde_json::{json, Value};

use super::change_log::Operation;
use super::events::{self, EventType, IdentityDetail};
use super::groups::{MemberRef, StoredGroup};
use super::{Backend, Db, DbConnection, Micros, StoreError};

/// At most this many edits share a statement.
const MAX_BATCH: usize = 128;

/// The members a PATCH adds, or removes.
#[derive(Debug, Clone)]
pub enum MemberEdit {
    /// Checked members; one already in the group stays as it is.
    Add(Vec<MemberRef>),
    /// Member ids; one not in the group is no change.
    Remove(Vec<String>),
}

impl MemberEdit {
    fn adds(&self) -> bool {
        matches!(self, MemberEdit::Add(_))
    }
}

/// Whether this database writes member edits as one statement (see the module docs).
pub fn supported(db: &Db) -> bool {
    db.backend() == Backend::Postgres
}

/// What an edit's writer answers.
type Outcome = Result<Option<StoredGroup>, StoreError>;

/// What a waiting edit is told.
enum Turn {
    Done(Outcome),
    /// Write what is queued for the group now.
    Lead,
}

/// One PATCH's edit, waiting for its group's turn.
struct Waiting {
    edit: MemberEdit,
    actor: String,
    reply: mpsc::SyncSender<Turn>,
}

/// The edits waiting, by group. A group is here while one of its edits is being written.
#[derive(Default)]
pub struct EditQueues {
    groups: Mutex<HashMap<String, VecDeque<Waiting>>>,
}

impl EditQueues {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Waiting>>> {
        // A poisoned lock only means a writer panicked; the queues stay consistent.
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an edit; true when nothing was being written for the group, so the caller
    /// writes now.
    fn enqueue(&self, group_id: &str, waiting: Waiting) -> bool {
        let mut groups = self.lock();
        match groups.get_mut(group_id) {
            Some(queue) => {
                queue.push_back(waiting);
                false
            }
            None => {
                groups.insert(group_id.to_string(), VecDeque::from([waiting]));
                true
            }
        }
    }

    /// Writes the edits queued first for `group` (the caller's among them), answers them,
    /// and hands the next turn to the first edit still waiting.
    fn write_turn(&self, db: &Db, group: &StoredGroup) {
        let batch: Vec<Waiting> = {
            let mut groups = self.lock();
            let Some(queue) = groups.get_mut(&group.id) else {
                return;
            };
            // Adds and removes are written in separate turns, so each applies in order.
            let adds = queue.front().is_some_and(|w| w.edit.adds());
            let run = queue
                .iter()
                .take(MAX_BATCH)
                .take_while(|w| w.edit.adds() == adds)
                .count();
            queue.drain(..run).collect()
        };
        let outcomes = catch_unwind(AssertUnwindSafe(|| write_batch(db, group, &batch)))
            .unwrap_or_else(|_| {
                batch
                    .iter()
                    .map(|_| Err(StoreError::Aborted("the member edit panicked".into())))
                    .collect()
            });
        for (waiting, outcome) in batch.into_iter().zip(outcomes) {
            // The channel holds one message and each caller is sent one at a time.
            let _ = waiting.reply.try_send(Turn::Done(outcome));
        }
        let mut groups = self.lock();
        let Some(queue) = groups.get_mut(&group.id) else {
            return;
        };
        while let Some(next) = queue.front() {
            if next.reply.try_send(Turn::Lead).is_ok() {
                return;
            }
            // Only a caller no longer waiting would refuse its turn; the next one takes it.
            queue.pop_front();
        }
        groups.remove(&group.id);
    }
}

/// Applies `edit` to `group` (as read, its connection known), together with the edits of
/// the same group arriving meanwhile; the group as it is after this edit, or `None` when it
/// no longer exists. Blocking. Only where [`supported`].
pub fn edit(db: &Db, group: &StoredGroup, edit: MemberEdit, actor: &str) -> Outcome {
    let (reply, turns) = mpsc::sync_channel(1);
    let waiting = Waiting {
        edit,
        actor: actor.to_string(),
        reply,
    };
    let mut lead = db.member_edits().enqueue(&group.id, waiting);
    loop {
        if lead {
            db.member_edits().write_turn(db, group);
        }
        match turns.recv() {
            Ok(Turn::Done(outcome)) => return outcome,
            Ok(Turn::Lead) => lead = true,
            Err(_) => return Err(StoreError::Aborted("the member edit was dropped".into())),
        }
    }
}

/// Writes the edits of one group in one statement, each edit's outcome in order; when that
/// fails, each edit alone.
fn write_batch(db: &Db, group: &StoredGroup, batch: &[Waiting]) -> Vec<Outcome> {
    let all: Vec<&Waiting> = batch.iter().collect();
    match write_together(db, group, &all) {
        Ok(written) => written,
        Err(e) if batch.len() == 1 => vec![Err(e)],
        // Without a database, one at a time would fail the same way, each after its own wait.
        Err(e) if e.is_unavailable() => batch
            .iter()
            .map(|_| Err(StoreError::Unavailable(e.to_string())))
            .collect(),
        Err(_) => batch
            .iter()
            .map(|w| {
                write_together(db, group, &[w]).and_then(|mut one| {
                    one.pop()
                        .unwrap_or_else(|| Err(StoreError::Aborted("no outcome".into())))
                })
            })
            .collect(),
    }
}

/// Writes `edits` (all adds or all removes) atomically; each one's outcome, in order.
fn write_together(
    db: &Db,
    group: &StoredGroup,
    edits: &[&Waiting],
) -> Result<Vec<Outcome>, StoreError> {
    let mut added: Vec<Value> = Vec::new();
    let mut removed: Vec<&str> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for waiting in edits {
        match &waiting.edit {
            MemberEdit::Add(members) => {
                for m in members.iter().filter(|m| seen.insert(&m.id)) {
                    added.push(json!({"id": m.id, "kind": m.kind.as_str(), "display": m.display}));
                }
            }
            MemberEdit::Remove(ids) => removed.extend(ids.iter().map(String::as_str)),
        }
    }
    let entries: Vec<Value> = edits
        .iter()
        .enumerate()
        .map(|(n, waiting)| {
            json!({
                "n": n + 1,
                "actor": waiting.actor,
                "event_id": events::new_id(),
                "event_data": event_template(group, &waiting.actor).to_string(),
            })
        })
        .collect();
    let count = edits.len() as i64;
    let statement = EditStatement {
        group_id: &group.id,
        count,
        now: db.clock().now_micros(),
        added: Value::Array(added).to_string(),
        removed: json!(removed).to_string(),
        entries: Value::Array(entries).to_string(),
        event_type: EventType::GroupUpdated.as_str(),
    };
    let rows = db.read(|conn| match conn {
        DbConnection::Postgresql(pg) => Ok(statement.get_results::<StoredGroup>(pg)?),
        DbConnection::Sqlite(_) => Err(StoreError::Aborted(
            "a member edit in one statement is a PostgreSQL statement".into(),
        )),
    })?;
    let Some(last) = rows.into_iter().next() else {
        return Ok(edits.iter().map(|_| Ok(None)).collect());
    };
    db.after_commit(&[]);
    Ok((1..=count)
        .map(|n| {
            Ok(Some(StoredGroup {
                version: last.version - count + n,
                ..last.clone()
            }))
        })
        .collect())
}

/// The event of an edit by `actor`, but for its version and externalId: the row's as
/// updated, which the statement fills in.
fn event_template(group: &StoredGroup, actor: &str) -> Value {
    let mut event = events::identity_event(
        "Group",
        &group.id,
        &group.connection,
        Operation::Modify.as_str(),
        0,
        actor,
        &IdentityDetail {
            external_id: None,
            attributes: vec!["members".into()],
            active: None,
        },
    );
    if let Some(fields) = event.data.as_object_mut() {
        fields.remove("version");
    }
    event.data
}

/// The statement; its text is fixed, so each connection prepares it once. Members and
/// entries travel as JSON rather than arrays: the planner sizes an array parameter from its
/// value, so a plan made for one array was never reused for the next (each execution
/// planned anew, 260 µs), while JSON sets are sized alike whatever they hold.
struct EditStatement<'a> {
    group_id: &'a str,
    /// How many edits: the version goes up by as many.
    count: i64,
    now: Micros,
    /// JSON: `[{"id", "kind", "display"}]`.
    added: String,
    /// JSON: `[id]`.
    removed: String,
    /// JSON, one per edit in order: `[{"n", "actor", "event_id", "event_data"}]`, `n` from 1.
    entries: String,
    event_type: &'static str,
}

impl QueryFragment<diesel::pg::Pg> for EditStatement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> diesel::QueryResult<()> {
        out.push_sql("WITH changed AS (UPDATE scim_groups SET version = version + ");
        out.push_bind_param::<BigInt, _>(&self.count)?;
        out.push_sql(", last_modified = ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.group_id)?;
        out.push_sql(
            " RETURNING id, display_name, external_id, data, version, created_at, \
             last_modified, connection), \
             added AS (INSERT INTO scim_group_members (group_id, member_id, member_type, \
             display) SELECT changed.id, m.id, m.kind, m.display FROM changed, \
             jsonb_to_recordset(",
        );
        out.push_bind_param::<Text, _>(&self.added)?;
        out.push_sql(
            "::jsonb) AS m(id text, kind text, display text) \
             ON CONFLICT (group_id, member_id) DO NOTHING), \
             removed AS (DELETE FROM scim_group_members USING changed \
             WHERE scim_group_members.group_id = changed.id \
             AND scim_group_members.member_id IN (SELECT jsonb_array_elements_text(",
        );
        out.push_bind_param::<Text, _>(&self.removed)?;
        out.push_sql(
            "::jsonb))), \
             entries AS (SELECT e.n, e.actor, e.event_id, e.event_data, \
             changed.version - ",
        );
        out.push_bind_param::<BigInt, _>(&self.count)?;
        out.push_sql(" + e.n AS version FROM changed, jsonb_to_recordset(");
        out.push_bind_param::<Text, _>(&self.entries)?;
        out.push_sql(
            "::jsonb) AS e(n bigint, actor text, event_id text, event_data text)), \
             logged AS (INSERT INTO change_log (resource_type, resource_id, operation, version, \
             actor, occurred_at, connection) SELECT 'Group', changed.id, 'modify', \
             entries.version, entries.actor, changed.last_modified, changed.connection \
             FROM changed, entries ORDER BY entries.n), \
             recorded AS (INSERT INTO events (id, event_type, resource_type, resource_id, \
             resource_seq, target, actor, occurred_at, data) SELECT entries.event_id, ",
        );
        out.push_bind_param::<Text, _>(self.event_type)?;
        out.push_sql(
            ", 'Group', changed.id, entries.version, NULL, entries.actor, \
             changed.last_modified, (entries.event_data::jsonb \
             || jsonb_build_object('version', 'W/\"' || entries.version || '\"') \
             || jsonb_strip_nulls(jsonb_build_object('externalId', changed.external_id)))::text \
             FROM changed, entries ORDER BY entries.n) \
             SELECT id, display_name, external_id, data, version, created_at, last_modified, \
             connection FROM changed",
        );
        Ok(())
    }
}

impl Query for EditStatement<'_> {
    type SqlType = (
        Text,
        Text,
        Nullable<Text>,
        Text,
        BigInt,
        BigInt,
        BigInt,
        Text,
    );
}

/// Identifies the statement's (fixed) text to diesel's prepared-statement cache.
struct EditStatementId;

impl QueryId for EditStatement<'_> {
    type QueryId = EditStatementId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl RunQueryDsl<diesel::PgConnection> for EditStatement<'_> {}
