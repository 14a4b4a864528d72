//! How a delivery attempt ends: the order's next state and what is recorded with it, decided
//! from the attempt's result, the order's history and the target's retry policy alone. The
//! workers and on-demand runs both end their attempts here.

use std::time::Duration;

use crate::connectors::ConnectorError;
use crate::storage::orders::{AttemptRecord, Finish, Hold, Order, OrderState};
use crate::storage::Micros;
use crate::targets::TargetConfig;

use super::outcome::{Outcome, Parked, Verification};
use crate::backoff;

/// A target's retry budget and backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: i32,
    pub max_age: Duration,
    pub base_ms: u64,
    pub max_ms: u64,
}

impl RetryPolicy {
    pub fn of(config: &TargetConfig) -> RetryPolicy {
        RetryPolicy {
            max_attempts: config.max_attempts,
            max_age: Duration::from_secs(config.max_age_seconds),
            base_ms: config.retry_base_ms,
            max_ms: config.retry_max_ms,
        }
    }
}

/// When and how long an attempt ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempted {
    pub started_at: Micros,
    pub duration_ms: i64,
}

/// [`finish`] for an attempt on `target` that started at `started_at` (`began` on the
/// monotonic clock), ending `now`, with a random spread of retries.
pub fn conclude(
    result: Result<Outcome, ConnectorError>,
    order: &Order,
    target: &TargetConfig,
    (started_at, began): (Micros, std::time::Instant),
    now: Micros,
) -> (Finish, AttemptRecord) {
    let attempted = Attempted {
        started_at,
        duration_ms: began.elapsed().as_millis() as i64,
    };
    let policy = RetryPolicy::of(target);
    finish(
        result,
        order,
        attempted,
        &policy,
        now,
        rand::random::<f64>(),
    )
}

/// The order's next state and the attempt's record. `jitter` in [0, 1) spreads retries.
pub fn finish(
    result: Result<Outcome, ConnectorError>,
    order: &Order,
    attempted: Attempted,
    policy: &RetryPolicy,
    now: Micros,
    jitter: f64,
) -> (Finish, AttemptRecord) {
    let mut attempt = AttemptRecord {
        started_at: attempted.started_at,
        duration_ms: attempted.duration_ms,
        http_status: None,
        error: None,
        response_id: None,
    };
    let mut next = Finish {
        state: OrderState::Executed,
        next_attempt_at: None,
        link: None,
        verified: false,
        hold: None,
        waiting_for: None,
        note: None,
    };
    match result {
        // Held for review, or handed to a person: the target was not contacted.
        Ok(Outcome {
            parked: Some(parked),
            ..
        }) => match parked {
            Parked::Held(reason) => {
                next.state = OrderState::AwaitingApproval;
                next.hold = Some(Hold::review(reason));
            }
            // Stays transmitted, without a lease, until the work item is closed.
            Parked::WithPerson => next.state = OrderState::Transmitted,
        },
        Ok(done) => {
            next.verified = done.verification == Verification::Matches;
            next.note = done.note;
            next.link = done.link;
            if let Verification::Drift(drift) = done.verification {
                attempt.error = Some(drift);
            }
            attempt.http_status = done.delivered.status.map(i32::from);
            attempt.response_id = done.delivered.remote_id;
        }
        Err(error) => {
            attempt.http_status = error.status().map(i32::from);
            attempt.error = Some(error.to_string());
            let retry_after = match &error {
                ConnectorError::Retryable { retry_after, .. } => Some(*retry_after),
                ConnectorError::Deferred { .. } => Some(None),
                ConnectorError::Permanent { .. } | ConnectorError::Unsupported { .. } => None,
            };
            // Waiting for a member is not the target failing: only age bounds it (the
            // member's order landing, or ending in error, makes this order due again).
            let deferred = match error {
                ConnectorError::Deferred { waiting_for, .. } => {
                    next.waiting_for = waiting_for;
                    true
                }
                _ => false,
            };
            let age = Duration::from_micros(now.saturating_sub(order.created_at).max(0) as u64);
            let within_budget =
                (deferred || order.attempts < policy.max_attempts) && age < policy.max_age;
            match retry_after {
                Some(retry_after) if within_budget => {
                    let delay = backoff::delay(
                        order.attempts,
                        policy.base_ms,
                        policy.max_ms,
                        retry_after,
                        jitter,
                    );
                    next.state = OrderState::Errored;
                    next.next_attempt_at = Some(now + delay.as_micros() as i64);
                }
                _ => next.state = OrderState::Error,
            }
        }
    }
    (next, attempt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::Delivered;
    use crate::storage::orders::{LinkChange, Operation, Origin};

    const NOW: Micros = 1_000_000_000;

    fn order(attempts: i32, age_seconds: i64) -> Order {
        Order {
            id: 7,
            target: "t".into(),
            resource_type: "User".into(),
            resource_id: "u".into(),
            change_seq: 1,
            operation: Operation::Upsert,
            state: OrderState::Transmitted,
            attempts,
            next_attempt_at: 0,
            lease_owner: Some("w".into()),
            lease_until: Some(NOW),
            last_error: None,
            remote_id: None,
            created_at: NOW - age_seconds * 1_000_000,
            updated_at: 0,
            origin: Origin::Change,
            sync_id: None,
            held_reason: None,
            held_by: None,
            approved: false,
            decided_by: None,
            decided_at: None,
            decision_comment: None,
            waiting_for: None,
            note: None,
            connection: None,
        }
    }

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        max_age: Duration::from_secs(3_600),
        base_ms: 1_000,
        max_ms: 60_000,
    };

    const ATTEMPT: Attempted = Attempted {
        started_at: NOW - 5_000,
        duration_ms: 5,
    };

    fn delivered(verification: Verification) -> Outcome {
        Outcome {
            delivered: Delivered {
                remote_id: Some("r1".into()),
                status: Some(201),
                ..Delivered::default()
            },
            verification,
            link: Some(LinkChange::Set("r1".into())),
            parked: None,
            note: None,
        }
    }

    /// The next state of an order with `attempts` made, `age_seconds` old, after `result`.
    fn after(
        result: Result<Outcome, ConnectorError>,
        attempts: i32,
        age_seconds: i64,
    ) -> (Finish, AttemptRecord) {
        finish(
            result,
            &order(attempts, age_seconds),
            ATTEMPT,
            &POLICY,
            NOW,
            0.5,
        )
    }

    fn retryable() -> ConnectorError {
        ConnectorError::Retryable {
            message: "503".into(),
            status: Some(503),
            retry_after: None,
        }
    }

    #[test]
    fn a_matching_read_back_is_verified_with_its_link() {
        let (next, attempt) = after(Ok(delivered(Verification::Matches)), 1, 0);
        assert_eq!(next.state, OrderState::Executed);
        assert!(next.verified);
        assert_eq!(next.link, Some(LinkChange::Set("r1".into())));
        assert_eq!(attempt.http_status, Some(201));
        assert_eq!(attempt.response_id.as_deref(), Some("r1"));
        assert_eq!(attempt.error, None);
    }

    #[test]
    fn drift_is_executed_not_verified_and_says_what_differs() {
        let (next, attempt) = after(
            Ok(delivered(Verification::Drift("title differs".into()))),
            1,
            0,
        );
        assert_eq!(next.state, OrderState::Executed);
        assert!(!next.verified);
        assert_eq!(attempt.error.as_deref(), Some("title differs"));
    }

    #[test]
    fn retryable_failures_back_off_until_the_budget_is_spent() {
        let (next, attempt) = after(Err(retryable()), 1, 0);
        assert_eq!(next.state, OrderState::Errored);
        assert_eq!(
            next.next_attempt_at,
            Some(NOW + 1_000_000),
            "base delay, mid jitter"
        );
        assert_eq!(attempt.http_status, Some(503));
        let (next, _) = after(Err(retryable()), 3, 0);
        assert_eq!(next.state, OrderState::Error, "attempts exhausted");
        let (next, _) = after(Err(retryable()), 1, 7_200);
        assert_eq!(next.state, OrderState::Error, "too old");
    }

    #[test]
    fn permanent_failures_end_at_once() {
        let permanent = ConnectorError::Permanent {
            message: "400".into(),
            status: Some(400),
        };
        let (next, attempt) = after(Err(permanent), 1, 0);
        assert_eq!(next.state, OrderState::Error);
        assert_eq!(next.next_attempt_at, None);
        assert_eq!(attempt.http_status, Some(400));
    }

    #[test]
    fn a_deferred_group_waits_for_its_member_whatever_its_attempts() {
        let deferred = ConnectorError::Deferred {
            message: "member m not provisioned".into(),
            waiting_for: Some("m".into()),
        };
        let (next, _) = after(Err(deferred), 9, 0);
        assert_eq!(next.state, OrderState::Errored);
        assert_eq!(next.waiting_for.as_deref(), Some("m"));
    }

    #[test]
    fn parked_orders_are_held_or_stay_with_a_person() {
        let (next, attempt) = after(
            Ok(Outcome::parked(Parked::Held("rule: deletes".into()))),
            1,
            0,
        );
        assert_eq!(next.state, OrderState::AwaitingApproval);
        assert_eq!(next.hold, Some(Hold::review("rule: deletes")));
        assert_eq!(attempt.http_status, None);
        let (next, _) = after(Ok(Outcome::parked(Parked::WithPerson)), 1, 0);
        assert_eq!(next.state, OrderState::Transmitted);
    }
}
