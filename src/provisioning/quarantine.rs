//! Quarantine: a target that keeps failing is paused. Its backlog is kept; one probe order is
//! tried per probe interval (doubling, up to ten times the interval) until one succeeds.
//!
//! Health lives in the database (`target_health`), so every instance sharing it sees and
//! honours a quarantine, and each probe goes out from one instance only. A worker records
//! outcomes in memory while it delivers and writes them once per round ([`QuarantineBoard::flush`]);
//! at the start of each round it reads every target's health and takes the probes that are due
//! ([`QuarantineBoard::sync`]). Successes cost no write while a target is healthy.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use crate::storage::target_health::{self, HealthRow};
use crate::storage::{now_micros, Db, Micros, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Retryable failures in a row (permanent ones say nothing about the target's health).
    pub consecutive_failures: u32,
    pub quarantined_since: Option<Micros>,
    pub next_probe_at: Option<Micros>,
    /// The current wait between probes.
    pub probe_delay: Micros,
}

/// One delivery's verdict on a target's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    /// A retryable failure, with the target's settings at the time.
    Failure {
        threshold: u32,
        probe_interval: Micros,
    },
}

impl Health {
    pub fn from_row(row: &HealthRow) -> Health {
        Health {
            consecutive_failures: row.consecutive_failures.max(0) as u32,
            quarantined_since: row.quarantined_since,
            next_probe_at: row.next_probe_at,
            probe_delay: row.probe_delay,
        }
    }

    fn write_to(&self, row: &mut HealthRow) {
        row.consecutive_failures = self.consecutive_failures.min(i32::MAX as u32) as i32;
        row.quarantined_since = self.quarantined_since;
        row.next_probe_at = self.next_probe_at;
        row.probe_delay = self.probe_delay;
    }

    fn record(&mut self, target: &str, outcome: Outcome, now: Micros) {
        let Outcome::Failure {
            threshold,
            probe_interval,
        } = outcome
        else {
            if self.quarantined_since.is_some() {
                tracing::info!(target, "target recovered: quarantine lifted");
            }
            *self = Health::default();
            return;
        };
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.quarantined_since {
            // More failures of the batch that started the quarantine: not probes.
            Some(since) if since == now => {}
            Some(_) => {
                // A failed probe: wait longer before the next one.
                self.probe_delay = (self.probe_delay * 2).min(probe_interval * 10);
                self.next_probe_at = Some(now + self.probe_delay);
            }
            None if threshold > 0 && self.consecutive_failures >= threshold => {
                tracing::warn!(
                    target,
                    failures = self.consecutive_failures,
                    "target quarantined"
                );
                self.quarantined_since = Some(now);
                self.probe_delay = probe_interval;
                self.next_probe_at = Some(now + probe_interval);
            }
            None => {}
        }
    }
}

/// What a worker may do with a target now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Deliver normally.
    Open,
    /// Quarantined: deliver one order to probe.
    Probe,
    /// Quarantined and not yet time to probe (or another instance probes).
    Closed,
}

/// One worker's view of target health and the outcomes it has yet to write.
#[derive(Debug, Default)]
pub struct QuarantineBoard {
    /// Every target's health as of the last [`QuarantineBoard::sync`].
    known: Mutex<HashMap<String, Health>>,
    /// Probes this worker has taken and not yet sent.
    probes: Mutex<HashSet<String>>,
    /// Outcomes not yet written, in the order they happened.
    pending: Mutex<Vec<(String, Outcome)>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere; the data is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl QuarantineBoard {
    /// The target's health as this worker last read it.
    pub fn health(&self, target: &str) -> Health {
        locked(&self.known).get(target).cloned().unwrap_or_default()
    }

    pub fn permit(&self, target: &str) -> Permit {
        if locked(&self.probes).remove(target) {
            return Permit::Probe;
        }
        match self.health(target).next_probe_at {
            None => Permit::Open,
            Some(_) => Permit::Closed,
        }
    }

    pub fn succeeded(&self, target: &str) {
        let mut pending = locked(&self.pending);
        // While a target is healthy a success changes nothing: nothing to write.
        if pending.iter().any(|(t, _)| t == target) || self.health(target) != Health::default() {
            pending.push((target.to_string(), Outcome::Success));
        }
    }

    /// Records a retryable failure; the target is quarantined after `threshold` in a row.
    pub fn failed(&self, target: &str, threshold: u32, probe_interval: Micros) {
        locked(&self.pending).push((
            target.to_string(),
            Outcome::Failure {
                threshold,
                probe_interval,
            },
        ));
    }

    pub fn has_pending(&self) -> bool {
        !locked(&self.pending).is_empty()
    }

    /// Writes the outcomes recorded since the last flush, one transaction per target that
    /// has something to say: any failure, or a success while it is not healthy.
    pub fn flush(&self, db: &Db) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut *locked(&self.pending));
        let mut per_target: Vec<(String, Vec<Outcome>)> = Vec::new();
        for (target, outcome) in pending {
            match per_target.iter_mut().find(|(t, _)| *t == target) {
                Some((_, list)) => list.push(outcome),
                None => per_target.push((target, vec![outcome])),
            }
        }
        for (target, outcomes) in per_target {
            let healthy = self.health(&target) == Health::default();
            if healthy && outcomes.iter().all(|o| *o == Outcome::Success) {
                continue;
            }
            let row = target_health::update(db, &target, |row| {
                let mut health = Health::from_row(row);
                let now = now_micros();
                for outcome in outcomes {
                    health.record(&target, outcome, now);
                }
                health.write_to(row);
            })?;
            locked(&self.known).insert(target, Health::from_row(&row));
        }
        Ok(())
    }

    /// Writes pending outcomes, reads every target's health (whoever wrote it), and takes the
    /// probes that are due for targets with an order waiting.
    pub fn sync(&self, db: &Db) -> Result<(), StoreError> {
        self.flush(db)?;
        let rows = db.read(target_health::all)?;
        let known: HashMap<String, Health> = rows
            .iter()
            .map(|r| (r.target.clone(), Health::from_row(r)))
            .collect();
        let now = now_micros();
        let mut probes = HashSet::new();
        for (target, health) in &known {
            let Some(at) = health.next_probe_at.filter(|at| *at <= now) else {
                continue;
            };
            if !db.read(|c| target_health::has_due_orders(c, target, now))? {
                continue;
            }
            if target_health::claim_probe(db, target, at, now + health.probe_delay.max(0))? {
                probes.insert(target.clone());
            }
        }
        *locked(&self.known) = known;
        *locked(&self.probes) = probes;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAIL: Outcome = Outcome::Failure {
        threshold: 3,
        probe_interval: 1_000_000,
    };

    #[test]
    fn quarantines_after_the_threshold_and_recovers_on_success() {
        let mut h = Health::default();
        h.record("t", FAIL, 0);
        h.record("t", FAIL, 0);
        assert_eq!(h.quarantined_since, None);
        h.record("t", FAIL, 10);
        assert_eq!(h.quarantined_since, Some(10));
        assert_eq!(h.next_probe_at, Some(1_000_010));
        h.record("t", FAIL, 10);
        assert_eq!(
            h.next_probe_at,
            Some(1_000_010),
            "the same batch: not a probe"
        );
        // A failed probe doubles the wait, up to ten intervals.
        h.record("t", FAIL, 20);
        assert_eq!(h.next_probe_at, Some(2_000_020));
        for _ in 0..10 {
            h.record("t", FAIL, 30);
        }
        assert_eq!(h.probe_delay, 10_000_000);
        h.record("t", Outcome::Success, 40);
        assert_eq!(h, Health::default());
        // A threshold of zero never quarantines.
        let mut never = Health::default();
        for _ in 0..100 {
            never.record(
                "u",
                Outcome::Failure {
                    threshold: 0,
                    probe_interval: 1,
                },
                0,
            );
        }
        assert_eq!(never.next_probe_at, None);
    }

    #[test]
    fn permits_follow_known_health_and_taken_probes() {
        let board = QuarantineBoard::default();
        assert_eq!(board.permit("t"), Permit::Open);
        locked(&board.known).insert(
            "t".into(),
            Health {
                consecutive_failures: 3,
                quarantined_since: Some(1),
                next_probe_at: Some(2),
                probe_delay: 1,
            },
        );
        assert_eq!(board.permit("t"), Permit::Closed);
        locked(&board.probes).insert("t".into());
        assert_eq!(board.permit("t"), Permit::Probe);
        assert_eq!(board.permit("t"), Permit::Closed, "a probe is taken once");
    }
}
