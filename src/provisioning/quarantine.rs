//! Quarantine: a target that keeps failing is paused. Failures must persist in count *and* in
//! time (`quarantine_after` in a row over at least `quarantine_after_seconds`), so a burst while
//! a target restarts is retried, not quarantined. Its backlog is kept; probes start soon (one
//! second) and double up to the probe interval until one succeeds. When a target that was
//! failing succeeds again, the retries it had pushed back are made due at once, so its backlog
//! moves within a round of its return instead of on each order's backoff.
//!
//! Health lives in the database (`target_health`), so every instance sharing it sees and
//! honours a quarantine, and each probe goes out from one instance only. A worker records
//! outcomes in memory while it delivers and writes them once per round ([`QuarantineBoard::flush`]);
//! at the start of each round it reads every target's health and takes the probes that are due
//! ([`QuarantineBoard::sync`]). Successes cost no write while a target is healthy.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use crate::storage::orders;
use crate::storage::target_health::{self, HealthRow};
use crate::storage::{Db, Micros, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Retryable failures in a row (permanent ones say nothing about the target's health).
    pub consecutive_failures: u32,
    /// When the current run of failures began.
    pub failing_since: Option<Micros>,
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
    Failure(FailurePolicy),
}

/// A target's quarantine settings, as they were when a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Failures in a row before quarantine (0: never).
    pub threshold: u32,
    /// How long the failures must have gone on.
    pub min_duration: Micros,
    /// The longest wait between probes.
    pub probe_interval: Micros,
}

/// The first probe's wait: a target that was only restarting is back within seconds.
const FIRST_PROBE: Micros = 1_000_000;

impl Health {
    pub fn from_row(row: &HealthRow) -> Health {
        Health {
            consecutive_failures: row.consecutive_failures.max(0) as u32,
            failing_since: row.failing_since,
            quarantined_since: row.quarantined_since,
            next_probe_at: row.next_probe_at,
            probe_delay: row.probe_delay,
        }
    }

    fn write_to(&self, row: &mut HealthRow) {
        row.consecutive_failures = self.consecutive_failures.min(i32::MAX as u32) as i32;
        row.failing_since = self.failing_since;
        row.quarantined_since = self.quarantined_since;
        row.next_probe_at = self.next_probe_at;
        row.probe_delay = self.probe_delay;
    }

    fn record(&mut self, target: &str, outcome: Outcome, now: Micros) {
        let Outcome::Failure(policy) = outcome else {
            if self.quarantined_since.is_some() {
                tracing::info!(target, "target recovered: quarantine lifted");
            }
            *self = Health::default();
            return;
        };
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let since = *self.failing_since.get_or_insert(now);
        let interval = policy.probe_interval.max(1);
        match self.quarantined_since {
            // More failures of the batch that started the quarantine: not probes.
            Some(started) if started == now => {}
            Some(_) => {
                // A failed probe: wait longer before the next one.
                self.probe_delay = (self.probe_delay * 2).min(interval);
                self.next_probe_at = Some(now + self.probe_delay);
            }
            None if policy.threshold > 0
                && self.consecutive_failures >= policy.threshold
                && now - since >= policy.min_duration =>
            {
                tracing::warn!(
                    target,
                    failures = self.consecutive_failures,
                    failing_for_ms = (now - since) / 1000,
                    "target quarantined"
                );
                self.quarantined_since = Some(now);
                self.probe_delay = FIRST_PROBE.min(interval);
                self.next_probe_at = Some(now + self.probe_delay);
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

    /// Records a failure that says the target is unwell.
    pub fn failed(&self, target: &str, policy: FailurePolicy) {
        locked(&self.pending).push((target.to_string(), Outcome::Failure(policy)));
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
            let mut recovered = false;
            let row = target_health::update(db, &target, |row| {
                let mut health = Health::from_row(row);
                let was_failing = health.consecutive_failures > 0;
                let now = db.clock().now_micros();
                for outcome in outcomes {
                    health.record(&target, outcome, now);
                }
                recovered = was_failing && health == Health::default();
                health.write_to(row);
            })?;
            if recovered {
                // Back: what waited out its backoff during the outage goes now.
                let hastened = orders::hasten_retries(db, &target, db.clock().now_micros())?;
                tracing::info!(target = %target, hastened, "target answers again: retries made due");
            }
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
        let now = db.clock().now_micros();
        let mut probes = HashSet::new();
        for (target, health) in &known {
            let Some(at) = health.next_probe_at.filter(|at| *at <= now) else {
                continue;
            };
            // A probe needs an order to send; one waiting out its backoff is taken early.
            if !db.read(|c| orders::has_due_orders(c, target))? {
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

    const SECOND: Micros = 1_000_000;
    const FAIL: Outcome = Outcome::Failure(FailurePolicy {
        threshold: 3,
        min_duration: 10 * SECOND,
        probe_interval: 60 * SECOND,
    });

    #[test]
    fn quarantines_after_failures_persisting_in_count_and_time() {
        let mut h = Health::default();
        // A burst: many failures within a second is not enough.
        for _ in 0..50 {
            h.record("t", FAIL, SECOND);
        }
        assert_eq!(
            h.quarantined_since, None,
            "a burst is retried, not quarantined"
        );
        assert_eq!(h.failing_since, Some(SECOND));
        h.record("t", FAIL, 11 * SECOND);
        assert_eq!(h.quarantined_since, Some(11 * SECOND));
        assert_eq!(
            h.next_probe_at,
            Some(12 * SECOND),
            "the first probe a second later"
        );
        h.record("t", FAIL, 11 * SECOND);
        assert_eq!(
            h.next_probe_at,
            Some(12 * SECOND),
            "the same batch: not a probe"
        );
        // Failed probes double the wait, up to the probe interval.
        h.record("t", FAIL, 12 * SECOND);
        assert_eq!(h.next_probe_at, Some(14 * SECOND));
        for _ in 0..10 {
            h.record("t", FAIL, 20 * SECOND);
        }
        assert_eq!(h.probe_delay, 60 * SECOND);
        h.record("t", Outcome::Success, 40 * SECOND);
        assert_eq!(h, Health::default());
        // Time alone is not enough either.
        let mut slow = Health::default();
        slow.record("t", FAIL, 0);
        slow.record("t", FAIL, 100 * SECOND);
        assert_eq!(slow.quarantined_since, None);
        // A threshold of zero never quarantines.
        let mut never = Health::default();
        for n in 0..100 {
            never.record(
                "u",
                Outcome::Failure(FailurePolicy {
                    threshold: 0,
                    min_duration: 0,
                    probe_interval: 1,
                }),
                n * SECOND,
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
                failing_since: Some(1),
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
