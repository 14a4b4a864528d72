//! `cargo bench --bench crash_recovery`: how soon every order converges after `kill -9`.
//!
//! scimgate runs as its own process (the release binary) with default worker settings (15 s
//! leases renewed every 5 s), provisioning to a second scimgate acting as the target. Four
//! clients create users until the process is killed with SIGKILL mid-work; then:
//!
//! - **restart** (SQLite, then PostgreSQL): the same instance starts again on the same
//!   database; measured from the restart until every order is final (executed or verified)
//!   and the target holds every acknowledged user exactly once;
//! - **survivor** (PostgreSQL): two instances share the database and both deliver; one is
//!   killed and not restarted; measured from the kill until the survivor has finished what
//!   the dead one held.
//!
//! `SCIMGATE_BENCH_LOAD_SECONDS` (default 3): how long the clients create before the kill.

#[path = "../tests/support/postgres.rs"]
mod postgres;
#[path = "../tests/support/process.rs"]
mod process;
#[path = "support/report.rs"]
mod report;
#[path = "support/server.rs"]
#[allow(dead_code)] // Shared with benches that read the target's database.
mod server;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::Value;

use process::{creating_clients, free_port, token, Instance};
use scimgate::storage::{orders, Db};

/// Every userName at the target, and how many accounts carry one (to see duplicates).
fn target_names(target: &server::Server) -> (BTreeSet<String>, usize) {
    let client = Client::new();
    let mut names = Vec::new();
    loop {
        let page: Value = client
            .get(format!(
                "{}/Users?startIndex={}&count=1000&attributes=userName",
                target.base,
                names.len() + 1
            ))
            .bearer_auth(&target.token)
            .send()
            .and_then(|r| r.json())
            .expect("a page");
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        names.extend(
            resources
                .iter()
                .filter_map(|u| u["userName"].as_str().map(str::to_string)),
        );
        if resources.is_empty() || names.len() as u64 >= page["totalResults"].as_u64().unwrap_or(0)
        {
            let count = names.len();
            return (names.into_iter().collect(), count);
        }
    }
}

/// Waits until every order is final and the target holds `acked`; the time it took.
fn converge(db: &Db, target: &server::Server, acked: &BTreeSet<String>) -> Duration {
    let started = Instant::now();
    loop {
        let counts = db.read(|c| orders::counts(c, "t")).expect("counts");
        let done = ["executed", "verified"]
            .iter()
            .map(|s| counts.get(*s).copied().unwrap_or(0))
            .sum::<i64>();
        let total: i64 = counts.values().sum();
        if done == total && total as usize >= acked.len() {
            let (names, accounts) = target_names(target);
            if acked.is_subset(&names) {
                assert_eq!(accounts, names.len(), "an account twice on the target");
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no convergence: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn config_file(dir: &Path, target: &server::Server) -> std::path::PathBuf {
    let path = dir.join("scimgate.toml");
    std::fs::write(
        &path,
        format!(
            "[[targets]]\nname = \"t\"\nurl = \"{}\"\n[targets.auth]\ntype = \"bearer\"\ntoken = \"{}\"\n",
            target.base, target.token
        ),
    )
    .expect("config");
    path
}

fn load_seconds() -> Duration {
    let seconds = std::env::var("SCIMGATE_BENCH_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(seconds)
}

fn restart(label: &str, database: String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = server::start(|_| {});
    let config = config_file(dir.path(), &target);
    let token = token(&config, &database, "idp", "scim");
    let instance = Instance::start(&config, &database, free_port(), "bench");
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, clients) = creating_clients(vec![instance.scim()], token, stop.clone());
    std::thread::sleep(load_seconds());
    instance.kill();
    stop.store(true, Ordering::Relaxed);
    clients.into_iter().for_each(|c| drop(c.join()));
    let acked = acked.lock().map(|s| s.clone()).unwrap_or_default();
    let db = Db::open(&database, 2).expect("open");
    let open_at_kill = open_orders(&db);

    let restarted = Instance::start(&config, &database, free_port(), "bench");
    let took = converge(&db, &target, &acked);
    println!(
        "restart/{label}: {} acked, {open_at_kill} orders open at the kill, \
         converged {:.2} s after the restart",
        acked.len(),
        took.as_secs_f64()
    );
    report::record(
        &format!("restart/{label}"),
        serde_json::json!({"acked": acked.len(), "openAtKill": open_at_kill,
                           "convergedSeconds": took.as_secs_f64()}),
    );
    drop(restarted);
}

fn survivor(database: String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = server::start(|_| {});
    let config = config_file(dir.path(), &target);
    let token = token(&config, &database, "idp", "scim");
    let doomed = Instance::start(&config, &database, free_port(), "doomed");
    let survivor = Instance::start(&config, &database, free_port(), "survivor");
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, clients) =
        creating_clients(vec![doomed.scim(), survivor.scim()], token, stop.clone());
    std::thread::sleep(load_seconds());
    doomed.kill();
    stop.store(true, Ordering::Relaxed);
    clients.into_iter().for_each(|c| drop(c.join()));
    let acked = acked.lock().map(|s| s.clone()).unwrap_or_default();
    let db = Db::open(&database, 2).expect("open");
    let open_at_kill = open_orders(&db);
    let took = converge(&db, &target, &acked);
    println!(
        "survivor/postgres: {} acked, {open_at_kill} orders open at the kill, \
         converged {:.2} s after the kill",
        acked.len(),
        took.as_secs_f64()
    );
    report::record(
        "survivor/postgres",
        serde_json::json!({"acked": acked.len(), "openAtKill": open_at_kill,
                           "convergedSeconds": took.as_secs_f64()}),
    );
    drop(survivor);
}

fn open_orders(db: &Db) -> i64 {
    let counts = db.read(|c| orders::counts(c, "t")).expect("counts");
    ["pending", "transmitted", "errored"]
        .iter()
        .map(|s| counts.get(*s).copied().unwrap_or(0))
        .sum()
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    restart(
        "sqlite",
        format!("sqlite://{}", dir.path().join("source.db").display()),
    );
    let pg = postgres::shared_with(postgres::Durability::Production);
    restart("postgres", pg.create_database());
    survivor(pg.create_database());
    report::write_recorded("crash_recovery");
}
