//! Webhooks (Standard Webhooks 1.0) to a real HTTP receiver: signatures checked with the
//! specification's own Rust library, order per resource, retries after 500s, an outage,
//! `Retry-After`, `410 Gone`, replay, test events, the delivery log and maximum age.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use scimgate::auth::{api_token, Role};

use crate::harness::{id_of, send, Backend, Resp, TestServer};
use crate::receiver::{Received, Receiver, Reply};
use crate::relay::Relay;

pub fn admin(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Resp {
    let url = s.base.replace("/scim/v2", &format!("/admin{path}"));
    let request = reqwest::blocking::Client::new()
        .request(method, url)
        .bearer_auth(token);
    send(match body {
        Some(body) => request.json(body),
        None => request,
    })
}

/// A server whose subscriptions may send to loopback, retrying quickly.
pub fn events_server(backend: Backend) -> (TestServer, String) {
    let s = TestServer::start_with(backend, |c| {
        c.events.allow_private_destinations = true;
        c.events.poll_interval_ms = 20;
        c.events.retry_base_ms = 100;
        c.events.retry_max_ms = 400;
    });
    let ops = api_token::issue_with_role(&s.db, "ops", Role::Admin).expect("admin token");
    (s, ops)
}

/// Creates a webhook subscription through the admin API; returns its secret.
pub fn subscribe(s: &TestServer, ops: &str, settings: &Value) -> String {
    let created = admin(s, ops, Method::POST, "/subscriptions", Some(settings));
    assert_eq!(created.status, 201, "{}", created.body);
    created.body["secret"]
        .as_str()
        .expect("secret shown once")
        .to_string()
}

/// Verifies a request with the Standard Webhooks library (not scimgate's code).
fn verify(secret: &str, request: &Received) {
    let webhook = standardwebhooks::Webhook::new(secret).expect("secret");
    webhook
        .verify(&request.body, &request.headers)
        .unwrap_or_else(|e| panic!("signature does not verify: {e:?}"));
}

/// The README's verification example (Python) accepts a real delivery and refuses it altered.
fn readme_example_verifies(secret: &str, request: &Received) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let example = readme
        .split("Verifying a signature")
        .nth(1)
        .and_then(|rest| rest.split("```python").nth(1))
        .and_then(|code| code.split("```").next())
        .expect("the README's Python example");
    let header = |name: &str| request.header(name).unwrap_or_default();
    let script = format!(
        "{example}\nimport sys\nbody = sys.stdin.buffer.read()\n\
         h = {{'webhook-id': {:?}, 'webhook-timestamp': {:?}, 'webhook-signature': {:?}}}\n\
         print(verify({secret:?}, h, body), verify({secret:?}, h, body + b' '))\n",
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&request.body)
        .expect("body");
    let out = child.wait_with_output().expect("python3 ran");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "True False");
}

fn accepted(received: &[Received]) -> Vec<Value> {
    received
        .iter()
        .filter(|r| (200..300).contains(&r.status))
        .map(Received::json)
        .collect()
}

fn webhooks_are_signed_ordered_and_retried(backend: Backend) {
    let (s, ops) = events_server(backend);
    let receiver = Receiver::start(Reply::status(200));
    let secret = subscribe(
        &s,
        &ops,
        &json!({"name": "hr", "url": receiver.url("/hooks"), "event_types": ["user.*"]}),
    );
    receiver.script([Reply::status(500), Reply::status(500), Reply::status(503)]);

    let user = s.create_user(&json!({"userName": "bjensen", "externalId": "e-1"}));
    let id = id_of(&user);
    for title in ["a", "b", "c"] {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": title}]});
        assert_eq!(patch(&s, &format!("/Users/{id}"), &body).status, 200);
    }
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    assert_eq!(patch(&s, &format!("/Users/{id}"), &off).status, 200);
    assert_eq!(s.delete(&format!("/Users/{id}")).status, 204);

    let received = receiver.wait_until(Duration::from_secs(30), "six accepted events", |r| {
        accepted(r).len() >= 6
    });
    for request in &received {
        verify(&secret, request);
        assert_eq!(
            request.header("content-type").as_deref(),
            Some("application/json")
        );
    }
    let events = accepted(&received);
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        types,
        [
            "user.created",
            "user.updated",
            "user.updated",
            "user.updated",
            "user.deactivated",
            "user.deleted"
        ]
    );
    let sequences: Vec<i64> = events
        .iter()
        .map(|e| e["resource"]["sequence"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5, 6], "in order per resource");
    assert_eq!(events[0]["data"]["externalId"], "e-1");
    assert_eq!(events[0]["actor"], "token:test");
    assert!(events
        .iter()
        .all(|e| e.get("data").is_some_and(|d| d.get("password").is_none())));

    // The first event was tried four times with one id; nothing after it overtook it.
    let first_id = events[0]["id"].as_str().unwrap_or_default().to_string();
    let tries: Vec<&Received> = received
        .iter()
        .filter(|r| r.header("webhook-id").as_deref() == Some(first_id.as_str()))
        .collect();
    assert_eq!(tries.len(), 4);
    assert_eq!(
        received[..4].iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 503, 200]
    );

    // The delivery log shows the attempts.
    let log = admin(
        &s,
        &ops,
        Method::GET,
        "/subscriptions/hr/deliveries?limit=100",
        None,
    );
    assert_eq!(log.status, 200);
    let deliveries = log.body["deliveries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(deliveries.len(), 6);
    let first = deliveries.last().cloned().unwrap_or_default();
    assert_eq!(first["state"], "delivered");
    assert_eq!(first["attempts"], 4);
    let detail = admin(
        &s,
        &ops,
        Method::GET,
        &format!("/subscriptions/hr/deliveries/{}", first["id"]),
        None,
    );
    let statuses: Vec<i64> = detail.body["attemptLog"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["status"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(statuses, [500, 500, 503, 200]);
    assert!(detail.body["attemptLog"][0]["latencyMs"].is_i64());
}

fn an_outage_loses_nothing_and_repeats_nothing(backend: Backend) {
    let (s, ops) = events_server(backend);
    let receiver = Receiver::start(Reply::status(204));
    let relay = Relay::start(receiver.addr);
    let secret = subscribe(
        &s,
        &ops,
        &json!({"name": "siem", "url": format!("http://127.0.0.1:{}/in", relay.port),
                "event_types": ["user.created", "group.*"]}),
    );
    relay.cut();
    let mut ids = BTreeSet::new();
    for n in 0..20 {
        ids.insert(id_of(
            &s.create_user(&json!({"userName": format!("outage{n}")})),
        ));
    }
    std::thread::sleep(Duration::from_secs(10));
    assert!(
        receiver.received().is_empty(),
        "nothing got through the cut"
    );
    relay.restore();
    let received = receiver.wait_until(Duration::from_secs(60), "all 20 events", |r| {
        accepted(r).len() >= 20
    });
    std::thread::sleep(Duration::from_millis(500));
    let received_now = receiver.received();
    assert_eq!(
        received_now.len(),
        received.len(),
        "no duplicates afterwards"
    );
    let mut per_user = BTreeMap::new();
    for request in &received_now {
        verify(&secret, request);
        let event = request.json();
        *per_user
            .entry(event["resource"]["id"].as_str().unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(per_user.keys().cloned().collect::<BTreeSet<_>>(), ids);
    assert!(
        per_user.values().all(|n| *n == 1),
        "each event once: {per_user:?}"
    );
}

fn gone_disables_and_retry_after_is_honoured(backend: Backend) {
    let (s, ops) = events_server(backend);
    let receiver = Receiver::start(Reply::status(200));
    subscribe(
        &s,
        &ops,
        &json!({"name": "slow", "url": receiver.url("/"), "event_types": ["user.created"]}),
    );
    receiver.script([Reply {
        status: 429,
        retry_after: Some(2),
        body: None,
    }]);
    s.create_user(&json!({"userName": "patient"}));
    let received = receiver.wait_until(Duration::from_secs(20), "a retry", |r| r.len() >= 2);
    let waited = received[1].at.duration_since(received[0].at);
    assert!(
        waited >= Duration::from_millis(1900),
        "waited only {waited:?}"
    );

    receiver.answer_by_default(Reply::status(410));
    s.create_user(&json!({"userName": "gone"}));
    receiver.wait_until(Duration::from_secs(20), "the 410", |r| r.len() >= 3);
    let disabled = wait_for(&s, &ops, "/subscriptions/slow", |b| b["enabled"] == false);
    assert!(disabled["disabledReason"]
        .as_str()
        .is_some_and(|r| r.contains("410")));
    // Disabled: later events are not sent.
    s.create_user(&json!({"userName": "unsent"}));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(receiver.received().len(), 3);
    let failed = admin(
        &s,
        &ops,
        Method::GET,
        "/subscriptions/slow/deliveries?state=failed",
        None,
    );
    assert_eq!(failed.body["deliveries"].as_array().map(Vec::len), Some(1));
}

fn replay_and_test_events(backend: Backend) {
    let (s, ops) = events_server(backend);
    let receiver = Receiver::start(Reply::status(200));
    let secret = subscribe(
        &s,
        &ops,
        &json!({"name": "audit", "url": receiver.url("/"), "event_types": ["user.*"]}),
    );
    let test = admin(&s, &ops, Method::POST, "/subscriptions/audit/test", None);
    assert_eq!(test.status, 202, "{}", test.body);
    let first = receiver.wait_until(Duration::from_secs(10), "the test event", |r| !r.is_empty());
    verify(&secret, &first[0]);
    readme_example_verifies(&secret, &first[0]);
    assert_eq!(first[0].json()["type"], "test");
    assert_eq!(first[0].json()["actor"], "token:ops");

    let since = chrono_now();
    let r1 = id_of(&s.create_user(&json!({"userName": "r1"})));
    s.create_user(&json!({"userName": "r2"}));
    let got = receiver.wait_until(Duration::from_secs(10), "two creates", |r| r.len() >= 3);
    // The two users' events go out side by side: pick r1's by its resource, not its place.
    let created_id = got
        .iter()
        .find(|r| r.json()["resource"]["id"] == r1.as_str())
        .and_then(|r| r.header("webhook-id"));

    // The receiver may have an event before its delivery is recorded as delivered.
    let log = crate::provisioning::wait_for("three deliveries recorded", || {
        let log = admin(
            &s,
            &ops,
            Method::GET,
            "/subscriptions/audit/deliveries?state=delivered",
            None,
        );
        let recorded = log.body["deliveries"].as_array().map_or(0, Vec::len);
        (recorded >= 3).then_some(log)
    });
    let newest = log.body["deliveries"][1]["id"].clone();
    let replayed = admin(
        &s,
        &ops,
        Method::POST,
        &format!("/subscriptions/audit/deliveries/{newest}/replay"),
        None,
    );
    assert_eq!(replayed.status, 202);
    let again = receiver.wait_until(Duration::from_secs(10), "the replay", |r| r.len() >= 4);
    assert_eq!(
        again[3].header("webhook-id"),
        created_id,
        "a replay keeps the event id"
    );
    verify(&secret, &again[3]);

    let all = admin(
        &s,
        &ops,
        Method::POST,
        "/subscriptions/audit/replay",
        Some(&json!({"since": since})),
    );
    assert_eq!(all.status, 202, "{}", all.body);
    assert_eq!(all.body["queued"], 2);
    receiver.wait_until(Duration::from_secs(10), "the replay since", |r| {
        r.len() >= 6
    });
    assert_eq!(
        admin(
            &s,
            &ops,
            Method::POST,
            "/subscriptions/audit/replay",
            Some(&json!({"since": "yesterday"}))
        )
        .status,
        400
    );
}

fn an_undeliverable_event_is_given_up_after_its_maximum_age(backend: Backend) {
    let (s, ops) = events_server(backend);
    let receiver = Receiver::start(Reply::status(500));
    subscribe(
        &s,
        &ops,
        &json!({"name": "broken", "url": receiver.url("/"), "max_age_hours": 1}),
    );
    s.create_user(&json!({"userName": "never"}));
    receiver.wait_until(Duration::from_secs(10), "a first try", |r| !r.is_empty());
    s.clock.advance(Duration::from_secs(2 * 3600));
    let failed = wait_for(
        &s,
        &ops,
        "/subscriptions/broken/deliveries?state=failed",
        |b| b["deliveries"].as_array().is_some_and(|d| !d.is_empty()),
    );
    assert!(failed["deliveries"][0]["lastError"]
        .as_str()
        .is_some_and(|e| e.contains("given up") || e.contains("500")));
}

fn subscriptions_are_checked_and_their_secrets_kept(backend: Backend) {
    let s = TestServer::start(backend);
    let ops = api_token::issue_with_role(&s.db, "ops", Role::Admin).expect("admin token");
    let viewer = api_token::issue_with_role(&s.db, "v", Role::Viewer).expect("viewer");
    for (url, why) in [
        ("http://127.0.0.1:9/x", "loopback"),
        ("http://10.0.0.8/x", "private"),
        ("http://169.254.169.254/latest", "link-local"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("ftp://hooks.example.com/", "scheme"),
    ] {
        let refused = admin(
            &s,
            &ops,
            Method::POST,
            "/subscriptions",
            Some(&json!({"name": "x", "url": url})),
        );
        assert_eq!(refused.status, 400, "{why}: {}", refused.body);
    }
    for bad in [
        json!({"name": "x", "url": "https://hooks.example.com/", "event_types": ["orders.*"]}),
        json!({"name": "x", "url": "https://hooks.example.com/", "secret": "not-whsec"}),
        json!({"name": "x", "url": "https://hooks.example.com/", "format": "carrier-pigeon"}),
        json!({"name": "x", "format": "set_poll"}),
        json!({"name": "bad name!", "url": "https://hooks.example.com/"}),
        json!({"name": "x"}),
    ] {
        let refused = admin(&s, &ops, Method::POST, "/subscriptions", Some(&bad));
        assert_eq!(refused.status, 400, "{bad}: {}", refused.body);
    }
    assert_eq!(
        admin(&s, &ops, Method::GET, "/subscriptions", None).body["subscriptions"],
        json!([])
    );
    let settings =
        json!({"name": "ok", "url": "https://hooks.example.com/in", "event_types": ["order.*"]});
    assert_eq!(
        admin(&s, &viewer, Method::POST, "/subscriptions", Some(&settings)).status,
        403
    );
    let created = admin(&s, &ops, Method::POST, "/subscriptions", Some(&settings));
    assert_eq!(created.status, 201);
    let secret = created.body["secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        admin(&s, &ops, Method::POST, "/subscriptions", Some(&settings)).status,
        409
    );
    let shown = admin(&s, &viewer, Method::GET, "/subscriptions/ok", None);
    assert_eq!(shown.status, 200);
    assert!(
        !shown.body.to_string().contains(&secret),
        "the secret is shown once"
    );
    let rotated = admin(
        &s,
        &ops,
        Method::POST,
        "/subscriptions/ok/rotate-secret",
        None,
    );
    assert_eq!(rotated.status, 200);
    let after = admin(&s, &ops, Method::GET, "/subscriptions/ok", None);
    assert_eq!(after.body["secrets"].as_array().map(Vec::len), Some(2));
    assert!(after.body["secrets"][1]["expires"].is_string());
    let off = admin(&s, &ops, Method::POST, "/subscriptions/ok/disable", None);
    assert_eq!(off.body["enabled"], false);
    assert_eq!(
        admin(&s, &ops, Method::DELETE, "/subscriptions/ok", None).status,
        204
    );
    assert_eq!(
        admin(&s, &ops, Method::GET, "/subscriptions/ok", None).status,
        404
    );
}

fn a_rolled_back_change_emits_nothing(backend: Backend) {
    let (s, ops) = events_server(backend);
    let receiver = Receiver::start(Reply::status(200));
    subscribe(&s, &ops, &json!({"name": "all", "url": receiver.url("/")}));
    let before = admin(&s, &ops, Method::GET, "/events?limit=1000", None).body["events"]
        .as_array()
        .map(Vec::len);
    // A write that logs its change and event, then fails: the transaction rolls back.
    let record = scimgate::storage::users::UserRecord {
        id: "rolled-back".into(),
        user_name: "ghost".into(),
        external_id: None,
        display_name: None,
        active: Some(true),
        data: r#"{"userName":"ghost"}"#.into(),
        emails: vec![],
        password: None,
        connection: "default".into(),
    };
    let failed: Result<(), scimgate::storage::StoreError> = s.db.write(|tx| {
        scimgate::storage::users::insert(tx, &record, "token:test")?;
        Err(scimgate::storage::StoreError::Aborted(
            "rolled back on purpose".into(),
        ))
    });
    assert!(failed.is_err());
    s.create_user(&json!({"userName": "real"}));
    let received = receiver.wait_until(Duration::from_secs(10), "the real create", |r| {
        !r.is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(received[0].json()["type"], "user.created");
    let events = admin(&s, &ops, Method::GET, "/events?limit=1000", None).body["events"].clone();
    assert_eq!(events.as_array().map(Vec::len), before.map(|n| n + 1));
    assert!(!events.to_string().contains("rolled-back"));
}

fn orders_and_their_states_are_events(backend: Backend) {
    let url = crate::harness::refusing_url();
    let mut target = scimgate::targets::TargetConfig::scim("down", &url);
    target.max_attempts = 1;
    let s = TestServer::start_with(backend, |c| {
        c.targets = vec![target];
        c.worker.poll_interval_ms = 20;
        c.events.allow_private_destinations = true;
        c.events.poll_interval_ms = 20;
    });
    let ops = api_token::issue_with_role(&s.db, "ops", Role::Admin).expect("admin token");
    let receiver = Receiver::start(Reply::status(200));
    let secret = subscribe(
        &s,
        &ops,
        &json!({"name": "tickets", "url": receiver.url("/"), "event_types": ["order.*"],
                "targets": ["down"]}),
    );
    let user = s.create_user(&json!({"userName": "orderly"}));
    let received = receiver.wait_until(Duration::from_secs(30), "the order's error", |r| {
        r.iter().any(|x| x.json()["data"]["to"] == "error")
    });
    let moves: Vec<(Value, Value)> = received
        .iter()
        .map(|r| {
            verify(&secret, r);
            let e = r.json();
            assert_eq!(e["type"], "order.state_changed");
            assert_eq!(e["target"], "down");
            assert_eq!(e["data"]["resourceId"], id_of(&user));
            (e["data"]["from"].clone(), e["data"]["to"].clone())
        })
        .collect();
    assert_eq!(moves[0], (Value::Null, json!("pending")));
    assert_eq!(moves[1], (json!("pending"), json!("transmitted")));
    assert_eq!(moves.last().map(|m| m.1.clone()), Some(json!("error")));
    let sequences: Vec<i64> = received
        .iter()
        .map(|r| r.json()["resource"]["sequence"].as_i64().unwrap_or(0))
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
}

fn wait_for(s: &TestServer, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = admin(s, token, Method::GET, path, None);
        if done(&got.body) {
            return got.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out on {path}: {}",
            got.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A second ago, as RFC 3339: a replay from then includes what follows.
fn chrono_now() -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339()
}

pub fn patch(s: &TestServer, path: &str, body: &Value) -> Resp {
    send(crate::harness::scim_body(
        s.request(Method::PATCH, path),
        body,
    ))
}

crate::for_each_backend!(
    webhooks_are_signed_ordered_and_retried,
    an_outage_loses_nothing_and_repeats_nothing,
    gone_disables_and_retry_after_is_honoured,
    replay_and_test_events,
    an_undeliverable_event_is_given_up_after_its_maximum_age,
    subscriptions_are_checked_and_their_secrets_kept,
    a_rolled_back_change_emits_nothing,
    orders_and_their_states_are_events,
);
