//! RFC 7643 §4.1 (User) and §4.3 (Enterprise User), as served over RFC 7644.

use serde_json::{json, Value};

use crate::harness::{id_of, TestServer};
use crate::on_both_backends;
use crate::rfc7644_patch::patch;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn full_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {
            "formatted": "Ms. Barbara J Jensen, III",
            "familyName": "Jensen",
            "givenName": "Barbara",
            "middleName": "Jane",
            "honorificPrefix": "Ms.",
            "honorificSuffix": "III"
        },
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "addresses": [{
            "type": "work",
            "streetAddress": "100 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "USA",
            "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
            "primary": true
        }],
        "phoneNumbers": [{"value": "555-555-5555", "type": "work"}, {"value": "555-555-4444", "type": "mobile"}],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "photos": [{"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"}],
        "userType": "Employee",
        "title": "Tour Guide",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": true,
        "password": "t1meMa$heen",
        "entitlements": [{"value": "vpn", "primary": true}],
        "roles": [{"value": "guide"}],
        "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw"}],
        ENTERPRISE: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "organization": "Universal Studios",
            "division": "Theme Park",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        }
    })
}

fn create_round_trips_every_attribute(s: &TestServer) {
    let r = s.post("/Users", &full_user());
    assert_eq!(r.status, 201, "{}", r.body);
    let id = id_of(&r.body);
    let body = &r.body;
    assert_eq!(body["userName"], "bjensen@example.com");
    assert_eq!(body["externalId"], "701984");
    assert_eq!(body["name"]["honorificSuffix"], "III");
    assert_eq!(body["emails"][1]["value"], "babs@jensen.org");
    assert_eq!(body["addresses"][0]["postalCode"], "91608");
    assert_eq!(body["phoneNumbers"][1]["type"], "mobile");
    assert_eq!(
        body["x509Certificates"][0]["value"],
        "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw"
    );
    assert_eq!(
        body[ENTERPRISE]["manager"]["value"],
        "26118915-6090-4610-87e4-49d8ca9f808d"
    );
    assert_eq!(body[ENTERPRISE]["department"], "Tour Operations");
    assert!(
        body.get("password").is_none(),
        "password is returned 'never'"
    );
    let schemas: Vec<&str> = body["schemas"]
        .as_array()
        .expect("schemas")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        schemas,
        ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE]
    );

    let meta = &body["meta"];
    assert_eq!(meta["resourceType"], "User");
    assert_eq!(meta["location"], s.url(&format!("/Users/{id}")));
    assert_eq!(r.header("location").as_deref(), meta["location"].as_str());
    assert_eq!(r.header("etag").as_deref(), meta["version"].as_str());
    assert!(meta["version"]
        .as_str()
        .is_some_and(|v| v.starts_with("W/\"")));
    let created = meta["created"].as_str().expect("created");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "{created}"
    );
    assert_eq!(meta["created"], meta["lastModified"]);
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "server-assigned UUID id"
    );

    let g = s.get(&format!("/Users/{id}"));
    assert_eq!(g.status, 200);
    assert_eq!(g.body, r.body, "GET returns what POST returned");
}

fn attribute_names_are_case_insensitive(s: &TestServer) {
    let r = s.post(
        "/Users",
        &json!({
            "SCHEMAS": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "USERNAME": "Case.Test",
            "Name": {"GIVENNAME": "Case", "familyname": "Test"},
            "eMaIlS": [{"VALUE": "case@example.com", "Primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"EmployeeNumber": "42"}
        }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["userName"], "Case.Test");
    assert_eq!(
        r.body["name"],
        json!({"givenName": "Case", "familyName": "Test"})
    );
    assert_eq!(
        r.body["emails"],
        json!([{"value": "case@example.com", "primary": true}])
    );
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "42");
}

/// Payload shapes real IdPs send: booleans as strings, single values for multi-valued
/// attributes, a bare manager id, extension attributes as fully qualified keys, extras.
fn idp_payload_shapes_are_accepted(s: &TestServer) {
    let r = s.post(
        "/Users",
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "userName": "entra@example.com",
            "active": "False",
            "emails": [{"value": "entra@example.com", "type": "work", "primary": "True"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales",
            ENTERPRISE: {"manager": "b3c4d5"},
            "roles": [],
            "nickName": null,
            "okta.customField": "ignored",
            "someVendorAttribute": {"x": 1}
        }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(
        r.body["emails"],
        json!([{"value": "entra@example.com", "type": "work", "primary": true}])
    );
    assert_eq!(r.body[ENTERPRISE]["department"], "Sales");
    assert_eq!(r.body[ENTERPRISE]["manager"], json!({"value": "b3c4d5"}));
    assert!(
        r.body.get("roles").is_none(),
        "an empty array is unassigned"
    );
    assert!(r.body.get("nickName").is_none(), "null is unassigned");
    assert!(r.body.get("someVendorAttribute").is_none());
    assert!(r.body.get("okta.customField").is_none());
}

fn unknown_extension_attribute_is_rejected(s: &TestServer) {
    let r = s.post(
        "/Users",
        &json!({"userName": "ext@example.com", ENTERPRISE: {"badgeColour": "red"}}),
    );
    r.assert_scim_error(400, Some("invalidValue"));
    assert!(r.body["detail"]
        .as_str()
        .unwrap_or("")
        .contains("badgeColour"));
    assert_eq!(
        s.get("/Users").body["totalResults"],
        0,
        "nothing was written"
    );
}

fn unsupported_schema_is_rejected(s: &TestServer) {
    let r = s.post(
        "/Users",
        &json!({"schemas": ["urn:example:unknown"], "userName": "x"}),
    );
    r.assert_scim_error(400, Some("invalidValue"));
    // A Group body sent to /Users.
    let r = s.post(
        "/Users",
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "x"}),
    );
    r.assert_scim_error(400, Some("invalidValue"));
    // Vendor URNs beside the core schema are tolerated.
    let r = s.post(
        "/Users",
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:vendor:extra"], "userName": "x"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
}

fn user_name_is_required(s: &TestServer) {
    let r = s.post("/Users", &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "displayName": "No Name"}));
    r.assert_scim_error(400, Some("invalidValue"));
    assert!(r.body["detail"].as_str().unwrap_or("").contains("userName"));
    let r = s.post("/Users", &json!({"userName": "  "}));
    r.assert_scim_error(400, Some("invalidValue"));
}

fn wrong_types_are_rejected(s: &TestServer) {
    for bad in [
        json!({"userName": "t@example.com", "active": "maybe"}),
        json!({"userName": "t@example.com", "name": "Just A String"}),
        json!({"userName": ["t@example.com"]}),
        json!({"userName": "t@example.com", "emails": [{"value": "a@b", "primary": true}, {"value": "c@d", "primary": true}]}),
        json!({"userName": "t@example.com", "x509Certificates": [{"value": "not base64!!"}]}),
        json!({"userName": "t@example.com", ENTERPRISE: "not an object"}),
    ] {
        let r = s.post("/Users", &bad);
        assert_eq!(r.status, 400, "{bad} → {}", r.body);
        r.assert_scim_error(400, r.body["scimType"].as_str());
    }
    assert_eq!(s.get("/Users").body["totalResults"], 0);
}

fn user_name_is_unique_case_insensitively(s: &TestServer) {
    s.create_user(&json!({"userName": "Unique@Example.com"}));
    let r = s.post("/Users", &json!({"userName": "unique@example.COM"}));
    r.assert_scim_error(409, Some("uniqueness"));
    assert_eq!(s.get("/Users").body["totalResults"], 1);
}

fn read_only_attributes_in_input_are_ignored(s: &TestServer) {
    let r = s.post(
        "/Users",
        &json!({
            "userName": "ro@example.com",
            "id": "client-chosen",
            "meta": {"resourceType": "Group", "version": "W/\"99\""},
            "groups": [{"value": "g1"}]
        }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_ne!(r.body["id"], "client-chosen");
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert!(r.body.get("groups").is_none());
}

fn groups_attribute_is_derived_from_memberships(s: &TestServer) {
    let user = s.create_user(&json!({"userName": "member@example.com"}));
    let uid = id_of(&user);
    let inner = s.create_group(&json!({"displayName": "Inner", "members": [{"value": uid}]}));
    let outer = s.create_group(
        &json!({"displayName": "Outer", "members": [{"value": id_of(&inner), "type": "Group"}]}),
    );
    let r = s.get(&format!("/Users/{uid}"));
    let groups = r.body["groups"].as_array().expect("groups").clone();
    assert_eq!(groups.len(), 2, "{}", r.body);
    assert_eq!(groups[0]["value"], inner["id"]);
    assert_eq!(groups[0]["display"], "Inner");
    assert_eq!(groups[0]["type"], "direct");
    assert_eq!(
        groups[0]["$ref"],
        s.url(&format!("/Groups/{}", id_of(&inner)))
    );
    assert_eq!(groups[1]["value"], outer["id"]);
    assert_eq!(groups[1]["type"], "indirect");
    // The list view derives the same.
    let list = s.get("/Users");
    assert_eq!(list.body["Resources"][0]["groups"], Value::Array(groups));

    // Nesting that loops back (Top holds Outer, Inner holds Top) ends, and a group reachable
    // both directly and through nesting is reported once, as direct. A single user (read by
    // prepared comparisons) and a page of users (read by `IN` lists) agree.
    let top = s.create_group(
        &json!({"displayName": "Top", "members": [{"value": id_of(&outer), "type": "Group"}]}),
    );
    let looped = patch(
        s,
        &format!("/Groups/{}", id_of(&inner)),
        json!([{"op": "add", "path": "members", "value": [{"value": id_of(&top), "type": "Group"}]}]),
    );
    assert!(looped.status < 300, "{}", looped.body);
    let direct_too = patch(
        s,
        &format!("/Groups/{}", id_of(&top)),
        json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]),
    );
    assert!(direct_too.status < 300, "{}", direct_too.body);
    s.create_user(&json!({"userName": "other@example.com"}));
    let r = s.get(&format!("/Users/{uid}"));
    let shown: Vec<(String, String)> = r.body["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["display"].as_str().unwrap_or_default().to_string(),
                g["type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected = [
        ("Inner", "direct"),
        ("Top", "direct"),
        ("Outer", "indirect"),
    ]
    .map(|(name, kind)| (name.to_string(), kind.to_string()));
    assert_eq!(shown, expected, "{}", r.body);
    let page = s.get("/Users?filter=userName%20ew%20%22example.com%22");
    assert_eq!(page.body["totalResults"], 2, "{}", page.body);
    let listed = page.body["Resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|u| u["id"] == user["id"])
        .expect("the member is listed")
        .clone();
    assert_eq!(listed["groups"], r.body["groups"]);
    let changed = patch(
        s,
        &format!("/Users/{uid}"),
        json!([{"op": "replace", "path": "title", "value": "Member"}]),
    );
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["groups"], r.body["groups"]);
}

/// A user whose groups hold no nested membership is read with its groups in one statement;
/// the answer is the same as the nesting walk gives: direct groups by display name.
fn direct_groups_are_listed_by_display_name(s: &TestServer) {
    let user = s.create_user(&json!({"userName": "direct@example.com"}));
    let uid = id_of(&user);
    let loner = s.create_user(&json!({"userName": "loner@example.com"}));
    let zeta = s.create_group(&json!({"displayName": "Zeta", "members": [{"value": uid}]}));
    let alpha = s.create_group(&json!({"displayName": "Alpha", "members": [{"value": uid}]}));
    // Alpha holds a group the user is not in: that nesting runs downwards, adds nothing.
    let child = s.create_group(&json!({"displayName": "Child"}));
    let held = patch(
        s,
        &format!("/Groups/{}", id_of(&alpha)),
        json!([{"op": "add", "path": "members", "value": [{"value": id_of(&child), "type": "Group"}]}]),
    );
    assert!(held.status < 300, "{}", held.body);

    let r = s.get(&format!("/Users/{uid}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let shown: Vec<(Value, Value, Value)> = r.body["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| (g["value"].clone(), g["display"].clone(), g["type"].clone()))
        .collect();
    assert_eq!(
        shown,
        vec![
            (alpha["id"].clone(), json!("Alpha"), json!("direct")),
            (zeta["id"].clone(), json!("Zeta"), json!("direct")),
        ],
        "{}",
        r.body
    );
    let listed = s.get("/Users?filter=userName%20eq%20%22direct@example.com%22");
    assert_eq!(listed.body["Resources"][0]["groups"], r.body["groups"]);
    // A write's answer carries the same groups.
    let changed = patch(
        s,
        &format!("/Users/{uid}"),
        json!([{"op": "replace", "path": "title", "value": "Lead"}]),
    );
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["groups"], r.body["groups"]);

    // A user in no group has no groups attribute, read alone or in a page.
    let alone = s.get(&format!("/Users/{}", id_of(&loner)));
    assert!(alone.body.get("groups").is_none(), "{}", alone.body);
    let page = s.get("/Users?filter=userName%20eq%20%22loner@example.com%22");
    assert!(
        page.body["Resources"][0].get("groups").is_none(),
        "{}",
        page.body
    );
    // Nor when the projection leaves groups out.
    let narrow = s.get(&format!("/Users/{uid}?attributes=userName"));
    assert!(narrow.body.get("groups").is_none(), "{}", narrow.body);
    assert_eq!(narrow.body["userName"], "direct@example.com");
}

on_both_backends!(
    create_round_trips_every_attribute,
    attribute_names_are_case_insensitive,
    idp_payload_shapes_are_accepted,
    unknown_extension_attribute_is_rejected,
    unsupported_schema_is_rejected,
    user_name_is_required,
    wrong_types_are_rejected,
    user_name_is_unique_case_insensitively,
    read_only_attributes_in_input_are_ignored,
    groups_attribute_is_derived_from_memberships,
    direct_groups_are_listed_by_display_name,
);
