//! Provision on demand: one user's plan runs now against a real target (a second scimgate),
//! answered with a step-by-step trace and recorded as an `on_demand` order. The workers are
//! off here, so nothing but the on-demand run reaches the target.

use reqwest::Method;
use serde_json::{json, Value};

use scimgate::auth::{api_token, Role};

use crate::harness::{id_of, Backend, TestServer};
use crate::review::{admin, remote_user, target_for};

fn steps<'a>(trace: &'a Value, step: &str) -> Vec<&'a Value> {
    trace
        .as_array()
        .expect("trace")
        .iter()
        .filter(|s| s["step"] == step)
        .collect()
}

fn on_demand_runs_one_user_now_with_a_trace(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let mut t = target_for(&app, "app");
    t.users_filter = Some("active eq true".into());
    t.review.filter = Some("title eq \"CFO\"".into());
    let s = TestServer::start_with(backend, |c| {
        c.targets = vec![t];
        c.worker.enabled = false;
    });
    let ops = api_token::issue_with_role(&s.db, "ops", Role::Admin).expect("admin token");
    let id =
        id_of(&s.create_user(&json!({"userName": "quick", "title": "Analyst", "active": true})));
    let run = |user: &str, target: &str| {
        admin(
            &s,
            &ops,
            Method::POST,
            "/provision-on-demand",
            Some(json!({"userId": user, "target": target})),
        )
    };

    let first = run(&id, "app");
    assert_eq!(first.status, 200, "{}", first.body);
    let trace = &first.body["trace"];
    assert_eq!(steps(trace, "scope")[0]["inScope"], true, "{trace}");
    assert_eq!(steps(trace, "mapping")[0]["object"]["userName"], "quick");
    let lookup = steps(trace, "lookup");
    assert_eq!(lookup[0]["found"], Value::Null, "correlation found nothing");
    let request = steps(trace, "request");
    assert_eq!(request[0]["call"], "create");
    assert_eq!(request[0]["object"]["userName"], "quick");
    let response = steps(trace, "response");
    assert_eq!(response[0]["ok"], true);
    assert_eq!(response[0]["status"], 201);
    let remote = response[0]["remoteId"]
        .as_str()
        .expect("remote id")
        .to_string();
    let result = steps(trace, "result")[0];
    assert_eq!(result["state"], "verified", "{trace}");
    // The user is on the target, and the run is an order like any other.
    let arrived = remote_user(&app, "quick").expect("on the target");
    assert_eq!(id_of(&arrived), remote);
    assert_eq!(arrived["title"], "Analyst");
    let order = &first.body["order"];
    assert_eq!(order["origin"], "on_demand");
    assert_eq!(order["state"], "verified");
    let detail = admin(
        &s,
        &ops,
        Method::GET,
        &format!("/orders/{}", order["id"]),
        None,
    );
    assert_eq!(detail.body["attemptLog"].as_array().map(Vec::len), Some(1));
    assert_eq!(detail.body["attemptLog"][0]["responseId"], remote.as_str());

    // Again, after a change: an update of the linked account.
    let patched = s
        .request(Method::PUT, &format!("/Users/{id}"))
        .header("content-type", "application/scim+json")
        .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "quick", "title": "Lead Analyst", "active": true}).to_string())
        .send()
        .expect("put");
    assert_eq!(patched.status(), 200);
    let second = run(&id, "app");
    assert_eq!(second.status, 200, "{}", second.body);
    let trace = &second.body["trace"];
    assert_eq!(steps(trace, "scope")[0]["linked"], remote.as_str());
    assert_eq!(steps(trace, "request")[0]["call"], "update");
    assert_eq!(steps(trace, "request")[0]["remoteId"], remote.as_str());
    assert_eq!(
        remote_user(&app, "quick").expect("still there")["title"],
        "Lead Analyst"
    );
    assert_eq!(app.get("/Users").body["totalResults"], 1, "no duplicate");

    // Out of scope and never provisioned: nothing is sent.
    let idle = id_of(&s.create_user(&json!({"userName": "idle", "active": false})));
    let skipped = run(&idle, "app");
    assert_eq!(skipped.status, 200, "{}", skipped.body);
    let trace = &skipped.body["trace"];
    assert_eq!(steps(trace, "scope")[0]["inScope"], false);
    assert!(steps(trace, "request").is_empty(), "{trace}");
    assert_eq!(steps(trace, "result")[0]["state"], "executed");
    assert!(remote_user(&app, "idle").is_none());

    // A review rule holds the run; the held order is open, so another run is refused.
    let cfo = id_of(&s.create_user(&json!({"userName": "cfo", "title": "CFO", "active": true})));
    let held = run(&cfo, "app");
    assert_eq!(held.status, 200, "{}", held.body);
    assert_eq!(held.body["order"]["state"], "awaiting_approval");
    assert!(held.body["order"]["heldReason"]
        .as_str()
        .is_some_and(|r| r.contains("CFO")));
    assert!(steps(&held.body["trace"], "request").is_empty());
    let refused = run(&cfo, "app");
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body["error"]
        .as_str()
        .is_some_and(|e| e.contains("open orders") && e.contains("awaiting_approval")));
    assert!(remote_user(&app, "cfo").is_none());

    // Unknown user or target, and malformed requests.
    let missing = run("no-such-user", "app");
    assert_eq!(missing.status, 404);
    assert!(missing.body["error"]
        .as_str()
        .is_some_and(|e| e.contains("no-such-user")));
    let nowhere = run(&id, "nowhere");
    assert_eq!(nowhere.status, 404);
    assert!(nowhere.body["error"]
        .as_str()
        .is_some_and(|e| e.contains("nowhere")));
    let bad = admin(
        &s,
        &ops,
        Method::POST,
        "/provision-on-demand",
        Some(json!({"user": id})),
    );
    assert_eq!(bad.status, 400);
}

crate::for_each_backend!(on_demand_runs_one_user_now_with_a_trace);

/// Two instances sharing PostgreSQL start on-demand runs for the same user at the same
/// moment: one run starts, the other is told the user has an open order.
#[test]
fn concurrent_on_demand_runs_for_one_user_start_one_order_on_postgres() {
    use scimgate::storage::on_demand::{self, Started};
    use scimgate::storage::Db;
    use std::sync::{Arc, Barrier};

    let url = crate::postgres::shared().create_database();
    let db = Db::open(&url, 4).expect("open");
    for round in 0..40 {
        let user = format!("user-{round}");
        let barrier = Arc::new(Barrier::new(2));
        let runs: Vec<_> = ["instance-a", "instance-b"]
            .into_iter()
            .map(|owner| {
                let (db, user, barrier) = (db.clone(), user.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    on_demand::start(&db, "crm", &user, owner, 60_000_000).expect("start")
                })
            })
            .collect();
        let started: Vec<Started> = runs.into_iter().map(|r| r.join().expect("run")).collect();
        let orders = started
            .iter()
            .filter(|s| matches!(s, Started::Order(_)))
            .count();
        assert_eq!(orders, 1, "round {round}: {started:?}");
    }
}
