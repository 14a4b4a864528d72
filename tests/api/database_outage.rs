//! A PostgreSQL outage (the database cut off behind a TCP relay): requests fail fast with `503`
//! and `Retry-After` instead of hanging or answering `500`, `/readyz` says so, nothing half-done
//! is kept, and service resumes within seconds of the database's return.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{id_of, scim_body, send, Backend, Resp, TestServer};
use crate::provisioning::wait_for;
use crate::relay::Relay;

fn assert_unavailable(r: &Resp, what: &str) {
    r.assert_scim_error(503, None);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"), "{what}");
}

fn ready(s: &TestServer) -> u16 {
    let url = s.base.replace("/scim/v2", "/readyz");
    reqwest::blocking::get(url).map_or(0, |r| r.status().as_u16())
}

fn an_outage_is_answered_503_at_once_and_service_resumes() {
    let (s, relay) = behind_relay(|c| c.worker.enabled = false);
    let kept = id_of(&s.create_user(&json!({"userName": "kept"})));
    assert_eq!(ready(&s), 200);

    relay.cut();
    let started = Instant::now();
    assert_unavailable(&s.get(&format!("/Users/{kept}")), "a read");
    let create = send(scim_body(
        s.request(reqwest::Method::POST, "/Users"),
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "during"}),
    ));
    assert_unavailable(&create, "a create");
    assert_unavailable(
        &s.get("/Users?filter=userName%20eq%20%22kept%22"),
        "a search",
    );
    assert_eq!(ready(&s), 503);
    // Fail fast: three requests and a readiness check, each within the 2 s wait.
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "answers took {:?}",
        started.elapsed()
    );

    relay.restore();
    let back = Instant::now();
    wait_for("service to resume", || {
        (s.get(&format!("/Users/{kept}")).status == 200).then_some(())
    });
    let resumed = back.elapsed();
    assert!(
        resumed < Duration::from_secs(5),
        "resumed after {resumed:?}"
    );
    assert_eq!(ready(&s), 200);
    let during = s.get("/Users?filter=userName%20eq%20%22during%22");
    assert_eq!(
        during.body["totalResults"], 0,
        "the refused create left nothing"
    );
    let again = s.create_user(&json!({"userName": "after"}));
    assert_eq!(again["userName"], "after");
}

/// A server whose PostgreSQL connections pass through a relay that can cut them.
fn behind_relay(adjust: impl FnOnce(&mut scimgate::config::Config)) -> (TestServer, Relay) {
    let direct = crate::postgres::shared().create_database();
    let (prefix, rest) = direct
        .split_once("@127.0.0.1:")
        .expect("a loopback PostgreSQL URL");
    let (port, database) = rest.split_once('/').expect("port/database");
    let relay = Relay::start(
        format!("127.0.0.1:{port}")
            .parse()
            .expect("PostgreSQL address"),
    );
    let relayed = format!("{prefix}@127.0.0.1:{}/{database}", relay.port);
    let s = TestServer::start_with(Backend::Postgres, |c| {
        c.database_url = relayed;
        adjust(c);
    });
    (s, relay)
}

/// Four clients create users while the database goes away for three seconds and comes back:
/// every answer is a 201 or a 503 with Retry-After (never a 500, never a hang), every 201 is
/// there afterwards, and creates succeed again within seconds of the return.
fn an_outage_under_load_loses_nothing_acknowledged() {
    let (s, relay) = behind_relay(|_| {});
    let s = std::sync::Arc::new(s);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
                let mut slowest = Duration::ZERO;
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = format!("load{c}-{n:05}");
                    n += 1;
                    let started = Instant::now();
                    let r = s.post("/Users", &json!({"userName": name}));
                    slowest = slowest.max(started.elapsed());
                    *statuses.entry(r.status).or_default() += 1;
                    match r.status {
                        201 => acked.push(name),
                        503 => {
                            assert_eq!(r.header("retry-after").as_deref(), Some("1"));
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        other => panic!("{name}: {other} {}", r.body),
                    }
                }
                (acked, statuses, slowest)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    relay.cut();
    std::thread::sleep(Duration::from_secs(3));
    relay.restore();
    let back = Instant::now();
    wait_for("creates to succeed again", || {
        let r = s.post(
            "/Users",
            &json!({"userName": format!("probe-{}", back.elapsed().as_micros())}),
        );
        (r.status == 201).then_some(())
    });
    let resumed = back.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut slowest = Duration::ZERO;
    for client in clients {
        let (names, counts, slow) = client.join().expect("client");
        acked.extend(names);
        for (status, n) in counts {
            *statuses.entry(status).or_default() += n;
        }
        slowest = slowest.max(slow);
    }
    println!(
        "outage under load: {statuses:?}, slowest answer {slowest:?}, resumed after {resumed:?}"
    );
    assert!(
        statuses.get(&503).copied().unwrap_or(0) > 0,
        "the outage was seen: {statuses:?}"
    );
    assert!(acked.len() > 20, "creates ran: {statuses:?}");
    // The pool waits 2 s for a connection (db_wait_ms): no request waits for it twice.
    assert!(
        slowest < Duration::from_secs(3),
        "slowest answer {slowest:?}"
    );
    assert!(
        resumed < Duration::from_secs(5),
        "resumed after {resumed:?}"
    );
    let mut present = std::collections::BTreeSet::new();
    loop {
        let page = s.get(&format!(
            "/Users?sortBy=userName&startIndex={}&count=1000&attributes=userName",
            present.len() + 1
        ));
        let names = page.body["Resources"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if names.is_empty() {
            break;
        }
        present.extend(
            names
                .iter()
                .filter_map(|u| u["userName"].as_str().map(str::to_string)),
        );
    }
    let lost: Vec<&String> = acked.iter().filter(|n| !present.contains(*n)).collect();
    assert!(lost.is_empty(), "acknowledged creates lost: {lost:?}");
}

#[test]
fn postgres_outage() {
    an_outage_is_answered_503_at_once_and_service_resumes();
}

#[test]
fn postgres_outage_under_load() {
    an_outage_under_load_loses_nothing_acknowledged();
}

/// Takes back the newest migration, as an older version's schema would be.
fn revert_newest_migration(database_url: &str) {
    use diesel::Connection;
    use diesel_migrations::MigrationHarness;
    match database_url.strip_prefix("sqlite://") {
        Some(path) => {
            let mut conn = diesel::SqliteConnection::establish(path).expect("sqlite");
            conn.revert_last_migration(scimgate::storage::migrate::SQLITE_MIGRATIONS)
                .expect("revert");
        }
        None => {
            let mut conn = diesel::PgConnection::establish(database_url).expect("postgres");
            conn.revert_last_migration(scimgate::storage::migrate::POSTGRES_MIGRATIONS)
                .expect("revert");
        }
    }
}

fn readiness_needs_every_migration(backend: Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.worker.enabled = false;
        c.events.enabled = false;
    });
    assert_eq!(ready(&s), 200);
    revert_newest_migration(&s.database_url);
    let url = s.base.replace("/scim/v2", "/readyz");
    let response = reqwest::blocking::get(&url).expect("readyz");
    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = response.json().expect("JSON");
    assert_eq!(body["ready"], false);
    assert_eq!(
        body["detail"],
        "the database schema is missing migrations of this version"
    );
    // Opening the database (as a start-up does) brings the schema up to date again.
    scimgate::storage::Db::open(&s.database_url, 1).expect("migrate");
    assert_eq!(ready(&s), 200);
}

crate::for_each_backend!(readiness_needs_every_migration);
