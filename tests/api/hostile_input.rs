//! Input made to hurt: filters and PATCH paths nested thousands deep or thousands of terms
//! long, NUL and escape characters in values, ids, filter literals and cursors. Every answer is a
//! 4xx SCIM error, nothing changes, and the server goes on serving.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{id_of, scim_body, send, Backend, TestServer};
use crate::on_both_backends;
use crate::rfc7644_patch::patch;
use crate::rfc7644_query::urlencode as encode;

fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

fn chain(term: &str, joiner: &str, terms: usize) -> String {
    vec![term; terms].join(joiner)
}

/// The users and groups as the server lists them (to show nothing changed).
fn everything(s: &TestServer) -> (Value, Value) {
    let users = s.get("/Users?sortBy=userName");
    let groups = s.get("/Groups?sortBy=displayName");
    assert_eq!(users.status, 200);
    assert_eq!(groups.status, 200);
    (users.body, groups.body)
}

fn deep_and_long_filters_are_refused(s: &TestServer) {
    id_of(&s.create_user(&json!({"userName": "survivor", "emails": [{"value": "s@x.example"}]})));
    let before = everything(s);
    let eq = "userName eq \"survivor\"";
    let hostile = [
        nested("(", eq, ")", 1_300),
        nested("not(", eq, ")", 1_300),
        nested("not(", eq, ")", 500),
        nested("emails[", "value eq \"x\"", "]", 1_300),
        chain(eq, " or ", 3_000),
        chain(eq, " and ", 1_000),
        // Found by fuzzing: a wide character where a schema URN's length ends.
        "urn:ietf:params:scim:schemas:core:2.0:UseĪ eq 1".to_string(),
    ];
    for filter in &hostile {
        let query = encode(filter);
        // What fits in a request line goes as a query too.
        if query.len() < 60_000 {
            let r = s.get(&format!("/Users?filter={query}"));
            r.assert_scim_error(400, Some("invalidFilter"));
        }
        let r = send(scim_body(
            s.request(Method::POST, "/Users/.search"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter}),
        ));
        r.assert_scim_error(400, Some("invalidFilter"));
        let r = send(scim_body(
            s.request(Method::POST, "/.search"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter}),
        ));
        r.assert_scim_error(400, Some("invalidFilter"));
    }
    // Within the bounds, long filters still work.
    let fine = chain(eq, " or ", 200);
    let r = s.get(&format!("/Users?filter={}", encode(&fine)));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(everything(s), before, "the server serves on, unchanged");
}

fn deep_patch_paths_are_refused(s: &TestServer) {
    let id = id_of(&s.create_user(
        &json!({"userName": "patched", "emails": [{"value": "p@x.example", "type": "work"}]}),
    ));
    let before = everything(s);
    for path in [
        format!(
            "{}.value",
            nested("emails[", "type eq \"work\"", "]", 1_300)
        ),
        format!("emails[{}].value", chain("type eq \"work\"", " or ", 3_000)),
    ] {
        let r = patch(
            s,
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": path, "value": "x@x.example"}]),
        );
        r.assert_scim_error(400, Some("invalidPath"));
    }
    assert_eq!(everything(s), before);
}

fn control_characters_never_reach_the_store(s: &TestServer) {
    let id = id_of(&s.create_user(&json!({"userName": "clean"})));
    let group = id_of(&s.create_group(&json!({"displayName": "Clean"})));
    let before = everything(s);
    for bad in ["nul\u{0}byte", "\u{1b}[31mred\u{1b}[0m", "bell\u{7}"] {
        let r = send(scim_body(
            s.request(Method::POST, "/Users"),
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": bad}),
        ));
        r.assert_scim_error(400, Some("invalidValue"));
        let r = send(scim_body(
            s.request(Method::POST, "/Users"),
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "fine", "name": {"givenName": bad}}),
        ));
        r.assert_scim_error(400, Some("invalidValue"));
        let r = send(scim_body(
            s.request(Method::PUT, &format!("/Users/{id}")),
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "clean", "title": bad}),
        ));
        r.assert_scim_error(400, Some("invalidValue"));
        patch(
            s,
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "displayName", "value": bad}]),
        )
        .assert_scim_error(400, Some("invalidValue"));
        patch(
            s,
            &format!("/Groups/{group}"),
            json!([{"op": "add", "path": "members", "value": [{"value": bad}]}]),
        )
        .assert_scim_error(400, Some("invalidValue"));
        let r = send(scim_body(
            s.request(Method::POST, "/Groups"),
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Dirty", "members": [{"value": bad}]}),
        ));
        r.assert_scim_error(400, Some("invalidValue"));
        let r = send(scim_body(
            s.request(Method::PUT, &format!("/Groups/{group}")),
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Clean", "members": [{"value": id, "display": bad}]}),
        ));
        r.assert_scim_error(400, Some("invalidValue"));
        let filter = format!("userName eq {}", json!(bad));
        s.get(&format!("/Users?filter={}", encode(&filter)))
            .assert_scim_error(400, Some("invalidFilter"));
        // Ids and cursors no resource can have.
        let path = format!("/Users/{}", encode(bad));
        s.get(&path).assert_scim_error(404, None);
        assert_eq!(s.delete(&path).status, 404);
        let cursor = base64_url(&format!("k:1:{bad}"));
        s.get(&format!("/Users?cursor={cursor}"))
            .assert_scim_error(400, Some("invalidCursor"));
    }
    let r = send(scim_body(
        s.request(Method::POST, "/Bulk"),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [{"method": "DELETE", "path": "/Users/nul\u{0}id"},
                               {"method": "POST", "path": "/Users", "bulkId": "b1", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "nul\u{0}"}}]}),
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["Operations"][0]["status"], "404", "{}", r.body);
    assert_eq!(r.body["Operations"][1]["status"], "400", "{}", r.body);
    // Tabs and line breaks are text.
    let r = s.create_user(&json!({"userName": "multi", "title": "line one\nline two\tend"}));
    assert_eq!(r["title"], "line one\nline two\tend");
    s.delete(&format!("/Users/{}", id_of(&r)));
    assert_eq!(everything(s), before);
}

/// Values are bounded by attribute (`scimgate::scim::input::max_chars`): 256 characters for
/// identifiers, 2,048 for other strings.
fn oversized_values_are_refused(s: &TestServer) {
    let id =
        id_of(&s.create_user(&json!({"userName": "a".repeat(256), "title": "t".repeat(2_048)})));
    let before = everything(s);
    for body in [
        json!({"userName": "u".repeat(100_000)}),
        json!({"userName": "u".repeat(257)}),
        json!({"userName": "fine", "externalId": "e".repeat(257)}),
        json!({"userName": "fine", "title": "t".repeat(2_049)}),
        json!({"userName": "fine", "emails": [{"value": format!("{}@x.example", "m".repeat(3_000))}]}),
    ] {
        let r = s.post("/Users", &body);
        r.assert_scim_error(400, Some("invalidValue"));
    }
    patch(
        s,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "displayName", "value": "d".repeat(10_000)}]),
    )
    .assert_scim_error(400, Some("invalidValue"));
    let r = send(scim_body(
        s.request(Method::POST, "/Groups"),
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g".repeat(300)}),
    ));
    r.assert_scim_error(400, Some("invalidValue"));
    // Characters, not bytes: 256 of a four-byte character is a valid userName.
    let wide = s.create_user(&json!({"userName": "😀".repeat(256)}));
    s.delete(&format!("/Users/{}", id_of(&wide)));
    assert_eq!(everything(s), before);
}

/// A password is never returned, so it cannot be probed through filters or sorting either
/// (each answer would give away a little of it).
fn passwords_cannot_be_probed(s: &TestServer) {
    s.create_user(&json!({"userName": "secretive", "password": "alpha-bravo-7"}));
    for filter in [
        "password sw \"al\"",
        "password co \"bravo\"",
        "password gt \"a\"",
        "password pr",
        "userName eq \"secretive\" and not (password ew \"7\")",
        "urn:ietf:params:scim:schemas:core:2.0:User:password eq \"alpha-bravo-7\"",
    ] {
        s.get(&format!("/Users?filter={}", encode(filter)))
            .assert_scim_error(400, Some("invalidFilter"));
        let r = send(scim_body(
            s.request(Method::POST, "/.search"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter}),
        ));
        r.assert_scim_error(400, Some("invalidFilter"));
    }
    s.get("/Users?sortBy=password")
        .assert_scim_error(400, Some("invalidFilter"));
    let listed = s.get("/Users?filter=userName%20eq%20%22secretive%22");
    assert_eq!(listed.body["totalResults"], 1);
    assert!(listed.body["Resources"][0].get("password").is_none());
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

on_both_backends!(
    passwords_cannot_be_probed,
    oversized_values_are_refused,
    deep_and_long_filters_are_refused,
    deep_patch_paths_are_refused,
    control_characters_never_reach_the_store,
);

/// A target whose `users_filter` would be a hostile filter is refused when it is created.
fn hostile_target_filters_are_refused(backend: Backend) {
    let s = TestServer::start(backend);
    let ops = crate::admin_targets::Ops::on(&s);
    let users_filter = chain("userName eq \"a\"", " or ", 3_000);
    let body = json!({"name": "hostile", "url": "http://127.0.0.1:9/scim/v2", "users_filter": users_filter});
    let r = ops.post("/targets", Some(&body));
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("users_filter"), "{}", r.text);
    assert_eq!(ops.get("/targets/hostile").status, 404);
}

crate::for_each_backend!(hostile_target_filters_are_refused,);
