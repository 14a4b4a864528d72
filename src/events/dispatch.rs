//! Fan-out: the outbox's new events become deliveries of the subscriptions that take them.
//! Read in number order with the change log's hole rule, so an event that commits late with
//! a lower number is never passed; each subscription's position moves with its deliveries in
//! one transaction, so a crash neither loses nor repeats a delivery.

use super::subscription::Routing;
use super::EventsError;
use crate::storage::event_deliveries::{self, FanOut, Planned};
use crate::storage::event_subscriptions::{self, StoredSubscription};
use crate::storage::events;
use crate::storage::Db;

/// Events read per round.
const BATCH: i64 = 2_000;

/// Fans out the next events; returns how many events it read (0: none new).
pub fn fan_out_once(db: &Db) -> Result<usize, EventsError> {
    let stored = db.read(event_subscriptions::all)?;
    let Some(lowest) = stored.iter().map(|s| s.position).min() else {
        return Ok(0);
    };
    let subscriptions: Vec<(StoredSubscription, Routing)> = stored
        .into_iter()
        .filter_map(|s| match Routing::of(&s) {
            Ok(routing) => Some((s, routing)),
            Err(error) => {
                tracing::warn!(%error, "subscription skipped");
                None
            }
        })
        .collect();
    let new = events::readable_after(db, lowest, BATCH)?;
    let Some(last) = new.last().map(|e| e.seq) else {
        return Ok(0);
    };
    let shares: Vec<FanOut> = subscriptions
        .iter()
        .filter(|(s, _)| s.position < last)
        .map(|(s, routing)| FanOut {
            subscription_id: s.id.clone(),
            from: s.position,
            to: last,
            deliveries: if s.enabled {
                new.iter()
                    .filter(|e| e.seq > s.position && routing.takes(e))
                    .map(|e| Planned {
                        event_seq: e.seq,
                        resource_key: e.resource_key(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    event_deliveries::fan_out(db, &shares)?;
    Ok(new.len())
}
