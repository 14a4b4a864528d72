//! The one lookup of targets: the config file's target of a name, else the one created through
//! the admin API (its secrets opened); the config file's shadows a stored one of the same name.

use super::settings::{SettingsError, TargetConfig};
use crate::storage::secrets::SecretBox;
use crate::storage::targets::{self, StoredTarget};
use crate::storage::{Db, DbConnection, StoreError};

/// Where a target is declared.
pub enum Source {
    /// The config file: read-only through the API.
    File,
    /// Created through the admin API (the `targets` table).
    Api(StoredTarget),
}

/// A target's settings and where they come from.
pub struct Known {
    pub config: TargetConfig,
    pub source: Source,
}

/// Why a target could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

/// A stored target's settings, its secrets opened.
pub fn stored(secrets: &SecretBox, row: &StoredTarget) -> Result<TargetConfig, SettingsError> {
    TargetConfig::from_stored(&row.name, &row.config, secrets).map_err(SettingsError)
}

/// The target named `name`.
fn find(
    file: &[TargetConfig],
    conn: &mut DbConnection,
    secrets: &SecretBox,
    name: &str,
) -> Result<Option<Known>, LookupError> {
    if let Some(config) = file.iter().find(|t| t.name == name) {
        return Ok(Some(Known {
            config: config.clone(),
            source: Source::File,
        }));
    }
    let Some(row) = targets::find(conn, name)? else {
        return Ok(None);
    };
    Ok(Some(Known {
        config: stored(secrets, &row)?,
        source: Source::Api(row),
    }))
}

/// Every target: the config file's, then the stored ones it does not shadow, by name.
fn all(
    file: &[TargetConfig],
    conn: &mut DbConnection,
    secrets: &SecretBox,
) -> Result<Vec<Known>, LookupError> {
    let mut known: Vec<Known> = file
        .iter()
        .map(|config| Known {
            config: config.clone(),
            source: Source::File,
        })
        .collect();
    for row in targets::list(conn)? {
        if file.iter().any(|t| t.name == row.name) {
            continue;
        }
        known.push(Known {
            config: stored(secrets, &row)?,
            source: Source::Api(row),
        });
    }
    Ok(known)
}

/// The target named `name` (the config file's, else the database's).
pub fn find_in(db: &Db, file: &[TargetConfig], name: &str) -> Result<Option<Known>, LookupError> {
    db.read(|c| find(file, c, db.secrets(), name))
}

/// Every target: the config file's, then the stored ones it does not shadow.
pub fn all_in(db: &Db, file: &[TargetConfig]) -> Result<Vec<Known>, LookupError> {
    db.read(|c| all(file, c, db.secrets()))
}
