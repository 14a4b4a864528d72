//! `cargo bench`: scimgate over real HTTP on SQLite and on PostgreSQL.
//!
//! Loads 100,000 users (the POST /Users measurement; each carries a custom extension attribute,
//! a unique badge) and 1,000 groups into each backend, then measures GET by id,
//! `filter=userName eq`, the same on the custom attribute, `filter=emails[value eq]`, PATCH
//! replace and a member add on a 50,000-member group, with concurrent clients; prints
//! requests/s, p50 and p99, and writes them to `target/bench/http.json`.
//! For PostgreSQL it also prints the raw single-row INSERT rate of the same server, with the
//! same number of concurrent connections, so the ratio is visible.
//!
//! It also reports the database's size once the users are loaded, and the process's peak
//! resident memory. Sizes can be changed: `SCIMGATE_BENCH_USERS=10000 cargo bench` for a
//! quick run, `SCIMGATE_BENCH_USERS=1000000` for a million users;
//! `SCIMGATE_BENCH_POST_ONLY=1` stops each backend after the POST /Users measurement;
//! `SCIMGATE_BENCH_PATCHES` sets how many PATCHes are measured (30,000: long enough that a
//! checkpoint landing in it or not moves the figure little).

#[path = "../tests/support/postgres.rs"]
mod postgres;
#[path = "support/report.rs"]
mod report_file;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use futures_util::future::BoxFuture;
use reqwest::Client;
use serde_json::{json, Value};

use scimgate::auth::api_token;
use scimgate::config::Config;
use scimgate::storage::Db;

/// Concurrent clients for throughput; latency is also measured with `LATENCY_CLIENTS`, since
/// on a 2-core machine 16 clients mostly measure queueing behind each other.
const CLIENTS: usize = 16;
const LATENCY_CLIENTS: usize = 4;

/// A declared extension: the custom attribute filtered on, unique like userName.
const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

/// Every figure reported, for `target/bench/http.json`.
static FIGURES: std::sync::Mutex<Vec<Value>> = std::sync::Mutex::new(Vec::new());

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server {
    base: String,
    token: String,
    db: Db,
    _dir: tempfile::TempDir,
}

fn start(database_url: String, dir: tempfile::TempDir) -> Server {
    let config = Config {
        listen: "127.0.0.1:0".into(),
        database_url,
        pool_size: CLIENTS as u32,
        max_payload_bytes: 16 * 1024 * 1024,
        max_page_size: 1000,
        schema_extensions: vec![
            scimgate::scim::schema::declaration::ExtensionDeclaration::from_json(json!({
                "id": ACME,
                "resourceTypes": [{"resourceType": "User"}],
                "attributes": [{"name": "badge", "type": "string", "uniqueness": "server"}]
            }))
            .expect("declaration"),
        ],
        ..Config::default()
    };
    let db = Db::open(&config.database_url, 2).expect("open database");
    let token = api_token::issue(&db, "bench").expect("token");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let started = scimgate::app::start(&config).expect("start");
            tx.send(started.addr).expect("send addr");
            let _ = started.server.await;
        })
    });
    let addr = rx.recv().expect("server address");
    Server {
        base: format!("http://{addr}/scim/v2"),
        token,
        db,
        _dir: dir,
    }
}

/// One request of a measurement: `request(client, i)` sends request number i and says whether
/// it succeeded.
type Request = Arc<dyn Fn(Client, usize) -> BoxFuture<'static, bool> + Send + Sync>;

/// Reads: throughput with `CLIENTS`, then latency with `LATENCY_CLIENTS`.
fn measure_read(
    backend: &str,
    what: &str,
    total: usize,
    request: impl Fn(Client, usize) -> BoxFuture<'static, bool> + Send + Sync + 'static,
) {
    let request: Request = Arc::new(request);
    let at = |n: usize| format!("{what} [{n} clients]");
    report(
        backend,
        &at(CLIENTS),
        measure_with(CLIENTS, total, request.clone()),
    );
    report(
        backend,
        &at(LATENCY_CLIENTS),
        measure_with(LATENCY_CLIENTS, total, request),
    );
}

fn measure(
    total: usize,
    request: impl Fn(Client, usize) -> BoxFuture<'static, bool> + Send + Sync + 'static,
) -> (f64, Duration, Duration) {
    measure_with(CLIENTS, total, Arc::new(request))
}

/// Runs `total` requests from `clients` concurrent connections and returns (requests/s, p50,
/// p99). The clients are tasks on one thread: a load generator that takes a thread per
/// connection spends, on a 2-core machine, much of the CPU the server needs.
fn measure_with(clients: usize, total: usize, request: Request) -> (f64, Duration, Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let client = Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut latencies: Vec<Duration> = runtime.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (request, next, failures) = (request.clone(), next.clone(), failures.clone());
                let client = client.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            break;
                        }
                        let t = Instant::now();
                        if !request(client.clone(), i).await {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        latencies.push(t.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::with_capacity(total);
        for task in tasks {
            all.extend(task.await.expect("client task"));
        }
        all
    });
    let elapsed = started.elapsed();
    let failed = failures.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "{failed} requests failed");
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    (total as f64 / elapsed.as_secs_f64(), pct(0.50), pct(0.99))
}

#[derive(QueryableByName)]
struct Bytes {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    bytes: i64,
}

/// The database's size on disk, as the backend counts it.
fn database_bytes(db: &Db) -> i64 {
    db.read(|c| {
        let sql = match c {
            scimgate::storage::DbConnection::Sqlite(_) => {
                "SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()"
            }
            scimgate::storage::DbConnection::Postgresql(_) => {
                "SELECT pg_database_size(current_database()) AS bytes"
            }
        };
        diesel::sql_query(sql)
            .get_result::<Bytes>(c)
            .map(|b| b.bytes)
            .map_err(scimgate::storage::StoreError::from)
    })
    .unwrap_or(0)
}

#[derive(QueryableByName)]
struct Updates {
    #[diesel(sql_type = diesel::sql_types::Text)]
    relname: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    updated: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    hot: i64,
}

/// PostgreSQL only: per table, how many row updates there were and how many of them were HOT
/// (the new version on the old one's page, no index touched). The statistics reach these
/// views within about a second of each transaction.
fn hot_updates(db: &Db) -> Vec<Updates> {
    db.read(|c| match c {
        scimgate::storage::DbConnection::Sqlite(_) => Ok(Vec::new()),
        scimgate::storage::DbConnection::Postgresql(_) => diesel::sql_query(
            "SELECT relname::text AS relname, n_tup_upd AS updated, n_tup_hot_upd AS hot \
             FROM pg_stat_user_tables WHERE relname IN ('scim_users', 'scim_groups') \
             ORDER BY relname DESC",
        )
        .load::<Updates>(c)
        .map_err(scimgate::storage::StoreError::from),
    })
    .unwrap_or_default()
}

/// The process's peak resident memory in kB (server and load generator share the process).
fn peak_rss_kb() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

fn report(backend: &str, what: &str, (rate, p50, p99): (f64, Duration, Duration)) {
    if let Ok(mut figures) = FIGURES.lock() {
        figures.push(json!({
            "backend": backend, "what": what, "requestsPerSecond": rate.round(),
            "p50Ms": p50.as_secs_f64() * 1000.0, "p99Ms": p99.as_secs_f64() * 1000.0,
        }));
    }
    println!(
        "{backend:<8} {what:<46} {rate:>7.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
}

/// Whether a response is a success and, when `check` is given, its JSON passes it.
async fn succeeded(
    sent: reqwest::Result<reqwest::Response>,
    check: Option<fn(&Value) -> bool>,
) -> bool {
    let Ok(response) = sent else { return false };
    if !response.status().is_success() {
        return false;
    }
    match check {
        None => response.bytes().await.is_ok(),
        Some(check) => response.json::<Value>().await.is_ok_and(|v| check(&v)),
    }
}

fn one_result(v: &Value) -> bool {
    v["totalResults"] == 1
}

/// `raw_inserts`: the backend's raw single-row INSERT rate, when measured, to print POST
/// /Users as a share of it.
fn bench_backend(backend: &str, server: Server, raw_inserts: Option<f64>) {
    let users = env_usize("SCIMGATE_BENCH_USERS", 100_000);
    let groups = env_usize("SCIMGATE_BENCH_GROUPS", 1_000);
    let big_group = env_usize("SCIMGATE_BENCH_BIG_GROUP", 50_000).min(users);
    let base = Arc::new(server.base.clone());
    let token = Arc::new(server.token.clone());
    let ids: Arc<Vec<std::sync::Mutex<String>>> = Arc::new(
        (0..users)
            .map(|_| std::sync::Mutex::new(String::new()))
            .collect(),
    );

    let (b, t, slots) = (base.clone(), token.clone(), ids.clone());
    let post = measure(users, move |c, i| {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("user{i:06}@example.com"),
            "name": {"givenName": "Given", "familyName": format!("Family{i}")},
            "emails": [{"value": format!("user{i:06}@mail.example.com"), "type": "work", "primary": true}],
            "active": true,
            ACME: {"badge": format!("B-{i:06}")}
        });
        let (b, t, slots) = (b.clone(), t.clone(), slots.clone());
        Box::pin(async move {
            let sent = c
                .post(format!("{b}/Users"))
                .bearer_auth(&*t)
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send()
                .await;
            let Ok(response) = sent else { return false };
            if response.status().as_u16() != 201 {
                return false;
            }
            match response.json::<Value>().await {
                Ok(v) => {
                    if let (Some(id), Ok(mut slot)) = (v["id"].as_str(), slots[i].lock()) {
                        *slot = id.to_string();
                    }
                    true
                }
                Err(_) => false,
            }
        })
    });
    report(backend, &format!("POST /Users ({users} loaded)"), post);
    let bytes = database_bytes(&server.db);
    println!(
        "{backend:<8} database size with {users} users: {:.1} MiB",
        bytes as f64 / 1048576.0
    );
    if let Ok(mut figures) = FIGURES.lock() {
        figures.push(
            json!({"backend": backend, "what": "database bytes", "users": users, "bytes": bytes}),
        );
    }
    if let Some(raw) = raw_inserts {
        println!(
            "{backend:<8} POST /Users is {:.0} % of the raw single-row INSERT rate",
            100.0 * post.0 / raw
        );
    }
    if std::env::var_os("SCIMGATE_BENCH_POST_ONLY").is_some() {
        return;
    }
    let ids: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|m| m.lock().map(|s| s.clone()).unwrap_or_default())
            .collect(),
    );

    let (b, t) = (base.clone(), token.clone());
    let load_groups = measure(groups, move |c, i| {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("group{i:05}")});
        let sent = c
            .post(format!("{b}/Groups"))
            .bearer_auth(&*t)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send();
        Box::pin(async move { succeeded(sent.await, None).await })
    });
    report(
        backend,
        &format!("POST /Groups ({groups} loaded)"),
        load_groups,
    );

    let reads = 20_000;
    let (b, t, ids2) = (base.clone(), token.clone(), ids.clone());
    measure_read(backend, "GET /Users/{id}", reads, move |c, i| {
        let id = &ids2[(i * 7919) % ids2.len()];
        let sent = c.get(format!("{b}/Users/{id}")).bearer_auth(&*t).send();
        Box::pin(async move { succeeded(sent.await, None).await })
    });
    let (b, t) = (base.clone(), token.clone());
    measure_read(backend, "GET filter=userName eq", reads, move |c, i| {
        let n = (i * 7919) % users;
        let sent = c
            .get(format!(
                "{b}/Users?filter=userName%20eq%20%22user{n:06}%40example.com%22"
            ))
            .bearer_auth(&*t)
            .send();
        Box::pin(async move { succeeded(sent.await, Some(one_result)).await })
    });
    let (b, t) = (base.clone(), token.clone());
    measure_read(
        backend,
        "GET filter=urn:...:badge eq (custom)",
        reads,
        move |c, i| {
            let n = (i * 7919) % users;
            let sent = c
                .get(format!(
                    "{b}/Users?filter={ACME}:badge%20eq%20%22b-{n:06}%22"
                ))
                .bearer_auth(&*t)
                .send();
            Box::pin(async move { succeeded(sent.await, Some(one_result)).await })
        },
    );
    let (b, t) = (base.clone(), token.clone());
    measure_read(
        backend,
        "GET filter=emails[value eq]",
        reads,
        move |c, i| {
            let n = (i * 7919) % users;
            let sent = c
                .get(format!(
                    "{b}/Users?filter=emails%5Bvalue%20eq%20%22user{n:06}%40mail.example.com%22%5D"
                ))
                .bearer_auth(&*t)
                .send();
            Box::pin(async move { succeeded(sent.await, Some(one_result)).await })
        },
    );
    let (b, t, ids2) = (base.clone(), token.clone(), ids.clone());
    report(
        backend,
        "PATCH replace",
        measure(env_usize("SCIMGATE_BENCH_PATCHES", 30_000), move |c, i| {
            let id = &ids2[(i * 7919) % ids2.len()];
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": format!("Title {i}")}]});
            let sent = c
                .patch(format!("{b}/Users/{id}"))
                .bearer_auth(&*t)
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send();
            Box::pin(async move { succeeded(sent.await, None).await })
        }),
    );

    // A group of `big_group` members, filled 5,000 at a time, then one-member adds.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    let created: Value = client
        .post(format!("{base}/Groups"))
        .bearer_auth(&*token)
        .header("content-type", "application/scim+json")
        .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "everyone"}).to_string())
        .send()
        .and_then(|r| r.json())
        .expect("big group");
    let gid = created["id"].as_str().expect("group id").to_string();
    for chunk in ids[..big_group - 1000].chunks(5_000) {
        let members: Vec<Value> = chunk.iter().map(|id| json!({"value": id})).collect();
        let body = json!({"Operations": [{"op": "add", "path": "members", "value": members}]});
        let r = client
            .patch(format!("{base}/Groups/{gid}?excludedAttributes=members"))
            .bearer_auth(&*token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .expect("fill group");
        assert!(r.status().is_success());
    }
    let (b, t, ids2) = (base.clone(), token.clone(), ids.clone());
    let offset = big_group - 1000;
    report(
        backend,
        &format!("PATCH add member ({big_group}-member group)"),
        measure(1000, move |c, i| {
            let id = &ids2[offset + i];
            let body =
                json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]});
            let sent = c
                .patch(format!("{b}/Groups/{gid}?excludedAttributes=members"))
                .bearer_auth(&*t)
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send();
            Box::pin(async move { succeeded(sent.await, None).await })
        }),
    );
    for table in hot_updates(&server.db) {
        println!(
            "{backend:<8} {} updated {} times, {:.0} % of them HOT (no index touched)",
            table.relname,
            table.updated,
            100.0 * table.hot as f64 / table.updated.max(1) as f64
        );
        if let Ok(mut figures) = FIGURES.lock() {
            figures.push(
                json!({"backend": backend, "what": format!("{} updates", table.relname),
                "updated": table.updated, "hot": table.hot}),
            );
        }
    }
    let peak = peak_rss_kb();
    println!(
        "{backend:<8} peak resident memory so far (server and load generator): {:.0} MiB",
        peak as f64 / 1024.0
    );
    if let Ok(mut figures) = FIGURES.lock() {
        figures.push(json!({"backend": backend, "what": "peak RSS kB", "kb": peak}));
    }
}

diesel::table! {
    raw_insert (id) {
        id -> Text,
        body -> Text,
    }
}

/// Single-row INSERTs into a plain table from `CLIENTS` connections: the ceiling for POST.
fn raw_postgres_inserts(url: &str) -> f64 {
    let mut conn = PgConnection::establish(url).expect("connect");
    diesel::sql_query("CREATE TABLE raw_insert (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&mut conn)
        .expect("create");
    let total = 50_000;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let url = url.to_string();
            let next = next.clone();
            std::thread::spawn(move || {
                let mut conn = PgConnection::establish(&url).expect("connect");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    // diesel prepares this once per connection, like `pgbench -M prepared`.
                    diesel::insert_into(raw_insert::table)
                        .values((
                            raw_insert::id.eq(format!("row{i}")),
                            raw_insert::body.eq("{\"userName\":\"x\"}"),
                        ))
                        .execute(&mut conn)
                        .expect("insert");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("insert thread");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes flags such as --bench; this binary takes none.
    let backends =
        std::env::var("SCIMGATE_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let sqlite_dir = tempfile::tempdir().expect("temp dir");
    let sqlite_url = format!("sqlite://{}", sqlite_dir.path().join("bench.db").display());
    println!(
        "scimgate HTTP benchmark, {CLIENTS} concurrent clients, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    if backends.contains("sqlite") {
        bench_backend("sqlite", start(sqlite_url, sqlite_dir), None);
    }
    if backends.contains("postgres") {
        // Production settings by default; `SCIMGATE_BENCH_PG=test` runs the tests' cluster
        // settings (no fsync, asynchronous commit) instead.
        let durability = match std::env::var("SCIMGATE_BENCH_PG").as_deref() {
            Ok("test") => postgres::Durability::Test,
            _ => postgres::Durability::Production,
        };
        let pg = postgres::shared_with(durability);
        let raw = raw_postgres_inserts(&pg.create_database());
        println!(
            "postgres ({durability:?} durability: {}) raw single-row INSERT (prepared), {CLIENTS} connections: {raw:>9.0} rows/s",
            match durability {
                postgres::Durability::Test => "fsync off, asynchronous commit",
                postgres::Durability::Production => "fsync, synchronous commit, full-page writes",
            }
        );
        bench_backend(
            "postgres",
            start(pg.create_database(), tempfile::tempdir().expect("temp dir")),
            Some(raw),
        );
    }
    let figures = FIGURES.lock().map(|f| f.clone()).unwrap_or_default();
    report_file::write("http", &Value::Array(figures));
}
