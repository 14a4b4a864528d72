//! How busy the server is with identity providers' requests, so background work (event
//! delivery) can yield to them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// SCIM requests being served, and when they last reached the busy mark.
#[derive(Debug)]
pub struct Inbound {
    in_flight: AtomicUsize,
    /// This many requests at once is busy (0: never).
    busy_at: usize,
    started: Instant,
    /// Milliseconds after `started` when requests last reached `busy_at`, plus one (0: never).
    last_busy: AtomicU64,
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound::new(0)
    }
}

impl Inbound {
    /// Counts requests; `busy_at` of them at once (or more) is busy.
    pub fn new(busy_at: usize) -> Inbound {
        Inbound {
            in_flight: AtomicUsize::new(0),
            busy_at,
            started: Instant::now(),
            last_busy: AtomicU64::new(0),
        }
    }

    /// Counts a request until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        if self.busy_at > 0 && now >= self.busy_at {
            let at = self.started.elapsed().as_millis() as u64 + 1;
            self.last_busy.store(at, Ordering::Relaxed);
        }
        InFlight(self.clone())
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether requests reached the busy mark within the last `window` (a burst does not
    /// look calm in the instant between two of its requests).
    pub fn busy_within(&self, window: Duration) -> bool {
        if self.busy_at > 0 && self.in_flight() >= self.busy_at {
            return true;
        }
        match self.last_busy.load(Ordering::Relaxed) {
            0 => false,
            at => {
                let now = self.started.elapsed().as_millis() as u64 + 1;
                now.saturating_sub(at) < window.as_millis() as u64
            }
        }
    }
}

/// One request being served.
pub struct InFlight(Arc<Inbound>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_and_remembers_being_busy() {
        let inbound = Arc::new(Inbound::new(2));
        assert!(!inbound.busy_within(Duration::from_secs(1)));
        let first = inbound.enter();
        assert!(!inbound.busy_within(Duration::from_secs(1)));
        let second = inbound.enter();
        assert_eq!(inbound.in_flight(), 2);
        drop(first);
        drop(second);
        assert_eq!(inbound.in_flight(), 0);
        assert!(inbound.busy_within(Duration::from_secs(60)), "just now");
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            !inbound.busy_within(Duration::from_millis(10)),
            "calm since"
        );
        let never = Arc::new(Inbound::new(0));
        let _a = never.enter();
        assert!(!never.busy_within(Duration::from_secs(1)));
    }
}
