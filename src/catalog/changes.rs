//! Changes to the targets kept in the database: create, replace, enable or disable, delete.
//! Each is checked as fully as a config-file target first. Every write moves the targets
//! generation, which every instance's workers follow; changing a target also clears its
//! recorded health (a quarantine ends: the new settings are tried at once).

use super::validation::{check, keep_secrets, refuse_markers};
use super::CatalogError;
use crate::storage::Db;
use crate::targets::store::{self, SaveError, StoredTarget};
use crate::targets::TargetConfig;

fn save_failed(error: SaveError) -> CatalogError {
    match error {
        SaveError::NoKey(why) => CatalogError::Invalid(why),
        SaveError::Unwritable(why) => CatalogError::Internal(why),
        SaveError::Store(e) => CatalogError::from(e),
    }
}

/// Refuses a change to a target the config file declares.
fn writable(file: &[TargetConfig], name: &str) -> Result<(), CatalogError> {
    if file.iter().any(|t| t.name == name) {
        return Err(CatalogError::Conflict(format!(
            "target {name:?} is declared in the config file and is read-only here; change it in the config file"
        )));
    }
    Ok(())
}

/// The stored target `name`: its settings (secrets opened) and its row.
pub fn stored(
    db: &Db,
    file: &[TargetConfig],
    name: &str,
) -> Result<(TargetConfig, StoredTarget), CatalogError> {
    writable(file, name)?;
    store::find(db, name)
        .map_err(save_failed)?
        .ok_or_else(|| CatalogError::not_found(name))
}

/// Stores a new target.
pub fn create(
    db: &Db,
    file: &[TargetConfig],
    config: &TargetConfig,
) -> Result<StoredTarget, CatalogError> {
    refuse_markers(config)?;
    check(config)?;
    let name = &config.name;
    if file.iter().any(|t| &t.name == name) {
        return Err(CatalogError::Conflict(format!(
            "a target named {name:?} is declared in the config file"
        )));
    }
    store::create(db, config)
        .map_err(save_failed)?
        .ok_or_else(|| CatalogError::Conflict(format!("a target named {name:?} exists")))
}

/// Writes `config` over the stored target if it is still at `version`.
fn save(db: &Db, config: &TargetConfig, version: i64) -> Result<StoredTarget, CatalogError> {
    store::change(db, config, version)
        .map_err(save_failed)?
        .ok_or_else(|| {
            CatalogError::Conflict(format!(
                "target {:?} changed or was deleted meanwhile; read it again",
                config.name
            ))
        })
}

/// Replaces every setting of the target `name`. A secret left out or sent as the marker keeps
/// the stored one while the auth type and URL stay the same. `expected_version`, when given,
/// is the version the caller read (a form's): a change made since is not overwritten.
pub fn replace(
    db: &Db,
    file: &[TargetConfig],
    name: &str,
    mut config: TargetConfig,
    expected_version: Option<i64>,
) -> Result<(TargetConfig, StoredTarget), CatalogError> {
    if config.name != name {
        return Err(CatalogError::Invalid(format!(
            "the settings name {:?} but the target is {name:?}: targets cannot be renamed",
            config.name
        )));
    }
    let (current, row) = stored(db, file, name)?;
    keep_secrets(&mut config, &current)?;
    check(&config)?;
    let row = save(db, &config, expected_version.unwrap_or(row.version))?;
    Ok((config, row))
}

/// Enables or disables the target `name`. A disabled target gets no new orders and none are
/// delivered; its open orders wait until it is enabled again.
pub fn set_enabled(
    db: &Db,
    file: &[TargetConfig],
    name: &str,
    enabled: bool,
) -> Result<(TargetConfig, StoredTarget), CatalogError> {
    let (mut config, row) = stored(db, file, name)?;
    if config.enabled == enabled {
        return Ok((config, row));
    }
    config.enabled = enabled;
    let row = save(db, &config, row.version)?;
    Ok((config, row))
}

/// Deletes the target `name`: its open orders become `Inactive` (their history stays), its
/// health and identity links are dropped. Answers how many orders were withdrawn.
pub fn delete(db: &Db, file: &[TargetConfig], name: &str) -> Result<usize, CatalogError> {
    writable(file, name)?;
    store::delete(db, name)?.ok_or_else(|| CatalogError::not_found(name))
}
