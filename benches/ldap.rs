//! `cargo bench --bench ldap`: users/s provisioned into a real slapd from queued orders,
//! against plain `ldapadd` of the same entries into a fresh slapd in the same run.
//!
//! The engine's figure includes everything an order costs: claiming it, reading the source,
//! the correlation search, the add, and the read-back that verifies it.
//!
//! `SCIMGATE_BENCH_ORDERS` (default 10,000) and `SCIMGATE_BENCH_CONCURRENCY` (default 32: a directory takes many operations at once; ldapadd sends one at a time).

#[path = "support/report.rs"]
mod report;
#[path = "../tests/support/slapd.rs"]
mod slapd;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use scimgate::config::Config;
use scimgate::identity::Directory;
use scimgate::scim::projection::Projection;
use scimgate::storage::{orders, Db};
use scimgate::targets::ldap::LdapSettings;
use scimgate::targets::{TargetAuth, TargetConfig};

use slapd::{Slapd, ADMIN_DN, ADMIN_PASSWORD, SUFFIX};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn user(i: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("user{i:06}"),
        "name": {"givenName": "Given", "familyName": format!("Family{i}")},
        "emails": [{"value": format!("user{i:06}@example.org"), "type": "work", "primary": true}],
        "title": "Engineer"
    })
}

/// The entry the default OpenLDAP mapping makes of `user(i)`.
fn ldif(i: usize) -> String {
    format!(
        "dn: uid=user{i:06},ou=people,{SUFFIX}\nobjectClass: top\nobjectClass: person\n\
         objectClass: organizationalPerson\nobjectClass: inetOrgPerson\nuid: user{i:06}\n\
         cn: Given Family{i}\nsn: Family{i}\ngivenName: Given\n\
         mail: user{i:06}@example.org\ntitle: Engineer\n\n"
    )
}

fn open_orders(db: &Db) -> i64 {
    let counts = db.read(|c| orders::counts(c, "ldap")).expect("counts");
    ["pending", "transmitted", "errored"]
        .iter()
        .map(|s| counts.get(*s).copied().unwrap_or(0))
        .sum()
}

fn main() {
    let total = env_usize("SCIMGATE_BENCH_ORDERS", 10_000);
    let concurrency = env_usize("SCIMGATE_BENCH_CONCURRENCY", 32);
    println!(
        "LDAP benchmark: {total} users, concurrency {concurrency}, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    let plain_directory = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("users.ldif");
    let mut text = String::new();
    for i in 0..total {
        let _ = write!(text, "{}", ldif(i));
    }
    std::fs::write(&file, text).expect("write ldif");
    let took = plain_directory.add_file(&file);
    let plain = total as f64 / took.as_secs_f64();
    println!("plain ldapadd of the same entries:  {plain:>8.0} entries/s");
    drop(plain_directory);

    let directory = Slapd::start();
    let database_url = format!("sqlite://{}", dir.path().join("source.db").display());
    let db = Db::open(&database_url, 4).expect("open");
    let source = Directory::new(db.clone(), "http://localhost/scim/v2");
    for i in 0..total {
        let Value::Object(body) = user(i) else {
            unreachable!("a JSON object")
        };
        source
            .create_user(&body, &Projection::default(), "bench")
            .expect("create");
    }
    let mut target = TargetConfig::scim("ldap", &directory.url());
    target.kind = scimgate::targets::TargetKind::Ldap;
    target.concurrency = concurrency;
    target.auth = TargetAuth {
        kind: Some(scimgate::targets::AuthKind::Simple),
        username: Some(ADMIN_DN.into()),
        password: Some(ADMIN_PASSWORD.into()),
        ..TargetAuth::default()
    };
    target.ldap = Some(LdapSettings {
        base_dn: SUFFIX.into(),
        ..LdapSettings::default()
    });
    let mut config = Config {
        database_url,
        targets: vec![target],
        ..Config::default()
    };
    config.worker.poll_interval_ms = 10;
    // The orders are queued before the clock starts: this measures delivery, not planning.
    let planned_target = std::sync::Arc::new(
        scimgate::provisioning::Target::from_config(&config.targets[0]).expect("target"),
    );
    while scimgate::provisioning::planner::plan(&db, std::slice::from_ref(&planned_target), 5_000)
        .expect("plan")
        > 0
    {}
    let context = scimgate::provisioning::Context::new(source, db.clone());
    let engine = scimgate::app::engine(&config, context)
        .expect("engine")
        .expect("targets");
    println!("{total} orders queued; delivering");
    let started = Instant::now();
    let watched = db.clone();
    let elapsed = actix_web::rt::System::new().block_on(async move {
        let handle = engine.spawn();
        loop {
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            // Counted off the engine's thread, so watching does not slow it down.
            let watching = watched.clone();
            let done = actix_web::rt::task::spawn_blocking(move || {
                let planned: i64 = watching
                    .read(|c| orders::counts(c, "ldap"))
                    .expect("counts")
                    .values()
                    .sum();
                planned as usize >= total && open_orders(&watching) == 0
            })
            .await
            .expect("count task");
            if done {
                break;
            }
        }
        let elapsed = started.elapsed();
        handle.shutdown(Duration::from_secs(5)).await;
        elapsed
    });
    let rate = total as f64 / elapsed.as_secs_f64();
    let counts = db.read(|c| orders::counts(c, "ldap")).expect("counts");
    let in_directory = directory
        .search(&format!("ou=people,{SUFFIX}"), "(uid=*)")
        .len();
    println!(
        "engine provisioning queued orders:  {rate:>8.0} users/s ({:.0} % of plain ldapadd); \
         {in_directory} entries in the directory; states {counts:?}",
        100.0 * rate / plain
    );
    report::write(
        "ldap",
        &serde_json::json!({"users": total, "concurrency": concurrency,
            "plainLdapaddPerSecond": plain.round(), "engineUsersPerSecond": rate.round(),
            "shareOfPlainPercent": (100.0 * rate / plain).round()}),
    );
}
