//! RFC 7644 §3.12: every failure is a SCIM error body, and changes nothing.

use reqwest::Method;
use serde_json::json;

use crate::harness::{send, TestServer};
use crate::on_both_backends;

fn malformed_json_is_invalid_syntax(s: &TestServer) {
    let r = send(
        s.request(Method::POST, "/Users")
            .header("content-type", "application/scim+json")
            .body("{\"userName\": "),
    );
    r.assert_scim_error(400, Some("invalidSyntax"));
    let r = send(
        s.request(Method::POST, "/Users")
            .header("content-type", "application/scim+json")
            .body("[1, 2]"),
    );
    r.assert_scim_error(400, Some("invalidSyntax"));
}

fn plain_json_is_accepted_other_media_types_are_not(s: &TestServer) {
    let r = send(
        s.request(Method::POST, "/Users")
            .header("content-type", "application/json; charset=utf-8")
            .body(json!({"userName": "plain"}).to_string()),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/scim+json")));
    let r = send(
        s.request(Method::POST, "/Users")
            .header("content-type", "text/xml")
            .body("<user/>"),
    );
    r.assert_scim_error(415, None);
}

fn oversized_payload_is_413(s: &TestServer) {
    let big = "x".repeat(2 * 1024 * 1024);
    let r = s.post("/Users", &json!({"userName": "big", "title": big}));
    r.assert_scim_error(413, None);
    assert_eq!(s.get("/Users").body["totalResults"], 0);
}

fn unknown_routes_and_methods(s: &TestServer) {
    s.get("/Widgets").assert_scim_error(404, None);
    let r = send(s.request(Method::POST, "/Users/some-id"));
    r.assert_scim_error(405, None);
    let r = send(s.request(Method::DELETE, "/Users"));
    r.assert_scim_error(405, None);
    s.get("/Users/does-not-exist").assert_scim_error(404, None);
    s.get("/Groups/does-not-exist").assert_scim_error(404, None);
}

on_both_backends!(
    malformed_json_is_invalid_syntax,
    plain_json_is_accepted_other_media_types_are_not,
    oversized_payload_is_413,
    unknown_routes_and_methods,
);
