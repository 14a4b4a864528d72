//! Running a search: the condition rendered once for the count and once for the page, and
//! the page's rows read back as ids or as records.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::direct_groups::{direct_groups_column, DirectGroups};
use super::query::{Cond, Sort, Sql, Table, PROBE, ROW};
use super::statement::Bind;
use super::{Backend, DbConnection, StoreError};

/// What a search returns: the total matching, and the requested page's rows in order.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub total: i64,
    pub rows: Vec<FoundRow>,
}

/// What a search reads of each row on its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// The id and creation time (for cursors) only.
    Ids,
    /// The stored row too, for rendering: no second query for the page's rows.
    Records,
    /// The stored user rows and each user's direct groups (users only).
    RecordsWithGroups,
}

impl Fetch {
    /// The stored rows, with the users' direct groups when the answer carries groups.
    pub fn records(with_groups: bool) -> Fetch {
        match with_groups {
            true => Fetch::RecordsWithGroups,
            false => Fetch::Records,
        }
    }
}

/// A row on a search's page; `record` is there when the search fetched [`Fetch::Records`].
#[derive(Debug, Clone)]
pub struct FoundRow {
    pub id: String,
    pub created_at: i64,
    pub record: Option<FoundRecord>,
}

/// A resource's stored row as a search returns it.
#[derive(Debug, Clone)]
pub struct FoundRecord {
    /// userName or displayName.
    pub name: String,
    pub external_id: Option<String>,
    pub data: String,
    pub version: i64,
    pub last_modified: i64,
    pub connection: String,
    /// The user's direct groups, when fetched with [`Fetch::RecordsWithGroups`].
    pub direct_groups: DirectGroups,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    created_at: i64,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// A row of one probe's page (see [`first_pages`]); `asked` counts the probes from 1.
#[derive(QueryableByName)]
struct ProbedRow {
    #[diesel(sql_type = BigInt)]
    asked: i64,
    #[diesel(embed)]
    row: RecordRow,
}

#[derive(QueryableByName)]
struct RecordRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    created_at: i64,
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    external_id: Option<String>,
    #[diesel(sql_type = Text)]
    data: String,
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = BigInt)]
    last_modified: i64,
    #[diesel(sql_type = Text)]
    connection: String,
    #[diesel(sql_type = Nullable<Text>)]
    direct_groups: Option<String>,
}

/// A search: the rows `cond` selects (only those after a keyset cursor on the page, when
/// `after` is set), in `sort`'s order then creation's, `limit` of them from `offset`, read as
/// `fetch` says.
#[derive(Debug, Clone, Copy)]
pub struct PageQuery<'a> {
    pub table: Table,
    pub cond: &'a Cond,
    pub after: Option<&'a Cond>,
    pub sort: Option<&'a Sort>,
    pub offset: i64,
    pub limit: i64,
    pub fetch: Fetch,
}

/// Runs a filtered, sorted, paged search and returns matching rows in order. `after` narrows
/// the page (not the total) to rows after a keyset cursor.
pub fn search(conn: &mut DbConnection, query: &PageQuery) -> Result<SearchPage, StoreError> {
    let PageQuery {
        table,
        cond,
        after,
        offset,
        limit,
        fetch,
        ..
    } = *query;
    let backend = Backend::of(conn);
    let count_only = |conn: &mut DbConnection| -> Result<i64, StoreError> {
        let mut count = Sql::new(backend);
        count.push(&format!(
            "SELECT COUNT(*) AS n FROM {} {ROW} WHERE ",
            table.name()
        ));
        count.cond(cond);
        Ok(run::<Count>(conn, count)?.first().map(|c| c.n).unwrap_or(0))
    };
    if limit == 0 {
        return Ok(SearchPage {
            total: count_only(conn)?,
            rows: Vec::new(),
        });
    }
    let records = fetch != Fetch::Ids;
    let mut sql = Sql::new(backend);
    page(&mut sql, query);
    let (total, rows) = if records {
        load_page::<RecordRow>(conn, sql)?
    } else {
        load_page::<IdRow>(conn, sql)?
    };
    let total = match total {
        Some(total) if after.is_none() => total,
        None if after.is_none() && offset == 0 => 0,
        _ => count_only(conn)?,
    };
    Ok(SearchPage { total, rows })
}

/// The first pages (unsorted, `limit` rows at most) of searches that differ only in the text
/// their condition compares with: one probe value each, `cond` holding a
/// [`super::query::Literal::Probe`] for it. One statement answers them all, a page per probe in
/// order, each with its own total, as if each had been searched alone. PostgreSQL only.
pub fn first_pages(
    conn: &mut diesel::PgConnection,
    table: Table,
    cond: &Cond,
    probes: &[&str],
    limit: i64,
    with_groups: bool,
) -> Result<Vec<SearchPage>, StoreError> {
    let fetch = Fetch::records(with_groups);
    let mut sql = Sql::new(Backend::Postgres);
    sql.push(&format!(
        "SELECT {PROBE}.ord AS asked, p.* FROM jsonb_array_elements_text(CAST("
    ));
    sql.bind(Bind::Text(serde_json::Value::from(probes).to_string()));
    sql.push(&format!(
        " AS jsonb)) WITH ORDINALITY AS {PROBE}(v, ord) CROSS JOIN LATERAL ("
    ));
    let query = PageQuery {
        table,
        cond,
        after: None,
        sort: None,
        offset: 0,
        limit,
        fetch,
    };
    page(&mut sql, &query);
    // Each probe's rows in its page's order (unsorted: creation, then id).
    sql.push(&format!(") p ORDER BY {PROBE}.ord, p.created_at, p.id"));
    let rows = sql.statement.prepared().load::<ProbedRow>(conn)?;
    let mut pages: Vec<SearchPage> = probes
        .iter()
        .map(|_| SearchPage {
            total: 0,
            rows: Vec::new(),
        })
        .collect();
    for probed in rows {
        let Some(page) = usize::try_from(probed.asked - 1)
            .ok()
            .and_then(|at| pages.get_mut(at))
        else {
            continue;
        };
        let (total, row) = probed.row.split();
        page.total = total;
        page.rows.push(row);
    }
    Ok(pages)
}

/// Writes the statement reading a page (with the total, unless after a cursor) into `sql`.
fn page(sql: &mut Sql, query: &PageQuery) {
    let PageQuery {
        table,
        cond,
        after,
        sort,
        offset,
        limit,
        fetch,
    } = *query;
    let records = fetch != Fetch::Ids;
    if records {
        sql.push("WITH page AS (");
    }
    // Without a keyset cursor the page carries the total as a window count: one query.
    sql.push(&format!(
        "SELECT {ROW}.id AS id, {ROW}.created_at AS created_at, "
    ));
    sql.push(if after.is_none() {
        "COUNT(*) OVER () AS total"
    } else {
        "CAST(0 AS BIGINT) AS total"
    });
    sql.push(&format!(" FROM {} {ROW} WHERE ", table.name()));
    sql.cond(cond);
    if let Some(after) = after {
        sql.push(" AND ");
        sql.cond(after);
    }
    sql.order(sort);
    sql.push(" LIMIT ");
    sql.bind(Bind::Int(limit));
    sql.push(" OFFSET ");
    sql.bind(Bind::Int(offset));
    if records {
        let direct_groups = match fetch {
            Fetch::RecordsWithGroups => direct_groups_column(sql.backend, &format!("{ROW}.id")),
            _ => "CAST(NULL AS TEXT)".to_string(),
        };
        // The page's rows joined back to their table; only the page's rows are read whole,
        // however many match, and the window count is taken before the join.
        sql.push(&format!(
            ") SELECT page.id AS id, page.created_at AS created_at, page.total AS total, \
             {ROW}.{name} AS name, {ROW}.external_id AS external_id, {ROW}.data AS data, \
             {ROW}.version AS version, {ROW}.last_modified AS last_modified, \
             {ROW}.connection AS connection, {direct_groups} AS direct_groups \
             FROM page JOIN {table} {ROW} ON {ROW}.id = page.id",
            name = table.name_column(),
            table = table.name(),
        ));
        sql.order(sort);
    }
}

/// A row of a search page: the window total it carries, and the row itself.
trait PageRow {
    fn split(self) -> (i64, FoundRow);
}

impl PageRow for IdRow {
    fn split(self) -> (i64, FoundRow) {
        let row = FoundRow {
            id: self.id,
            created_at: self.created_at,
            record: None,
        };
        (self.total, row)
    }
}

impl PageRow for RecordRow {
    fn split(self) -> (i64, FoundRow) {
        let record = FoundRecord {
            name: self.name,
            external_id: self.external_id,
            data: self.data,
            version: self.version,
            last_modified: self.last_modified,
            connection: self.connection,
            direct_groups: DirectGroups(self.direct_groups),
        };
        let row = FoundRow {
            id: self.id,
            created_at: self.created_at,
            record: Some(record),
        };
        (self.total, row)
    }
}

/// Runs a page query: the total its first row carries (none on an empty page) and the rows.
fn load_page<T>(
    conn: &mut DbConnection,
    sql: Sql,
) -> Result<(Option<i64>, Vec<FoundRow>), StoreError>
where
    T: PageRow
        + QueryableByName<diesel::sqlite::Sqlite>
        + QueryableByName<diesel::pg::Pg>
        + 'static,
{
    let mut total = None;
    let rows = run::<T>(conn, sql)?
        .into_iter()
        .map(|found| {
            let (carried, row) = found.split();
            total.get_or_insert(carried);
            row
        })
        .collect();
    Ok((total, rows))
}

fn run<T>(conn: &mut DbConnection, sql: Sql) -> Result<Vec<T>, StoreError>
where
    T: QueryableByName<diesel::sqlite::Sqlite> + QueryableByName<diesel::pg::Pg> + 'static,
{
    let prepared = sql.statement.prepared();
    Ok(match conn {
        DbConnection::Sqlite(c) => prepared.load::<T>(c)?,
        DbConnection::Postgresql(c) => prepared.load::<T>(c)?,
    })
}
