//! A config-file extension with an attribute of every type (RFC 7643 §2.3) and every
//! characteristic (§7): published in discovery, validated, returned per `returned`, filtered
//! and sorted in SQL, PATCHed with extension-qualified paths, unique where declared, and
//! required on groups.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{id_of, scim_body, send, Backend, Resp, TestServer};
use crate::{
    acme_groups, acme_users, declaration, filtered, ACME, ACME_GROUP, CORE_GROUP, CORE_USER,
};

pub fn start(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.schema_extensions = vec![declaration(acme_users()), declaration(acme_groups())];
    })
}

pub fn patch(s: &TestServer, path: &str, ops: Value) -> Resp {
    send(scim_body(
        s.request(Method::PATCH, path),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
    ))
}

/// The userNames a filter selects, in the server's order.
fn names(s: &TestServer, path: &str) -> Vec<String> {
    let r = s.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|u| u["userName"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn attribute<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == name))
        .unwrap_or_else(|| panic!("{name} in {schema}"))
}

fn published_per_rfc_7643_section_7(s: &TestServer) {
    let users = s.get("/ResourceTypes/User");
    assert!(
        users.body["schemaExtensions"]
            .as_array()
            .expect("extensions")
            .contains(&json!({"schema": ACME, "required": false})),
        "{}",
        users.body
    );
    let groups = s.get("/ResourceTypes/Group");
    assert_eq!(
        groups.body["schemaExtensions"],
        json!([{"schema": ACME_GROUP, "required": true}])
    );
    let listed = s.get("/Schemas");
    assert_eq!(listed.body["totalResults"], 5, "{}", listed.body);

    let schema = s.get(&format!("/Schemas/{ACME}")).body;
    assert_eq!(
        schema["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"])
    );
    assert_eq!(schema["id"], ACME);
    assert_eq!(schema["name"], "AcmeUser");
    assert_eq!(schema["description"], "Acme's own user attributes");
    assert_eq!(schema["meta"]["resourceType"], "Schema");
    assert!(schema["meta"]["location"]
        .as_str()
        .is_some_and(|l| l.ends_with(&format!("/Schemas/{ACME}"))));
    assert_eq!(
        attribute(&schema, "badge"),
        &json!({
            "name": "badge", "type": "string", "multiValued": false,
            "description": "Badge number, unique in the company", "required": false,
            "caseExact": false, "mutability": "readWrite", "returned": "default",
            "uniqueness": "server"
        })
    );
    let types: Vec<(&str, &str)> = schema["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap_or_default(),
                a["type"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    for expected in [
        ("remote", "boolean"),
        ("clearance", "integer"),
        ("rate", "decimal"),
        ("hired", "dateTime"),
        ("homepage", "reference"),
        ("photo", "binary"),
        ("office", "complex"),
    ] {
        assert!(types.contains(&expected), "{expected:?} in {types:?}");
    }
    assert_eq!(
        attribute(&schema, "costCentre")["canonicalValues"],
        json!(["R&D", "Sales", "Ops"])
    );
    assert_eq!(
        attribute(&schema, "homepage")["referenceTypes"],
        json!(["external"])
    );
    assert_eq!(attribute(&schema, "tags")["multiValued"], true);
    assert_eq!(attribute(&schema, "legacyId")["mutability"], "immutable");
    assert_eq!(attribute(&schema, "pin")["returned"], "never");
    assert_eq!(attribute(&schema, "pin")["mutability"], "writeOnly");
    let office = attribute(&schema, "office");
    assert_eq!(office["subAttributes"][1]["name"], "floor");
    assert_eq!(office["subAttributes"][1]["type"], "integer");
}

fn alice() -> Value {
    json!({
        "schemas": [CORE_USER, ACME],
        "userName": "alice",
        ACME: {
            "badge": "B-100", "costCentre": "R&D", "remote": "True", "clearance": "3",
            "rate": 12.5, "hired": "2024-02-01T09:00:00Z",
            "homepage": "https://acme.example/alice", "photo": "aGVsbG8=",
            "office": {"building": "HQ", "floor": 4},
            "tags": ["blue", "green"],
            "licences": [{"value": "ide", "seats": 2}],
            "legacyId": "L-1", "pin": "1234", "notes": "met at onboarding"
        }
    })
}

fn round_trips_and_refuses_what_does_not_fit(s: &TestServer) -> String {
    let created = s.create_user(&alice());
    let id = id_of(&created);
    let expected = json!({
        "badge": "B-100", "costCentre": "R&D", "remote": true, "clearance": 3,
        "rate": 12.5, "hired": "2024-02-01T09:00:00Z",
        "homepage": "https://acme.example/alice", "photo": "aGVsbG8=",
        "office": {"building": "HQ", "floor": 4},
        "tags": ["blue", "green"],
        "licences": [{"value": "ide", "seats": 2}],
        "legacyId": "L-1"
    });
    // RFC 7643 §7: `request` attributes come back from the write that sent them, and from
    // reads only when asked for; `never` never.
    let mut written = expected.clone();
    written["notes"] = json!("met at onboarding");
    assert_eq!(created[ACME], written);
    assert!(created["schemas"]
        .as_array()
        .expect("schemas")
        .contains(&json!(ACME)));
    let read = s.get(&format!("/Users/{id}"));
    assert_eq!(read.body[ACME], expected);
    let notes = s.get(&format!("/Users/{id}?attributes={ACME}:notes"));
    assert_eq!(
        notes.body[ACME],
        json!({"notes": "met at onboarding"}),
        "{}",
        notes.body
    );

    let refused = [
        json!({"clearance": "three"}),
        json!({"shoeSize": 44}),
        json!({"tags": "single"}),
        json!({"office": {"floor": "top"}}),
        json!({"licences": [{"seats": 1}]}),
        json!({"remote": "perhaps"}),
        json!({"hired": "yesterday"}),
        json!({"photo": "not base64!"}),
    ];
    for (i, fields) in refused.into_iter().enumerate() {
        let r = s.post(
            "/Users",
            &json!({"schemas": [CORE_USER, ACME], "userName": format!("refused{i}"), ACME: fields}),
        );
        r.assert_scim_error(400, Some("invalidValue"));
    }
    assert_eq!(
        s.get("/Users?count=0").body["totalResults"],
        1,
        "nothing refused is stored"
    );
    id
}

fn filters_and_sorts_in_sql(s: &TestServer) {
    s.create_user(&json!({
        "schemas": [CORE_USER, ACME], "userName": "bob",
        ACME: {"badge": "B-200", "costCentre": "Sales", "remote": false, "clearance": 1,
               "rate": 7.25, "hired": "2019-06-01T09:00:00Z",
               "office": {"building": "Annex", "floor": 1}, "tags": ["red"],
               "licences": [{"value": "db", "seats": 1}]}
    }));
    s.create_user(&json!({"userName": "carol"}));
    let cases: [(String, Vec<&str>); 14] = [
        (format!("{ACME}:badge eq \"b-100\""), vec!["alice"]),
        (format!("{ACME}:costCentre co \"&d\""), vec!["alice"]),
        (
            format!("{ACME}:costCentre ne \"Sales\""),
            vec!["alice", "carol"],
        ),
        (format!("{ACME}:clearance gt 2"), vec!["alice"]),
        (format!("{ACME}:rate ge 7.25"), vec!["alice", "bob"]),
        (
            format!("{ACME}:hired gt \"2020-01-01T00:00:00Z\""),
            vec!["alice"],
        ),
        (format!("{ACME}:badge pr"), vec!["alice", "bob"]),
        (format!("not ({ACME}:badge pr)"), vec!["carol"]),
        (format!("{ACME}:remote eq false"), vec!["bob"]),
        (format!("{ACME}:office.floor lt 3"), vec!["bob"]),
        (format!("{ACME}:tags eq \"green\""), vec!["alice"]),
        (format!("{ACME}:licences[seats gt 1]"), vec!["alice"]),
        (
            format!("{ACME}:homepage sw \"https://acme.\""),
            vec!["alice"],
        ),
        (
            format!("{ACME}:clearance ge 1 and {ACME}:office.building eq \"annex\""),
            vec!["bob"],
        ),
    ];
    for (filter, expected) in cases {
        let mut got = names(s, &filtered("/Users", &filter));
        got.sort();
        assert_eq!(got, expected, "{filter}");
    }
    let secret = s.get(&filtered("/Users", &format!("{ACME}:pin eq \"1234\"")));
    secret.assert_scim_error(400, Some("invalidFilter"));

    let sorted = names(
        s,
        &format!("/Users?sortBy={ACME}:clearance&sortOrder=descending"),
    );
    assert_eq!(sorted, ["alice", "bob", "carol"], "missing values last");
    let sorted = names(s, &format!("/Users?sortBy={ACME}:costCentre"));
    assert_eq!(sorted, ["alice", "bob", "carol"]);

    // `.search` takes the same filters.
    let searched = send(scim_body(
        s.request(Method::POST, "/Users/.search"),
        &json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": format!("{ACME}:clearance lt 3"),
        }),
    ));
    assert_eq!(searched.body["totalResults"], 1, "{}", searched.body);
}

fn patched_with_qualified_paths(s: &TestServer, id: &str) {
    let path = format!("/Users/{id}");
    let r = patch(
        s,
        &path,
        json!([
            {"op": "replace", "path": format!("{ACME}:clearance"), "value": 5},
            {"op": "add", "path": format!("{ACME}:office.floor"), "value": 6},
            {"op": "remove", "path": format!("{ACME}:tags")},
            {"op": "add", "path": format!("{ACME}:licences"), "value": [{"value": "db"}]},
            {"op": "remove", "path": format!("{ACME}:licences[value eq \"ide\"]")},
            {"op": "replace", "value": {ACME: {"costCentre": "Ops"}}}
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let acme = &r.body[ACME];
    assert_eq!(acme["clearance"], 5);
    assert_eq!(acme["office"], json!({"building": "HQ", "floor": 6}));
    assert!(acme.get("tags").is_none(), "{acme}");
    assert_eq!(acme["licences"], json!([{"value": "db"}]));
    assert_eq!(acme["costCentre"], "Ops");
    assert_eq!(acme["badge"], "B-100", "untouched attributes stay");

    let immutable = patch(
        s,
        &path,
        json!([{"op": "replace", "path": format!("{ACME}:legacyId"), "value": "L-2"}]),
    );
    immutable.assert_scim_error(400, Some("mutability"));
    let wrong_type = patch(
        s,
        &path,
        json!([{"op": "replace", "path": format!("{ACME}:clearance"), "value": "high"}]),
    );
    wrong_type.assert_scim_error(400, Some("invalidValue"));
    assert_eq!(
        s.get(&path).body[ACME]["clearance"],
        5,
        "a refused PATCH changes nothing"
    );
    // The whole extension removed, then the new value filters.
    let r = patch(
        s,
        &path,
        json!([{"op": "replace", "path": format!("{ACME}:clearance"), "value": 9}]),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        names(s, &filtered("/Users", &format!("{ACME}:clearance eq 9"))),
        ["alice"]
    );
}

fn unique_where_declared(s: &TestServer, alice: &str) {
    let taken = s.post(
        "/Users",
        &json!({"schemas": [CORE_USER, ACME], "userName": "dave", ACME: {"badge": "b-100"}}),
    );
    taken.assert_scim_error(409, Some("uniqueness"));
    assert!(taken.body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("badge")));
    let bob = s.get(&filtered("/Users", "userName eq \"bob\"")).body["Resources"][0]["id"]
        .as_str()
        .expect("bob")
        .to_string();
    let r = patch(
        s,
        &format!("/Users/{bob}"),
        json!([{"op": "replace", "path": format!("{ACME}:badge"), "value": "B-100"}]),
    );
    r.assert_scim_error(409, Some("uniqueness"));
    // Freed by its holder, the value can be taken.
    let freed = patch(
        s,
        &format!("/Users/{alice}"),
        json!([{"op": "remove", "path": format!("{ACME}:badge")}]),
    );
    assert_eq!(freed.status, 200, "{}", freed.body);
    let r = patch(
        s,
        &format!("/Users/{bob}"),
        json!([{"op": "replace", "path": format!("{ACME}:badge"), "value": "B-100"}]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let indexes =
        s.db.read(scimgate::storage::extension_indexes::existing)
            .expect("indexes");
    assert_eq!(
        indexes.len(),
        3,
        "badge (unique), clearance, the group costCentre: {indexes:?}"
    );
}

fn required_on_groups(s: &TestServer) {
    let without = s.post("/Groups", &json!({"displayName": "plain"}));
    without.assert_scim_error(400, Some("invalidValue"));
    let empty = s.post(
        "/Groups",
        &json!({"schemas": [CORE_GROUP, ACME_GROUP], "displayName": "empty", ACME_GROUP: {}}),
    );
    empty.assert_scim_error(400, Some("invalidValue"));
    for (name, centre) in [("eng", "CC-1"), ("ops", "CC-2")] {
        let g = s.create_group(&json!({
            "schemas": [CORE_GROUP, ACME_GROUP], "displayName": name,
            ACME_GROUP: {"costCentre": centre}
        }));
        assert_eq!(g[ACME_GROUP]["costCentre"], centre);
    }
    let found = s.get(&filtered(
        "/Groups",
        &format!("{ACME_GROUP}:costCentre eq \"cc-2\""),
    ));
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["displayName"], "ops");
}

fn every_type_round_trips_filters_and_patches(backend: Backend) {
    let s = start(backend);
    published_per_rfc_7643_section_7(&s);
    let alice = round_trips_and_refuses_what_does_not_fit(&s);
    filters_and_sorts_in_sql(&s);
    patched_with_qualified_paths(&s, &alice);
    unique_where_declared(&s, &alice);
    required_on_groups(&s);
}

crate::serially_on_each_backend!(every_type_round_trips_filters_and_patches);
