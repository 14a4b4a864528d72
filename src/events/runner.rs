//! The events' background work in `scimgate serve`: fan-out after every commit (and on a
//! short interval, for other instances' commits), one sender per pushed subscription (the
//! instance holding its lease), and pruning of old events and deliveries.
//!
//! It runs on a thread of its own at a lower scheduling priority: events are asynchronous, so
//! when the machine is saturated the requests of identity providers go first and deliveries
//! catch up as soon as there is room, instead of both slowing down.

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
use crate::load::Inbound;
use crate::storage::{event_deliveries, event_subscriptions, events, Db};

/// How long an instance keeps a subscription's sending without renewing it.
const SENDER_LEASE: Duration = Duration::from_secs(15);
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// The shortest round while work keeps coming: under load, each transaction then carries many
/// events instead of a few, which leaves the database (and SQLite's one writer) to the
/// requests of identity providers. At most this much is added to an event's latency.
const BUSY_ROUND: Duration = Duration::from_millis(2);
/// How often a sender gives up deliveries past their subscription's maximum age.
const EXPIRE_EVERY: Duration = Duration::from_secs(10);
/// How long identity providers' requests must have eased before delivery goes on.
const CALM: Duration = Duration::from_millis(50);
/// The longest a round waits for identity providers' requests to ease.
const MOST_YIELDED: Duration = Duration::from_secs(5);

pub struct EventsRunner {
    db: Db,
    config: Arc<EventsConfig>,
    signer: Option<Arc<SetSigner>>,
    inbound: Arc<Inbound>,
    owner: String,
    /// Woken when fan-out added deliveries.
    added: Arc<Notify>,
}

/// Stops the events' work when shut down, or when dropped (the server it served has ended).
pub struct EventsHandle {
    stop: watch::Sender<bool>,
    done: tokio::sync::oneshot::Receiver<()>,
}

impl EventsHandle {
    /// Stops fan-out and senders; a round in progress finishes for up to `grace`.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(grace, self.done).await;
    }
}

impl EventsRunner {
    pub fn new(
        db: Db,
        config: Arc<EventsConfig>,
        signer: Option<Arc<SetSigner>>,
        inbound: Arc<Inbound>,
    ) -> EventsRunner {
        EventsRunner {
            db,
            config,
            signer,
            inbound,
            owner: format!("events/{}", uuid::Uuid::new_v4().simple()),
            added: Arc::default(),
        }
    }

    /// Starts on a thread of its own, at a lower priority.
    pub fn spawn(self) -> EventsHandle {
        let (stop, receiver) = watch::channel(false);
        let (finished, done) = tokio::sync::oneshot::channel();
        let started = std::thread::Builder::new()
            .name("scimgate-events".into())
            .spawn(move || {
                crate::priority::lower_this_thread();
                // Threads the runtime starts (its blocking pool) inherit the priority.
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    // Senders' futures borrow across awaits: they stay on this thread.
                    Ok(runtime) => {
                        let local = tokio::task::LocalSet::new();
                        runtime.block_on(local.run_until(self.run(receiver)));
                    }
                    Err(error) => tracing::error!(%error, "the events runtime did not start"),
                }
                let _ = finished.send(());
            });
        if let Err(error) = started {
            tracing::error!(%error, "the events thread did not start");
        }
        EventsHandle { stop, done }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let idle = Duration::from_millis(self.config.poll_interval_ms.max(10));
        let client = match super::destination::client(
            Duration::from_millis(self.config.timeout_ms.max(100)),
            self.config.allow_private_destinations,
        ) {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "no HTTP client for event delivery; events are not sent");
                return;
            }
        };
        let sender = Arc::new(Sender {
            db: self.db.clone(),
            client,
            config: self.config.clone(),
            signer: self.signer.clone(),
        });
        let mut senders: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
        let mut last_prune = tokio::time::Instant::now();
        while !stopped(&stop) {
            yield_to_inbound(&self.inbound).await;
            let round_started = tokio::time::Instant::now();
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
            tokio::time::sleep_until(round_started + BUSY_ROUND).await;
        }
        for (_, task) in senders {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Starts a sender for each enabled pushed subscription that has none running.
    async fn start_senders(
        &self,
        sender: &Arc<Sender>,
        running: &mut HashMap<String, tokio::task::JoinHandle<()>>,
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
            let task = tokio::task::spawn_local(send_loop(
                sender.clone(),
                self.inbound.clone(),
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
    inbound: Arc<Inbound>,
    id: String,
    owner: String,
    added: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let idle = Duration::from_millis(sender.config.poll_interval_ms.max(10));
    let mut last_expiry: Option<tokio::time::Instant> = None;
    while !stopped(&stop) {
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
        if last_expiry.is_none_or(|at| at.elapsed() >= EXPIRE_EVERY) {
            last_expiry = Some(tokio::time::Instant::now());
            if let Err(error) = sender.expire(&subscription).await {
                tracing::warn!(%error, subscription = %subscription.name, "expiring old deliveries failed");
            }
        }
        yield_to_inbound(&inbound).await;
        let round_started = tokio::time::Instant::now();
        let pause = match sender.round(&subscription).await {
            Ok(round) if round.sent > 0 => {
                tokio::time::sleep_until(round_started + BUSY_ROUND).await;
                None
            }
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

/// Whether to stop: asked to, or the handle is gone with the server it belonged to.
fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Waits while identity providers keep the server busy (and until they have been calm for a
/// moment), five seconds at most: under a long burst deliveries still move, a round every
/// five seconds.
async fn yield_to_inbound(inbound: &Inbound) {
    let started = tokio::time::Instant::now();
    while inbound.busy_within(CALM) && started.elapsed() < MOST_YIELDED {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn release(db: &Db, id: &str, owner: &str) {
    let (db, id, owner) = (db.clone(), id.to_string(), owner.to_string());
    let _ =
        tokio::task::spawn_blocking(move || event_subscriptions::release_sender(&db, &id, &owner))
            .await;
}
