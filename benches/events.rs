//! `cargo bench --bench events`: what events cost and how fast they arrive, on SQLite and on
//! PostgreSQL, over real HTTP with a real webhook receiver (actix-web) in the same process.
//!
//! 1. POST /Users throughput with no subscription, then with 2 webhook subscriptions on every
//!    event (`*`), alternating fresh servers (A, B, A, B) so drift of the machine hits both.
//! 2. A paced load of 1,000 creates/s for 15 s with the 2 subscriptions: whether delivery keeps
//!    up (deliveries received by the end of the load, drain time after it), and the time from
//!    a create's commit (its 201 reaching the client) to each webhook's receipt, p50 and p99.
//!
//! Figures are printed and written to `target/bench/events.json`.
//! `SCIMGATE_BENCH_USERS` (default 20,000) sets the users per throughput run;
//! `SCIMGATE_BENCH_BACKENDS=sqlite` runs one backend.

#[path = "../tests/support/postgres.rs"]
mod postgres;
#[path = "support/report.rs"]
mod report;
// Shared with the other benches; this one does not read every field.
#[allow(dead_code)]
#[path = "support/server.rs"]
mod server;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use reqwest::Client;
use serde_json::{json, Value};

use server::Server;

const CLIENTS: usize = 16;
const PACED_RATE: u64 = 1_000;
const PACED_SECONDS: u64 = 15;
/// Pairs of throughput runs (without, with subscriptions).
const ROUNDS: usize = 3;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Webhook receipts: the created user's id and when it arrived.
type Receipts = Arc<Mutex<Vec<(String, Instant)>>>;

/// A receiver answering 204 to every delivery, recording what arrived when. It stands in for
/// a receiver on another machine, so its threads run at the lowest priority: on this 2-core
/// machine they would otherwise take CPU from the server being measured.
fn receiver() -> (String, Receipts) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("port");
    let addr = listener.local_addr().expect("addr");
    let receipts: Receipts = Arc::default();
    let state = web::Data::new(receipts.clone());
    std::thread::spawn(move || {
        lowest_priority();
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                App::new().app_data(state.clone()).default_service(web::to(
                    |receipts: web::Data<Receipts>, body: web::Bytes| async move {
                        let at = Instant::now();
                        let event: Value = serde_json::from_slice(&body).unwrap_or_default();
                        if event["type"] == "user.created" {
                            let id = event["resource"]["id"].as_str().unwrap_or("").to_string();
                            if let Ok(mut list) = receipts.lock() {
                                list.push((id, at));
                            }
                        }
                        HttpResponse::NoContent().finish()
                    },
                ))
            })
            .on_connect(|_, _| lowest_priority())
            .workers(1)
            .listen(listener)
            .expect("listen")
            .run()
            .await
        })
    });
    (format!("http://{addr}/hook"), receipts)
}

fn lowest_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: changes this thread's scheduling class only.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

/// A fresh scimgate (`database`: a PostgreSQL URL, or none for SQLite); with `hook`, two
/// subscriptions on every event send there.
fn start(database: Option<String>, key_file: std::path::PathBuf, hook: Option<&str>) -> Server {
    let hook = hook.map(str::to_string);
    server::start(move |config| {
        config.events.allow_private_destinations = true;
        config.events.poll_interval_ms = 50;
        if let Some(url) = database {
            config.database_url = url;
            config.secret_key_file = Some(key_file);
        }
        for name in ["first", "second"] {
            if let Some(url) = &hook {
                config
                    .events
                    .subscriptions
                    .push(scimgate::events::SubscriptionSettings {
                        name: name.into(),
                        url: Some(url.clone()),
                        event_types: vec!["*".into()],
                        secret: Some(format!(
                            "whsec_{}",
                            "c2NpbWdhdGUtYmVuY2gtd2ViaG9vay1zZWNyZXQh"
                        )),
                        ..Default::default()
                    });
            }
        }
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(256)
        .build()
        .expect("client")
}

async fn create(client: &Client, base: &str, token: &str, tag: &str, i: usize) -> Option<String> {
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                      "userName": format!("{tag}-{i}@example.com"),
                      "name": {"givenName": "Bench", "familyName": format!("User {i}")},
                      "emails": [{"value": format!("{tag}-{i}@example.com"), "type": "work", "primary": true}]});
    let response = client
        .post(format!("{base}/Users"))
        .bearer_auth(token)
        .header("Content-Type", "application/scim+json")
        .json(&body)
        .send()
        .await
        .ok()?;
    if response.status() != 201 {
        return None;
    }
    let created: Value = response.json().await.ok()?;
    created["id"].as_str().map(str::to_string)
}

/// POSTs `total` users from `CLIENTS` connections; returns users/s.
fn post_rate(server: &Server, total: usize, tag: &str) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let client = client();
    let started = Instant::now();
    runtime().block_on(async {
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (next, client) = (next.clone(), client.clone());
                let (base, token, tag) =
                    (server.base.clone(), server.token.clone(), tag.to_string());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            break;
                        }
                        let created = create(&client, &base, &token, &tag, i).await;
                        assert!(created.is_some(), "create failed");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("client");
        }
    });
    total as f64 / started.elapsed().as_secs_f64()
}

struct Paced {
    received_by_end: usize,
    expected: usize,
    drain: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// Creates at `PACED_RATE`/s for `PACED_SECONDS`, then waits for every delivery.
fn paced(server: &Server, receipts: &Receipts) -> Paced {
    let total = (PACED_RATE * PACED_SECONDS) as usize;
    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let client = client();
    let started = Instant::now();
    runtime().block_on(async {
        let mut tasks = Vec::with_capacity(total);
        for i in 0..total {
            let due = started + Duration::from_micros(i as u64 * 1_000_000 / PACED_RATE);
            tokio::time::sleep_until(due.into()).await;
            let (client, committed) = (client.clone(), committed.clone());
            let (base, token) = (server.base.clone(), server.token.clone());
            tasks.push(tokio::spawn(async move {
                let id = create(&client, &base, &token, "paced", i)
                    .await
                    .expect("create");
                let at = Instant::now();
                if let Ok(mut map) = committed.lock() {
                    map.insert(id, at);
                }
            }));
        }
        for task in tasks {
            task.await.expect("create");
        }
    });
    let load_ended = Instant::now();
    let expected = 2 * total;
    let received_by_end = receipts.lock().map(|r| r.len()).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(300);
    while receipts.lock().map(|r| r.len()).unwrap_or(0) < expected {
        assert!(Instant::now() < deadline, "deliveries did not arrive");
        std::thread::sleep(Duration::from_millis(10));
    }
    let drain = load_ended.elapsed();
    let committed = committed.lock().map(|m| m.clone()).unwrap_or_default();
    let mut latencies: Vec<Duration> = receipts
        .lock()
        .map(|r| {
            r.iter()
                .filter_map(|(id, at)| committed.get(id).map(|c| at.saturating_duration_since(*c)))
                .collect()
        })
        .unwrap_or_default();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Paced {
        received_by_end,
        expected,
        drain,
        p50: pct(0.50),
        p99: pct(0.99),
        max: latencies.last().copied().unwrap_or_default(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn bench_backend(backend: &str, database: &dyn Fn() -> Option<String>) -> Value {
    let keys = tempfile::tempdir().expect("temp dir");
    let key_file = keys.path().join("secrets.key");
    std::fs::write(&key_file, "c2NpbWdhdGUtYmVuY2gtc2VjcmV0LWtleS0zMi1ieXQ=").expect("key");
    let users = env_usize("SCIMGATE_BENCH_USERS", 20_000);
    let mut without = Vec::new();
    let mut with = Vec::new();
    let mut catch_ups = Vec::new();
    for round in 0..ROUNDS {
        let plain = start(database(), key_file.clone(), None);
        without.push(post_rate(&plain, users, &format!("plain{round}")));
        let (hook, receipts) = receiver();
        let subscribed = start(database(), key_file.clone(), Some(&hook));
        with.push(post_rate(&subscribed, users, &format!("subscribed{round}")));
        // Deliveries yield to the burst; they catch up after it, before the next measurement.
        let burst_ended = Instant::now();
        let during = receipts.lock().map(|r| r.len()).unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(300);
        while receipts.lock().map(|r| r.len()).unwrap_or(0) < 2 * users && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let catch_up = burst_ended.elapsed();
        catch_ups.push(ms(catch_up));
        println!(
            "{backend:<8} POST /Users, {users} users, {CLIENTS} clients: no subscription {:>6.0}/s, 2 subscriptions on every event {:>6.0}/s ({during} of {} deliveries during the burst, the rest {:.1} s after it)",
            without[round], with[round], 2 * users, catch_up.as_secs_f64()
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let drop = 1.0 - mean(&with) / mean(&without);
    println!(
        "{backend:<8} throughput with 2 subscriptions: {:.1} % lower (mean of {} pairs)",
        drop * 100.0,
        without.len()
    );
    let (hook, receipts) = receiver();
    let server = start(database(), key_file.clone(), Some(&hook));
    let p = paced(&server, &receipts);
    println!(
        "{backend:<8} paced {PACED_RATE} creates/s for {PACED_SECONDS} s, 2 subscriptions: {} of {} deliveries in by the end of the load, all in {:.0} ms after it; commit to receipt p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p.received_by_end,
        p.expected,
        ms(p.drain),
        ms(p.p50),
        ms(p.p99),
        ms(p.max)
    );
    json!({
        "backend": backend,
        "users_per_run": users,
        "post_per_s_without_subscriptions": without,
        "post_per_s_with_2_subscriptions": with,
        "throughput_drop_percent": drop * 100.0,
        "catch_up_after_burst_ms": catch_ups,
        "paced_creates_per_s": PACED_RATE,
        "paced_seconds": PACED_SECONDS,
        "deliveries_expected": p.expected,
        "deliveries_by_end_of_load": p.received_by_end,
        "drain_ms": ms(p.drain),
        "commit_to_receipt_p50_ms": ms(p.p50),
        "commit_to_receipt_p99_ms": ms(p.p99),
        "commit_to_receipt_max_ms": ms(p.max),
    })
}

fn main() {
    let backends =
        std::env::var("SCIMGATE_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    println!(
        "scimgate events benchmark, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let mut results = Vec::new();
    if backends.contains("sqlite") {
        results.push(bench_backend("sqlite", &|| None));
    }
    if backends.contains("postgres") {
        let pg = postgres::shared_with(postgres::Durability::Production);
        results.push(bench_backend("postgres", &|| Some(pg.create_database())));
    }
    report::write("events", &json!({ "runs": results }));
}
