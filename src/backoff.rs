//! Retry delays: exponential with jitter, `Retry-After` honoured.

use std::time::Duration;

/// The delay before attempt `attempts + 1`, given `attempts` made so far.
pub fn delay(
    attempts: i32,
    base_ms: u64,
    max_ms: u64,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 30) as u32;
    let raw = base_ms.saturating_mul(1u64 << exponent).min(max_ms);
    // jitter in [0, 1): spread retries of many orders over ±25 % of the delay.
    let jittered = (raw as f64 * (0.75 + 0.5 * jitter.clamp(0.0, 1.0))) as u64;
    let computed = Duration::from_millis(jittered.min(max_ms));
    match retry_after {
        Some(asked) => asked.max(computed.min(asked)),
        None => computed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_until_the_cap_and_honours_retry_after() {
        assert_eq!(
            delay(1, 1000, 60_000, None, 0.5),
            Duration::from_millis(1000)
        );
        assert_eq!(
            delay(2, 1000, 60_000, None, 0.5),
            Duration::from_millis(2000)
        );
        assert_eq!(
            delay(4, 1000, 60_000, None, 0.5),
            Duration::from_millis(8000)
        );
        assert_eq!(
            delay(30, 1000, 60_000, None, 0.5),
            Duration::from_millis(60_000)
        );
        assert_eq!(
            delay(1, 1000, 60_000, None, 0.0),
            Duration::from_millis(750)
        );
        assert_eq!(
            delay(1, 1000, 60_000, Some(Duration::from_secs(7)), 0.5),
            Duration::from_secs(7)
        );
    }
}
