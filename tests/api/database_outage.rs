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
        c.worker.enabled = false;
    });
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

#[test]
fn postgres_outage() {
    an_outage_is_answered_503_at_once_and_service_resumes();
}
