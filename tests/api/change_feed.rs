//! The change feed (`GET /admin/changes`): pages after a cursor with each resource's state, a
//! long poll, and no change missed by a reader racing concurrent writers (on PostgreSQL,
//! changes commit out of number order).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use scimgate::auth::{api_token, Role};

use crate::events_webhooks::{admin, patch};
use crate::harness::{id_of, Backend, TestServer};

fn viewer(s: &TestServer) -> String {
    api_token::issue_with_role(&s.db, "feed", Role::Viewer).expect("viewer token")
}

fn page(s: &TestServer, token: &str, query: &str) -> Value {
    let got = admin(s, token, Method::GET, &format!("/changes?{query}"), None);
    assert_eq!(got.status, 200, "{}", got.body);
    got.body
}

fn the_feed_pages_and_carries_state(s: &TestServer) {
    let token = viewer(s);
    let start = page(s, &token, "after=0&limit=1000")["next"]
        .as_i64()
        .unwrap_or(0);
    let kept = id_of(&s.create_user(&json!({"userName": "kept", "externalId": "k"})));
    let gone = id_of(&s.create_user(&json!({"userName": "gone"})));
    let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Kept"}]});
    assert_eq!(patch(s, &format!("/Users/{kept}"), &rename).status, 200);
    assert_eq!(s.delete(&format!("/Users/{gone}")).status, 204);

    let first = page(s, &token, &format!("after={start}&limit=2"));
    let entries = first["changes"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["operation"], "create");
    assert_eq!(entries[0]["id"], kept.as_str());
    assert_eq!(entries[0]["version"], "W/\"1\"");
    assert_eq!(entries[0]["actor"], "token:test");
    // The state now: after a later change too (its entry follows).
    assert_eq!(entries[0]["resource"]["displayName"], "Kept");
    assert_eq!(entries[0]["resource"]["meta"]["version"], "W/\"2\"");
    assert!(
        entries[1]["resource"].is_null(),
        "a deleted resource has no state"
    );
    let next = first["next"].as_i64().unwrap_or(0);
    assert_eq!(next, entries[1]["seq"].as_i64().unwrap_or(-1));

    let second = page(s, &token, &format!("after={next}&limit=10"));
    let rest: Vec<(String, String)> = second["changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["operation"].as_str().unwrap_or("").into(),
                        e["id"].as_str().unwrap_or("").into(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        rest,
        [
            ("modify".to_string(), kept.clone()),
            ("delete".to_string(), gone.clone())
        ]
    );
    let end = second["next"].as_i64().unwrap_or(0);
    assert_eq!(
        page(s, &token, &format!("after={end}"))["changes"],
        json!([])
    );
    assert_eq!(page(s, &token, &format!("after={end}"))["next"], end);

    for bad in [
        "after=-1",
        "after=x",
        "wait=soon",
        "limit=many",
        "colour=blue",
    ] {
        let refused = admin(s, &token, Method::GET, &format!("/changes?{bad}"), None);
        assert_eq!(refused.status, 400, "{bad}");
    }
}

fn a_long_poll_wakes_on_the_next_change(s: &TestServer) {
    let token = viewer(s);
    let end = page(s, &token, "after=0&limit=1000")["next"]
        .as_i64()
        .unwrap_or(0);
    let (url, t) = (
        s.base
            .replace("/scim/v2", &format!("/admin/changes?after={end}&wait=20")),
        token.clone(),
    );
    let waiting = std::thread::spawn(move || {
        let started = Instant::now();
        let body: Value = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client")
            .get(url)
            .bearer_auth(t)
            .send()
            .expect("long poll")
            .json()
            .expect("json");
        (body, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(400));
    let id = id_of(&s.create_user(&json!({"userName": "awaited"})));
    let (body, waited) = waiting.join().expect("long poll");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
    assert_eq!(body["changes"][0]["id"], id.as_str());
}

/// Writers on four threads while a reader follows the feed with its cursor: the reader sees
/// every change exactly once, in number order, however the writes commit.
fn concurrent_writers_never_make_the_reader_skip(backend: Backend) {
    let s = Arc::new(TestServer::start_with(backend, |c| c.pool_size = 12));
    let token = viewer(&s);
    let start = page(&s, &token, "after=0&limit=1000")["next"]
        .as_i64()
        .unwrap_or(0);
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (s, token, done) = (s.clone(), token.clone(), done.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut cursor = start;
            let mut quiet_after_done = 0;
            loop {
                let body = page(&s, &token, &format!("after={cursor}&limit=7"));
                let got: Vec<i64> = body["changes"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|e| e["seq"].as_i64()).collect())
                    .unwrap_or_default();
                if got.is_empty() && done.load(Ordering::SeqCst) {
                    quiet_after_done += 1;
                    if quiet_after_done > 20 {
                        return seen;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                seen.extend(&got);
                cursor = body["next"].as_i64().unwrap_or(cursor);
            }
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let s = s.clone();
            std::thread::spawn(move || {
                for n in 0..40 {
                    let id = id_of(&s.create_user(&json!({"userName": format!("w{w}-{n}")})));
                    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "title", "value": "t"}]});
                    assert_eq!(patch(&s, &format!("/Users/{id}"), &body).status, 200);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.join().expect("reader");
    let logged: Vec<i64> =
        s.db.read(|c| scimgate::storage::change_log::since(c, start, 100_000))
            .expect("log")
            .into_iter()
            .map(|e| e.seq)
            .collect();
    assert_eq!(logged.len(), 320);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "in number order, once each"
    );
    assert_eq!(
        seen.iter().copied().collect::<BTreeSet<_>>(),
        logged.iter().copied().collect::<BTreeSet<_>>(),
        "the reader saw every change"
    );
}

/// A change numbered before one already visible, but committed after it, holds the feed (and
/// the event fan-out) until it commits.
#[test]
fn a_change_committing_late_is_not_skipped_on_postgres() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let s = TestServer::start(Backend::Postgres);
    let token = viewer(&s);
    let start = page(&s, &token, "after=0&limit=1000")["next"]
        .as_i64()
        .unwrap_or(0);
    let mut late = diesel::PgConnection::establish(&s.database_url).expect("connect");
    late.batch_execute(
        "BEGIN; INSERT INTO change_log (resource_type, resource_id, operation, version, actor, \
         occurred_at) VALUES ('User', 'late', 'create', 1, 'test', 0)",
    )
    .expect("open a write");
    let early = id_of(&s.create_user(&json!({"userName": "committed-first"})));
    let held = page(&s, &token, &format!("after={start}"));
    assert_eq!(
        held["changes"],
        json!([]),
        "the uncommitted change holds the feed"
    );
    assert_eq!(held["next"], start);
    late.batch_execute("COMMIT").expect("commit");
    let body = page(&s, &token, &format!("after={start}"));
    let ids: Vec<&str> = body["changes"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["late", early.as_str()]);
}

crate::on_both_backends!(
    the_feed_pages_and_carries_state,
    a_long_poll_wakes_on_the_next_change
);
crate::for_each_backend!(concurrent_writers_never_make_the_reader_skip);
