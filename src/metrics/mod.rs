//! Prometheus metrics: what the server counts as it runs (requests, deliveries, order moves)
//! and what it reads from the store when scraped (orders per state, the oldest open order,
//! target health, the planner's lag).
//!
//! Histograms, never summaries, so instances can be added up. Labels are small fixed sets:
//! targets, resource types, methods, statuses, states; never user ids. Each server has a
//! recorder of its own (not the process-wide one), so servers sharing a process (the tests)
//! do not mix their figures.

mod gauges;

use std::sync::Arc;
use std::time::Duration;

use metrics::{Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use metrics_util::MetricKindMask;

use crate::storage::observer::{OrderMove, StoreObserver};
use crate::storage::{Db, StoreError};

pub const SCIM_REQUESTS: &str = "scimgate_scim_request_duration_seconds";
pub const TARGET_REQUESTS: &str = "scimgate_target_request_duration_seconds";
pub const ORDER_TRANSITIONS: &str = "scimgate_order_transitions_total";
pub const ORDER_COMPLETION: &str = "scimgate_order_completion_seconds";
pub const ORDERS: &str = "scimgate_orders";
pub const OLDEST_OPEN_ORDER: &str = "scimgate_oldest_open_order_age_seconds";
pub const TARGET_QUARANTINED: &str = "scimgate_target_quarantined";
pub const TARGET_LAST_SUCCESS: &str = "scimgate_target_last_success_timestamp_seconds";
pub const PLANNER_LAG: &str = "scimgate_planner_lag_changes";

/// Request and delivery latencies: 1 ms to a minute.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// From a change to its order's end: 10 ms to a day (retries and approvals take long).
const COMPLETION_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
];

const METADATA: Metadata<'static> = Metadata::new("scimgate", metrics::Level::INFO, None);

/// One server's metrics.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// The config file's targets (those created through the admin API are in the store).
    config_targets: Vec<String>,
}

impl Metrics {
    /// Metrics for a server whose config file names `config_targets`.
    pub fn new(config_targets: Vec<String>) -> Metrics {
        let builder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(ORDER_COMPLETION.into()), COMPLETION_BUCKETS)
            });
        // Only an empty bucket list fails, and the lists are constants.
        let recorder = match builder {
            Ok(builder) => builder,
            Err(_) => PrometheusBuilder::new(),
        }
        // Series read at scrape time vanish once nothing sets them (a deleted target's).
        .idle_timeout(MetricKindMask::GAUGE, Some(Duration::from_secs(600)))
        .build_recorder();
        let handle = recorder.handle();
        describe(&recorder);
        Metrics {
            inner: Arc::new(Inner {
                recorder,
                handle,
                config_targets,
            }),
        }
    }

    /// An inbound SCIM request: its resource (`Users`, `Groups`, `Bulk`, …), method and status.
    pub fn scim_request(&self, resource: &str, method: &str, status: u16, took: Duration) {
        let labels = [
            ("resource", resource.to_string()),
            ("method", method.to_string()),
            ("status", status.to_string()),
        ];
        self.histogram(SCIM_REQUESTS, &labels)
            .record(took.as_secs_f64());
    }

    /// One delivery attempt to a target, by how it ended (`success`, `retryable`,
    /// `permanent`, `held`).
    pub fn target_request(&self, target: &str, outcome: &str, took: Duration) {
        let labels = [
            ("target", target.to_string()),
            ("outcome", outcome.to_string()),
        ];
        self.histogram(TARGET_REQUESTS, &labels)
            .record(took.as_secs_f64());
    }

    /// An order that reached `state` (executed or verified) `took` after it was planned.
    pub fn order_completed(&self, target: &str, state: &str, took: Duration) {
        let labels = [("target", target.to_string()), ("state", state.to_string())];
        self.histogram(ORDER_COMPLETION, &labels)
            .record(took.as_secs_f64());
    }

    /// The figures read from the store, refreshed, then everything in Prometheus text format.
    pub fn render(&self, db: &Db) -> Result<String, StoreError> {
        gauges::refresh(self, db)?;
        self.inner.handle.run_upkeep();
        Ok(self.inner.handle.render())
    }

    fn config_targets(&self) -> impl Iterator<Item = String> + '_ {
        self.inner.config_targets.iter().cloned()
    }

    fn histogram(
        &self,
        name: &'static str,
        labels: &[(&'static str, String)],
    ) -> metrics::Histogram {
        self.inner
            .recorder
            .register_histogram(&key(name, labels), &METADATA)
    }

    fn counter(&self, name: &'static str, labels: &[(&'static str, String)]) -> metrics::Counter {
        self.inner
            .recorder
            .register_counter(&key(name, labels), &METADATA)
    }

    fn gauge(&self, name: &'static str, labels: &[(&'static str, String)]) -> metrics::Gauge {
        self.inner
            .recorder
            .register_gauge(&key(name, labels), &METADATA)
    }
}

impl StoreObserver for Metrics {
    fn orders_moved(&self, moves: &[OrderMove]) {
        for m in moves {
            let labels = [
                ("target", m.target.clone()),
                ("from", m.from.clone().unwrap_or_else(|| "new".into())),
                ("to", m.to.to_string()),
            ];
            self.counter(ORDER_TRANSITIONS, &labels).increment(1);
        }
    }
}

fn key(name: &'static str, labels: &[(&'static str, String)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, v.clone()))
        .collect();
    Key::from_parts(name, labels)
}

fn describe(recorder: &PrometheusRecorder) {
    use metrics::Unit;
    let histograms = [
        (
            SCIM_REQUESTS,
            "Inbound SCIM requests by resource, method and status",
        ),
        (TARGET_REQUESTS, "Delivery attempts to targets by outcome"),
        (
            ORDER_COMPLETION,
            "Time from an order's planning to executed or verified",
        ),
    ];
    for (name, help) in histograms {
        recorder.describe_histogram(name.into(), Some(Unit::Seconds), help.into());
    }
    recorder.describe_counter(
        ORDER_TRANSITIONS.into(),
        None,
        "Order state changes by target, from and to".into(),
    );
    let gauges = [
        (ORDERS, "Orders per target and state"),
        (
            OLDEST_OPEN_ORDER,
            "Age of the oldest pending, transmitted or errored order",
        ),
        (TARGET_QUARANTINED, "1 while the target is quarantined"),
        (
            TARGET_LAST_SUCCESS,
            "When an order last succeeded on the target (Unix time)",
        ),
        (
            PLANNER_LAG,
            "Accepted changes the planner has not turned into orders yet",
        ),
    ];
    for (name, help) in gauges {
        recorder.describe_gauge(name.into(), None, help.into());
    }
}
