//! RFC 8936 poll delivery: a `set_poll` subscription's receiver POSTs acknowledgements and
//! gets the SETs not yet acknowledged, oldest first. What is not acknowledged comes again in
//! the next poll (at-least-once), across restarts: the pending deliveries are in the database.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::set::SetSigner;
use super::subscription::{Format, Subscription};
use super::{service, EventsError};
use crate::storage::event_deliveries;
use crate::storage::Db;

/// A poll request (RFC 8936 §2.2).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollRequest {
    #[serde(default)]
    pub ack: Vec<String>,
    #[serde(default)]
    pub set_errs: Map<String, Value>,
    /// None: no limit (bounded by the server); 0: acknowledge only.
    pub max_events: Option<u64>,
    #[serde(default)]
    pub return_immediately: bool,
}

/// The most SETs one answer carries, whatever `maxEvents` asks.
const MOST: u64 = 1_000;

/// Why a poll is not answered with SETs.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// No such stream, or the credentials do not open it (401: not telling which).
    #[error("unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Events(#[from] EventsError),
}

/// The subscription `name` if it is a `set_poll` stream and `bearer` is one of its secrets.
pub fn authorize(db: &Db, name: &str, bearer: Option<&str>) -> Result<Subscription, PollError> {
    let subscription = match service::get(db, name) {
        Ok(s) => s,
        Err(EventsError::NotFound(_)) => return Err(PollError::Unauthorized),
        Err(other) => return Err(other.into()),
    };
    let now = db.clock().now_micros();
    match bearer {
        Some(token)
            if subscription.format == Format::SetPoll
                && subscription.enabled
                && subscription.accepts_bearer(token, now) =>
        {
            Ok(subscription)
        }
        _ => Err(PollError::Unauthorized),
    }
}

/// Settles the acknowledgements and errors, then answers with the pending SETs, waiting up
/// to `long_poll` for one unless `returnImmediately`.
pub async fn poll(
    db: &Db,
    signer: &SetSigner,
    subscription: &Subscription,
    request: PollRequest,
    long_poll: Duration,
) -> Result<Value, PollError> {
    let errors: Vec<(String, String)> = request
        .set_errs
        .iter()
        .map(|(jti, e)| {
            let err = e["err"].as_str().unwrap_or("invalid_request");
            let description = e["description"].as_str().unwrap_or("");
            (
                jti.clone(),
                format!("receiver refused it: {err}: {description}"),
            )
        })
        .collect();
    {
        let (db, id, acks) = (db.clone(), subscription.id.clone(), request.ack.clone());
        blocking(move || {
            event_deliveries::settle_by_event(&db, &id, &acks, Ok(()))?;
            for (jti, error) in errors {
                event_deliveries::settle_by_event(&db, &id, &[jti], Err(&error))?;
            }
            Ok(())
        })
        .await?;
    }
    let wanted = request.max_events.unwrap_or(MOST).min(MOST);
    let deadline = tokio::time::Instant::now() + long_poll;
    loop {
        let committed = db.committed().notified();
        tokio::pin!(committed);
        committed.as_mut().enable();
        let (db2, id) = (db.clone(), subscription.id.clone());
        let pending = blocking(move || {
            Ok(db2.read(|c| event_deliveries::pending(c, &id, wanted as i64 + 1))?)
        })
        .await?;
        let ready = !pending.is_empty();
        if ready || request.return_immediately || tokio::time::Instant::now() >= deadline {
            let more = pending.len() as u64 > wanted;
            let mut sets = Map::new();
            for (_, event) in pending.iter().take(wanted as usize) {
                if let Some(token) = signer.sign(event, subscription.audience.as_deref()) {
                    let token = token.map_err(PollError::Invalid)?;
                    sets.insert(event.id.clone(), Value::String(token));
                }
            }
            return Ok(json!({ "sets": sets, "moreAvailable": more }));
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = &mut committed => {}
            // Other instances' fan-outs are not notified here.
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, EventsError> + Send + 'static,
) -> Result<T, EventsError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| EventsError::Invalid(format!("a database task failed: {e}")))?
}
