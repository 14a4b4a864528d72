//! The targets an engine serves: the config file's, built once, and those created through the
//! admin API (the `targets` table), rebuilt when the table's generation moves. Every worker
//! reads the generation (one small row) at the start of each round, and the planner checks it
//! in each planning transaction, so a target created, changed, disabled or deleted on one
//! instance is served accordingly by all of them without a restart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::Target;
use crate::storage::secrets::SecretBox;
use crate::storage::targets::{self, StoredTarget};
use crate::storage::{Db, StoreError};
use crate::targets::lookup;

/// The targets as of one generation.
#[derive(Clone)]
pub struct Snapshot {
    /// The targets generation these were built from (`-1`: not read yet).
    pub generation: i64,
    pub targets: Arc<Vec<Arc<Target>>>,
}

pub struct TargetRegistry {
    file: Vec<Arc<Target>>,
    state: Mutex<State>,
}

struct State {
    snapshot: Snapshot,
    /// Built stored targets by name, with the version they were built from.
    stored: BTreeMap<String, (i64, Arc<Target>)>,
}

impl TargetRegistry {
    /// A registry of the config file's targets; stored ones join at the first refresh.
    pub fn new(file: Vec<Arc<Target>>) -> TargetRegistry {
        let snapshot = Snapshot {
            generation: -1,
            targets: Arc::new(file.clone()),
        };
        TargetRegistry {
            file,
            state: Mutex::new(State {
                snapshot,
                stored: BTreeMap::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> Snapshot {
        self.state().snapshot.clone()
    }

    /// The targets to serve now.
    pub fn current(&self) -> Arc<Vec<Arc<Target>>> {
        self.state().snapshot.targets.clone()
    }

    /// Re-reads the stored targets when the generation moved. Blocking.
    pub fn refresh(&self, db: &Db) -> Result<(), StoreError> {
        let generation = self.state().snapshot.generation;
        // The generation first: a list read after it is at least that new.
        let (now, rows) = db.read(|c| -> Result<_, StoreError> {
            let now = targets::generation(c)?;
            let rows = if now == generation {
                None
            } else {
                Some(targets::list(c)?)
            };
            Ok((now, rows))
        })?;
        let Some(rows) = rows else {
            return Ok(());
        };
        let previous = self.state().stored.clone();
        let stored = self.build(rows, &previous, db.secrets());
        let mut targets = self.file.clone();
        targets.extend(stored.values().map(|(_, t)| t.clone()));
        let mut state = self.state();
        state.snapshot = Snapshot {
            generation: now,
            targets: Arc::new(targets),
        };
        state.stored = stored;
        tracing::debug!(generation = now, "targets reloaded");
        Ok(())
    }

    /// Runtime targets for stored rows, reusing those whose version is unchanged (they keep
    /// their connections and tokens). A row that no longer builds is left out, loudly.
    fn build(
        &self,
        rows: Vec<StoredTarget>,
        previous: &BTreeMap<String, (i64, Arc<Target>)>,
        secrets: &SecretBox,
    ) -> BTreeMap<String, (i64, Arc<Target>)> {
        let mut built = BTreeMap::new();
        for row in rows {
            if self.file.iter().any(|t| t.config.name == row.name) {
                tracing::warn!(target = %row.name, "a stored target has the name of a config-file target; the config file's is used");
                continue;
            }
            if let Some((version, target)) = previous.get(&row.name) {
                if *version == row.version {
                    built.insert(row.name, (row.version, target.clone()));
                    continue;
                }
            }
            let target = lookup::stored(secrets, &row)
                .map_err(|e| e.to_string())
                .and_then(|config| Target::from_config(&config).map_err(|e| e.to_string()));
            match target {
                Ok(target) => {
                    built.insert(row.name, (row.version, Arc::new(target)));
                }
                // The settings as last built stay in service (planning and delivering go on
                // for the target; its new settings wait for this instance to be able to read
                // them, e.g. its key after a rotation).
                Err(error) => match previous.get(&row.name) {
                    Some(kept) => {
                        tracing::error!(target = %row.name, %error, "stored target's new settings cannot be used; its previous ones stay in service");
                        built.insert(row.name, kept.clone());
                    }
                    None => {
                        tracing::error!(target = %row.name, %error, "stored target cannot be used; it is not served")
                    }
                },
            }
        }
        built
    }
}
