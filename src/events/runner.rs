//! The events' background work in `scimgate serve`: fan-out after every commit (and on a
//! short interval, for other instances' commits), one sender per pushed subscription (the
//! instance holding its lease), and pruning of old events and deliveries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::dispatch;
use super::sender::Sender;
use super::set::SetSigner;
use super::settings::EventsConfig;
use super::subscription::Subscription;
use super::{service, EventsError};
use crate::storage::{event_deliveries, event_subscriptions, events, Db};

/// How long an instance keeps a subscription's sending without renewing it.
const SENDER_LEASE: Duration = Duration::from_secs(15);
const PRUNE_EVERY: Duration = Duration::from_secs(600);

pub struct EventsRunner {
    db: Db,
    config: Arc<EventsConfig>,
    signer: Option<Arc<SetSigner>>,
    owner: String,
    /// Woken when fan-out added deliveries.
    added: Arc<Notify>,
}

pub struct EventsHandle {
    stop: watch::Sender<bool>,
    task: actix_web::rt::task::JoinHandle<()>,
}

impl EventsHandle {
    /// Stops fan-out and senders; a round in progress finishes for up to `grace`.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(grace, self.task).await;
    }
}

impl EventsRunner {
    pub fn new(db: Db, config: Arc<EventsConfig>, signer: Option<Arc<SetSigner>>) -> EventsRunner {
        EventsRunner {
            db,
            config,
            signer,
            owner: format!("events/{}", uuid::Uuid::new_v4().simple()),
            added: Arc::default(),
        }
    }

    /// Starts on the current (actix) runtime.
    pub fn spawn(self) -> EventsHandle {
        let (stop, receiver) = watch::channel(false);
        let task = actix_web::rt::spawn(self.run(receiver));
        EventsHandle { stop, task }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let idle = Duration::from_millis(self.config.poll_interval_ms.max(10));
        let client = super::destination::client(
            Duration::from_millis(self.config.timeout_ms.max(100)),
            self.config.allow_private_destinations,
        );
        let sender = Arc::new(Sender {
            db: self.db.clone(),
            client,
            config: self.config.clone(),
            signer: self.signer.clone(),
        });
        let mut senders: HashMap<String, actix_web::rt::task::JoinHandle<()>> = HashMap::new();
        let mut last_prune = tokio::time::Instant::now();
        while !*stop.borrow() {
            // Registered before the round: a commit during it wakes the next wait at once.
            let committed = self.db.committed().notified();
            tokio::pin!(committed);
            committed.as_mut().enable();
            let db = self.db.clone();
            let found = match tokio::task::spawn_blocking(move || dispatch::fan_out_once(&db)).await
            {
                Ok(Ok(n)) => n,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "event fan-out failed");
                    0
                }
                Err(error) => {
                    tracing::warn!(%error, "event fan-out failed");
                    0
                }
            };
            if found > 0 {
                self.added.notify_waiters();
            }
            self.start_senders(&sender, &mut senders, &stop).await;
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = tokio::time::Instant::now();
                self.prune().await;
            }
            if found == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(idle) => {}
                    _ = &mut committed => {}
                    _ = stop.changed() => {}
                }
            }
        }
        for (_, task) in senders {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Starts a sender for each enabled pushed subscription that has none running.
    async fn start_senders(
        &self,
        sender: &Arc<Sender>,
        running: &mut HashMap<String, actix_web::rt::task::JoinHandle<()>>,
        stop: &watch::Receiver<bool>,
    ) {
        running.retain(|_, task| !task.is_finished());
        let db = self.db.clone();
        let Ok(Ok(all)) = tokio::task::spawn_blocking(move || service::list(&db)).await else {
            return;
        };
        for subscription in all {
            if !subscription.enabled
                || !subscription.format.is_pushed()
                || running.contains_key(&subscription.id)
            {
                continue;
            }
            let task = actix_web::rt::spawn(send_loop(
                sender.clone(),
                subscription.id.clone(),
                self.owner.clone(),
                self.added.clone(),
                stop.clone(),
            ));
            running.insert(subscription.id, task);
        }
    }

    /// Deletes events and finished deliveries older than the retention that nothing needs.
    async fn prune(&self) {
        let db = self.db.clone();
        let retention = self.config.retention_hours as i64 * 3_600_000_000;
        let pruned = tokio::task::spawn_blocking(move || -> Result<usize, EventsError> {
            let before = db.clock().now_micros().saturating_sub(retention);
            let finished = event_deliveries::prune_finished(&db, before)?;
            let needed = db.read(|c| {
                let pending = event_deliveries::lowest_pending_event(c)?;
                let fanned = event_subscriptions::lowest_position(c)?.map(|p| p + 1);
                Ok::<_, crate::storage::StoreError>(
                    [pending, fanned]
                        .into_iter()
                        .flatten()
                        .min()
                        .unwrap_or(i64::MAX),
                )
            })?;
            Ok(finished + events::prune(&db, before, needed)?)
        })
        .await;
        match pruned {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(rows = n, "old events and deliveries pruned"),
            Ok(Err(error)) => tracing::warn!(%error, "pruning events failed"),
            Err(error) => tracing::warn!(%error, "pruning events failed"),
        }
    }
}

/// Sends one subscription's deliveries while this instance holds its lease, until the
/// subscription is disabled, deleted or no longer pushed, or the server stops.
async fn send_loop(
    sender: Arc<Sender>,
    id: String,
    owner: String,
    added: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let idle = Duration::from_millis(sender.config.poll_interval_ms.max(10));
    while !*stop.borrow() {
        let wake = added.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let (db, key, me) = (sender.db.clone(), id.clone(), owner.clone());
        let held =
            tokio::task::spawn_blocking(move || -> Result<Option<Subscription>, EventsError> {
                let until = db.clock().now_micros() + SENDER_LEASE.as_micros() as i64;
                if !event_subscriptions::claim_sender(&db, &key, &me, until)? {
                    return Ok(None);
                }
                Ok(Some(service::get(&db, &key)?))
            })
            .await;
        let subscription = match held {
            Ok(Ok(Some(s))) => s,
            // Another instance sends for it: look again within a lease.
            Ok(Ok(None)) => {
                tokio::select! {
                    _ = tokio::time::sleep(SENDER_LEASE / 3) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            Ok(Err(EventsError::NotFound(_))) => return,
            Ok(Err(error)) => {
                tracing::warn!(%error, subscription = %id, "event sender failed");
                tokio::time::sleep(idle).await;
                continue;
            }
            Err(_) => return,
        };
        if !subscription.enabled || !subscription.format.is_pushed() {
            release(&sender.db, &id, &owner).await;
            return;
        }
        let pause = match sender.round(&subscription).await {
            Ok(round) if round.sent > 0 => None,
            Ok(round) => {
                let now = sender.db.clock().now_micros();
                let until_due = round
                    .next_due
                    .map(|due| Duration::from_micros(due.saturating_sub(now).max(0) as u64));
                Some(until_due.map_or(idle, |d| d.min(idle).max(Duration::from_millis(5))))
            }
            Err(error) => {
                tracing::warn!(%error, subscription = %subscription.name, "event delivery round failed");
                Some(idle)
            }
        };
        if let Some(pause) = pause {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = &mut wake => {}
                _ = stop.changed() => {}
            }
        }
    }
    release(&sender.db, &id, &owner).await;
}

async fn release(db: &Db, id: &str, owner: &str) {
    let (db, id, owner) = (db.clone(), id.to_string(), owner.to_string());
    let _ =
        tokio::task::spawn_blocking(move || event_subscriptions::release_sender(&db, &id, &owner))
            .await;
}
