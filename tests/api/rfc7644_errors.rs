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

/// RFC 7644 §3.3: a resource body names its schemas; RFC 7643 §2.4: a multi-valued attribute
/// is an array. Neither is tolerated (no identity provider we know of omits them), and the
/// refusal changes nothing.
fn bodies_without_schemas_or_with_bare_values_are_refused(s: &TestServer) {
    let id = s.create_user(&json!({"userName": "strict"}))["id"]
        .as_str()
        .map(str::to_string)
        .expect("id");
    let raw = |method: Method, path: &str, body: serde_json::Value| {
        send(
            s.request(method, path)
                .header("content-type", "application/scim+json")
                .body(body.to_string()),
        )
    };
    let r = raw(Method::POST, "/Users", json!({"userName": "schemaless"}));
    r.assert_scim_error(400, Some("invalidSyntax"));
    assert!(r.body["detail"].as_str().unwrap_or("").contains("schemas"));
    raw(
        Method::PUT,
        &format!("/Users/{id}"),
        json!({"userName": "renamed"}),
    )
    .assert_scim_error(400, Some("invalidSyntax"));
    raw(
        Method::POST,
        "/Groups",
        json!({"displayName": "schemaless"}),
    )
    .assert_scim_error(400, Some("invalidSyntax"));
    let r = s.post(
        "/Users",
        &json!({"userName": "bare", "emails": {"value": "bare@x.example"}}),
    );
    r.assert_scim_error(400, Some("invalidValue"));
    assert!(r.body["detail"].as_str().unwrap_or("").contains("array"));
    s.put(
        &format!("/Users/{id}"),
        &json!({"userName": "strict", "phoneNumbers": {"value": "1"}}),
    )
    .assert_scim_error(400, Some("invalidValue"));
    let users = s.get("/Users");
    assert_eq!(users.body["totalResults"], 1);
    assert_eq!(users.body["Resources"][0]["userName"], "strict");
    assert!(users.body["Resources"][0].get("phoneNumbers").is_none());
    assert_eq!(s.get("/Groups").body["totalResults"], 0);
}

fn plain_json_is_accepted_other_media_types_are_not(s: &TestServer) {
    let r = send(
        s.request(Method::POST, "/Users")
            .header("content-type", "application/json; charset=utf-8")
            .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "plain"}).to_string()),
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
    bodies_without_schemas_or_with_bare_values_are_refused,
    plain_json_is_accepted_other_media_types_are_not,
    oversized_payload_is_413,
    unknown_routes_and_methods,
);
