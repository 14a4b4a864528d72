//! The OpenAPI document in `openapi/` and the routes the server serves agree: every documented
//! operation is routed, and every undocumented method on a documented path is 405.

use reqwest::Method;
use serde_json::json;

use crate::harness::{scim_body, send, Backend, TestServer};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[test]
fn documented_operations_are_exactly_the_served_ones() {
    let path = format!("{}/openapi/scimgate.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("openapi document");
    let doc: serde_json::Value = serde_yaml_ng::from_str(&text).expect("valid YAML");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());

    let s = TestServer::start(Backend::Sqlite);
    for (template, item) in paths {
        let concrete = template
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{name}", "User");
        for method in METHODS {
            let documented = item.get(method).is_some();
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let r = send(scim_body(s.request(m, &concrete), &json!({})));
            let routed = r.status != 405
                && !(r.status == 404
                    && r.body["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("no SCIM endpoint")));
            assert_eq!(
                documented,
                routed,
                "{} {template}: documented={documented} but the server answered {} {}",
                method.to_uppercase(),
                r.status,
                r.body
            );
        }
    }
}

/// The admin document and the admin routes agree the same way.
#[test]
fn admin_document_matches_admin_routes() {
    let path = format!("{}/openapi/admin.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("admin openapi document");
    let doc: serde_json::Value = serde_yaml_ng::from_str(&text).expect("valid YAML");
    let s = TestServer::start(Backend::Sqlite);
    let token =
        scimgate::auth::api_token::issue_with_role(&s.db, "ops", scimgate::auth::Role::Admin)
            .expect("token");
    let client = reqwest::blocking::Client::new();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let concrete = template
            .replace("{id}", "1")
            .replace("{name}", "none")
            .replace("{type}", "users");
        let url = s.base.replace("/scim/v2", &format!("/admin{concrete}"));
        for method in METHODS {
            let documented = item.get(method).is_some();
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let r = send(client.request(m, &url).bearer_auth(&token));
            let routed = r.status != 405
                && !(r.status == 404
                    && r.body["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("no SCIM endpoint")));
            assert_eq!(
                documented,
                routed,
                "{} /admin{template}: server answered {} {}",
                method.to_uppercase(),
                r.status,
                r.body
            );
        }
    }
}

/// The SET poll endpoint's document and its route agree the same way.
#[test]
fn events_document_matches_the_poll_route() {
    let path = format!("{}/openapi/events.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("events openapi document");
    let doc: serde_json::Value = serde_yaml_ng::from_str(&text).expect("valid YAML");
    let key = format!(
        "{}/tests/fixtures/jwt-es256.key",
        env!("CARGO_MANIFEST_DIR")
    );
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.events.set = Some(scimgate::events::SetConfig {
            issuer: "https://scim.example.com".into(),
            algorithm: "ES256".into(),
            private_key_file: key.into(),
            key_id: None,
        });
    });
    let client = reqwest::blocking::Client::new();
    let paths = doc["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());
    for (template, item) in paths {
        let url = s
            .base
            .replace("/scim/v2", &template.replace("{name}", "none"));
        for method in METHODS {
            let documented = item.get(method).is_some();
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let r = send(client.request(m, &url).bearer_auth("whsec_none"));
            // Routed: the poll endpoint checks the credentials (401); not routed: 405.
            let expected = if documented { 401 } else { 405 };
            assert_eq!(r.status, expected, "{} {template}", method.to_uppercase());
        }
    }
}
