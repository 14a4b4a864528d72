//! `cargo bench --bench reconcile`: a full sync of 100,000 users with 1% drift, against a real
//! slapd and against a SCIM target (a second scimgate): the time to aggregate, to diff, and the
//! orders emitted; the LDAP aggregation against a plain paged `ldapsearch` of the same entries.
//!
//! `SCIMGATE_BENCH_USERS` (default 100,000) sets the population; `SCIMGATE_BENCH_TARGETS=ldap`
//! skips the SCIM target.

#[path = "support/report.rs"]
mod report_file;
#[path = "../tests/support/slapd.rs"]
mod slapd;

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use serde_json::{json, Map, Value};

use scimgate::auth::api_token;
use scimgate::config::Config;
use scimgate::identity::Directory;
use scimgate::provisioning::{Context, Target};
use scimgate::reconcile::aggregate;
use scimgate::reconcile::full_sync::{self, SyncOptions, SyncReport};
use scimgate::scim::projection::Projection;
use scimgate::storage::{sync_runs, Db};
use scimgate::targets::ldap::LdapSettings;
use scimgate::targets::{TargetAuth, TargetConfig};

use slapd::{Slapd, ADMIN_DN, ADMIN_PASSWORD, SUFFIX};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn drifted(i: usize) -> bool {
    i % 100 == 7
}

fn user(i: usize) -> Map<String, Value> {
    let Value::Object(body) = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("user{i:06}"),
        "name": {"givenName": "Given", "familyName": format!("Family{i}")},
        "emails": [{"value": format!("user{i:06}@example.org"), "type": "work", "primary": true}],
        "title": "Engineer"
    }) else {
        unreachable!("a JSON object")
    };
    body
}

/// The entry the default OpenLDAP mapping makes of `user(i)`, drifted for 1% of users.
fn ldif(i: usize) -> String {
    let title = if drifted(i) { "Drifted" } else { "Engineer" };
    format!(
        "dn: uid=user{i:06},ou=people,{SUFFIX}\nobjectClass: top\nobjectClass: person\n\
         objectClass: organizationalPerson\nobjectClass: inetOrgPerson\nuid: user{i:06}\n\
         cn: Given Family{i}\nsn: Family{i}\ngivenName: Given\n\
         mail: user{i:06}@example.org\ntitle: {title}\n\n"
    )
}

fn memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn sync(directory: &Context, target: TargetConfig) -> SyncReport {
    let target = Arc::new(Target::from_config(&target).expect("target"));
    let options = SyncOptions {
        dry_run: false,
        trigger: "cli",
    };
    let id = full_sync::start(directory.db(), &target.config.name, options).expect("start");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(full_sync::run(directory, &target, id, options))
        .expect("full sync")
}

fn median(mut samples: Vec<u64>) -> u64 {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// A plain paged `ldapsearch` of every user entry, output thrown away: the yardstick.
fn plain_search_ms(directory: &Slapd) -> u64 {
    let clock = Instant::now();
    let status = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &directory.url(),
            "-D",
            ADMIN_DN,
            "-w",
            ADMIN_PASSWORD,
        ])
        .args([
            "-E",
            "pr=2000/noprompt",
            "-b",
            SUFFIX,
            "(objectClass=inetOrgPerson)",
            "*",
        ])
        .stdout(Stdio::null())
        .status()
        .expect("ldapsearch");
    assert!(status.success(), "ldapsearch failed");
    clock.elapsed().as_millis() as u64
}

/// One aggregation of the target on its own, as `scimgate aggregate` runs it.
fn aggregate_ms(directory: &Context, target: TargetConfig) -> u64 {
    let target = Arc::new(Target::from_config(&target).expect("target"));
    let id = sync_runs::start(
        directory.db(),
        &target.config.name,
        "aggregate",
        false,
        "cli",
    )
    .expect("start");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let clock = Instant::now();
    runtime
        .block_on(aggregate::run(directory, &target, id))
        .expect("aggregate");
    clock.elapsed().as_millis() as u64
}

fn report(label: &str, total: usize, r: &SyncReport) {
    report_file::record(
        label,
        json!({"aggregateMs": r.aggregate_ms, "diffMs": r.diff_ms, "compared": r.compared,
               "differ": r.differs, "missing": r.missing, "orphans": r.orphans,
               "ordersEmitted": r.orders_emitted, "accounts": total}),
    );
    println!(
        "{label}: aggregate {:>6} ms ({:.0} accounts/s), diff {:>6} ms ({:.0} identities/s), \
         {} differ, {} missing, {} orphans, {} orders emitted",
        r.aggregate_ms,
        total as f64 / (r.aggregate_ms.max(1) as f64 / 1e3),
        r.diff_ms,
        r.compared as f64 / (r.diff_ms.max(1) as f64 / 1e3),
        r.differs,
        r.missing,
        r.orphans,
        r.orders_emitted
    );
}

/// A second scimgate holding `total` users (1% drifted), whose externalIds are `ids`.
fn scim_target(ids: &[String]) -> (String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        listen: "127.0.0.1:0".into(),
        database_url: format!("sqlite://{}", dir.path().join("target.db").display()),
        pool_size: 8,
        max_page_size: 1_000,
        ..Config::default()
    };
    let db = Db::open(&config.database_url, 4).expect("open");
    let token = api_token::issue(&db, "bench").expect("token");
    let held = Context::new(Directory::new(db.clone(), "http://localhost/scim/v2"), db);
    for (i, id) in ids.iter().enumerate() {
        let mut body = user(i);
        body.insert("externalId".into(), Value::from(id.as_str()));
        if drifted(i) {
            body.insert("title".into(), Value::from("Drifted"));
        }
        held.create_user(&body, &Projection::default(), "bench")
            .expect("create");
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let started = scimgate::app::start(&config).expect("start");
            tx.send(started.addr).expect("addr");
            let _ = started.server.await;
        })
    });
    let addr = rx.recv().expect("started");
    (format!("http://{addr}/scim/v2"), token, dir)
}

fn main() {
    let total = env_usize("SCIMGATE_BENCH_USERS", 100_000);
    println!(
        "Full-sync benchmark: {total} users, 1% drift, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("source.db").display());
    let db = Db::open(&database_url, 4).expect("open");
    let source = Context::new(Directory::new(db.clone(), "http://localhost/scim/v2"), db);
    let clock = Instant::now();
    let ids: Vec<String> = (0..total)
        .map(|i| {
            let created = source
                .create_user(&user(i), &Projection::default(), "bench")
                .expect("create");
            created.body["id"].as_str().expect("id").to_string()
        })
        .collect();
    println!(
        "{total} source users created in {:.1} s",
        clock.elapsed().as_secs_f64()
    );

    // LDAP: the entries exist already (as if provisioned before, then drifted).
    let directory = Slapd::start();
    let file = dir.path().join("users.ldif");
    let mut text = String::new();
    for i in 0..total {
        let _ = write!(text, "{}", ldif(i));
    }
    std::fs::write(&file, text).expect("write ldif");
    directory.add_file(&file);
    let repeats = env_usize("SCIMGATE_BENCH_REPEATS", 3).max(1);
    let plain_ms = median((0..repeats).map(|_| plain_search_ms(&directory)).collect());
    println!(
        "plain paged ldapsearch of the same entries (pages of 2,000, as the connector asks), \
         median of {repeats}: {plain_ms} ms"
    );
    report_file::record("plain ldapsearch ms", json!(plain_ms));
    let mut target = TargetConfig::scim("ldap", &directory.url());
    target.kind = scimgate::targets::TargetKind::Ldap;
    target.groups = false;
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
    // Anonymous memory (the heap): the databases' memory-mapped pages count as resident too,
    // but they are the kernel's page cache, not the process's own.
    let heap_before = memory_kib("RssAnon:");
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(heap_before));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(memory_kib("RssAnon:"), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    };
    let ldap = sync(&source, target.clone());
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.join();
    report(
        "LDAP (slapd), first sync (correlates and links every account)",
        total,
        &ldap,
    );
    println!(
        "  aggregation took {:.2}x the plain ldapsearch; heap (anonymous resident memory) {} MiB before, peak {} MiB during the sync",
        ldap.aggregate_ms as f64 / plain_ms.max(1) as f64,
        heap_before / 1024,
        peak.load(std::sync::atomic::Ordering::Relaxed) / 1024
    );
    // A first aggregation again, on fresh targets (same entries, no links, nothing recorded),
    // alternating with the plain search so both see the same machine.
    let (mut plain_runs, mut first_runs) = (Vec::new(), Vec::new());
    for run in 0..repeats {
        plain_runs.push(plain_search_ms(&directory));
        let mut fresh = target.clone();
        fresh.name = format!("ldap-fresh-{run}");
        first_runs.push(aggregate_ms(&source, fresh));
    }
    let (plain_again, first) = (median(plain_runs), median(first_runs));
    println!(
        "LDAP (slapd), first aggregation alone (fresh target: correlates and links every \
         account), median of {repeats}: {first} ms ({:.0} accounts/s), plain ldapsearch median \
         {plain_again} ms alongside: {:.2}x",
        total as f64 / (first.max(1) as f64 / 1e3),
        first as f64 / plain_again.max(1) as f64
    );
    report_file::record(
        "LDAP first aggregation",
        json!({"ms": first, "plainLdapsearchMs": plain_again}),
    );
    // Steady state: every account linked and recorded; what a scheduled aggregation costs.
    let steady = median(
        (0..repeats)
            .map(|_| aggregate_ms(&source, target.clone()))
            .collect(),
    );
    println!(
        "LDAP (slapd), aggregation alone, accounts linked, median of {repeats}: {steady} ms \
         ({:.0} accounts/s), {:.2}x the plain ldapsearch",
        total as f64 / (steady.max(1) as f64 / 1e3),
        steady as f64 / plain_ms.max(1) as f64
    );
    report_file::record("LDAP steady aggregation ms", json!(steady));
    // The corrections of the first sync were not delivered, so the same drift is found again.
    let again = sync(&source, target);
    report("LDAP (slapd), next sync (accounts linked)", total, &again);
    println!(
        "  aggregation took {:.2}x the plain ldapsearch",
        again.aggregate_ms as f64 / plain_ms.max(1) as f64
    );
    drop(directory);
    if std::env::var("SCIMGATE_BENCH_TARGETS").is_ok_and(|t| !t.contains("scim")) {
        report_file::write_recorded("reconcile");
        return;
    }

    let (base, token, _target_dir) = scim_target(&ids);
    let mut target = TargetConfig::scim("app", &base);
    target.groups = false;
    target.auth = TargetAuth {
        kind: Some(scimgate::targets::AuthKind::Bearer),
        token: Some(token),
        ..TargetAuth::default()
    };
    let scim = sync(&source, target);
    report("SCIM (scimgate)", total, &scim);
    report_file::write_recorded("reconcile");
}
