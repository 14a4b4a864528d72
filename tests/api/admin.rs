//! The admin API: orders and targets for operators, behind admin-only tokens.

use reqwest::Method;
use serde_json::{json, Value};

use scimgate::auth::{api_token, Role};
use scimgate::targets::{TargetAuth, TargetConfig};

use crate::harness::{id_of, send, Backend, Resp, TestServer};

fn admin(s: &TestServer, token: &str, method: Method, path: &str) -> Resp {
    let url = s.base.replace("/scim/v2", &format!("/admin{path}"));
    send(
        reqwest::blocking::Client::new()
            .request(method, url)
            .bearer_auth(token),
    )
}

fn operators_see_and_act_on_orders(backend: Backend) {
    let url = crate::harness::refusing_url();
    let mut target = TargetConfig::scim("down", &url);
    target.max_attempts = 1;
    target.auth = TargetAuth {
        kind: Some(scimgate::targets::AuthKind::Bearer),
        token: Some("s3cret-target-token".into()),
        ..TargetAuth::default()
    };
    let s = TestServer::start_with(backend, |c| {
        c.targets = vec![target];
        c.worker.poll_interval_ms = 20;
    });
    let ops = api_token::issue_with_role(&s.db, "ops", Role::Admin).expect("admin token");

    // Tokens are not interchangeable.
    assert_eq!(admin(&s, &s.token, Method::GET, "/orders").status, 403);
    assert_eq!(
        send(s.anonymous(Method::GET, "/Users").bearer_auth(&ops)).status,
        403
    );
    assert_eq!(
        send(reqwest::blocking::Client::new().get(s.base.replace("/scim/v2", "/admin/orders")))
            .status,
        401
    );

    let uid = id_of(&s.create_user(&json!({"userName": "stuck"})));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let order = loop {
        let r = admin(&s, &ops, Method::GET, "/orders?state=error&target=down");
        assert_eq!(r.status, 200, "{}", r.body);
        if let Some(o) = r.body["orders"].as_array().and_then(|a| a.first()).cloned() {
            break o;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the order never failed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(order["resourceId"], uid.as_str());
    assert_eq!(order["resourceType"], "User");
    let id = order["id"].as_i64().expect("order id");

    let detail = admin(&s, &ops, Method::GET, &format!("/orders/{id}"));
    assert_eq!(detail.body["attemptLog"].as_array().map(Vec::len), Some(1));
    let states: Vec<&str> = detail.body["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter_map(|t| t["state"].as_str())
        .collect();
    assert_eq!(states, ["pending", "transmitted", "error"]);

    let status = admin(&s, &ops, Method::GET, "/targets/down/status");
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.body["orders"]["error"], 1);
    assert_eq!(status.body["orders"]["pending"], 0);
    assert!(status.body["lastError"]["error"]
        .as_str()
        .is_some_and(|e| e.contains("request failed")));
    assert!(
        !status.body.to_string().contains("s3cret"),
        "secrets are never echoed"
    );
    let targets = admin(&s, &ops, Method::GET, "/targets");
    assert_eq!(targets.body["targets"][0]["auth"], "bearer");
    assert!(!targets.body.to_string().contains("s3cret"));

    let where_stands = admin(
        &s,
        &ops,
        Method::GET,
        &format!("/resources/users/{uid}/orders"),
    );
    assert_eq!(where_stands.body["orders"][0]["id"], id);

    // Retry puts it back in line with a fresh attempt budget; it fails again on this target.
    let retried = admin(&s, &ops, Method::POST, &format!("/orders/{id}/retry"));
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.body["attempts"], 0);
    let again: Value = loop {
        let r = admin(&s, &ops, Method::GET, &format!("/orders/{id}"));
        if r.body["state"] == "error" && r.body["attemptLog"].as_array().map(Vec::len) == Some(2) {
            break r.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the retried order never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(again["attempts"], 1);

    let cancelled = admin(&s, &ops, Method::POST, &format!("/orders/{id}/cancel"));
    assert_eq!(cancelled.body["state"], "inactive");
    assert_eq!(
        admin(&s, &ops, Method::POST, &format!("/orders/{id}/cancel")).status,
        409
    );
    assert_eq!(admin(&s, &ops, Method::GET, "/orders/999999").status, 404);
    assert_eq!(
        admin(&s, &ops, Method::GET, "/orders?state=bogus").status,
        400
    );
    assert_eq!(
        admin(&s, &ops, Method::GET, "/targets/nope/status").status,
        404
    );
}

/// A target failing repeatedly is quarantined (visible in its status), probed, and released
/// when a probe succeeds; its backlog is then delivered.
fn quarantine_and_recovery(backend: Backend) {
    use crate::faulty_target::{Fault, FaultyTarget};
    let faulty = FaultyTarget::start(vec![
        Fault::Status(503),
        Fault::Status(503),
        Fault::Status(503),
    ]);
    let mut target = TargetConfig::scim("shaky", &faulty.base);
    target.retry_base_ms = 20;
    target.retry_max_ms = 50;
    target.quarantine_after = 2;
    target.quarantine_after_seconds = 0;
    target.probe_interval_ms = 700;
    let s = TestServer::start_with(backend, |c| {
        c.targets = vec![target];
        c.worker.poll_interval_ms = 20;
    });
    let ops = api_token::issue_with_role(&s.db, "ops", Role::Admin).expect("admin token");
    s.create_user(&json!({"userName": "patient"}));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let quarantined = loop {
        let r = admin(&s, &ops, Method::GET, "/targets/shaky/status");
        if r.body["quarantine"]["quarantined"] == true {
            break r.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never quarantined: {}",
            r.body
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(quarantined["quarantine"]["consecutiveFailures"].as_u64() >= Some(2));
    assert!(quarantined["quarantine"]["nextProbe"].is_string());
    assert!(faulty.users().is_empty(), "nothing delivered while failing");
    let recovered = loop {
        let r = admin(&s, &ops, Method::GET, "/targets/shaky/status");
        // Health is written after the order's outcome: wait for both.
        if r.body["orders"]["verified"] == 1 && r.body["quarantine"]["quarantined"] == false {
            break r.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never recovered: {}",
            r.body
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(recovered["quarantine"]["quarantined"], false);
    assert_eq!(faulty.users().len(), 1);
    let posts = faulty
        .requests()
        .iter()
        .filter(|(m, _)| m == "POST")
        .count();
    assert_eq!(
        posts, 4,
        "three failures (the last a probe), then the successful probe"
    );
    // Both turns are events, in order for the target.
    let quarantined = crate::harness::recorded_events(&s, "target.quarantined");
    let recovered = crate::harness::recorded_events(&s, "target.recovered");
    assert_eq!((quarantined.len(), recovered.len()), (1, 1));
    assert_eq!(quarantined[0].resource_type, "Target");
    assert_eq!(quarantined[0].target, recovered[0].target);
    assert!(quarantined[0].resource_seq < recovered[0].resource_seq);
}

crate::for_each_backend!(operators_see_and_act_on_orders, quarantine_and_recovery,);
