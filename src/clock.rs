//! Time as the process reads it. A server reads the system's clock; a test hands in one it can
//! move forward (`advance`), so no test sleeps for a lease, a lock or a cache entry to expire.
//! Every timestamp scimgate stores or compares comes from the clock its database handle holds.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Microseconds since the Unix epoch: how every timestamp is stored on both backends.
pub type Micros = i64;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// How far an adjustable clock has been moved ahead of the system's; `None`: the system's.
    ahead: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that runs with the system's and can be moved forward (tests).
    pub fn adjustable() -> Clock {
        Clock {
            ahead: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    pub fn now_micros(&self) -> Micros {
        let ahead = self
            .ahead
            .as_ref()
            .map_or(0, |ahead| ahead.load(Ordering::Relaxed));
        chrono::Utc::now().timestamp_micros() + ahead
    }

    /// Moves an adjustable clock (and every clone of it) forward; the system's cannot move.
    pub fn advance(&self, by: Duration) {
        if let Some(ahead) = &self.ahead {
            let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
            ahead.fetch_add(micros, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_moves_forward_for_all_its_clones() {
        let clock = Clock::adjustable();
        let seen_by_another = clock.clone();
        let before = seen_by_another.now_micros();
        clock.advance(Duration::from_secs(3_600));
        assert!(seen_by_another.now_micros() - before >= 3_600_000_000);
        let system = Clock::system();
        let at = system.now_micros();
        system.advance(Duration::from_secs(3_600));
        assert!(
            system.now_micros() - at < 3_600_000_000,
            "the system's does not move"
        );
    }
}
