//! `cargo bench --bench delivery`: outbound delivery throughput and latency.
//!
//! A target scimgate (SQLite) first takes N user creates from a plain HTTP load loop at the
//! engine's concurrency: the target's own rate. A second, fresh target then receives the same
//! N users from scimgate's engine (N queued orders, delivered with correlation lookups and
//! read-back verification): orders/s. Finally, with the engine idle, single inbound writes are
//! timed until their order is Executed (p50/p99).
//!
//! The two alternate `SCIMGATE_BENCH_REPEATS` times (default 5), each engine run compared with
//! the plain loop just before it; an engine run is timed from its start to its last outcome
//! recorded.
//!
//! On two cores or more every target runs on the machine's last core and everything else
//! (the plain loop's client; the source scimgate and its engine) on the others, standing in
//! for an application on a machine of its own, as the AMQP bench does for its broker: both
//! sides of the comparison send to a target pinned the same way. `SCIMGATE_BENCH_PIN=0`
//! shares every core.
//!
//! `SCIMGATE_BENCH_ORDERS` (default 10,000) and `SCIMGATE_BENCH_CONCURRENCY` (default 8).

#[path = "support/engine.rs"]
mod engine;
#[path = "support/pinning.rs"]
mod pinning;
#[path = "support/report.rs"]
mod report;
#[path = "support/server.rs"]
mod server;

use server::{start, Server};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::json;

use scimgate::storage::orders;
use scimgate::targets::{TargetAuth, TargetConfig};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn user(i: usize) -> serde_json::Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("d{i:06}"),
        "name": {"givenName": "D", "familyName": format!("F{i}")}, "emails": [{"value": format!("d{i}@x.example"), "primary": true}]})
}

/// A plain loop doing what delivery does per user (look up, create, read back): the target's
/// rate for the engine's request mix.
fn plain_mix(target: &Server, total: usize, clients: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (next, base, token) = (next.clone(), target.base.clone(), target.token.clone());
            std::thread::spawn(move || {
                let c = Client::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let found = c.get(format!("{base}/Users?filter=userName%20eq%20%22m{i:06}%22&attributes=id&count=2")).bearer_auth(&token).send();
                    assert!(found.is_ok_and(|r| r.status().is_success()), "lookup failed");
                    let mut body = user(i);
                    body["userName"] = json!(format!("m{i:06}"));
                    let created: serde_json::Value = c
                        .post(format!("{base}/Users"))
                        .bearer_auth(&token)
                        .header("content-type", "application/scim+json")
                        .body(body.to_string())
                        .send()
                        .and_then(|r| r.json())
                        .expect("create");
                    let id = created["id"].as_str().unwrap_or_default();
                    let read = c.get(format!("{base}/Users/{id}")).bearer_auth(&token).send();
                    assert!(read.is_ok_and(|r| r.status().is_success()), "read back failed");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn plain_load(target: &Server, total: usize, clients: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (next, base, token) = (next.clone(), target.base.clone(), target.token.clone());
            std::thread::spawn(move || {
                let c = Client::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let r = c
                        .post(format!("{base}/Users"))
                        .bearer_auth(&token)
                        .header("content-type", "application/scim+json")
                        .body(user(i).to_string())
                        .send();
                    assert!(
                        r.is_ok_and(|r| r.status().as_u16() == 201),
                        "plain create failed"
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// A fresh target receiving `total` queued user orders from scimgate's engine: orders/s,
/// and the target and source (with its config and directory) for the latency run.
fn engine_run(total: usize, clients: usize) -> (f64, (Server, engine::Queued)) {
    let target = start_target();
    let target_cfg = {
        let mut t = TargetConfig::scim("bench", &target.base);
        t.auth = TargetAuth {
            kind: Some(scimgate::targets::AuthKind::Bearer),
            token: Some(target.token.clone()),
            ..TargetAuth::default()
        };
        t.concurrency = clients;
        // The target is a scimgate: it answers `or` filters, so lookups and read-backs batch.
        t.batch_lookups = true;
        t
    };
    // The orders are queued before the clock starts: this measures delivery, not planning.
    let queued = engine::queue_users(&target_cfg, (0..total).map(user));
    let (elapsed, ()) = engine::deliver_all(&queued, "bench", || ());
    let counts = queued
        .source
        .db
        .read(|c| orders::counts(c, "bench"))
        .expect("counts");
    let verified = counts.get("verified").copied().unwrap_or(0) as usize;
    assert_eq!(verified, total, "every order verified: {counts:?}");
    (total as f64 / elapsed.as_secs_f64(), (target, queued))
}

/// The machine's cores, and whether targets get the last one to themselves.
fn cores() -> (usize, bool) {
    (pinning::cores(), pinning::wanted())
}

/// A fresh target scimgate: on the machine's last core when pinning, its threads (those it
/// starts later too) inheriting that core; the caller is back on the other cores after.
fn start_target() -> Server {
    match cores() {
        (cores, true) => pinning::on_last_core(cores, || start(|_| {})),
        (_, false) => start(|_| {}),
    }
}

fn main() {
    let total = env_usize("SCIMGATE_BENCH_ORDERS", 10_000);
    let clients = env_usize("SCIMGATE_BENCH_CONCURRENCY", 8);
    let (cores, pinned) = cores();
    println!("delivery benchmark: {total} orders, concurrency {clients}, {cores} cores");
    if pinned {
        pinning::run_on(0..cores - 1);
        pinning::announce(cores, "targets", "clients and the source");
    }

    // The machine's speed drifts over a run: plain loops and engine runs alternate, and each
    // engine run is compared with the plain loop before it (below).
    let repeats = env_usize("SCIMGATE_BENCH_REPEATS", 5).max(1);
    let mut plains = Vec::new();
    let mut engines = Vec::new();
    let mut last = None;
    for round in 1..=repeats {
        // Only this run's servers run during it: an idle scimgate still polls for work.
        drop(last.take());
        let plain = plain_load(&start_target(), total, clients);
        let (delivered, setup) = engine_run(total, clients);
        println!(
            "run {round}: plain HTTP POST /Users loop {plain:>6.0} creates/s; engine {delivered:>6.0} orders/s ({:.0} %)",
            100.0 * delivered / plain
        );
        plains.push(plain);
        engines.push(delivered);
        last = Some(setup);
    }
    let mix_target = start_target();
    let mix = plain_mix(&mix_target, total, clients);
    let mut figures = serde_json::json!({
        "orders": total, "concurrency": clients, "targetsPinned": pinned,
        "plainCreatesPerSecond": plains.iter().map(|p| p.round()).collect::<Vec<_>>(),
        "engineOrdersPerSecond": engines.iter().map(|e| e.round()).collect::<Vec<_>>(),
    });
    // Each engine run against the plain loop just before it: the machine's speed drifts over
    // a run, and a pair shares its moment.
    let shares: Vec<f64> = engines
        .iter()
        .zip(&plains)
        .map(|(engine, plain)| 100.0 * engine / plain)
        .collect();
    let paired = median(shares.clone());
    let (plain, delivered) = (median(plains), median(engines));
    println!("target alone, plain HTTP POST /Users loop, median:  {plain:>8.0} creates/s");
    println!("target alone, lookup + create + read loop:          {mix:>8.0} users/s");
    println!(
        "engine delivering {total} queued orders, median:   {delivered:>8.0} orders/s ({:.0} % of plain creates, {:.0} % of the same request mix)",
        100.0 * delivered / plain,
        100.0 * delivered / mix
    );
    figures["mixUsersPerSecond"] = serde_json::json!(mix.round());
    println!("engine against the plain loop of its own run, median: {paired:>8.0} %");
    figures["medianShareOfPlainPercent"] = serde_json::json!((100.0 * delivered / plain).round());
    figures["sharePerRunPercent"] =
        serde_json::json!(shares.iter().map(|s| s.round()).collect::<Vec<_>>());
    figures["medianPairedSharePercent"] = serde_json::json!(paired.round());
    let Some((
        _target,
        engine::Queued {
            source,
            directory,
            config,
        },
    )) = last
    else {
        report::write("delivery", &figures);
        return;
    };

    // Idle latency: one inbound write at a time, until its order is executed.
    let context = scimgate::provisioning::Context::new(directory, source.db.clone());
    let engine = scimgate::app::engine(&config, context)
        .expect("engine")
        .expect("targets");
    let client = Client::new();
    let mut latencies = Vec::new();
    let (source_base, source_token, db) =
        (source.base.clone(), source.token.clone(), source.db.clone());
    actix_web::rt::System::new().block_on(async move {
        let handle = engine.spawn();
        for i in 0..200 {
            let t = Instant::now();
            let body = user(total + i).to_string();
            let (c, b, tok) = (client.clone(), source_base.clone(), source_token.clone());
            let id = actix_web::rt::task::spawn_blocking(move || {
                let r: serde_json::Value = c.post(format!("{b}/Users")).bearer_auth(&tok).header("content-type", "application/scim+json").body(body).send().expect("post").json().expect("json");
                r["id"].as_str().unwrap_or_default().to_string()
            })
            .await
            .expect("post task");
            loop {
                let done = db.read(|c| orders::of_resource(c, "User", &id)).expect("orders").iter().any(|o| o.state.as_str() == "executed" || o.state.as_str() == "verified");
                if done {
                    break;
                }
                actix_web::rt::time::sleep(Duration::from_millis(1)).await;
            }
            latencies.push(t.elapsed());
        }
        handle.shutdown(Duration::from_secs(5)).await;
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!(
            "inbound write → Executed on the target, idle: p50 {:>6.1} ms   p99 {:>6.1} ms (worker poll interval 10 ms)",
            pct(0.5).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0
        );
        figures["idleLatencyP50Ms"] = serde_json::json!(pct(0.5).as_secs_f64() * 1000.0);
        figures["idleLatencyP99Ms"] = serde_json::json!(pct(0.99).as_secs_f64() * 1000.0);
        report::write("delivery", &figures);
    });
}
