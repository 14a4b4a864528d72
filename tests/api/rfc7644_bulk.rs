//! RFC 7644 §3.7: Bulk operations, bulkId references, failOnErrors and limits.

use serde_json::{json, Value};

use crate::harness::{id_of, Backend, TestServer};
use crate::on_both_backends;

fn bulk(s: &TestServer, ops: Value, fail_on_errors: Option<u64>) -> Value {
    let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
    if let Some(n) = fail_on_errors {
        body["failOnErrors"] = json!(n);
    }
    let r = s.post("/Bulk", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
    );
    r.body["Operations"].clone()
}

fn bulk_ids_resolve_across_operations(s: &TestServer) {
    // The group refers to a user created later in the same request.
    let results = bulk(
        s,
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Tour Guides", "members": [{"type": "User", "value": "bulkId:u1"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "Alice"}},
            {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "Guide"}]}}
        ]),
        None,
    );
    let statuses: Vec<&str> = results
        .as_array()
        .expect("ops")
        .iter()
        .filter_map(|o| o["status"].as_str())
        .collect();
    assert_eq!(statuses, ["201", "201", "200"], "{results}");
    assert_eq!(results[0]["bulkId"], "g1");
    assert_eq!(results[0]["method"], "POST");
    let user_location = results[1]["location"].as_str().expect("location");
    let uid = user_location.rsplit('/').next().expect("id").to_string();
    assert!(results[1]["version"]
        .as_str()
        .is_some_and(|v| v.starts_with("W/")));
    let group = s.get("/Groups").body["Resources"][0].clone();
    assert_eq!(group["members"][0]["value"], uid.as_str());
    let user = s.get(&format!("/Users/{uid}")).body;
    assert_eq!(user["title"], "Guide");
    assert_eq!(user["groups"][0]["display"], "Tour Guides");
}

fn errors_are_per_operation_and_fail_on_errors_stops(s: &TestServer) {
    let existing = id_of(&s.create_user(&json!({"userName": "exists"})));
    let results = bulk(
        s,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "exists"}},
            {"method": "PUT", "path": format!("/Users/{existing}"), "version": "W/\"42\"", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "exists"}},
            {"method": "DELETE", "path": "/Users/missing"},
            {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G", "members": [{"value": "bulkId:nowhere"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "c", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "fine"}}
        ]),
        None,
    );
    let statuses: Vec<&str> = results
        .as_array()
        .expect("ops")
        .iter()
        .filter_map(|o| o["status"].as_str())
        .collect();
    assert_eq!(statuses, ["409", "412", "404", "409", "201"], "{results}");
    assert_eq!(results[0]["response"]["scimType"], "uniqueness");
    assert_eq!(
        results[0]["response"]["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );

    let results = bulk(
        s,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "x1", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "exists"}},
            {"method": "POST", "path": "/Users", "bulkId": "x2", "data": {"active": "yes"}},
            {"method": "POST", "path": "/Users", "bulkId": "x3", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "never-created"}}
        ]),
        Some(2),
    );
    assert_eq!(
        results.as_array().map(Vec::len),
        Some(2),
        "processing stops after failOnErrors errors"
    );
    assert_eq!(
        s.get("/Users?filter=userName%20eq%20%22never-created%22")
            .body["totalResults"],
        0
    );
}

fn bad_requests(s: &TestServer) {
    s.post(
        "/Bulk",
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"]}),
    )
    .assert_scim_error(400, Some("invalidSyntax"));
    s.post(
        "/Bulk",
        &json!({"Operations": [{"method": "POST", "path": "/Users", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x"}}]}),
    )
    .assert_scim_error(400, Some("invalidSyntax"));
    s.post("/Bulk", &json!({"Operations": [], "failOnErrors": 0}))
        .assert_scim_error(400, Some("invalidValue"));
    let r = bulk(
        s,
        json!([{"method": "GET", "path": "/Users"}, {"method": "POST", "path": "/Printers", "bulkId": "p", "data": {}}]),
        None,
    );
    assert_eq!(r[0]["status"], "405");
    assert_eq!(r[1]["status"], "400");
    assert_eq!(r[1]["response"]["scimType"], "invalidPath");
}

fn limits_are_enforced_and_announced(backend: Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.bulk_max_operations = 2;
        c.bulk_max_payload_bytes = 2048;
    });
    let spc = s.get("/ServiceProviderConfig").body;
    assert_eq!(
        spc["bulk"],
        json!({"supported": true, "maxOperations": 2, "maxPayloadSize": 2048})
    );
    let op = json!({"method": "POST", "path": "/Users", "bulkId": "u", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x"}});
    let mut three = vec![op.clone(), op.clone(), op.clone()];
    for (i, o) in three.iter_mut().enumerate() {
        o["bulkId"] = json!(format!("u{i}"));
    }
    s.post("/Bulk", &json!({"Operations": three}))
        .assert_scim_error(413, None);
    let big = json!({"Operations": [{"method": "POST", "path": "/Users", "bulkId": "b", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x", "title": "y".repeat(4096)}}]});
    s.post("/Bulk", &big).assert_scim_error(413, None);
    assert_eq!(s.get("/Users").body["totalResults"], 0);
}

on_both_backends!(
    bulk_ids_resolve_across_operations,
    errors_are_per_operation_and_fail_on_errors_stops,
    bad_requests
);

crate::for_each_backend!(limits_are_enforced_and_announced,);
