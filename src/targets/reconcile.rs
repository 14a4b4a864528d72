//! A target's reconciliation settings (`[targets.reconcile]`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileSettings {
    /// How target accounts are matched to users, tried in order: `"IDENTITY = ACCOUNT"`, e.g.
    /// `"userName = uid"`, `"emails[primary].value = mail"`, `"externalId = employeeNumber"`.
    /// Empty: `userName` against the attribute the target correlates on.
    pub correlation: Vec<String>,
    /// What a full sync does with accounts no user matches: `ignore` (the default), `disable`
    /// or `delete`.
    pub orphans: Option<String>,
    /// Full syncs on a schedule: `every 6h` / `every 30m`, or a cron expression
    /// (`0 3 * * *`, in UTC).
    pub schedule: Option<String>,
    /// Deletions or disables on this target beyond which they wait for approval (a count).
    pub mass_delete_count: Option<u64>,
    /// The same as a percentage of the target's linked accounts.
    pub mass_delete_percent: Option<f64>,
    /// The window in which inbound deletions add up for the guard; default one hour.
    pub mass_delete_window_seconds: Option<u64>,
}

/// What a full sync does with an orphan account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanPolicy {
    Ignore,
    Disable,
    Delete,
}

impl ReconcileSettings {
    pub fn orphan_policy(&self) -> Result<OrphanPolicy, String> {
        match self.orphans.as_deref() {
            None | Some("ignore") => Ok(OrphanPolicy::Ignore),
            Some("disable") => Ok(OrphanPolicy::Disable),
            Some("delete") => Ok(OrphanPolicy::Delete),
            Some(other) => Err(format!(
                "reconcile.orphans {other:?}: expected ignore, disable or delete"
            )),
        }
    }

    pub fn is_default(&self) -> bool {
        self == &ReconcileSettings::default()
    }

    /// Whether `deletions` out of `population` linked accounts trip the mass-delete guard,
    /// and if so why, in words.
    pub fn mass_delete(&self, deletions: u64, population: u64) -> Option<String> {
        if deletions == 0 {
            return None;
        }
        if let Some(percent) = self.mass_delete_percent {
            let share = 100.0 * deletions as f64 / population.max(1) as f64;
            if share > percent {
                return Some(format!(
                    "mass-delete guard: {deletions} of {population} accounts ({share:.0}%) would be deleted or disabled, more than {percent}%"
                ));
            }
        }
        if let Some(limit) = self.mass_delete_count {
            if deletions > limit {
                return Some(format!(
                    "mass-delete guard: {deletions} deletions or disables exceed the limit of {limit}"
                ));
            }
        }
        None
    }

    pub fn mass_delete_window_micros(&self) -> i64 {
        self.mass_delete_window_seconds.unwrap_or(3_600) as i64 * 1_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_trips_on_count_or_share() {
        let by_count = ReconcileSettings {
            mass_delete_count: Some(10),
            ..Default::default()
        };
        assert!(by_count.mass_delete(10, 100).is_none());
        assert!(by_count.mass_delete(11, 100).is_some());
        let by_share = ReconcileSettings {
            mass_delete_percent: Some(50.0),
            ..Default::default()
        };
        assert!(by_share.mass_delete(5, 10).is_none());
        let why = by_share.mass_delete(9, 10).expect("90% trips");
        assert!(why.contains("90%"), "{why}");
        assert!(ReconcileSettings::default()
            .mass_delete(1_000, 1_000)
            .is_none());
    }
}
