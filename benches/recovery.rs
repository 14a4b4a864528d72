//! `cargo bench --bench recovery`: how soon a target's backlog is delivered after an outage.
//!
//! A target scimgate sits behind a small TCP relay that can cut it off (connections accepted
//! and dropped, as while a server restarts behind a load balancer). scimgate provisions to it
//! with the default retry, quarantine and probe settings. For each outage length the relay is
//! cut, `SCIMGATE_BENCH_CHANGES` users (default 500) are created at an even pace across the
//! outage, the relay is restored, and the time from the target's return until every order is
//! final (executed or verified) is measured. The target is then checked for exactly one account
//! per user: nothing lost, nothing duplicated.
//!
//! `SCIMGATE_BENCH_OUTAGES` (seconds, comma-separated; default `2,5,60`).

#[path = "../tests/support/relay.rs"]
mod relay;
#[path = "support/report.rs"]
mod report;
#[path = "support/server.rs"]
mod server;

use relay::Relay;
use server::start;

use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::json;

use scimgate::storage::{orders, target_health, Db};
use scimgate::targets::{TargetAuth, TargetConfig};

fn final_orders(db: &Db) -> (i64, i64) {
    let counts = db.read(|c| orders::counts(c, "t")).expect("counts");
    let get = |s: &str| counts.get(s).copied().unwrap_or(0);
    let done = get("executed") + get("verified");
    (done, counts.values().sum())
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < limit, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

struct Figures {
    outage: Duration,
    recovery: Duration,
    quarantined: bool,
    attempts: i64,
}

fn outage(seconds: u64, changes: usize) -> Figures {
    let target = start(|_| {});
    let upstream = target
        .base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("target address");
    let relay = Relay::start(upstream);
    let mut t = TargetConfig::scim(
        "t",
        &target
            .base
            .replace(&upstream.to_string(), &format!("127.0.0.1:{}", relay.port)),
    );
    t.auth = TargetAuth {
        kind: Some(scimgate::targets::AuthKind::Bearer),
        token: Some(target.token.clone()),
        ..TargetAuth::default()
    };
    t.groups = false;
    let source = start(move |c| c.targets = vec![t]);
    let client = Client::new();
    let create = |i: usize| {
        let r = client
            .post(format!("{}/Users", source.base))
            .bearer_auth(&source.token)
            .header("content-type", "application/scim+json")
            .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("r{i:05}")}).to_string())
            .send()
            .expect("create");
        assert_eq!(r.status().as_u16(), 201);
    };
    create(0);
    wait_until("the first user delivered", Duration::from_secs(30), || {
        final_orders(&source.db).0 == 1
    });

    relay.cut();
    let cut_at = Instant::now();
    let outage = Duration::from_secs(seconds);
    for i in 1..=changes {
        let due = cut_at + outage.mul_f64(i as f64 / (changes + 1) as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        create(i);
    }
    if let Some(rest) = (cut_at + outage).checked_duration_since(Instant::now()) {
        std::thread::sleep(rest);
    }
    let quarantined = source
        .db
        .read(|c| target_health::find(c, "t"))
        .expect("health")
        .is_some_and(|h| h.quarantined_since.is_some());
    relay.restore();
    let recovery = wait_until(
        "every order final after the outage",
        Duration::from_secs(600),
        || {
            let (done, all) = final_orders(&source.db);
            done == all && all == changes as i64 + 1
        },
    );
    let listed: serde_json::Value = client
        .get(format!("{}/Users?count=1", target.base))
        .bearer_auth(&target.token)
        .send()
        .and_then(|r| r.json())
        .expect("target users");
    assert_eq!(
        listed["totalResults"],
        changes + 1,
        "every user exactly once on the target"
    );
    let attempts: i64 = source
        .db
        .read(|c| {
            orders::list(
                c,
                &orders::OrderFilter {
                    target: Some("t".into()),
                    limit: 100_000,
                    ..Default::default()
                },
            )
        })
        .expect("orders")
        .iter()
        .map(|o| i64::from(o.attempts))
        .sum();
    Figures {
        outage,
        recovery,
        quarantined,
        attempts,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let changes: usize = std::env::var("SCIMGATE_BENCH_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let outages: Vec<u64> = std::env::var("SCIMGATE_BENCH_OUTAGES")
        .unwrap_or_else(|_| "2,5,60".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("recovery after an outage: {changes} changes arrive while the target is cut off");
    println!("outage  quarantined  attempts  return -> every order final");
    for seconds in outages {
        let f = outage(seconds, changes);
        println!(
            "{:>5.0} s  {:>11}  {:>8}  {:>8.2} s",
            f.outage.as_secs_f64(),
            if f.quarantined { "yes" } else { "no" },
            f.attempts,
            f.recovery.as_secs_f64()
        );
        report::record(
            &format!("outage {seconds} s"),
            serde_json::json!({"changes": changes, "quarantined": f.quarantined,
                "attempts": f.attempts, "recoverySeconds": f.recovery.as_secs_f64()}),
        );
    }
    report::write_recorded("recovery");
}
