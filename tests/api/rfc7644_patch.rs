//! RFC 7644 §3.5.2: PATCH with add, replace and remove.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{id_of, scim_body, send, Resp, TestServer};
use crate::on_both_backends;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

pub fn patch(s: &TestServer, path: &str, ops: Value) -> Resp {
    send(scim_body(
        s.request(Method::PATCH, path),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
    ))
}

fn user(s: &TestServer) -> String {
    id_of(&s.create_user(&json!({
        "userName": "patchme",
        "name": {"givenName": "Pat", "familyName": "Ch"},
        "emails": [{"value": "pat@work.example", "type": "work", "primary": true}, {"value": "pat@home.example", "type": "home"}],
        "phoneNumbers": [{"value": "1", "type": "work"}],
        ENTERPRISE: {"department": "Ops"}
    })))
}

fn ok(r: &Resp) -> &Value {
    assert_eq!(r.status, 200, "{}", r.body);
    &r.body
}

fn add_replace_remove_with_paths(s: &TestServer) {
    let id = user(s);
    let p = format!("/Users/{id}");
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "replace", "path": "name.givenName", "value": "Patricia"}]),
    ))
    .clone();
    assert_eq!(
        b["name"],
        json!({"givenName": "Patricia", "familyName": "Ch"})
    );
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "add", "path": "title", "value": "Boss"}]),
    ))
    .clone();
    assert_eq!(b["title"], "Boss");
    let b = ok(&patch(s, &p, json!([{"op": "remove", "path": "title"}]))).clone();
    assert!(b.get("title").is_none());
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "replace", "path": "name", "value": {"middleName": "Q"}}]),
    ))
    .clone();
    assert_eq!(b["name"]["middleName"], "Q");
    assert_eq!(
        b["name"]["givenName"], "Patricia",
        "replace on a complex attribute keeps unnamed sub-attributes"
    );
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Sales"}]),
    ))
    .clone();
    assert_eq!(b[ENTERPRISE]["department"], "Sales");
    let b = ok(&patch(s, &p, json!([{"op": "add", "path": format!("{ENTERPRISE}:manager"), "value": {"value": "boss-id"}}]))).clone();
    assert_eq!(b[ENTERPRISE]["manager"]["value"], "boss-id");
    let b = ok(&patch(s, &p, json!([{"op": "remove", "path": format!("{ENTERPRISE}:department")}, {"op": "remove", "path": format!("{ENTERPRISE}:manager")}]))).clone();
    assert!(b.get(ENTERPRISE).is_none(), "{b}");
    // The whole extension as a path; some libraries repeat `schemas` inside it.
    let b = ok(&patch(s, &p, json!([{"op": "add", "path": ENTERPRISE, "value": {"schemas": [ENTERPRISE], "division": "East", "costCenter": "9"}}]))).clone();
    assert_eq!(
        b[ENTERPRISE],
        json!({"costCenter": "9", "division": "East"})
    );
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "replace", "path": ENTERPRISE, "value": {"division": "West"}}]),
    ))
    .clone();
    assert_eq!(b[ENTERPRISE], json!({"division": "West"}));
    let b = ok(&patch(s, &p, json!([{"op": "remove", "path": ENTERPRISE}]))).clone();
    assert!(b.get(ENTERPRISE).is_none(), "{b}");
    assert_eq!(
        b["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
}

fn without_path_value_holds_attributes(s: &TestServer) {
    let id = user(s);
    let b = ok(&patch(s, &format!("/Users/{id}"), json!([{"op": "replace", "value": {
        "displayName": "P. Ch", "active": false, "name": {"familyName": "Changed"}, ENTERPRISE: {"costCenter": "42"}
    }}])))
    .clone();
    assert_eq!(b["displayName"], "P. Ch");
    assert_eq!(b["active"], false);
    assert_eq!(b["name"]["familyName"], "Changed");
    assert_eq!(b["name"]["givenName"], "Pat");
    assert_eq!(
        b[ENTERPRISE],
        json!({"department": "Ops", "costCenter": "42"})
    );
}

fn multi_valued_values_and_filters(s: &TestServer) {
    let id = user(s);
    let p = format!("/Users/{id}");
    // add appends, without duplicates
    let b = ok(&patch(s, &p, json!([{"op": "add", "path": "emails", "value": [{"value": "pat@other.example", "type": "other"}, {"value": "pat@home.example", "type": "home"}]}]))).clone();
    assert_eq!(b["emails"].as_array().map(Vec::len), Some(3), "{b}");
    // replace a sub-attribute of the values a filter selects
    let b = ok(&patch(s, &p, json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "pat@newhome.example"}]))).clone();
    let home: Vec<&Value> = b["emails"]
        .as_array()
        .expect("emails")
        .iter()
        .filter(|e| e["type"] == "home")
        .collect();
    assert_eq!(home.len(), 1);
    assert_eq!(home[0]["value"], "pat@newhome.example");
    // remove only what the filter matches
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "remove", "path": "emails[type eq \"other\"]"}]),
    ))
    .clone();
    let types: Vec<&str> = b["emails"]
        .as_array()
        .expect("emails")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(types, ["work", "home"]);
    // a new primary takes the flag from the old one
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
    ))
    .clone();
    let primaries: Vec<&str> = b["emails"]
        .as_array()
        .expect("emails")
        .iter()
        .filter(|e| e["primary"] == true)
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(primaries, ["home"]);
    let b = ok(&patch(s, &p, json!([{"op": "add", "path": "emails", "value": [{"value": "p@new.example", "primary": true}]}]))).clone();
    let primaries: Vec<&str> = b["emails"]
        .as_array()
        .expect("emails")
        .iter()
        .filter(|e| e["primary"] == true)
        .filter_map(|e| e["value"].as_str())
        .collect();
    assert_eq!(primaries, ["p@new.example"]);
    // remove a sub-attribute from matching values
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "remove", "path": "phoneNumbers[type eq \"work\"].type"}]),
    ))
    .clone();
    assert_eq!(b["phoneNumbers"], json!([{"value": "1"}]));
    // filter matching nothing on replace of a whole value: noTarget
    patch(
        s,
        &p,
        json!([{"op": "replace", "path": "emails[value co \"zzz\"]", "value": {"value": "x"}}]),
    )
    .assert_scim_error(400, Some("noTarget"));
    // remove of a whole multi-valued attribute
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "remove", "path": "phoneNumbers"}]),
    ))
    .clone();
    assert!(b.get("phoneNumbers").is_none());
    // the change is findable through the indexed e-mail table
    let r = s.get("/Users?filter=emails.value%20eq%20%22pat%40newhome.example%22");
    assert_eq!(r.body["totalResults"], 1);
}

fn errors_and_atomicity(s: &TestServer) {
    let id = user(s);
    let p = format!("/Users/{id}");
    let before = s.get(&p).body;
    for (ops, status, scim_type) in [
        (json!([{"op": "remove"}]), 400, "noTarget"),
        (
            json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
            400,
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "id", "value": "mine"}]),
            400,
            "mutability",
        ),
        (
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            400,
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "active", "value": "sometimes"}]),
            400,
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": format!("{ENTERPRISE}:shoeSize"), "value": "9"}]),
            400,
            "invalidPath",
        ),
        (
            json!([{"op": "jump", "path": "title", "value": "x"}]),
            400,
            "invalidSyntax",
        ),
        (
            json!([{"op": "add", "path": "title"}]),
            400,
            "invalidSyntax",
        ),
        (
            json!([{"op": "remove", "path": "userName"}]),
            400,
            "invalidValue",
        ),
        // the first operation is valid, the second is not: neither applies
        (
            json!([{"op": "replace", "path": "title", "value": "Applied?"}, {"op": "replace", "path": "meta", "value": {}}]),
            400,
            "mutability",
        ),
    ] {
        patch(s, &p, ops.clone()).assert_scim_error(status, Some(scim_type));
    }
    send(scim_body(
        s.request(Method::PATCH, &p),
        &json!({"Operations": "nope"}),
    ))
    .assert_scim_error(400, Some("invalidSyntax"));
    patch(
        s,
        "/Users/unknown",
        json!([{"op": "replace", "path": "title", "value": "x"}]),
    )
    .assert_scim_error(404, None);
    assert_eq!(s.get(&p).body, before, "failed PATCHes change nothing");
    // userName uniqueness holds through PATCH too
    s.create_user(&json!({"userName": "taken"}));
    patch(
        s,
        &p,
        json!([{"op": "replace", "path": "userName", "value": "TAKEN"}]),
    )
    .assert_scim_error(409, Some("uniqueness"));
}

fn if_match_and_versions(s: &TestServer) {
    let id = user(s);
    let p = format!("/Users/{id}");
    let v1 = s.get(&p).header("etag").expect("etag");
    let r = send(scim_body(
        s.request(Method::PATCH, &p).header("if-match", "W/\"999\""),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}),
    ));
    r.assert_scim_error(412, None);
    let r = send(scim_body(
        s.request(Method::PATCH, &p).header("if-match", &v1),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}),
    ));
    assert_eq!(r.status, 200);
    assert_ne!(r.header("etag"), Some(v1));
    let log =
        s.db.read(|c| scimgate::storage::change_log::since(c, 0, 100))
            .expect("log");
    assert_eq!(log.last().map(|e| e.operation.as_str()), Some("modify"));
}

fn group_membership_patches(s: &TestServer) {
    let users: Vec<String> = (0..4)
        .map(|i| id_of(&s.create_user(&json!({"userName": format!("gm{i}")}))))
        .collect();
    let gid = id_of(
        &s.create_group(&json!({"displayName": "Patchers", "members": [{"value": users[0]}]})),
    );
    let p = format!("/Groups/{gid}");
    let members = |b: &Value| -> Vec<String> {
        let mut m: Vec<String> = b["members"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["value"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        m.sort();
        m
    };
    let sorted = |ids: &[&String]| -> Vec<String> {
        let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    let b = ok(&patch(s, &p, json!([{"op": "add", "path": "members", "value": [{"value": users[1]}, {"value": users[0]}]}]))).clone();
    assert_eq!(
        members(&b),
        sorted(&[&users[0], &users[1]]),
        "adding a present member is a no-op"
    );
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", users[0])}]),
    ))
    .clone();
    assert_eq!(members(&b), sorted(&[&users[1]]));
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "add", "value": {"members": [{"value": users[2]}, {"value": users[3]}]}}]),
    ))
    .clone();
    assert_eq!(members(&b), sorted(&[&users[1], &users[2], &users[3]]));
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "remove", "path": "members[type eq \"User\" and value eq \"nobody\"]"}]),
    ))
    .clone();
    assert_eq!(members(&b).len(), 3);
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "replace", "path": "members", "value": [{"value": users[0]}]}]),
    ))
    .clone();
    assert_eq!(members(&b), sorted(&[&users[0]]));
    // The user side sees it.
    assert_eq!(
        s.get(&format!("/Users/{}", users[0])).body["groups"][0]["value"],
        gid
    );
    let b = ok(&patch(s, &p, json!([{"op": "replace", "path": "displayName", "value": "Renamed"}, {"op": "remove", "path": "members"}]))).clone();
    assert_eq!(b["displayName"], "Renamed");
    assert!(b.get("members").is_none());
    patch(
        s,
        &p,
        json!([{"op": "add", "path": "members", "value": [{"value": "ghost"}]}]),
    )
    .assert_scim_error(400, Some("invalidValue"));
    patch(
        s,
        &p,
        json!([{"op": "replace", "path": "members[value eq \"x\"].value", "value": "y"}]),
    )
    .assert_scim_error(400, Some("mutability"));
    assert!(s
        .get(&format!("/Users/{}", users[0]))
        .body
        .get("groups")
        .is_none());
}

/// RFC 7644 §3.10: a path may be qualified with the core schema's URN; such operations apply
/// as the short form does, and an operation the server cannot apply is an error, never a 200.
fn core_schema_qualified_paths(s: &TestServer) {
    const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    let id = user(s);
    let p = format!("/Users/{id}");
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "replace", "path": format!("{CORE_USER}:displayName"), "value": "Qualified"},
               {"op": "replace", "path": format!("{CORE_USER}:name.familyName"), "value": "Urn"}]),
    ))
    .clone();
    assert_eq!(b["displayName"], "Qualified");
    assert_eq!(b["name"]["familyName"], "Urn");
    let b = ok(&patch(
        s,
        &p,
        json!([{"op": "replace", "value": {format!("{CORE_USER}:title"): "Lead", CORE_USER: {"nickName": "Q"}}}]),
    ))
    .clone();
    assert_eq!(b["title"], "Lead");
    assert_eq!(b["nickName"], "Q");
    assert_eq!(s.get(&p).body["displayName"], "Qualified");

    // Nothing the server keeps: refused, and nothing changes.
    patch(
        s,
        &p,
        json!([{"op": "replace", "path": "displayName", "value": "Lost"},
               {"op": "replace", "path": "favouriteColour", "value": "blue"}]),
    )
    .assert_scim_error(400, Some("invalidPath"));
    patch(
        s,
        &p,
        json!([{"op": "replace", "value": {"favouriteColour": "blue"}}]),
    )
    .assert_scim_error(400, Some("invalidPath"));
    // `members` is a Group's, not a User's.
    patch(
        s,
        &p,
        json!([{"op": "add", "path": "members", "value": [{"value": "x"}]}]),
    )
    .assert_scim_error(400, Some("invalidPath"));
    assert_eq!(s.get(&p).body["displayName"], "Qualified");

    let users: Vec<String> = (0..3)
        .map(|n| id_of(&s.create_user(&json!({"userName": format!("urn-member-{n}")}))))
        .collect();
    let gid = id_of(&s.create_group(&json!({"displayName": "Qualified members"})));
    let g = format!("/Groups/{gid}");
    let b = ok(&patch(
        s,
        &g,
        json!([{"op": "add", "path": format!("{CORE_GROUP}:members"),
                "value": [{"value": users[0]}, {"value": users[1]}]},
               {"op": "add", "value": {format!("{CORE_GROUP}:members"): [{"value": users[2]}]}}]),
    ))
    .clone();
    assert_eq!(b["members"].as_array().map(Vec::len), Some(3), "{b}");
    let b = ok(&patch(
        s,
        &g,
        json!([{"op": "remove", "path": format!("{CORE_GROUP}:members[value eq \"{}\"]", users[0])},
               {"op": "replace", "path": format!("{CORE_GROUP}:displayName"), "value": "Renamed by URN"}]),
    ))
    .clone();
    assert_eq!(b["members"].as_array().map(Vec::len), Some(2), "{b}");
    assert_eq!(b["displayName"], "Renamed by URN");
    let stored = s.get(&g).body;
    assert_eq!(
        stored["members"].as_array().map(Vec::len),
        Some(2),
        "{stored}"
    );
    assert_eq!(stored["displayName"], "Renamed by URN");
}

on_both_backends!(
    core_schema_qualified_paths,
    add_replace_remove_with_paths,
    without_path_value_holds_attributes,
    multi_valued_values_and_filters,
    errors_and_atomicity,
    if_match_and_versions,
    group_membership_patches,
);

/// RFC 7644 §3.5.2 allows 204 instead of the resource; the server can be told to answer so.
fn no_content_when_configured(backend: crate::harness::Backend) {
    let s = TestServer::start_with(backend, |c| c.patch_returns_no_content = true);
    let id = user(&s);
    let r = patch(
        &s,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "title", "value": "Quiet"}]),
    );
    assert_eq!(r.status, 204);
    assert!(r.body.is_null());
    let etag = r.header("etag").expect("ETag on 204");
    let current = s.get(&format!("/Users/{id}"));
    assert_eq!(current.body["title"], "Quiet");
    assert_eq!(current.header("etag"), Some(etag));
}

crate::for_each_backend!(no_content_when_configured,);
