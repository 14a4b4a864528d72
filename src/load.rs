//! How busy the server is with identity providers' requests right now, so background work
//! (event delivery) can yield to them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// SCIM requests being served.
#[derive(Debug, Default)]
pub struct Inbound {
    in_flight: AtomicUsize,
}

impl Inbound {
    /// Counts a request until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
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
    fn counts_requests_until_they_end() {
        let inbound = Arc::new(Inbound::default());
        let first = inbound.enter();
        let second = inbound.enter();
        assert_eq!(inbound.in_flight(), 2);
        drop(first);
        drop(second);
        assert_eq!(inbound.in_flight(), 0);
    }
}
