//! Token buckets by name: at most `rate` a second on average, in bursts of up to one second's
//! worth (at least one). Per process: each instance keeps its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

#[derive(Debug, Default)]
pub struct Buckets {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    /// Takes up to `wanted` tokens from `name`'s bucket, refilled at `rate` a second; answers
    /// how many it got.
    pub fn take(&self, name: &str, rate: f64, wanted: i64) -> i64 {
        let Ok(mut buckets) = self.buckets.lock() else {
            return wanted;
        };
        let now = Instant::now();
        let capacity = rate.max(1.0);
        let bucket = buckets.entry(name.to_string()).or_insert(Bucket {
            tokens: capacity,
            refilled: now,
        });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.refilled).as_secs_f64() * rate)
            .min(capacity);
        bucket.refilled = now;
        let granted = (bucket.tokens.floor() as i64).clamp(0, wanted);
        bucket.tokens -= granted as f64;
        granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_seconds_worth_then_nothing_until_refilled() {
        let buckets = Buckets::default();
        assert_eq!(buckets.take("a", 5.0, 10), 5);
        assert_eq!(buckets.take("a", 5.0, 1), 0);
        assert_eq!(buckets.take("b", 5.0, 1), 1, "each name has its own bucket");
        assert_eq!(buckets.take("c", 0.5, 3), 1, "at least one at a slow rate");
    }
}
