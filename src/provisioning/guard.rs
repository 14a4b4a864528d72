//! The mass-delete guard for inbound changes: user deletions planned for a target within its
//! window add up, and those beyond the target's threshold (a count, or a share of its linked
//! accounts) wait for approval instead of executing.

use std::collections::HashMap;

use super::Target;
use crate::storage::{deletions, DbConnection, Micros, StoreError};

/// Counts for one planning transaction.
#[derive(Debug)]
pub struct DeleteGuard {
    /// When the planning happens: windows end here.
    now: Micros,
    /// Per target: deletions counted so far, and the accounts they are a share of.
    counted: HashMap<String, (u64, u64)>,
}

impl DeleteGuard {
    /// A guard counting deletions in windows that end `now`.
    pub fn at(now: Micros) -> DeleteGuard {
        DeleteGuard {
            now,
            counted: HashMap::new(),
        }
    }

    /// Counts one more deletion for the target; returns why it must be held, if it must.
    pub fn admit(
        &mut self,
        conn: &mut DbConnection,
        target: &Target,
    ) -> Result<Option<String>, StoreError> {
        let settings = &target.config.reconcile;
        if settings.mass_delete_count.is_none() && settings.mass_delete_percent.is_none() {
            return Ok(None);
        }
        let name = &target.config.name;
        if !self.counted.contains_key(name) {
            let since = self.now - settings.mass_delete_window_micros();
            let (recent, done) = deletions::planned_since(conn, name, since)?;
            // The share is of the accounts there were when the window began: those linked
            // now, and those this window's deletions already removed.
            let population = deletions::linked_users(conn, name)? + done;
            self.counted.insert(name.clone(), (recent, population));
        }
        let Some((recent, population)) = self.counted.get_mut(name) else {
            return Ok(None);
        };
        *recent += 1;
        Ok(settings.mass_delete(*recent, *population))
    }
}
