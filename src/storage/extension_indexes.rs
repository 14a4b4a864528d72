//! Indexes on declared extension attributes: expression indexes on the stored JSON, spelt as
//! comparisons render the value, so `filter=urn:...:badge eq "x"` is an index seek. A unique
//! index is how `uniqueness` is enforced, race-free across instances.

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
    /// A name from everything that shapes the index, so a changed declaration gets a new one.
    pub fn name(&self) -> String {
        let mut hash = Sha256::new();
        for seg in &self.path {
            hash.update(seg.as_bytes());
            hash.update([0]);
        }
        hash.update(format!("{:?}{}", self.compared, self.unique).as_bytes());
        let digest = hash.finalize();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}{INFIX}{hex}", self.table.name())
    }
}

#[derive(QueryableByName)]
struct IndexName {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The extension indexes that exist now.
pub fn existing(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let sql = match Backend::of(conn) {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'index' \
             AND (name LIKE 'scim\\_users\\_ext\\_%' ESCAPE '\\' OR name LIKE 'scim\\_groups\\_ext\\_%' ESCAPE '\\')"
        }
        Backend::Postgres => {
            "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema() \
             AND (indexname LIKE 'scim\\_users\\_ext\\_%' OR indexname LIKE 'scim\\_groups\\_ext\\_%')"
        }
    };
    let rows: Vec<IndexName> = diesel::sql_query(sql).load(conn)?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// Creates `spec`'s index unless it exists. A unique one fails (a unique violation) when
/// stored values already repeat.
pub fn create(conn: &mut DbConnection, spec: &IndexSpec) -> Result<(), StoreError> {
    let expression = indexed_json_expression(Backend::of(conn), &spec.path, spec.compared);
    let sql = format!(
        "CREATE {}INDEX IF NOT EXISTS {} ON {} (({expression}))",
        if spec.unique { "UNIQUE " } else { "" },
        spec.name(),
        spec.table.name()
    );
    diesel::sql_query(sql).execute(conn)?;
    Ok(())
}

/// Drops an extension index no declaration asks for any more.
pub fn drop(conn: &mut DbConnection, name: &str) -> Result<(), StoreError> {
    if !name.contains(INFIX) || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Ok(());
    }
    diesel::sql_query(format!("DROP INDEX IF EXISTS {name}")).execute(conn)?;
    Ok(())
}

/// Brings the extension indexes to exactly `wanted`: the missing ones created, the stale ones
/// dropped. Returns the spec whose unique index the stored values violate, if one does.
pub fn sync(
    conn: &mut DbConnection,
    wanted: &[IndexSpec],
) -> Result<Result<(), IndexSpec>, StoreError> {
    let existing = existing(conn)?;
    for spec in wanted {
        if existing.contains(&spec.name()) {
            continue;
        }
        match create(conn, spec) {
            Ok(()) => {}
            Err(e) if e.is_unique_violation() => return Ok(Err(spec.clone())),
            Err(e) => return Err(e),
        }
    }
    let names: Vec<String> = wanted.iter().map(IndexSpec::name).collect();
    for name in existing.iter().filter(|n| !names.contains(n)) {
        drop(conn, name)?;
    }
    Ok(Ok(()))
}

/// The name's table-and-infix part, for telling an extension index's violation from others.
pub fn is_extension_index(name: &str) -> bool {
    name.contains(INFIX)
}
