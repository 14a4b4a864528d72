//! Indexes on declared extension attributes, so `filter=urn:...:badge eq "x"` is an index
//! seek. A unique index is how `uniqueness` is enforced, race-free across instances.
//!
//! SQLite indexes an expression on the stored JSON, spelt as comparisons render the value.
//! PostgreSQL keeps the value in a stored generated column of its own and indexes that
//! column: an expression index on the document would make every change of the document, even
//! of an attribute no index is on, update every index of the row (PostgreSQL decides whether
//! an update can stay on its page, a HOT update, by the columns an index reads, and an
//! expression index reads the whole document). Comparisons read the column
//! ([`super::query::Expr::Kept`]).

use diesel::prelude::*;
use diesel::sql_types::Text;
use sha2::{Digest, Sha256};

use super::query::{indexed_json_expression, Compared, Table};
use super::{Backend, DbConnection, StoreError};

/// One index the declarations ask for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexSpec {
    pub table: Table,
    /// The path in the stored document: the extension URN, then the attribute.
    pub path: Vec<String>,
    pub compared: Compared,
    pub unique: bool,
}

/// Every extension index shares this infix, so the ones no longer declared can be found.
const INFIX: &str = "_ext_";

impl IndexSpec {
    /// The index's name on `backend`, from everything that shapes it, so a changed
    /// declaration gets a new one. On PostgreSQL it also names the column the index is on;
    /// the two layouts have different names, so an expression index left by an earlier
    /// version is replaced by its column.
    pub fn name(&self, backend: Backend) -> String {
        let mut hash = Sha256::new();
        for seg in &self.path {
            hash.update(seg.as_bytes());
            hash.update([0]);
        }
        hash.update(format!("{:?}{}", self.compared, self.unique).as_bytes());
        if backend == Backend::Postgres {
            hash.update(b"column");
        }
        let digest = hash.finalize();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}{INFIX}{hex}", self.table.name())
    }

    /// The PostgreSQL column that keeps the value as comparisons read it.
    pub fn column(&self) -> String {
        self.name(Backend::Postgres)
    }
}

#[derive(QueryableByName)]
struct IndexName {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The extension indexes that exist now (on PostgreSQL, with the columns they are on: a
/// column whose index is gone is listed too, so it can be dropped).
pub fn existing(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let sql = match Backend::of(conn) {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'index' \
             AND (name LIKE 'scim\\_users\\_ext\\_%' ESCAPE '\\' OR name LIKE 'scim\\_groups\\_ext\\_%' ESCAPE '\\')"
        }
        Backend::Postgres => {
            "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema() \
             AND (indexname LIKE 'scim\\_users\\_ext\\_%' OR indexname LIKE 'scim\\_groups\\_ext\\_%') \
             UNION SELECT column_name::text AS name FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name IN ('scim_users', 'scim_groups') \
             AND column_name LIKE 'scim\\_%\\_ext\\_%'"
        }
    };
    let rows: Vec<IndexName> = diesel::sql_query(sql).load(conn)?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// Creates `spec`'s index (and on PostgreSQL its column) unless it exists. A unique one fails
/// (a unique violation) when stored values already repeat.
pub fn create(conn: &mut DbConnection, spec: &IndexSpec) -> Result<(), StoreError> {
    let backend = Backend::of(conn);
    let name = spec.name(backend);
    let unique = if spec.unique { "UNIQUE " } else { "" };
    let table = spec.table.name();
    let expression = indexed_json_expression(backend, &spec.path, spec.compared);
    let indexed = match backend {
        Backend::Sqlite => format!("({expression})"),
        Backend::Postgres => {
            let kind = match spec.compared {
                Compared::Number => "double precision",
                Compared::Text { .. } | Compared::AsStored => "text",
            };
            // Adding a stored column rewrites the table once, as building the index reads it.
            diesel::sql_query(format!(
                "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {kind} \
                 GENERATED ALWAYS AS ({expression}) STORED"
            ))
            .execute(conn)?;
            name.clone()
        }
    };
    diesel::sql_query(format!(
        "CREATE {unique}INDEX IF NOT EXISTS {name} ON {table} ({indexed})"
    ))
    .execute(conn)?;
    Ok(())
}

/// Drops an extension index no declaration asks for any more, and on PostgreSQL its column.
pub fn drop(conn: &mut DbConnection, name: &str) -> Result<(), StoreError> {
    if !name.contains(INFIX) || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Ok(());
    }
    diesel::sql_query(format!("DROP INDEX IF EXISTS {name}")).execute(conn)?;
    if Backend::of(conn) == Backend::Postgres {
        for table in [Table::Users, Table::Groups] {
            if name.starts_with(&format!("{}{INFIX}", table.name())) {
                diesel::sql_query(format!(
                    "ALTER TABLE {} DROP COLUMN IF EXISTS {name}",
                    table.name()
                ))
                .execute(conn)?;
            }
        }
    }
    Ok(())
}

/// Brings the extension indexes to exactly `wanted`: the missing ones created, the stale ones
/// dropped. Returns the spec whose unique index the stored values violate, if one does.
pub fn sync(
    conn: &mut DbConnection,
    wanted: &[IndexSpec],
) -> Result<Result<(), IndexSpec>, StoreError> {
    let backend = Backend::of(conn);
    let names: Vec<String> = wanted.iter().map(|spec| spec.name(backend)).collect();
    let existing = existing(conn)?;
    // Stale ones first, so a declaration changed back and forth never meets its own leftovers.
    for name in existing.iter().filter(|n| !names.contains(n)) {
        drop(conn, name)?;
    }
    for (spec, name) in wanted.iter().zip(&names) {
        if existing.contains(name) {
            continue;
        }
        match create(conn, spec) {
            Ok(()) => {}
            Err(e) if e.is_unique_violation() => return Ok(Err(spec.clone())),
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(()))
}

/// The name's table-and-infix part, for telling an extension index's violation from others.
pub fn is_extension_index(name: &str) -> bool {
    name.contains(INFIX)
}
