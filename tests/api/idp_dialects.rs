//! The payloads identity providers really send, each accepted and answered in RFC form.
//! Shapes follow the providers' published SCIM integration guides.

use serde_json::{json, Value};

use crate::harness::{id_of, TestServer};
use crate::on_both_backends;
use crate::rfc7644_patch::patch;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn list(s: &TestServer, query: &str) -> Value {
    let r = s.get(&format!("/{query}"));
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.body
}

/// Microsoft Entra ID: capitalised ops, "False" strings, path-less values with dotted and
/// extension-qualified keys, manager as a bare id, member removal by value, lookups by
/// externalId and userName, group creation with Microsoft's own schema URN.
fn microsoft_entra_id(s: &TestServer) {
    let created = s.post(
        "/Users",
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee@testuser.com",
            "active": true,
            "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "roles": []
        }),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = id_of(&created.body);
    let by_external = list(
        s,
        "Users?filter=externalId+eq+%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22",
    );
    assert_eq!(by_external["totalResults"], 1);
    let by_user_name = list(
        s,
        "Users?filter=userName+eq+%22test_user_ab6490ee%40testuser.com%22",
    );
    assert_eq!(by_user_name["Resources"][0]["id"], id.as_str());
    let none = list(s, "Users?filter=userName+eq+%22nobody%40testuser.com%22");
    assert_eq!(none["totalResults"], 0);
    assert_eq!(none["Resources"], json!([]));

    let manager = id_of(&s.create_user(&json!({"userName": "manager@testuser.com"})));
    let p = format!("/Users/{id}");
    let r = patch(
        s,
        &p,
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
            {"op": "Add", "value": {"name.givenName": "Given", "title": "Engineer",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "1234"}},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": manager},
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let u = &r.body;
    assert_eq!(
        u["emails"],
        json!([{"primary": true, "type": "work", "value": "updatedEmail@microsoft.com"}])
    );
    assert_eq!(u["name"]["familyName"], "updatedFamilyName");
    assert_eq!(u["name"]["givenName"], "Given");
    assert_eq!(u["title"], "Engineer");
    assert_eq!(u[ENTERPRISE]["employeeNumber"], "1234");
    assert_eq!(u[ENTERPRISE]["manager"], json!({"value": manager}));
    assert_eq!(u["active"], false, "answered as a JSON boolean");
    assert_eq!(
        u["phoneNumbers"],
        json!([{"type": "mobile", "value": "+1 555 0100"}])
    );
    // Manager also arrives as {"value": ...}.
    let r = patch(
        s,
        &p,
        json!([{"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "other"}}]),
    );
    assert_eq!(r.body[ENTERPRISE]["manager"], json!({"value": "other"}));
    let r = patch(
        s,
        &p,
        json!([{"op": "Replace", "path": "userName", "value": "renamed@testuser.com"}]),
    );
    assert_eq!(r.body["userName"], "renamed@testuser.com");

    let group = s.post(
        "/Groups",
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"}
        }),
    );
    assert_eq!(group.status, 201, "{}", group.body);
    assert_eq!(
        group.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:Group"])
    );
    let gid = id_of(&group.body);
    let gp = format!("/Groups/{gid}");
    let r = patch(
        s,
        &gp,
        json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": id}]}]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let found = list(
        s,
        &format!(
            "Groups?excludedAttributes=members&filter=id+eq+%22{gid}%22+and+members+eq+%22{id}%22"
        ),
    );
    assert_eq!(found["totalResults"], 1);
    assert!(found["Resources"][0].get("members").is_none());
    let r = patch(
        s,
        &gp,
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": id}]}]),
    );
    assert!(r.body.get("members").is_none(), "{}", r.body);
    let found = list(
        s,
        &format!(
            "Groups?excludedAttributes=members&filter=id+eq+%22{gid}%22+and+members+eq+%22{id}%22"
        ),
    );
    assert_eq!(found["totalResults"], 0);
    let r = patch(
        s,
        &gp,
        json!([{"op": "Replace", "path": "displayName", "value": "updatedDisplayName"}]),
    );
    assert_eq!(r.body["displayName"], "updatedDisplayName");
    let found = list(
        s,
        "Groups?excludedAttributes=members&filter=displayName+eq+%22updatedDisplayName%22",
    );
    assert_eq!(found["totalResults"], 1);
    assert_eq!(s.delete(&p).status, 204);
}

/// Okta: lookups with startIndex/count, full-PUT updates that repeat read-only attributes,
/// deactivation by a path-less PATCH, group push replacing members and renaming with `id`
/// repeated in the value.
fn okta(s: &TestServer) {
    let r = list(
        s,
        "Users?filter=userName%20eq%20%22isaac.brock%40example.com%22&startIndex=1&count=100",
    );
    assert_eq!(r["totalResults"], 0);
    assert_eq!(r["startIndex"], 1);
    let created = s.post(
        "/Users",
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "isaac.brock@example.com",
            "name": {"givenName": "Isaac", "familyName": "Brock"},
            "emails": [{"primary": true, "value": "isaac.brock@example.com", "type": "work"}],
            "displayName": "Isaac Brock",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": true
        }),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = id_of(&created.body);
    assert!(created.body.get("password").is_none());
    let mut full = created.body.clone();
    full["name"]["familyName"] = json!("Brock-Smith");
    full["groups"] = json!([]);
    let r = s.put(&format!("/Users/{id}"), &full);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"]["familyName"], "Brock-Smith");
    assert_eq!(r.body["meta"]["created"], created.body["meta"]["created"]);
    let r = patch(
        s,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);

    let members: Vec<String> = (0..3)
        .map(|i| id_of(&s.create_user(&json!({"userName": format!("okta{i}@example.com")}))))
        .collect();
    let group = s.post("/Groups", &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Test SCIMv2", "members": []}));
    assert_eq!(group.status, 201, "{}", group.body);
    let gid = id_of(&group.body);
    let gp = format!("/Groups/{gid}");
    let r = patch(
        s,
        &gp,
        json!([{"op": "replace", "path": "members", "value": [{"value": members[0], "display": "okta0@example.com"}, {"value": members[1], "display": "okta1@example.com"}]}]),
    );
    assert_eq!(
        r.body["members"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.body
    );
    let r = patch(
        s,
        &gp,
        json!([{"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 renamed"}}]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Test SCIMv2 renamed");
    let r = patch(
        s,
        &gp,
        json!([
            {"op": "remove", "path": format!("members[value eq \"{}\"]", members[0])},
            {"op": "add", "path": "members", "value": [{"value": members[2], "display": "okta2@example.com"}]}
        ]),
    );
    let mut ids: Vec<&str> = r.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    ids.sort();
    let mut want = vec![members[1].as_str(), members[2].as_str()];
    want.sort();
    assert_eq!(ids, want);
}

/// OneLogin and JumpCloud: plain `application/json`, path-less replaces, string booleans on a
/// path, and member additions that carry `display`.
fn onelogin_and_jumpcloud(s: &TestServer) {
    let id = id_of(&s.create_user(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "kate@example.com",
        "name": {"givenName": "Kate", "familyName": "Bush"},
        "emails": [{"value": "kate@example.com", "primary": "true", "type": "work"}]
    })));
    let r = patch(
        s,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "value": {"name": {"givenName": "Katherine"}, "title": "Singer"}}]),
    );
    assert_eq!(
        r.body["name"],
        json!({"givenName": "Katherine", "familyName": "Bush"})
    );
    assert_eq!(r.body["emails"][0]["primary"], true);
    let r = patch(
        s,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "active", "value": "true"}]),
    );
    assert_eq!(r.body["active"], true);
    let gid = id_of(&s.create_group(&json!({"displayName": "Musicians"})));
    let r = patch(
        s,
        &format!("/Groups/{gid}"),
        json!([{"op": "add", "path": "members", "value": [{"value": id, "display": "kate@example.com"}]}]),
    );
    assert_eq!(r.body["members"][0]["display"], "kate@example.com");
}

/// Google Workspace auto-provisioning: a user with one primary e-mail, suspended by PATCH.
fn google_workspace(s: &TestServer) {
    let id = id_of(&s.create_user(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "liz@example.com",
        "name": {"givenName": "Liz", "familyName": "Fraser"},
        "emails": [{"value": "liz@example.com", "primary": true}],
        "active": true
    })));
    let r = patch(
        s,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    );
    assert_eq!(r.body["active"], false);
    assert_eq!(list(s, "Users?filter=active+eq+false")["totalResults"], 1);
}

on_both_backends!(
    microsoft_entra_id,
    okta,
    onelogin_and_jumpcloud,
    google_workspace
);
