//! The delivery loop: plan new changes, reclaim expired leases, claim orders per target and
//! deliver them concurrently, then record each outcome.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{join_all, BoxFuture};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;

use super::Context;
use crate::config::WorkerConfig;
use crate::connectors::ConnectorError;
use crate::metrics::Metrics;
use crate::storage::orders::{self, AttemptRecord, Coalesce, Finish, Order, OrderState};
use crate::storage::{Backend, Db};

use super::finish::conclude;
use super::quarantine::{FailurePolicy, Permit, QuarantineBoard};
use super::registry::TargetRegistry;
use super::snapshot::Snapshot;
use super::{deliver, planner, Target};

/// Orders claimed per delivery slot at a time.
const BATCH_PER_SLOT: usize = 16;
/// How long one target's pipeline keeps claiming before the engine plans new changes again.
const ROUND_BUDGET: Duration = Duration::from_millis(500);
/// Outcomes written per transaction (fewer when the pipeline runs dry).
const RECORD_BATCH: usize = 64;
/// The engine's thread, and the threads doing its store work (at a lower priority).
const ENGINE_THREAD: &str = "scimgate-engine";
const STORE_THREAD: &str = "engine-store";

/// The provisioning engine of one process.
#[derive(Clone)]
pub struct Engine {
    directory: Context,
    quarantine: Arc<QuarantineBoard>,
    /// Per-target token buckets for `max_orders_per_second`.
    buckets: Arc<crate::rate::Buckets>,
    /// The config file's targets and those created through the admin API.
    targets: Arc<TargetRegistry>,
    config: WorkerConfig,
    /// Identifies this process's leases.
    owner: String,
    /// Run at the start of every round with the targets served (the app starts scheduled
    /// full syncs from here).
    each_round: Option<RoundHook>,
    /// Where delivery attempts and completed orders are counted.
    metrics: Option<Metrics>,
}

/// Work done at the start of every round, given the targets served.
pub type RoundHook = Arc<dyn Fn(&Context, &[Arc<Target>]) + Send + Sync>;

impl Engine {
    pub fn new(directory: Context, targets: Vec<Arc<Target>>, config: WorkerConfig) -> Engine {
        // `instance/run`: a restarted instance knows its previous runs' leases by the prefix.
        let owner = match &config.instance {
            Some(instance) => format!("{instance}/{}", uuid::Uuid::new_v4()),
            None => format!("{}:{}", std::process::id(), uuid::Uuid::new_v4()),
        };
        Engine {
            directory,
            quarantine: Arc::default(),
            buckets: Arc::default(),
            targets: Arc::new(TargetRegistry::new(targets)),
            config,
            owner,
            each_round: None,
            metrics: None,
        }
    }

    /// Counts delivery attempts and completed orders in `metrics`.
    pub fn observed_by(mut self, metrics: Metrics) -> Engine {
        self.metrics = Some(metrics);
        self
    }

    /// Runs `hook` at the start of every round, with the targets served then.
    pub fn each_round(mut self, hook: RoundHook) -> Engine {
        self.each_round = Some(hook);
        self
    }

    /// This worker's view of target health, as of its last round (the database holds it).
    pub fn quarantine(&self) -> Arc<QuarantineBoard> {
        self.quarantine.clone()
    }

    fn db(&self) -> &Db {
        self.directory.db()
    }

    /// Runs until `stop` turns true. A round in progress is finished first, so in-flight
    /// deliveries complete and record their outcome.
    pub async fn run_until(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        self.release_previous_run().await;
        let idle = Duration::from_millis(self.config.poll_interval_ms.max(10));
        let work = async {
            while !stopped(&stop) {
                let pause = match self.round().await {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(error) => {
                        tracing::warn!(%error, "provisioning round failed");
                        true
                    }
                };
                if pause {
                    tokio::select! {
                        _ = tokio::time::sleep(idle) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        };
        // The heartbeat goes on for as long as deliveries do, until the last round ends.
        tokio::select! {
            () = work => {}
            () = self.heartbeat() => {}
        }
        tracing::info!("provisioning workers stopped");
    }

    /// Renews this worker's leases every third of their length, so a live worker keeps its
    /// orders however long a delivery takes, and a dead one's are free within one lease.
    async fn heartbeat(&self) {
        let lease = Duration::from_secs(self.config.lease_seconds.max(1));
        loop {
            tokio::time::sleep(lease / 3).await;
            let (db, owner) = (self.db().clone(), self.owner.clone());
            let micros = lease.as_micros() as i64;
            match tokio::task::spawn_blocking(move || orders::renew_leases(&db, &owner, micros))
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "lease renewal failed"),
                Err(error) => tracing::warn!(%error, "lease renewal failed"),
            }
        }
    }

    /// Gives back at once what this instance's previous run held when it died: on SQLite
    /// (one instance) every lease, on PostgreSQL those of runs with this `worker.instance`.
    async fn release_previous_run(&self) {
        let prefix = match (&self.config.instance, self.db().backend()) {
            (_, Backend::Sqlite) => String::new(),
            (Some(instance), Backend::Postgres) => format!("{instance}/"),
            (None, Backend::Postgres) => return,
        };
        let (db, owner) = (self.db().clone(), self.owner.clone());
        let released = tokio::task::spawn_blocking(move || {
            orders::release_previous(&db, &owner, |held| held.starts_with(&prefix))
        })
        .await;
        match released {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::warn!(
                released = n,
                "orders held by this instance's previous run given back"
            ),
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not give back the previous run's orders; their leases will expire")
            }
            Err(error) => tracing::warn!(%error, "could not give back the previous run's orders"),
        }
    }

    /// Starts the engine on a thread of its own; the handle stops it gracefully, and so does
    /// dropping it (the server it served has ended).
    ///
    /// Deliveries' requests and responses run on that thread at the usual priority. The store
    /// work around them (claiming, reading the resources, recording outcomes) runs on its
    /// runtime's blocking threads at a lower one: it is pipelined ahead of and behind the
    /// deliveries, so it can wait, while a delivery slot waiting on a response it cannot
    /// read is a slot the target does not use. It also leaves the HTTP server's blocking
    /// threads to identity providers' requests.
    pub fn spawn(self) -> EngineHandle {
        let (stop, receiver) = tokio::sync::watch::channel(false);
        let (finished, done) = tokio::sync::oneshot::channel();
        let (db, owner) = (self.db().clone(), self.owner.clone());
        let started = std::thread::Builder::new()
            .name(ENGINE_THREAD.into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .thread_name(STORE_THREAD)
                    .on_thread_start(crate::priority::lower_this_thread)
                    .build();
                match runtime {
                    Ok(runtime) => runtime.block_on(self.run_until(receiver)),
                    Err(error) => tracing::error!(%error, "the engine's runtime did not start"),
                }
                let _ = finished.send(());
            });
        if let Err(error) = started {
            tracing::error!(%error, "the engine's thread did not start");
        }
        EngineHandle {
            stop,
            done,
            db,
            owner,
        }
    }

    /// One round; returns how much work it found (0: idle).
    pub async fn round(&self) -> Result<usize, String> {
        let (db, targets) = (self.db().clone(), self.targets.clone());
        let quarantine = self.quarantine.clone();
        let planned = tokio::task::spawn_blocking(move || -> Result<usize, String> {
            // Health before targets: an operator's change writes both at once, and health read
            // first never pairs new health with old settings.
            quarantine.sync(&db).map_err(|e| e.to_string())?;
            let planned =
                planner::plan_registered(&db, &targets, 1_000).map_err(|e| e.to_string())?;
            orders::reclaim_expired(&db).map_err(|e| e.to_string())?;
            Ok(planned)
        })
        .await
        .map_err(|e| e.to_string())??;
        if let Some(hook) = &self.each_round {
            hook(&self.directory, &self.targets.current());
        }
        let rounds = join_all(
            self.targets
                .current()
                .iter()
                .filter(|t| t.config.enabled)
                .map(|t| self.serve_target(t.clone())),
        )
        .await;
        if self.quarantine.has_pending() {
            let (db, quarantine) = (self.db().clone(), self.quarantine.clone());
            tokio::task::spawn_blocking(move || quarantine.flush(&db))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
        // Changes planned for no target are no work: an instance without targets (a pure SCIM
        // service, or one waiting for targets to be added) rests between planning passes.
        let serving = self.targets.current().iter().any(|t| t.config.enabled);
        let mut work = if serving { planned } else { 0 };
        for r in rounds {
            work += r?;
        }
        Ok(work)
    }

    /// Delivers the target's backlog for up to [`ROUND_BUDGET`] as one pipeline: while the
    /// last orders of a batch are out, the next batch is claimed and read, and outcomes are
    /// recorded while later orders are delivered, so no delivery slot waits on the store.
    async fn serve_target(&self, target: Arc<Target>) -> Result<usize, String> {
        let in_flight = target.config.concurrency.max(1);
        let started = Instant::now();
        let mut queue: VecDeque<(Order, Result<Snapshot, ()>)> = VecDeque::new();
        let mut running = FuturesUnordered::new();
        let mut claiming: Option<BoxFuture<'_, Result<Claimed, String>>> = None;
        let mut recording: Option<BoxFuture<'_, ()>> = None;
        let mut finished: Vec<Outcome> = Vec::new();
        let mut backlog_left = true;
        let mut count = 0;
        // The next batch is claimed as soon as the last one starts going out: claiming, reading
        // and looking up a batch takes about as long as delivering one, so waiting until the
        // queue runs low leaves delivery slots idle.
        let batch = in_flight * BATCH_PER_SLOT;
        loop {
            let short = queue.len() < batch;
            if claiming.is_none() && backlog_left && short && started.elapsed() < ROUND_BUDGET {
                claiming = Some(Box::pin(self.claim_batch(target.clone())));
            }
            while running.len() < in_flight {
                let Some((order, snapshot)) = queue.pop_front() else {
                    break;
                };
                running.push(self.execute(target.clone(), order, snapshot));
            }
            if recording.is_none()
                && (finished.len() >= RECORD_BATCH || (running.is_empty() && !finished.is_empty()))
            {
                recording = Some(Box::pin(self.record(std::mem::take(&mut finished))));
            }
            if running.is_empty() && claiming.is_none() && recording.is_none() {
                break;
            }
            tokio::select! {
                Some(outcome) = running.next(), if !running.is_empty() => finished.push(outcome),
                claimed = until_done(&mut claiming) => {
                    claiming = None;
                    let claimed = claimed?;
                    backlog_left = claimed.more;
                    count += claimed.orders.len();
                    queue.extend(claimed.orders);
                }
                () = until_done(&mut recording) => recording = None,
            }
        }
        Ok(count)
    }

    /// Claims the next batch the target's quarantine and rate allow, with the resources'
    /// current state.
    async fn claim_batch(&self, target: Arc<Target>) -> Result<Claimed, String> {
        let in_flight = target.config.concurrency.max(1);
        let (limit, probing) = match self.quarantine.permit(&target.config.name) {
            Permit::Open => ((in_flight * BATCH_PER_SLOT) as i64, false),
            Permit::Probe => (1, true),
            Permit::Closed => return Ok(Claimed::default()),
        };
        let limit = match target.config.max_orders_per_second {
            Some(rate) => self.take_tokens(&target.config.name, rate, limit),
            None => limit,
        };
        if limit == 0 {
            return Ok(Claimed::default());
        }
        let db = self.db().clone();
        let (name, owner) = (target.config.name.clone(), self.owner.clone());
        let lease = Duration::from_secs(self.config.lease_seconds).as_micros() as i64;
        let claimed =
            // Delivery always sends the resource's current state: an older order with a newer one
            // pending behind it has nothing left to send.
            tokio::task::spawn_blocking(move || {
                orders::claim(&db, &name, &owner, lease, limit, Coalesce::Superseded)
            })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        let more = !probing && claimed.len() as i64 == limit;
        // Without snapshots (the store failed to answer) each delivery fails retryably.
        let mut snapshots =
            match super::snapshot::snapshots(&self.directory, &target, &claimed).await {
                Ok(found) => Some(found),
                Err(error) => {
                    tracing::warn!(%error, "reading the round's resources failed");
                    None
                }
            };
        let orders: Vec<_> = claimed
            .into_iter()
            .map(|order| {
                let snapshot = match snapshots.as_mut() {
                    Some(found) => Ok(found.remove(&order.id).unwrap_or_default()),
                    None => Err(()),
                };
                (order, snapshot)
            })
            .collect();
        let readable = orders
            .iter()
            .filter_map(|(order, snapshot)| Some((order, snapshot.as_ref().ok()?)));
        super::snapshot::look_ahead(&target, readable).await;
        Ok(Claimed { orders, more })
    }

    /// Writes a round's outcomes in one transaction. Losing them (a crash first) is safe:
    /// the leases expire and the orders are redelivered, idempotently.
    async fn record(&self, outcomes: Vec<Outcome>) {
        let db = self.db().clone();
        let owner = self.owner.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            let rows: Vec<_> = outcomes
                .iter()
                .map(|o| (&o.order, &o.finish, &o.attempt))
                .collect();
            let ids: Vec<i64> = outcomes.iter().map(|o| o.order.id).collect();
            orders::finish_all(&db, &owner, &rows).map(|flags| (ids, flags))
        })
        .await;
        match recorded {
            Ok(Ok((ids, flags))) => {
                for (order, kept) in ids.iter().zip(flags) {
                    if !kept {
                        tracing::warn!(order, "lease lost before the outcome was recorded");
                    }
                }
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "recording outcomes failed; the leases will expire and the orders will be retried")
            }
            Err(error) => tracing::error!(%error, "recording task failed"),
        }
    }

    /// Up to `wanted` orders the target's rate allows now (tokens refill continuously).
    fn take_tokens(&self, target: &str, rate: f64, wanted: i64) -> i64 {
        self.buckets.take(target, rate, wanted)
    }

    async fn execute(
        &self,
        target: Arc<Target>,
        order: Order,
        snapshot: Result<Snapshot, ()>,
    ) -> Outcome {
        let started_at = self.db().clock().now_micros();
        let clock = Instant::now();
        let result = match snapshot {
            Ok(snapshot) => deliver::deliver(&self.directory, &target, &order, snapshot).await,
            Err(()) => Err(ConnectorError::Retryable {
                message: "the resource could not be read from the store".into(),
                status: None,
                retry_after: None,
            }),
        };
        let name = target.config.name.as_str();
        match &result {
            // Held for review or handed to a person: the target was not contacted.
            Ok(outcome) if outcome.parked.is_some() => {}
            Ok(_) => self.quarantine.succeeded(name),
            Err(e) if e.counts_against_health() => {
                let micros = |d: Duration| d.as_micros().min(i64::MAX as u128) as i64;
                let cfg = &target.config;
                self.quarantine.failed(
                    name,
                    FailurePolicy {
                        threshold: cfg.quarantine_after,
                        min_duration: micros(Duration::from_secs(cfg.quarantine_after_seconds)),
                        probe_interval: micros(Duration::from_millis(cfg.probe_interval_ms)),
                    },
                );
            }
            Err(_) => {}
        }
        let (finish, attempt) = conclude(
            result,
            &order,
            &target.config,
            (started_at, clock),
            self.db().clock().now_micros(),
        );
        if let Some(metrics) = &self.metrics {
            observe(metrics, name, &order, &finish, clock.elapsed(), &attempt);
        }
        tracing::debug!(order = order.id, target = %name, state = finish.state.as_str(), "delivery finished");
        Outcome {
            order,
            finish,
            attempt,
        }
    }
}

/// Counts one delivery: the attempt by how it ended, and the order's time from planning to
/// its end when it succeeded.
fn observe(
    metrics: &Metrics,
    target: &str,
    order: &Order,
    finish: &Finish,
    took: Duration,
    attempt: &AttemptRecord,
) {
    let state = if finish.verified {
        OrderState::Verified
    } else {
        finish.state
    };
    let outcome = match state {
        OrderState::Executed | OrderState::Verified => "success",
        OrderState::AwaitingApproval => "held",
        OrderState::Errored => "retryable",
        OrderState::Error => "permanent",
        // Handed to a person (a manual target's work item), or nothing to do.
        _ if attempt.error.is_none() => "success",
        _ => "permanent",
    };
    metrics.target_request(target, outcome, took);
    if matches!(state, OrderState::Executed | OrderState::Verified) {
        let since = (attempt.started_at + took.as_micros() as i64 - order.created_at).max(0);
        metrics.order_completed(target, state.as_str(), Duration::from_micros(since as u64));
    }
}

/// One delivery's result, waiting to be recorded with the rest of its round.
struct Outcome {
    order: Order,
    finish: Finish,
    attempt: AttemptRecord,
}

/// A claimed batch, and whether the target may have more waiting.
#[derive(Default)]
struct Claimed {
    orders: Vec<(Order, Result<Snapshot, ()>)>,
    more: bool,
}

/// Drives the pipeline step in `slot` to its end; never ends when there is none.
async fn until_done<T>(slot: &mut Option<BoxFuture<'_, T>>) -> T {
    match slot.as_mut() {
        Some(step) => step.await,
        None => std::future::pending().await,
    }
}

/// Whether the engine was told to stop, or its handle is gone.
fn stopped(stop: &tokio::sync::watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// A running engine, to stop it when the server stops.
pub struct EngineHandle {
    stop: tokio::sync::watch::Sender<bool>,
    /// Answered when the engine's thread has finished.
    done: tokio::sync::oneshot::Receiver<()>,
    db: Db,
    owner: String,
}

impl EngineHandle {
    /// Waits while the engine runs: until the process ends, or its thread fails.
    pub async fn run_until_process_ends(self) {
        // Held while waiting: dropping the sender would stop the engine.
        let EngineHandle {
            stop: _running,
            done,
            ..
        } = self;
        let _ = done.await;
    }

    /// Stops claiming, lets in-flight deliveries finish for up to `grace`, then releases what
    /// is still leased to this process so another worker can take it at once.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, self.done).await.is_err() {
            let (db, owner) = (self.db, self.owner);
            match tokio::task::spawn_blocking(move || orders::release_leases(&db, &owner)).await {
                Ok(Ok(n)) => tracing::warn!(released = n, "in-flight orders released at shutdown"),
                _ => {
                    tracing::error!("could not release in-flight orders; their leases will expire")
                }
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Engine, ENGINE_THREAD, STORE_THREAD};
    use crate::config::WorkerConfig;
    use crate::identity::Directory;
    use crate::provisioning::Context;

    /// This process's threads named `name`, with their niceness.
    fn threads_named(name: &str) -> Vec<i64> {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        tasks
            .flatten()
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|comm| comm.trim_end() == name)
            })
            .filter_map(|task| {
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                // After the command name in parentheses: state is field 3, niceness field 19.
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                fields.get(16)?.parse().ok()
            })
            .collect()
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The engine runs on a thread of its own at the usual priority; its store work runs on
    /// threads the scheduler favours less; dropping its handle (the server ended) ends it.
    #[test]
    fn the_engine_has_its_own_thread_its_store_work_yields_and_both_end_with_the_handle() {
        let (_dir, db) = crate::storage::temp_sqlite(2);
        let context = Context::new(Directory::new(db.clone(), "http://localhost/scim/v2"), db);
        let config = WorkerConfig {
            poll_interval_ms: 10,
            ..WorkerConfig::default()
        };
        let handle = Engine::new(context, Vec::new(), config).spawn();
        wait_until("the engine's threads started", || {
            !threads_named(ENGINE_THREAD).is_empty() && !threads_named(STORE_THREAD).is_empty()
        });
        let engine = threads_named(ENGINE_THREAD);
        let store = threads_named(STORE_THREAD);
        let usual = engine[0];
        assert!(
            store.iter().all(|nice| *nice >= usual),
            "{engine:?} {store:?}"
        );
        // A process already niced this far or further has no lower priority to give.
        let lowered = i64::from(crate::priority::NICENESS);
        if usual < lowered {
            assert!(store.iter().all(|nice| *nice == lowered), "{store:?}");
        }
        drop(handle);
        wait_until("the engine's thread ended with its handle", || {
            threads_named(ENGINE_THREAD).is_empty()
        });
    }
}
