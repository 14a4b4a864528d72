//! Sending a subscription's deliveries: webhooks (Standard Webhooks) and pushed SETs (RFC
//! 8935). Per resource in order: only the oldest pending delivery of a resource is sent, so
//! a failing one holds back the later ones of the same resource and nothing else.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use serde_json::Value;

use super::set::SetSigner;
use super::settings::EventsConfig;
use super::subscription::{Format, Subscription};
use super::{webhook, EventsError};
use crate::backoff;
use crate::storage::event_deliveries::{self, Attempted, Next, StoredDelivery};
use crate::storage::events::StoredEvent;
use crate::storage::{Db, Micros};

/// Pending deliveries read per round, and the most sent in one round.
const READ: i64 = 2_000;
const SEND: usize = 500;

/// What a round did: how many it sent, and when the next waiting one is due.
#[derive(Debug, Default)]
pub struct Round {
    pub sent: usize,
    pub next_due: Option<Micros>,
}

pub struct Sender {
    pub db: Db,
    pub client: reqwest::Client,
    pub config: Arc<EventsConfig>,
    pub signer: Option<Arc<SetSigner>>,
}

impl Sender {
    /// Sends what is due of one subscription's deliveries and records the outcomes.
    pub async fn round(&self, subscription: &Subscription) -> Result<Round, EventsError> {
        let db = self.db.clone();
        let id = subscription.id.clone();
        let pending =
            blocking(move || Ok(db.read(|c| event_deliveries::pending(c, &id, READ))?)).await?;
        let now = self.db.clock().now_micros();
        let mut round = Round::default();
        let mut resources = HashSet::new();
        let mut due = Vec::new();
        for (delivery, event) in &pending {
            if !resources.insert(delivery.resource_key.as_str()) {
                continue;
            }
            if delivery.next_attempt_at <= now {
                if due.len() < SEND {
                    due.push((delivery, event));
                }
            } else {
                round.next_due = Some(round.next_due.map_or(delivery.next_attempt_at, |d| {
                    d.min(delivery.next_attempt_at)
                }));
            }
        }
        if due.is_empty() {
            return Ok(round);
        }
        round.sent = due.len();
        let concurrency = self.config.concurrency.max(1);
        let attempts: Vec<(Attempted, bool)> = futures_util::stream::iter(due)
            .map(|(delivery, event)| self.attempt(subscription, delivery, event))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let gone = attempts.iter().any(|(_, gone)| *gone);
        let attempted: Vec<Attempted> = attempts.into_iter().map(|(a, _)| a).collect();
        let db = self.db.clone();
        let id = subscription.id.clone();
        blocking(move || {
            let disable = gone.then_some("the receiver answered 410 Gone");
            Ok(event_deliveries::record(&db, &id, &attempted, disable)?)
        })
        .await?;
        Ok(round)
    }

    /// Gives up the subscription's deliveries older than its maximum age (those waiting behind
    /// a failing one of the same resource; a failing one is given up when it fails).
    pub async fn expire(&self, subscription: &Subscription) -> Result<usize, EventsError> {
        let db = self.db.clone();
        let id = subscription.id.clone();
        let max_age = subscription.max_age_seconds.saturating_mul(1_000_000);
        let hours = subscription.max_age_seconds / 3600;
        blocking(move || {
            let now = db.clock().now_micros();
            let reason = format!("not delivered within {hours} hours; given up");
            Ok(event_deliveries::expire(
                &db,
                &id,
                now.saturating_sub(max_age),
                &reason,
            )?)
        })
        .await
    }

    /// One delivery attempt; the flag says the receiver answered `410 Gone`.
    async fn attempt(
        &self,
        subscription: &Subscription,
        delivery: &StoredDelivery,
        event: &StoredEvent,
    ) -> (Attempted, bool) {
        let at = self.db.clock().now_micros();
        let started = Instant::now();
        let outcome = self.send(subscription, event).await;
        let latency_ms = started.elapsed().as_millis() as i64;
        let (status, error, next, gone) = match outcome {
            Sent::Accepted(status) => (Some(status), None, Next::Delivered, false),
            Sent::Gone => (
                Some(410),
                Some("410 Gone: the subscription is disabled".to_string()),
                Next::Failed,
                true,
            ),
            Sent::Rejected(status, error) => (status, Some(error), Next::Failed, false),
            Sent::Failed {
                status,
                error,
                retry_after,
            } => {
                let next = self.retry(subscription, delivery, at, retry_after);
                (status, Some(error), next, false)
            }
        };
        let attempted = Attempted {
            delivery_id: delivery.id,
            at,
            status: status.map(i32::from),
            latency_ms,
            error,
            next,
        };
        (attempted, gone)
    }

    /// When to try again: exponential backoff with jitter, or the receiver's `Retry-After`;
    /// never past the subscription's maximum age.
    fn retry(
        &self,
        subscription: &Subscription,
        delivery: &StoredDelivery,
        now: Micros,
        retry_after: Option<Duration>,
    ) -> Next {
        let delay = backoff::delay(
            delivery.attempts + 1,
            self.config.retry_base_ms,
            self.config.retry_max_ms.max(self.config.retry_base_ms),
            retry_after,
            rand::random::<f64>(),
        );
        let at = now.saturating_add(delay.as_micros() as i64);
        let deadline = delivery
            .created_at
            .saturating_add(subscription.max_age_seconds.saturating_mul(1_000_000));
        if at > deadline {
            Next::Failed
        } else {
            Next::RetryAt(at)
        }
    }

    async fn send(&self, subscription: &Subscription, event: &StoredEvent) -> Sent {
        let Some(url) = &subscription.url else {
            return Sent::Rejected(None, "the subscription has no url".into());
        };
        let request = match subscription.format {
            Format::Webhook => {
                let body = webhook::body(event);
                // The receiver compares it with its own clock: the system's, not a test's.
                let timestamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let signature = webhook::signature(
                    &subscription.secrets,
                    self.db.clock().now_micros(),
                    &event.id,
                    timestamp,
                    &body,
                );
                self.client
                    .post(url)
                    .header(CONTENT_TYPE, "application/json")
                    .header("webhook-id", &event.id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signature)
                    .body(body)
            }
            Format::SetPush => {
                let Some(signer) = &self.signer else {
                    return Sent::Rejected(None, "no SET signing key is configured".into());
                };
                let token = match signer.sign(event, subscription.audience.as_deref()) {
                    Some(Ok(token)) => token,
                    Some(Err(error)) => return Sent::Rejected(None, format!("signing: {error}")),
                    None => return Sent::Rejected(None, "the event has no SET form".into()),
                };
                self.client
                    .post(url)
                    .header(CONTENT_TYPE, "application/secevent+jwt")
                    .header(ACCEPT, "application/json")
                    .body(token)
            }
            Format::SetPoll => {
                return Sent::Rejected(None, "polled subscriptions are not sent".into())
            }
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                return Sent::Failed {
                    status: None,
                    error: describe(&error),
                    retry_after: None,
                }
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(86_400)));
        if response.status().is_success() {
            return Sent::Accepted(status);
        }
        if status == 410 {
            return Sent::Gone;
        }
        let text: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(500)
            .collect();
        // RFC 8935 §2.3: a 400 with an error code says the SET itself is refused; sending it
        // again cannot help.
        if subscription.format == Format::SetPush && status == 400 {
            if let Ok(body) = serde_json::from_str::<Value>(&text) {
                if let Some(err) = body["err"].as_str() {
                    let description = body["description"].as_str().unwrap_or("");
                    return Sent::Rejected(Some(status), format!("400 {err}: {description}"));
                }
            }
        }
        Sent::Failed {
            status: Some(status),
            error: format!("{status} {text}").trim().to_string(),
            retry_after: matches!(status, 429 | 502 | 503 | 504)
                .then_some(retry_after)
                .flatten(),
        }
    }
}

enum Sent {
    Accepted(u16),
    Gone,
    /// Refused for good: retrying cannot help.
    Rejected(Option<u16>, String),
    Failed {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
}

fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, EventsError> + Send + 'static,
) -> Result<T, EventsError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| EventsError::Invalid(format!("a database task failed: {e}")))?
}
