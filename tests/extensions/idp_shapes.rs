//! Extension attributes as Microsoft Entra ID and Okta send them.
//!
//! - Entra ID names a custom attribute by its qualified name
//!   (`urn:...:CustomExtensionName:2.0:User:costCenter`): as a top-level key of a POST body
//!   whose `schemas` lists only core and enterprise, as a PATCH path, and as a key of a
//!   path-less PATCH value; operations are capitalised and booleans and numbers come as strings.
//! - Okta nests custom attributes under the extension URN, lists it in `schemas`, and replaces
//!   the whole user with PUT (deactivation included).

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{id_of, scim_body, send, Backend, Resp, TestServer};
use crate::{declaration, filtered, CORE_USER, ENTERPRISE};

const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";

fn start(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.schema_extensions = vec![declaration(json!({
            "id": CUSTOM,
            "resourceTypes": [{"resourceType": "User"}],
            "attributes": [
                {"name": "costCenter", "type": "string"},
                {"name": "isContractor", "type": "boolean"},
                {"name": "level", "type": "integer"},
                {"name": "hireDate", "type": "dateTime"}
            ]
        }))];
    })
}

fn patch(s: &TestServer, id: &str, ops: Value) -> Resp {
    send(scim_body(
        s.request(Method::PATCH, &format!("/Users/{id}")),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
    ))
}

fn entra_id(s: &TestServer) {
    let created = s.post(
        "/Users",
        &json!({
            "schemas": [CORE_USER, ENTERPRISE],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee@contoso.example",
            "active": true,
            "emails": [{"primary": true, "type": "work", "value": "Test_User_ab6490ee@contoso.example"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "Given Family", "familyName": "Family", "givenName": "Given"},
            "roles": [],
            format!("{ENTERPRISE}:department"): "Sales",
            format!("{CUSTOM}:costCenter"): "CC-42",
            format!("{CUSTOM}:isContractor"): "False",
            format!("{CUSTOM}:level"): "3"
        }),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body[CUSTOM],
        json!({"costCenter": "CC-42", "isContractor": false, "level": 3}),
        "qualified keys land in their extension, typed"
    );
    assert!(created.body["schemas"]
        .as_array()
        .expect("schemas")
        .contains(&json!(CUSTOM)));
    let id = id_of(&created.body);

    let r = patch(
        s,
        &id,
        json!([
            {"op": "Add", "path": format!("{CUSTOM}:hireDate"), "value": "2026-01-05T08:00:00Z"},
            {"op": "Replace", "path": format!("{CUSTOM}:isContractor"), "value": "True"},
            {"op": "Replace", "value": {format!("{CUSTOM}:costCenter"): "CC-7", format!("{CUSTOM}:level"): "4"}}
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body[CUSTOM],
        json!({"costCenter": "CC-7", "isContractor": true, "level": 4, "hireDate": "2026-01-05T08:00:00Z"})
    );
    // Entra ID checks for an existing user with a filter on what it matches on.
    let found = s.get(&filtered(
        "/Users",
        &format!("{CUSTOM}:costCenter eq \"CC-7\""),
    ));
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);
    let r = patch(
        s,
        &id,
        json!([{"op": "Remove", "path": format!("{CUSTOM}:level")}]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body[CUSTOM].get("level").is_none(), "{}", r.body);
}

fn okta(s: &TestServer) {
    let user = |active: bool, level: i64| {
        json!({
            "schemas": [CORE_USER, CUSTOM],
            "userName": "isabella.jones@example.com",
            "name": {"givenName": "Isabella", "familyName": "Jones"},
            "emails": [{"primary": true, "value": "isabella.jones@example.com", "type": "work"}],
            "displayName": "Isabella Jones",
            "locale": "en-US",
            "externalId": "00u1dhhb1fkIGP7RL1d8",
            "groups": [],
            "password": "1mz050nq",
            "active": active,
            CUSTOM: {"costCenter": "Marketing", "isContractor": true, "level": level,
                     "hireDate": "2025-11-03T00:00:00.000Z"}
        })
    };
    let created = s.post("/Users", &user(true, 2));
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body[CUSTOM]["level"], 2);
    assert_eq!(created.body[CUSTOM]["hireDate"], "2025-11-03T00:00:00.000Z");
    let id = id_of(&created.body);
    let replaced = s.put(&format!("/Users/{id}"), &user(false, 5));
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["active"], false);
    assert_eq!(replaced.body[CUSTOM]["level"], 5);
    // A replacement without the extension clears it (RFC 7644 §3.5.1).
    let mut bare = user(true, 0);
    bare.as_object_mut().expect("object").remove(CUSTOM);
    bare["schemas"] = json!([CORE_USER]);
    let cleared = s.put(&format!("/Users/{id}"), &bare);
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert!(cleared.body.get(CUSTOM).is_none(), "{}", cleared.body);
}

fn entra_and_okta_shapes(backend: Backend) {
    let s = start(backend);
    entra_id(&s);
    okta(&s);
}

crate::serially_on_each_backend!(entra_and_okta_shapes);
