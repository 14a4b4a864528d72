//! Quarantine: a target that keeps failing is paused. Its backlog is kept; one probe order is
//! tried per probe interval (doubling, up to ten times the interval) until one succeeds.
//! Health is tracked per process; with several instances each one pauses on its own evidence.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::storage::{now_micros, Micros};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Retryable failures in a row (permanent ones say nothing about the target's health).
    pub consecutive_failures: u32,
    pub quarantined_since: Option<Micros>,
    pub next_probe_at: Option<Micros>,
    probe_delay: Micros,
}

#[derive(Debug, Default)]
pub struct QuarantineBoard {
    targets: Mutex<HashMap<String, Health>>,
}

/// What a worker may do with a target now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Deliver normally.
    Open,
    /// Quarantined: deliver one order to probe.
    Probe,
    /// Quarantined and not yet time to probe.
    Closed,
}

impl QuarantineBoard {
    pub fn health(&self, target: &str) -> Health {
        self.targets
            .lock()
            .ok()
            .and_then(|t| t.get(target).cloned())
            .unwrap_or_default()
    }

    pub fn permit(&self, target: &str) -> Permit {
        let health = self.health(target);
        match health.next_probe_at {
            None => Permit::Open,
            Some(at) if at <= now_micros() => Permit::Probe,
            Some(_) => Permit::Closed,
        }
    }

    pub fn succeeded(&self, target: &str) {
        if let Ok(mut t) = self.targets.lock() {
            if t.get(target).is_some_and(|h| h.quarantined_since.is_some()) {
                tracing::info!(target, "target recovered: quarantine lifted");
            }
            t.remove(target);
        }
    }

    /// Records a retryable failure; quarantines after `threshold` in a row.
    pub fn failed(&self, target: &str, threshold: u32, probe_interval: Micros) {
        let Ok(mut t) = self.targets.lock() else {
            return;
        };
        let health = t.entry(target.to_string()).or_default();
        health.consecutive_failures += 1;
        let now = now_micros();
        match health.quarantined_since {
            Some(_) => {
                // A failed probe: wait longer before the next one.
                health.probe_delay = (health.probe_delay * 2).min(probe_interval * 10);
                health.next_probe_at = Some(now + health.probe_delay);
            }
            None if threshold > 0 && health.consecutive_failures >= threshold => {
                tracing::warn!(
                    target,
                    failures = health.consecutive_failures,
                    "target quarantined"
                );
                health.quarantined_since = Some(now);
                health.probe_delay = probe_interval;
                health.next_probe_at = Some(now + probe_interval);
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantines_after_the_threshold_and_recovers_on_success() {
        let board = QuarantineBoard::default();
        board.failed("t", 3, 1_000_000);
        board.failed("t", 3, 1_000_000);
        assert_eq!(board.permit("t"), Permit::Open);
        board.failed("t", 3, 1_000_000);
        assert_eq!(board.permit("t"), Permit::Closed);
        assert!(board.health("t").quarantined_since.is_some());
        board.succeeded("t");
        assert_eq!(board.permit("t"), Permit::Open);
        assert_eq!(board.health("t"), Health::default());
        // A zero interval probes at once.
        board.failed("u", 1, 0);
        assert_eq!(board.permit("u"), Permit::Probe);
    }
}
