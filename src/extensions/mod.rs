//! Custom extension schemas: the declarations in the config file and those made through
//! `/admin/schemas`, merged into the [registry](crate::scim::registry) every instance serves,
//! and the database indexes they ask for.
//!
//! The instance that changes a declaration installs it at once and keeps the indexes in step;
//! the others pick it up on their next [`refresh`] (every [`REFRESH_EVERY`]).

mod error;

use std::time::Duration;

pub use error::ExtensionError;

use crate::scim::registry::{self, Registry};
use crate::scim::schema::declaration::{ExtensionDeclaration, IndexedAttribute};
use crate::scim::schema::AttrType;
use crate::storage::extension_indexes::{self, IndexSpec};
use crate::storage::query::{Compared, Table};
use crate::storage::schema_extensions::{self, StoredExtension};
use crate::storage::{Backend, Db, StoreError};

/// How soon the other instances serve a declaration changed on one.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// A declaration and where it comes from.
#[derive(Debug, Clone)]
pub struct Declared {
    pub declaration: ExtensionDeclaration,
    /// `None` for the config file's (read-only here).
    pub stored: Option<StoredExtension>,
}

/// The declarations in force: the config file's, then the stored ones (a stored declaration
/// with a config-file URN is left out; the file's wins, as [`start`] warns).
fn merged(
    file: &[ExtensionDeclaration],
    stored: Vec<StoredExtension>,
) -> Result<Vec<Declared>, StoreError> {
    let mut all: Vec<Declared> = file
        .iter()
        .map(|d| Declared {
            declaration: d.clone(),
            stored: None,
        })
        .collect();
    for row in stored {
        if file.iter().any(|d| d.id.eq_ignore_ascii_case(&row.urn)) {
            continue;
        }
        match serde_json::from_str::<ExtensionDeclaration>(&row.declaration) {
            Ok(declaration) => all.push(Declared {
                declaration,
                stored: Some(row),
            }),
            Err(e) => {
                return Err(StoreError::Aborted(format!(
                    "stored extension schema {} does not read: {e}",
                    row.urn
                )))
            }
        }
    }
    Ok(all)
}

fn declarations(all: &[Declared]) -> Vec<ExtensionDeclaration> {
    all.iter().map(|d| d.declaration.clone()).collect()
}

/// Every declaration in force, the config file's first.
pub fn list(db: &Db, file: &[ExtensionDeclaration]) -> Result<Vec<Declared>, StoreError> {
    let stored = db.read(schema_extensions::list)?;
    merged(file, stored)
}

/// At start: serves the config file's and the stored declarations and brings the indexes in
/// step with them.
pub fn start(db: &Db, file: &[ExtensionDeclaration]) -> Result<(), ExtensionError> {
    let stored = db.read(schema_extensions::list)?;
    for row in &stored {
        if file.iter().any(|d| d.id.eq_ignore_ascii_case(&row.urn)) {
            tracing::warn!(schema = %row.urn, "a stored extension schema has the URN of a config-file one; the config file's is served");
        }
    }
    let all = merged(file, stored)?;
    let registry = Registry::build(declarations(&all)).map_err(ExtensionError::Invalid)?;
    db.write(|tx| -> Result<(), ExtensionError> {
        schema_extensions::lock(tx)?;
        index_in_step(tx.conn(), &registry)
    })?;
    registry::install(declarations(&all)).map_err(ExtensionError::Invalid)?;
    Ok(())
}

/// Serves what another instance declared since the last look.
pub fn refresh(db: &Db, file: &[ExtensionDeclaration]) -> Result<(), StoreError> {
    let all = list(db, file)?;
    if let Err(why) = registry::install(declarations(&all)) {
        tracing::error!(%why, "the stored extension schemas do not build; still serving the previous ones");
    }
    Ok(())
}

/// Declares a new extension schema.
pub fn declare(
    db: &Db,
    file: &[ExtensionDeclaration],
    declaration: ExtensionDeclaration,
) -> Result<Declared, ExtensionError> {
    let urn = declaration.id.clone();
    let all = db.write(|tx| -> Result<Vec<Declared>, ExtensionError> {
        schema_extensions::lock(tx)?;
        let mut all = merged(file, schema_extensions::list(tx.conn())?)?;
        if all
            .iter()
            .any(|d| d.declaration.id.eq_ignore_ascii_case(&urn))
        {
            return Err(ExtensionError::Conflict(format!(
                "an extension schema {urn:?} is declared already"
            )));
        }
        all.push(Declared {
            declaration: declaration.clone(),
            stored: None,
        });
        let registry = Registry::build(declarations(&all)).map_err(ExtensionError::Invalid)?;
        index_in_step(tx.conn(), &registry)?;
        schema_extensions::insert(tx, &urn, &to_json(&declaration))?;
        merged(file, schema_extensions::list(tx.conn())?).map_err(ExtensionError::from)
    })?;
    installed(all, &urn)
}

/// Replaces a stored declaration, if it is still at `version` when one is given.
pub fn replace(
    db: &Db,
    file: &[ExtensionDeclaration],
    urn: &str,
    version: Option<i64>,
    declaration: ExtensionDeclaration,
) -> Result<Declared, ExtensionError> {
    if !declaration.id.eq_ignore_ascii_case(urn) {
        return Err(ExtensionError::Invalid(format!(
            "the body's id {:?} is not the URL's {urn:?}: schemas are not renamed",
            declaration.id
        )));
    }
    let all = db.write(|tx| -> Result<Vec<Declared>, ExtensionError> {
        schema_extensions::lock(tx)?;
        let mut all = merged(file, schema_extensions::list(tx.conn())?)?;
        let current = stored_one(&all, urn)?;
        let stored = current.stored.clone().ok_or_else(|| read_only(urn))?;
        check_compatible(&current.declaration, &declaration)?;
        if version.is_some_and(|v| v != stored.version) {
            return Err(ExtensionError::Conflict(format!(
                "schema {urn:?} changed: it is at version {}",
                stored.version
            )));
        }
        for d in &mut all {
            if d.declaration.id.eq_ignore_ascii_case(urn) {
                d.declaration = declaration.clone();
            }
        }
        let registry = Registry::build(declarations(&all)).map_err(ExtensionError::Invalid)?;
        index_in_step(tx.conn(), &registry)?;
        if !schema_extensions::update(tx, &stored.urn, stored.version, &to_json(&declaration))? {
            return Err(ExtensionError::Conflict(format!(
                "schema {urn:?} changed meanwhile"
            )));
        }
        merged(file, schema_extensions::list(tx.conn())?).map_err(ExtensionError::from)
    })?;
    installed(all, urn)
}

/// Removes a stored declaration no user or group carries any more.
pub fn remove(db: &Db, file: &[ExtensionDeclaration], urn: &str) -> Result<(), ExtensionError> {
    let all = db.write(|tx| -> Result<Vec<Declared>, ExtensionError> {
        schema_extensions::lock(tx)?;
        let all = merged(file, schema_extensions::list(tx.conn())?)?;
        let current = stored_one(&all, urn)?;
        let stored = current.stored.clone().ok_or_else(|| read_only(urn))?;
        for table in [Table::Users, Table::Groups] {
            let carriers = schema_extensions::carriers(tx.conn(), table, &stored.urn)?;
            if carriers > 0 {
                return Err(ExtensionError::Conflict(format!(
                    "{carriers} resources hold values of {urn:?}; remove them from the resources first"
                )));
            }
        }
        let rest: Vec<Declared> = all
            .into_iter()
            .filter(|d| !d.declaration.id.eq_ignore_ascii_case(urn))
            .collect();
        let registry = Registry::build(declarations(&rest)).map_err(ExtensionError::Invalid)?;
        index_in_step(tx.conn(), &registry)?;
        schema_extensions::delete(tx, &stored.urn)?;
        Ok(rest)
    })?;
    registry::install(declarations(&all)).map_err(ExtensionError::Invalid)?;
    Ok(())
}

fn installed(all: Vec<Declared>, urn: &str) -> Result<Declared, ExtensionError> {
    registry::install(declarations(&all)).map_err(ExtensionError::Invalid)?;
    Ok(stored_one(&all, urn)?.clone())
}

fn stored_one<'a>(all: &'a [Declared], urn: &str) -> Result<&'a Declared, ExtensionError> {
    all.iter()
        .find(|d| d.declaration.id.eq_ignore_ascii_case(urn))
        .ok_or_else(|| ExtensionError::NotFound(format!("no extension schema {urn:?}")))
}

fn read_only(urn: &str) -> ExtensionError {
    ExtensionError::Conflict(format!(
        "schema {urn:?} is declared in the config file; change it there"
    ))
}

fn to_json(declaration: &ExtensionDeclaration) -> String {
    serde_json::to_string(declaration).unwrap_or_default()
}

/// Stored values must keep their meaning: an attribute keeps its type and multiplicity.
/// Attributes may be added, removed (their values are no longer served) or re-described.
fn check_compatible(
    before: &ExtensionDeclaration,
    after: &ExtensionDeclaration,
) -> Result<(), ExtensionError> {
    for old in &before.attributes {
        let Some(new) = after
            .attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(&old.name))
        else {
            continue;
        };
        if new.kind != old.kind || new.multi_valued != old.multi_valued {
            return Err(ExtensionError::Conflict(format!(
                "attribute {:?} keeps its type and multiValued: stored values would change meaning (declare a new attribute instead)",
                old.name
            )));
        }
    }
    Ok(())
}

/// The index each indexed or unique declared attribute needs.
pub fn index_specs(registry: &Registry) -> Vec<IndexSpec> {
    registry.indexed().iter().map(index_spec).collect()
}

/// The index one indexed or unique declared attribute needs.
pub fn index_spec(i: &IndexedAttribute) -> IndexSpec {
    IndexSpec {
        table: if i.resource_type == "Group" {
            Table::Groups
        } else {
            Table::Users
        },
        path: vec![i.schema.to_string(), i.attribute.name.to_string()],
        compared: match i.attribute.kind {
            AttrType::String => Compared::Text {
                fold_case: !i.attribute.case_exact,
            },
            AttrType::Integer | AttrType::Decimal => Compared::Number,
            _ => Compared::AsStored,
        },
        unique: i.unique,
    }
}

fn index_in_step(
    conn: &mut crate::storage::DbConnection,
    registry: &Registry,
) -> Result<(), ExtensionError> {
    let specs = index_specs(registry);
    match extension_indexes::sync(conn, &specs)? {
        Ok(()) => Ok(()),
        Err(spec) => Err(ExtensionError::Conflict(format!(
            "{} values of {} repeat, so it cannot be unique",
            spec.table.resource_type(),
            spec.path.join(":")
        ))),
    }
}

/// The declared attribute (`urn:...:name`) whose unique index a storage error names.
pub fn taken_attribute(error: &StoreError) -> Option<String> {
    let text = error.to_string();
    index_specs(registry::current())
        .into_iter()
        .find(|spec| {
            [Backend::Sqlite, Backend::Postgres]
                .iter()
                .any(|b| text.contains(&spec.name(*b)))
        })
        .map(|spec| spec.path.join(":"))
}
