//! Generated bad input: for every writable attribute of the User and Group schemas, values of
//! the wrong type, with control characters, or too long, sent by POST, PUT and PATCH; bodies
//! that are not JSON objects; bad query parameters and filters; broken Bulk requests. Every
//! answer must be a 4xx SCIM error (never a 5xx), and nothing may change.

use reqwest::Method;
use serde_json::{json, Value};

use scimgate::scim::schema::{self, AttrType, AttributeDef, Mutability};

use crate::harness::{id_of, send, with_schemas, Resp, TestServer};
use crate::on_both_backends;

/// Values an attribute must refuse, whatever the tolerances for real IdPs allow.
fn wrong_values(def: &AttributeDef) -> Vec<Value> {
    let text_limit = if matches!(def.name, "userName" | "externalId" | "displayName") {
        257
    } else {
        2_049
    };
    let single: Vec<Value> = match def.kind {
        AttrType::String | AttrType::Reference => vec![
            json!(true),
            json!({"nested": "object"}),
            json!("nul\u{0}inside"),
            json!("\u{1b}[2Jescape"),
            json!("x".repeat(text_limit)),
        ],
        AttrType::Boolean => vec![json!("maybe"), json!(1), json!({"b": true})],
        AttrType::Integer => vec![json!("twelve"), json!(1.5), json!(true)],
        AttrType::Decimal => vec![json!("pi"), json!(false)],
        AttrType::DateTime => vec![json!("yesterday"), json!(20260101)],
        AttrType::Binary => vec![json!("not base64 !!"), json!(7)],
        AttrType::Complex => {
            let mut values = vec![json!(true), json!([[1]])];
            if def.sub_attribute("value").is_none() {
                values.push(json!("a bare string"));
            }
            values
        }
    };
    if def.multi_valued {
        // A list of wrong values, and (for complex values) a wrong sub-attribute inside one.
        let mut values: Vec<Value> = single.into_iter().map(|v| json!([v])).collect();
        if let Some(sub) = def
            .sub_attributes
            .iter()
            .find(|s| s.kind == AttrType::String && s.mutability != Mutability::ReadOnly)
        {
            values.push(json!([{ sub.name: {"not": "a string"} }]));
        }
        values
    } else {
        single
    }
}

fn writable(attributes: &'static [AttributeDef]) -> impl Iterator<Item = &'static AttributeDef> {
    attributes
        .iter()
        .filter(|a| a.mutability != Mutability::ReadOnly && a.mutability != Mutability::Immutable)
}

thread_local! {
    /// How many refusals had each status, for the report.
    static STATUSES: std::cell::RefCell<std::collections::BTreeMap<u16, usize>> =
        Default::default();
}

/// Asserts a 4xx answer with a SCIM error body (actix's own 405 and 415 carry one too, but are
/// not required to).
fn refused(r: &Resp, what: &str) {
    STATUSES.with(|counts| *counts.borrow_mut().entry(r.status).or_default() += 1);
    assert!(
        (400..500).contains(&r.status),
        "{what}: expected a 4xx, got {} {}",
        r.status,
        r.body
    );
    if r.status != 405 && r.status != 415 {
        assert_eq!(
            r.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{what}: {}",
            r.body
        );
    }
}

/// Sends `value`; a resource body gets its `schemas`, so only what the case gets wrong can be
/// why it is refused.
fn body(s: &TestServer, method: Method, path: &str, value: &Value) -> Resp {
    let value = if method == Method::PATCH {
        value.clone()
    } else {
        with_schemas(path, value)
    };
    send(
        s.request(method, path)
            .header("content-type", "application/scim+json")
            .body(value.to_string()),
    )
}

fn raw(s: &TestServer, method: Method, path: &str, text: &str) -> Resp {
    send(
        s.request(method, path)
            .header("content-type", "application/scim+json")
            .body(text.to_string()),
    )
}

fn state(s: &TestServer) -> (Value, Value) {
    (
        s.get("/Users?sortBy=userName&count=1000").body,
        s.get("/Groups?sortBy=displayName&count=1000").body,
    )
}

fn generated_bad_input_is_refused_and_changes_nothing(s: &TestServer) {
    let user = id_of(&s.create_user(&json!({"userName": "steady", "title": "Fixed"})));
    let group =
        id_of(&s.create_group(&json!({"displayName": "Steady", "members": [{"value": user}]})));
    let before = state(s);
    let mut cases = 0usize;

    for (endpoint, id, name_key, base, attributes) in [
        (
            "/Users",
            &user,
            "userName",
            json!({"userName": "steady"}),
            schema::USER.attributes,
        ),
        (
            "/Groups",
            &group,
            "displayName",
            json!({"displayName": "Steady"}),
            schema::GROUP.attributes,
        ),
    ] {
        for def in writable(attributes) {
            for wrong in wrong_values(def) {
                let what = format!("{endpoint} {} = {wrong}", def.name);
                // A new resource's name, so only the wrong value can be why it is refused
                // (not the name being taken).
                let mut fresh = json!({name_key: "generated-new"});
                fresh[def.name] = wrong.clone();
                refused(
                    &body(s, Method::POST, endpoint, &fresh),
                    &format!("POST {what}"),
                );
                let mut replaced = base.clone();
                replaced[def.name] = wrong.clone();
                refused(
                    &body(s, Method::PUT, &format!("{endpoint}/{id}"), &replaced),
                    &format!("PUT {what}"),
                );
                let op = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": def.name, "value": wrong}]});
                refused(
                    &body(s, Method::PATCH, &format!("{endpoint}/{id}"), &op),
                    &format!("PATCH {what}"),
                );
                cases += 3;
            }
        }
        // One value where the schema says multi-valued, and a body without `schemas` (both
        // tolerated by no IdP we know of).
        for def in writable(attributes).filter(|d| d.multi_valued) {
            let one = match def.sub_attribute("value") {
                Some(_) => json!({"value": "single"}),
                None => json!("single"),
            };
            let mut fresh = json!({name_key: "generated-new"});
            fresh[def.name] = one.clone();
            refused(
                &body(s, Method::POST, endpoint, &fresh),
                &format!("POST {endpoint} {} = {one}", def.name),
            );
            let mut replaced = base.clone();
            replaced[def.name] = one.clone();
            refused(
                &body(s, Method::PUT, &format!("{endpoint}/{id}"), &replaced),
                &format!("PUT {endpoint} {} = {one}", def.name),
            );
            cases += 2;
        }
        for (method, path) in [
            (Method::POST, endpoint.to_string()),
            (Method::PUT, format!("{endpoint}/{id}")),
        ] {
            let r = raw(
                s,
                method.clone(),
                &path,
                &json!({name_key: "generated-new"}).to_string(),
            );
            r.assert_scim_error(400, Some("invalidSyntax"));
            cases += 1;
        }
        // Bodies that are not JSON objects, on every writing method.
        for text in [
            "",
            "null",
            "[]",
            "\"text\"",
            "{\"unclosed\": ",
            "{\"a\":1}{\"b\":2}",
            &"[".repeat(10_000),
        ] {
            refused(
                &raw(s, Method::POST, endpoint, text),
                &format!("POST {endpoint} {text:.20}"),
            );
            refused(
                &raw(s, Method::PUT, &format!("{endpoint}/{id}"), text),
                "PUT",
            );
            refused(
                &raw(s, Method::PATCH, &format!("{endpoint}/{id}"), text),
                "PATCH",
            );
            cases += 3;
        }
        // PATCH requests that are malformed as requests.
        for ops in [
            json!({"Operations": []}),
            json!({"Operations": "replace"}),
            json!({"Operations": [{"op": "frobnicate", "path": "displayName", "value": "x"}]}),
            json!({"Operations": [{"op": "replace", "path": "displayName"}]}),
            json!({"Operations": [{"op": "remove"}]}),
            json!({"Operations": [{"op": "add", "path": "no such attribute", "value": 1}]}),
            json!({"Operations": [{"op": "add", "path": "emails[type eq ", "value": 1}]}),
            json!({"Operations": [{"op": "replace", "path": 7, "value": 1}]}),
            json!({"schemas": ["urn:wrong"], "Operations": [{"op": "add", "path": "displayName", "value": "x"}]}),
        ] {
            refused(
                &body(s, Method::PATCH, &format!("{endpoint}/{id}"), &ops),
                &format!("PATCH {ops}"),
            );
            cases += 1;
        }
        // Query parameters and filters.
        for query in [
            "filter=userName%20eq",
            "filter=userName%20xx%20%22a%22",
            "filter=%28userName%20eq%20%22a%22",
            "filter=userName%20eq%20bare",
            "filter=emails%5Btype%20eq%20%22work%22",
            "filter=%22just%20a%20string%22",
            "filter=and%20or%20not",
            "sortOrder=sideways",
            "startIndex=one",
            "count=many",
            "cursor=not-a-cursor",
            "attributes=%20%2C%2C%20bad%20name",
        ] {
            refused(
                &s.get(&format!("{endpoint}?{query}")),
                &format!("GET {endpoint}?{query}"),
            );
            cases += 1;
        }
    }
    // Broken Bulk requests.
    for bulk in [
        json!({"Operations": "all of them"}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [{"method": "TELEPORT", "path": "/Users"}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [{"method": "POST", "path": "/Users", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b"}}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "failOnErrors": "never", "Operations": []}),
    ] {
        let r = body(s, Method::POST, "/Bulk", &bulk);
        if r.status == 200 {
            // Refused operation by operation (RFC 7644 §3.7.3): each one a 4xx.
            let operations = r.body["Operations"].as_array().cloned().unwrap_or_default();
            assert!(!operations.is_empty(), "Bulk {bulk}: {}", r.body);
            for op in operations {
                let status: u16 = op["status"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                assert!((400..500).contains(&status), "Bulk {bulk}: {op}");
            }
        } else {
            refused(&r, &format!("Bulk {bulk}"));
        }
        cases += 1;
    }
    assert!(cases > 300, "{cases} cases");
    STATUSES.with(|counts| println!("bad input: {cases} cases, by status {:?}", counts.borrow()));
    assert_eq!(state(s), before, "nothing changed");
}

on_both_backends!(generated_bad_input_is_refused_and_changes_nothing,);
