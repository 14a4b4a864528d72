//! Reconciliation: knowing what each target really holds and enforcing the desired state.
//!
//! [`aggregate`] reads every account and group of a target into the accounts table and
//! [`correlation`] links each to an identity (or flags it as orphan or ambiguous).
//! [`full_sync`] takes the target's lock (incremental delivery waits), aggregates, compares
//! every in-scope identity mapped through the target's mapping ([`diff`]) with what was read,
//! and emits corrective orders, recording the drift it found. [`schedule`] runs full syncs on
//! each target's schedule.

pub mod aggregate;
pub mod command;
pub mod correlation;
pub mod diff;
mod error;
pub mod full_sync;
pub mod runs;
pub mod schedule;

pub use error::ReconcileError;

use crate::targets::reconcile::ReconcileSettings;

/// Checks what deserialising a target's `[targets.reconcile]` cannot: the orphan policy, the
/// correlation rules and the schedule parse, and the guard's share is a percentage.
pub fn check_settings(settings: &ReconcileSettings) -> Result<(), String> {
    settings.orphan_policy()?;
    for rule in &settings.correlation {
        correlation::Rule::parse(rule)?;
    }
    if let Some(schedule) = &settings.schedule {
        schedule::Schedule::parse(schedule)?;
    }
    if settings
        .mass_delete_percent
        .is_some_and(|p| !(0.0..=100.0).contains(&p))
    {
        return Err("reconcile.mass_delete_percent must be between 0 and 100".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciliation_settings_are_checked() {
        let refused = |adjust: fn(&mut ReconcileSettings)| {
            let mut settings = ReconcileSettings::default();
            adjust(&mut settings);
            check_settings(&settings).err().unwrap_or_default()
        };
        assert!(refused(|c| c.orphans = Some("shred".into())).contains("orphans"));
        assert!(
            refused(|c| c.correlation = vec!["userName uid".into()]).contains("correlation rule")
        );
        assert!(refused(|c| c.schedule = Some("every 6 weeks".into())).contains("schedule"));
        assert!(refused(|c| c.mass_delete_percent = Some(120.0)).contains("mass_delete_percent"));
        assert_eq!(refused(|c| c.schedule = Some("0 3 * * *".into())), "");
    }
}
