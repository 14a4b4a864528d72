//! Reads of users on PostgreSQL, coalesced: the GETs by id that arrive while a batch is being
//! read are read together, in one statement, and so are the first pages of searches that
//! differ only in the text their filter compares with (`filter=userName eq "…"`, `emails[value
//! eq "…"]`, an indexed extension attribute `eq`): a burst of GETs pays the round trip and the
//! statement's start-up once per batch instead of once per request. A lone read goes at once,
//! as a batch of one: nothing waits for company. Only index seeks come here (the identity
//! layer decides): a batch is read in turn, and a search walking the table would hold up the
//! reads queued behind it.
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

use super::query::{Cond, Table};
use super::search::{self, Fetch, PageQuery, SearchPage};
use super::users::{
    find_with_groups, memberships_from, select_with_groups, DirectGroups, GroupMembership,
    StoredUser, UserWithGroups,
};
use super::writer_queue::WriterQueue;
use super::{Backend, Db, DbConnection, StoreError};

/// At most this many reads share a statement.
const MAX_BATCH: usize = 128;

/// How long the reader thread waits for another read before it ends.
const READER_IDLE: Duration = Duration::from_millis(500);

/// A user as a GET renders it: its row, and its groups (direct and inherited).
pub type Found = Option<(StoredUser, Vec<GroupMembership>)>;

/// The first page of a user search whose filter compares one text, taken out as its probe
/// (see [`Cond::take_probe`]); searches of one shape are read together.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstPage {
    /// The search's condition (scope included), with a [`super::query::Literal::Probe`].
    pub cond: Cond,
    pub probe: String,
    /// The page's size: at least 1.
    pub limit: i64,
    pub with_groups: bool,
}

impl FirstPage {
    /// Whether `other` runs as the same statement (any probe).
    fn same_shape(&self, other: &FirstPage) -> bool {
        self.limit == other.limit
            && self.with_groups == other.with_groups
            && self.cond == other.cond
    }
}

/// A search's first page: the total matching, and the page's users with their groups (empty
/// unless asked for).
#[derive(Debug)]
pub struct FoundPage {
    pub total: i64,
    pub users: Vec<(StoredUser, Vec<GroupMembership>)>,
}

enum Waiting {
    User {
        id: String,
        answer: UserAnswer,
    },
    Page {
        search: FirstPage,
        answer: PageAnswer,
    },
}

impl Waiting {
    /// Answers with the batch's error.
    fn fail(self, error: &StoreError) {
        // A caller that stopped waiting (its client went away) needs no answer.
        match self {
            Waiting::User { answer, .. } => {
                let _ = answer.send(Err(same_error(error)));
            }
            Waiting::Page { answer, .. } => {
                let _ = answer.send(Err(same_error(error)));
            }
        }
    }
}

/// The reads of one database waiting to be made; shared by every clone of its [`Db`].
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
    enqueue(db, Waiting::User { id, answer });
    outcome
        .await
        .unwrap_or_else(|_| Err(StoreError::Aborted("the user reader stopped".into())))
}

/// A user search's first page, read with whatever other reads are waiting (PostgreSQL; on
/// SQLite it is searched alone).
pub async fn first_page(db: &Db, search: FirstPage) -> Result<FoundPage, StoreError> {
    if db.backend() != Backend::Postgres {
        let db = db.clone();
        return tokio::task::spawn_blocking(move || {
            db.read(|conn| read_pages(conn, &search, &[&search.probe]))
                .map(|mut found| found.pop())
        })
        .await
        .map_err(|e| StoreError::Aborted(format!("the search stopped: {e}")))?
        .map(|found| {
            found.unwrap_or(FoundPage {
                total: 0,
                users: Vec::new(),
            })
        });
    }
    let (answer, outcome) = oneshot::channel();
    enqueue(db, Waiting::Page { search, answer });
    outcome
        .await
        .unwrap_or_else(|_| Err(StoreError::Aborted("the user reader stopped".into())))
}

/// Queues a read, starting the reader thread when none is running.
fn enqueue(db: &Db, waiting: Waiting) {
    let queue = db.user_reads();
    if queue.queue.push(waiting) {
        let reader_db = db.clone();
        let started = std::thread::Builder::new()
            .name("scimgate-user-reads".into())
            .spawn(move || reader_db.user_reads().read_until_idle(&reader_db));
        if let Err(e) = started {
            let error = StoreError::Aborted(format!("could not start the user reader: {e}"));
            for waiting in queue.queue.abandon() {
                waiting.fail(&error);
            }
        }
    }
}

type UserAnswer = oneshot::Sender<Result<Found, StoreError>>;
type PageAnswer = oneshot::Sender<Result<FoundPage, StoreError>>;

impl ReadQueue {
    /// The reader thread: reads batches in arrival order, answering each read, until none has
    /// come for [`READER_IDLE`].
    fn read_until_idle(&self, db: &Db) {
        while let Some(batch) = self.queue.next_batch(MAX_BATCH, READER_IDLE) {
            let (mut users, mut pages) = (Vec::new(), Vec::new());
            for waiting in batch {
                match waiting {
                    Waiting::User { id, answer } => users.push((id, answer)),
                    Waiting::Page { search, answer } => pages.push((search, answer)),
                }
            }
            let unavailable = match answer_users(db, users) {
                Some(error) => {
                    for (search, answer) in pages {
                        Waiting::Page { search, answer }.fail(&error);
                    }
                    Some(error)
                }
                None => answer_pages(db, pages),
            };
            if let Some(error) = unavailable {
                // Reads queued meanwhile have waited as long already: answer them now.
                for waiting in self.queue.take_all() {
                    waiting.fail(&error);
                }
            }
        }
    }
}

/// Reads these users in one statement and answers each; the error when the database is
/// unavailable.
fn answer_users(db: &Db, users: Vec<(String, UserAnswer)>) -> Option<StoreError> {
    if users.is_empty() {
        return None;
    }
    let ids: Vec<String> = users.iter().map(|(id, _)| id.clone()).collect();
    match guarded(|| db.read(|conn| read_batch(conn, &ids))) {
        Ok(found) => {
            for ((_, answer), found) in users.into_iter().zip(found) {
                // A caller that stopped waiting (its client went away) needs no answer.
                let _ = answer.send(Ok(found));
            }
            None
        }
        Err(error) => {
            for (id, answer) in users {
                Waiting::User { id, answer }.fail(&error);
            }
            error.is_unavailable().then_some(error)
        }
    }
}

/// Reads these first pages, one statement per shape, and answers each; the error when the
/// database is unavailable (the pages not read yet get it too).
fn answer_pages(db: &Db, mut pages: Vec<(FirstPage, PageAnswer)>) -> Option<StoreError> {
    while let Some((first, _)) = pages.first() {
        let shape = first.clone();
        let (same, rest): (Vec<_>, Vec<_>) =
            pages.into_iter().partition(|(s, _)| s.same_shape(&shape));
        pages = rest;
        let probes: Vec<&str> = same.iter().map(|(s, _)| s.probe.as_str()).collect();
        match guarded(|| db.read(|conn| read_pages(conn, &shape, &probes))) {
            Ok(found) => {
                for ((_, answer), found) in same.into_iter().zip(found) {
                    let _ = answer.send(Ok(found));
                }
            }
            Err(error) => {
                let unavailable = error.is_unavailable();
                let failed = match unavailable {
                    true => same.into_iter().chain(std::mem::take(&mut pages)).collect(),
                    false => same,
                };
                for (search, answer) in failed {
                    Waiting::Page { search, answer }.fail(&error);
                }
                if unavailable {
                    return Some(error);
                }
            }
        }
    }
    None
}

/// Runs a batch's read, a panic turned into an error for the batch's readers.
fn guarded<T>(read: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(read))
        .unwrap_or_else(|_| Err(StoreError::Aborted("the read panicked".into())))
}

/// One batch's error, for each of its reads.
fn same_error(error: &StoreError) -> StoreError {
    if error.is_unavailable() {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Aborted(error.to_string())
    }
}

/// The first pages of searches of `shape`'s shape, one for each probe, in order.
fn read_pages(
    conn: &mut DbConnection,
    shape: &FirstPage,
    probes: &[&str],
) -> Result<Vec<FoundPage>, StoreError> {
    let pages = match conn {
        DbConnection::Postgresql(pg) => search::first_pages(
            pg,
            Table::Users,
            &shape.cond,
            probes,
            shape.limit,
            shape.with_groups,
        )?,
        DbConnection::Sqlite(_) => {
            let mut pages = Vec::with_capacity(probes.len());
            for probe in probes {
                let cond = shape.cond.with_probe(probe);
                let query = PageQuery {
                    table: Table::Users,
                    cond: &cond,
                    after: None,
                    sort: None,
                    offset: 0,
                    limit: shape.limit,
                    fetch: Fetch::records(shape.with_groups),
                };
                pages.push(search::search(conn, &query)?);
            }
            pages
        }
    };
    with_memberships(conn, pages)
}

/// Search pages' users with their groups (direct and inherited).
fn with_memberships(
    conn: &mut DbConnection,
    pages: Vec<SearchPage>,
) -> Result<Vec<FoundPage>, StoreError> {
    let mut found = Vec::with_capacity(pages.len());
    let mut direct = Vec::new();
    for page in pages {
        let mut users = Vec::with_capacity(page.rows.len());
        for mut row in page.rows {
            if let Some(record) = row.record.as_mut() {
                direct.push((row.id.clone(), std::mem::take(&mut record.direct_groups)));
            }
            users.extend(StoredUser::found(row).map(|user| (user, Vec::new())));
        }
        found.push(FoundPage {
            total: page.total,
            users,
        });
    }
    let groups = memberships_from(conn, direct)?;
    for page in &mut found {
        for (user, memberships) in &mut page.users {
            // A user on two pages (two probes finding it) has its groups on each.
            if let Some(known) = groups.get(&user.id) {
                *memberships = known.clone();
            }
        }
    }
    Ok(found)
}

/// The users with these ids and their groups, one answer per id, in order.
fn read_batch(conn: &mut DbConnection, ids: &[String]) -> Result<Vec<Found>, StoreError> {
    let rows: Vec<(StoredUser, DirectGroups)> = match conn {
        DbConnection::Postgresql(pg) => UsersById { ids }
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
    // Each user once, however often asked for; handed over to the last read asking for it.
    let index: HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(at, (user, _))| (user.id.as_str(), at))
        .collect();
    let positions: Vec<Option<usize>> = ids
        .iter()
        .map(|id| index.get(id.as_str()).copied())
        .collect();
    let mut asked = vec![0usize; rows.len()];
    for at in positions.iter().flatten() {
        asked[*at] += 1;
    }
    let mut found: Vec<Option<(StoredUser, Vec<GroupMembership>)>> = rows
        .into_iter()
        .map(|(user, _)| {
            let groups = groups.remove(&user.id).unwrap_or_default();
            Some((user, groups))
        })
        .collect();
    Ok(positions
        .into_iter()
        .map(|at| {
            let at = at?;
            asked[at] -= 1;
            match asked[at] {
                0 => found[at].take(),
                _ => found[at].clone(),
            }
        })
        .collect())
}

/// The users with these ids, with their direct groups, as one statement whose text is the
/// same for any number of them (they travel as an array).
struct UsersById<'a> {
    ids: &'a [String],
}

impl QueryFragment<diesel::pg::Pg> for UsersById<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> diesel::QueryResult<()> {
        out.push_sql(select_with_groups(Backend::Postgres));
        out.push_sql(" WHERE u.id = ANY(");
        out.push_bind_param::<Array<Text>, _>(&self.ids)?;
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
