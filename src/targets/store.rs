//! Targets created through the admin API, kept in the database: create, read, change (only
//! from the version read: a concurrent change is not overwritten) and delete. Every change
//! moves the targets generation, so every instance serves the new settings at its next round.

use super::lookup;
use super::settings::TargetConfig;
use crate::storage::secrets::SecretError;
use crate::storage::targets;
pub use crate::storage::targets::StoredTarget;
use crate::storage::{Db, StoreError};

/// Why a target cannot be stored.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Its secrets cannot be sealed: no key is configured (the message says how to set one).
    #[error("{0}")]
    NoKey(String),
    #[error("the target's settings cannot be stored: {0}")]
    Unwritable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The settings as stored: JSON, each secret sealed for this target and field.
fn sealed(db: &Db, config: &TargetConfig) -> Result<String, SaveError> {
    let mut stored = config.clone();
    let secrets = db.secrets();
    stored
        .auth
        .map_secrets(|field, value| secrets.seal(value, &format!("{}/{field}", config.name)))
        .map_err(|e| match e {
            SecretError::NoKey => SaveError::NoKey(e.to_string()),
            other => SaveError::Unwritable(other.to_string()),
        })?;
    serde_json::to_string(&stored).map_err(|e| SaveError::Unwritable(e.to_string()))
}

/// Stores a new target; `None` when one of that name exists.
pub fn create(db: &Db, config: &TargetConfig) -> Result<Option<StoredTarget>, SaveError> {
    let settings = sealed(db, config)?;
    Ok(db.write(|tx| targets::insert(tx, &config.name, &settings))?)
}

/// A stored target's settings (its secrets opened) and its row.
pub fn find(db: &Db, name: &str) -> Result<Option<(TargetConfig, StoredTarget)>, SaveError> {
    let Some(row) = db.read(|c| targets::find(c, name))? else {
        return Ok(None);
    };
    let config =
        lookup::stored(db.secrets(), &row).map_err(|e| SaveError::Unwritable(e.to_string()))?;
    Ok(Some((config, row)))
}

/// Writes `settings` over the target if it is still at `version`, and clears its recorded
/// health (an operator changed it: it starts afresh); `None` when it changed or is gone.
pub fn change(
    db: &Db,
    config: &TargetConfig,
    version: i64,
) -> Result<Option<StoredTarget>, SaveError> {
    let settings = sealed(db, config)?;
    let name = config.name.as_str();
    Ok(db.write(|tx| {
        let Some(row) = targets::update(tx, name, version, &settings)? else {
            return Ok(None);
        };
        targets::forget_health(tx, name)?;
        Ok::<_, StoreError>(Some(row))
    })?)
}

/// Deletes the target: its open orders become inactive, its work items withdrawn, its health
/// and links dropped. Returns how many orders were withdrawn; `None` when there is no such
/// target.
pub fn delete(db: &Db, name: &str) -> Result<Option<usize>, StoreError> {
    db.write(|tx| targets::delete(tx, name))
}
