//! `cargo bench --bench console`: how long the console's pages take with 100,000 users and
//! 1,000,000 orders, on SQLite and on PostgreSQL (production durability).
//!
//! Users are loaded through SCIM (`POST /Users`, 16 clients). The orders are written straight
//! into the database as the engine leaves them (5 targets, 2 orders per user and target, a
//! month of history: mostly executed or verified, some errored, in error, pending, held for
//! approval or inactive; each with its transitions and attempts), since delivering a million
//! orders first would take the bench an hour. The workers are off, so nothing moves while
//! pages are timed. Each page is fetched by a signed-in admin, sequentially, after warming up;
//! the bench prints p50, p95 and the slowest of `SCIMGATE_BENCH_ROUNDS` fetches (default 20)
//! and writes them to `target/bench/console.json`. The goal is p95 < 100 ms on every page.
//! The admin API's order listing (`GET /admin/orders`, with an admin token) is timed the same
//! way, and so is what every engine round and heartbeat asks of the orders table (expired
//! leases, lease renewal), which must stay a seek however many orders have ended.
//!
//! `SCIMGATE_BENCH_USERS` (default 100,000; orders are ten per user),
//! `SCIMGATE_BENCH_BACKENDS` (default `sqlite,postgres`).

#[path = "../tests/support/postgres.rs"]
mod postgres;
#[path = "support/report.rs"]
mod report;
#[path = "support/server.rs"]
mod server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use reqwest::blocking::Client;
use serde_json::{json, Value};

use scimgate::auth::{api_token, Role};
use scimgate::storage::{Db, StoreError};
use scimgate::targets::TargetConfig;

const TARGETS: usize = 5;
const CLIENTS: usize = 16;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The bench's server and the admin token its browser signs in with.
struct Server {
    root: String,
    scim_token: String,
    admin_token: String,
    db: Db,
    _server: server::Server,
}

/// A server on `database_url`, or on SQLite in a temp dir.
fn start(database_url: Option<String>) -> Server {
    let started = server::start_on(database_url, |config| {
        config.targets = (0..TARGETS)
            .map(|i| TargetConfig::scim(&format!("app{i}"), "http://127.0.0.1:9/scim/v2"))
            .collect();
        // Nothing moves while pages are timed.
        config.worker.enabled = false;
    });
    let admin_token =
        api_token::issue_with_role(&started.db, "bench-admin", Role::Admin).expect("token");
    Server {
        root: started.base.replace("/scim/v2", ""),
        scim_token: started.token.clone(),
        admin_token,
        db: started.db.clone(),
        _server: started,
    }
}

/// Loads `count` users through SCIM with concurrent clients; answers users per second.
fn load_users(server: &Server, count: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (next, url, token) = (
                next.clone(),
                format!("{}/scim/v2/Users", server.root),
                server.scim_token.clone(),
            );
            std::thread::spawn(move || {
                let client = Client::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let user = json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": format!("user{i:07}"),
                        "displayName": format!("User {i}"),
                        "name": {"givenName": "User", "familyName": format!("N{i}")},
                        "emails": [{"value": format!("user{i}@example.com"), "primary": true}],
                        "active": true,
                    });
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/scim+json")
                        .body(user.to_string())
                        .send()
                        .expect("POST /Users");
                    assert_eq!(response.status().as_u16(), 201, "user {i}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("loader");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// Writes ten orders per user (two per target) with their transitions and attempts, spread
/// over the last month; answers how long it took.
fn seed_orders(db: &Db) -> Duration {
    let now = db.clock().now_micros();
    let started = Instant::now();
    // `k` numbers a user's orders: target `app{k % 5}`, the first five creates, the rest
    // updates. `seq` orders all orders in time, one every 2.5 s back from now.
    let orders = format!(
        "INSERT INTO orders (target, resource_type, resource_id, change_seq, operation, state,
             attempts, next_attempt_at, last_error, remote_id, created_at, updated_at, origin,
             held_by, held_reason)
         SELECT 'app' || (k % 5), 'User', id, seq, 'upsert',
             CASE WHEN h < 5 THEN 'error' WHEN h < 10 THEN 'errored' WHEN h < 30 THEN 'pending'
                  WHEN h < 35 THEN 'awaiting_approval' WHEN h < 40 THEN 'transmitted'
                  WHEN h < 50 THEN 'inactive' WHEN h < 500 THEN 'executed' ELSE 'verified' END,
             CASE WHEN h < 10 THEN 3 WHEN h < 35 THEN 0 ELSE 1 END,
             {now},
             CASE WHEN h < 10 THEN 'HTTP 500: the application failed' END,
             CASE WHEN h >= 50 THEN 'remote-' || seq END,
             {now} - (total - seq) * 2500000,
             {now} - (total - seq) * 2500000 + 1000000,
             'change',
             CASE WHEN h >= 30 AND h < 35 THEN 'review' END,
             CASE WHEN h >= 30 AND h < 35 THEN 'deprovisioning waits for approval' END
         FROM (SELECT u.id AS id, k.k AS k, (u.n - 1) * 10 + k.k + 1 AS seq,
                      ((u.n - 1) * 10 + k.k) * 7919 % 1000 AS h, c.total AS total
               FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM scim_users) u
               CROSS JOIN (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3
                           UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6
                           UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) k
               CROSS JOIN (SELECT COUNT(*) * 10 AS total FROM scim_users) c) s
         ORDER BY seq"
    );
    let statements = [
        orders,
        "INSERT INTO order_transitions (order_id, state, at)
         SELECT id, 'pending', created_at FROM orders"
            .to_string(),
        "INSERT INTO order_transitions (order_id, state, at)
         SELECT id, state, updated_at FROM orders WHERE state <> 'pending'"
            .to_string(),
        // The engine tallies orders as it moves them; these were written around it.
        "DELETE FROM order_tally_changes".to_string(),
        "DELETE FROM order_tallies".to_string(),
        "INSERT INTO order_tallies (target, state, orders, last_entered_at)
         SELECT target, state, COUNT(*), MAX(updated_at) FROM orders GROUP BY target, state"
            .to_string(),
        "INSERT INTO order_attempts (order_id, started_at, duration_ms, http_status, error)
         SELECT id, updated_at - 40000, 40,
                CASE WHEN last_error IS NULL THEN 201 ELSE 500 END, last_error
         FROM orders WHERE attempts > 0"
            .to_string(),
    ];
    db.write(|tx| {
        for sql in &statements {
            diesel::sql_query(sql.as_str()).execute(tx.conn())?;
        }
        Ok::<_, StoreError>(())
    })
    .expect("seed orders");
    db.read(|c| Ok::<_, StoreError>(diesel::sql_query("ANALYZE").execute(c)?))
        .expect("analyze");
    started.elapsed()
}

/// What every engine round and heartbeat asks of the orders, beside delivering: expired
/// leases (each round) and the renewal of its own (each heartbeat). p50 and slowest of
/// `rounds`, in ms; with a million orders they must stay seeks, not walks.
fn time_housekeeping(db: &Db, rounds: usize) -> Value {
    use scimgate::storage::orders;
    let mut figures = serde_json::Map::new();
    let steps: [(&str, &dyn Fn()); 2] = [
        ("expired leases (each round)", &|| {
            orders::reclaim_expired(db).expect("reclaim");
        }),
        ("lease renewal (each heartbeat)", &|| {
            orders::renew_leases(db, "bench-worker", 60_000_000).expect("renew");
        }),
    ];
    for (name, step) in steps {
        let mut took: Vec<Duration> = (0..rounds.max(2))
            .map(|_| {
                let started = Instant::now();
                step();
                started.elapsed()
            })
            .collect();
        took.sort();
        let (p50, max) = (ms(took[took.len() / 2]), ms(took[took.len() - 1]));
        println!("engine housekeeping: {name:<32} p50 {p50:>7.2} ms   max {max:>7.2} ms");
        figures.insert(name.to_string(), json!({"p50Ms": p50, "maxMs": max}));
    }
    Value::Object(figures)
}

/// A browser signed in as an admin.
fn signed_in(server: &Server) -> Client {
    let browser = Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let form = browser
        .get(format!("{}/ui/login", server.root))
        .send()
        .and_then(|r| r.text())
        .expect("sign-in page");
    let start = form.find("name=\"csrf\" value=\"").expect("CSRF field") + 19;
    let csrf = form[start..].split('"').next().expect("CSRF value");
    let signed = browser
        .post(format!("{}/ui/login", server.root))
        .form(&[("token", server.admin_token.as_str()), ("csrf", csrf)])
        .send()
        .and_then(|r| r.text())
        .expect("sign in");
    assert!(signed.contains("Sign out"), "signed in");
    browser
}

/// p50, p95 and the slowest of `rounds` sequential fetches of `path`, after two to warm up.
fn time_page(client: &Client, server: &Server, path: &str, rounds: usize) -> [Duration; 3] {
    let url = format!("{}{path}", server.root);
    let fetch = || {
        let started = Instant::now();
        let response = client.get(&url).send().expect("page");
        let status = response.status().as_u16();
        let body = response.bytes().expect("body");
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        started.elapsed()
    };
    fetch();
    fetch();
    let mut times: Vec<Duration> = (0..rounds).map(|_| fetch()).collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    [at(0.5), at(0.95), times[times.len() - 1]]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn bench_backend(backend: &str, server: Server, users: usize, rounds: usize) -> Value {
    let load_rate = load_users(&server, users);
    println!("{backend}: {users} users loaded through SCIM at {load_rate:.0}/s");
    let seeding = seed_orders(&server.db);
    println!(
        "{backend}: {} orders with transitions and attempts written in {:.1} s",
        users * 10,
        seeding.as_secs_f64()
    );
    let browser = signed_in(&server);
    let (some_user, some_order) = server
        .db
        .read(|c| {
            use diesel::prelude::*;
            use scimgate::storage::schema::orders;
            Ok::<_, StoreError>(
                orders::table
                    .filter(orders::state.eq("error"))
                    .order(orders::id.desc())
                    .select((orders::resource_id, orders::id))
                    .first::<(String, i64)>(c)?,
            )
        })
        .expect("an order in error");
    let pages = [
        ("overview", "/ui".to_string()),
        ("orders", "/ui/orders".into()),
        (
            "orders of a target in error",
            "/ui/orders?target=app3&state=error".into(),
        ),
        (
            "orders of a resource",
            format!("/ui/orders?resource={some_user}"),
        ),
        ("one order", format!("/ui/orders/{some_order}")),
        ("approvals", "/ui/approvals".into()),
        ("work items", "/ui/work-items".into()),
        ("reconciliation", "/ui/reconcile".into()),
        (
            "people search",
            "/ui/people?kind=users&filter=userName+sw+%22user00042%22".into(),
        ),
        ("one person", format!("/ui/people/users/{some_user}")),
        ("targets", "/ui/targets".into()),
        ("metrics scrape", "/metrics".into()),
    ];
    // The admin API's order listing, as a script or another system reads it.
    let admin = Client::builder()
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", server.admin_token)
                    .parse()
                    .expect("header"),
            )]
            .into_iter()
            .collect(),
        )
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let api = [
        ("admin API: orders", "/admin/orders".to_string()),
        (
            "admin API: orders of a target in error",
            "/admin/orders?target=app3&state=error".into(),
        ),
        (
            "admin API: orders of a resource",
            format!("/admin/orders?resourceType=User&resourceId={some_user}"),
        ),
    ];
    let mut figures = serde_json::Map::new();
    println!(
        "{backend}: {:<30} {:>9} {:>9} {:>9}",
        "page", "p50 ms", "p95 ms", "max ms"
    );
    let timed = pages
        .into_iter()
        .map(|page| (&browser, page))
        .chain(api.into_iter().map(|call| (&admin, call)));
    for (client, (name, path)) in timed {
        let [p50, p95, max] = time_page(client, &server, &path, rounds);
        let flag = if ms(p95) < 100.0 { "" } else { "  over 100 ms" };
        println!(
            "{backend}: {name:<30} {:>9.1} {:>9.1} {:>9.1}{flag}",
            ms(p50),
            ms(p95),
            ms(max)
        );
        figures.insert(
            name.to_string(),
            json!({"path": path, "p50Ms": ms(p50), "p95Ms": ms(p95), "maxMs": ms(max)}),
        );
    }
    let housekeeping = time_housekeeping(&server.db, rounds);
    json!({
        "users": users,
        "orders": users * 10,
        "engineHousekeeping": housekeeping,
        "userLoadPerSecond": load_rate,
        "orderSeedingSeconds": seeding.as_secs_f64(),
        "rounds": rounds,
        "pages": figures,
    })
}

fn main() {
    let users = env_usize("SCIMGATE_BENCH_USERS", 100_000);
    let rounds = env_usize("SCIMGATE_BENCH_ROUNDS", 20).max(1);
    let backends =
        std::env::var("SCIMGATE_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    println!(
        "scimgate console pages: {users} users, {} orders, {TARGETS} targets, {} cores",
        users * 10,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut results = serde_json::Map::new();
    if backends.contains("sqlite") {
        let server = start(None);
        results.insert(
            "sqlite".into(),
            bench_backend("sqlite", server, users, rounds),
        );
    }
    if backends.contains("postgres") {
        let pg = postgres::shared_with(postgres::Durability::Production);
        let server = start(Some(pg.create_database()));
        results.insert(
            "postgres".into(),
            bench_backend("postgres", server, users, rounds),
        );
    }
    report::write("console", &Value::Object(results));
}
