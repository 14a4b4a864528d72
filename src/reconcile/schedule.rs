//! Full syncs on each target's schedule (`reconcile.schedule`): an interval (`every 6h`) or a
//! cron expression in UTC. The engine asks [`Scheduler::tick`] now and then; a due target's
//! sync runs in the background. Instances sharing a database agree through the sync runs
//! table and the target lock: a sync another instance started is not started again.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::full_sync::{self, SyncOptions};
use crate::provisioning::Context;
use crate::provisioning::Target;
use crate::storage::{sync_runs, target_locks, Micros};

/// How often schedules are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<croner::Cron>),
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if let Some(interval) = text.strip_prefix("every ") {
            let interval = interval.trim();
            let split = interval
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(interval.len());
            let (number, unit) = interval.split_at(split);
            let n: u64 = number
                .parse()
                .map_err(|_| format!("schedule {text:?}: expected e.g. \"every 6h\""))?;
            let seconds = match unit.trim() {
                "s" => n,
                "m" => n * 60,
                "h" => n * 3_600,
                "d" => n * 86_400,
                other => {
                    return Err(format!(
                        "schedule {text:?}: unknown unit {other:?} (s, m, h or d)"
                    ))
                }
            };
            if seconds == 0 {
                return Err(format!("schedule {text:?}: the interval must be positive"));
            }
            return Ok(Schedule::Every(Duration::from_secs(seconds)));
        }
        croner::Cron::from_str(text)
            .map(|cron| Schedule::Cron(Box::new(cron)))
            .map_err(|e| format!("schedule {text:?}: {e}"))
    }

    /// Whether a sync is due at `now`, the last one having started at `last` (never: due).
    pub fn due(&self, last: Option<Micros>, now: Micros) -> bool {
        let Some(last) = last else { return true };
        match self {
            Schedule::Every(interval) => now - last >= interval.as_micros() as i64,
            Schedule::Cron(cron) => {
                let Some(after) = DateTime::<Utc>::from_timestamp_micros(last) else {
                    return true;
                };
                cron.find_next_occurrence(&after, false)
                    .is_ok_and(|next| next.timestamp_micros() <= now)
            }
        }
    }
}

/// Starts scheduled full syncs; one per target at a time from this process.
#[derive(Default)]
pub struct Scheduler {
    last_check: Mutex<Option<Instant>>,
    running: Arc<Mutex<HashSet<String>>>,
}

impl Scheduler {
    /// Starts the syncs that are due among `targets`, at most every few seconds.
    pub fn tick(&self, directory: &Context, targets: &[Arc<Target>]) {
        {
            let Ok(mut last) = self.last_check.lock() else {
                return;
            };
            if last.is_some_and(|at| at.elapsed() < CHECK_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        for target in targets.iter().filter(|t| t.config.enabled) {
            let Some(text) = &target.config.reconcile.schedule else {
                continue;
            };
            let schedule = match Schedule::parse(text) {
                Ok(s) => s,
                Err(error) => {
                    tracing::warn!(target = %target.config.name, %error, "schedule ignored");
                    continue;
                }
            };
            self.start_if_due(directory, target.clone(), schedule);
        }
    }

    fn start_if_due(&self, directory: &Context, target: Arc<Target>, schedule: Schedule) {
        let name = target.config.name.clone();
        {
            let Ok(mut running) = self.running.lock() else {
                return;
            };
            if !running.insert(name.clone()) {
                return;
            }
        }
        let (directory, running) = (directory.clone(), self.running.clone());
        tokio::spawn(async move {
            let options = SyncOptions {
                dry_run: false,
                trigger: "schedule",
            };
            let (db, check_name) = (directory.db().clone(), name.clone());
            // Deciding and recording the run's start is store work: off the async runtime.
            let started = tokio::task::spawn_blocking(move || {
                let now = db.clock().now_micros();
                let due = db.read(|c| {
                    let busy = target_locks::held(c, &check_name, now)?.is_some();
                    let last = sync_runs::last_full_sync_start(c, &check_name)?;
                    Ok::<_, crate::storage::StoreError>(!busy && schedule.due(last, now))
                })?;
                if !due {
                    return Ok(None);
                }
                full_sync::start(&db, &check_name, options).map(Some)
            })
            .await;
            match started {
                Ok(Ok(Some(id))) => match full_sync::run(&directory, &target, id, options).await {
                    Ok(report) => {
                        tracing::info!(target = %name, id, emitted = report.orders_emitted, "scheduled full sync done")
                    }
                    Err(error) => {
                        tracing::warn!(target = %name, %error, "scheduled full sync failed")
                    }
                },
                Ok(Ok(None)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(target = %name, %error, "scheduled full sync not started")
                }
                Err(error) => {
                    tracing::warn!(target = %name, %error, "schedule check failed")
                }
            }
            if let Ok(mut running) = running.lock() {
                running.remove(&name);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_cron_expressions() {
        let hour = 3_600_000_000i64;
        let every = Schedule::parse("every 6h").expect("interval");
        assert!(every.due(None, 0));
        assert!(!every.due(Some(0), 5 * hour));
        assert!(every.due(Some(0), 6 * hour));
        // 03:00 UTC daily; the epoch began at midnight.
        let nightly = Schedule::parse("0 3 * * *").expect("cron");
        assert!(!nightly.due(Some(0), 2 * hour));
        assert!(nightly.due(Some(0), 3 * hour));
        assert!(Schedule::parse("every 6 weeks").is_err());
        assert!(Schedule::parse("every 0m").is_err());
        assert!(Schedule::parse("not a schedule").is_err());
    }
}
