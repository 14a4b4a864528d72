//! Reads of users on PostgreSQL, coalesced: the GETs by id that arrive while a batch is being
//! read are read together, in one statement, and so are the first pages of searches that
//! differ only in the text their filter compares with (`filter=userName eq "…"`, `emails[value
//! eq "…"]`, an extension attribute `eq`): a burst of GETs pays the round trip and the
//! statement's start-up once per batch instead of once per request. A lone read goes at once,
//! as a batch of one: nothing waits for company.
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
use super::search::{self, Fetch, SearchPage};
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
        key: Key,
        answer: oneshot::Sender<Result<Found, StoreError>>,
    },
    Page {
        search: FirstPage,
        answer: oneshot::Sender<Result<FoundPage, StoreError>>,
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
    enqueue(db, Waiting::User { key, answer });
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
            db.read(|conn| {
                let cond = search.cond.with_probe(&search.probe);
                let page = search::search(
                    conn,
                    Table::Users,
                    &cond,
                    None,
                    None,
                    0,
                    search.limit,
                    fetch_for(search.with_groups),
                )?;
                let mut found = with_memberships(conn, vec![page])?;
                Ok(found.pop().unwrap_or(FoundPage {
                    total: 0,
                    users: Vec::new(),
                }))
            })
        })
        .await
        .map_err(|e| StoreError::Aborted(format!("the search stopped: {e}")))?;
    }
    let (answer, outcome) = oneshot::channel();
    enqueue(db, Waiting::Page { search, answer });
    outcome
        .await
        .unwrap_or_else(|_| Err(StoreError::Aborted("the user reader stopped".into())))
}

fn fetch_for(with_groups: bool) -> Fetch {
    match with_groups {
        true => Fetch::RecordsWithGroups,
        false => Fetch::Records,
    }
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

impl ReadQueue {
    /// The reader thread: reads batches in arrival order, answering each read, until none has
    /// come for [`READER_IDLE`].
    fn read_until_idle(&self, db: &Db) {
        while let Some(batch) = self.queue.next_batch(MAX_BATCH, READER_IDLE) {
            let (mut users, mut pages) = (Vec::new(), Vec::new());
            for waiting in batch {
                match waiting {
                    Waiting::User { key, answer } => users.push((key, answer)),
                    Waiting::Page { search, answer } => pages.push((search, answer)),
                }
            }
            let mut unavailable = false;
            if !users.is_empty() {
                let keys: Vec<Key> = users.iter().map(|(key, _)| key.clone()).collect();
                match guarded(|| db.read(|conn| read_batch(conn, &keys))) {
                    Ok(found) => {
                        for ((_, answer), found) in users.into_iter().zip(found) {
                            let _ = answer.send(Ok(found));
                        }
                    }
                    Err(error) => {
                        unavailable |= error.is_unavailable();
                        for (key, answer) in users {
                            Waiting::User { key, answer }.fail(&error);
                        }
                    }
                }
            }
            while let Some((first, _)) = pages.first() {
                // The searches of the first one's shape, read as one statement.
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
                        unavailable |= error.is_unavailable();
                        for (search, answer) in same {
                            Waiting::Page { search, answer }.fail(&error);
                        }
                    }
                }
            }
            if unavailable {
                // Reads queued meanwhile have waited as long already: answer them now.
                let error = StoreError::Unavailable("the database is unavailable".into());
                for waiting in self.queue.take_all() {
                    waiting.fail(&error);
                }
            }
        }
    }
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
                pages.push(search::search(
                    conn,
                    Table::Users,
                    &shape.cond.with_probe(probe),
                    None,
                    None,
                    0,
                    shape.limit,
                    fetch_for(shape.with_groups),
                )?);
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
    let mut groups = memberships_from(conn, direct)?;
    for page in &mut found {
        for (user, memberships) in &mut page.users {
            // A user on two pages (two probes finding it) has its groups on each.
            if let Some(known) = groups.get(&user.id) {
                *memberships = known.clone();
            }
        }
    }
    groups.clear();
    Ok(found)
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
