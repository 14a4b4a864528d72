//! RFC 7644 §3.4.2 (filter, sort, paging, projection) and §3.4.3 (`.search`).

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{id_of, scim_body, send, TestServer};
use crate::on_both_backends;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Five users with varied attributes; returns their ids in creation order.
fn population(s: &TestServer) -> Vec<String> {
    let users = [
        json!({"userName": "bjensen", "externalId": "E-1", "displayName": "Barbara Jensen", "title": "Tour Guide", "active": true,
               "name": {"givenName": "Barbara", "familyName": "Jensen"},
               "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}, {"value": "babs@home.org", "type": "home"}],
               "phoneNumbers": [{"value": "555-0100", "type": "work"}],
               ENTERPRISE: {"employeeNumber": "7", "department": "Tours"}}),
        json!({"userName": "jsmith", "externalId": "e-1", "displayName": "John Smith", "active": false,
               "name": {"givenName": "John", "familyName": "Smith"},
               "emails": [{"value": "jsmith@EXAMPLE.com", "type": "home"}],
               ENTERPRISE: {"employeeNumber": "8"}}),
        json!({"userName": "alee", "displayName": "Alice Lee", "active": true, "title": "Engineer",
               "name": {"givenName": "Alice", "familyName": "Lee"},
               "emails": [{"value": "alee@corp.test", "type": "work"}]}),
        json!({"userName": "zed", "active": true, "name": {"familyName": "Zed"}}),
        json!({"userName": "Mallory", "displayName": "mallory", "active": true, "userType": "Contractor"}),
    ];
    users.iter().map(|u| id_of(&s.create_user(u))).collect()
}

fn filter(s: &TestServer, f: &str) -> Vec<String> {
    let r = s.get(&format!("/Users?filter={}", urlencode(f)));
    assert_eq!(r.status, 200, "{f}: {}", r.body);
    let ids: Vec<String> = r.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(r.body["totalResults"], ids.len(), "{f}");
    ids
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn comparison_operators(s: &TestServer) {
    let ids = population(s);
    let [b, j, a, z, m] = [&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]];
    assert_eq!(filter(s, "userName eq \"bjensen\""), [b.clone()]);
    assert_eq!(
        filter(s, "USERNAME EQ \"BJENSEN\""),
        [b.clone()],
        "userName is caseExact=false"
    );
    assert_eq!(filter(s, "userName eq \"mallory\""), [m.clone()]);
    assert_eq!(
        filter(s, "externalId eq \"E-1\""),
        [b.clone()],
        "externalId is caseExact"
    );
    assert_eq!(filter(s, "userName ne \"bjensen\"").len(), 4);
    assert_eq!(filter(s, "userName co \"SMI\""), [j.clone()]);
    assert_eq!(filter(s, "userName sw \"a\""), [a.clone()]);
    assert_eq!(filter(s, "userName ew \"LEE\""), [a.clone()]);
    assert_eq!(filter(s, "title pr"), [b.clone(), a.clone()]);
    assert_eq!(filter(s, "displayName eq \"JOHN SMITH\""), [j.clone()]);
    assert_eq!(filter(s, "name.familyName sw \"j\""), [b.clone()]);
    assert_eq!(filter(s, "name.givenName eq \"alice\""), [a.clone()]);
    assert_eq!(filter(s, "userName gt \"m\""), [z.clone(), m.clone()]);
    assert_eq!(filter(s, "userName le \"alee\""), [a.clone()]);
    assert_eq!(filter(s, "active eq false"), [j.clone()]);
    assert_eq!(filter(s, "active eq true").len(), 4);
    assert_eq!(filter(s, "title eq null").len(), 3);
    assert_eq!(filter(s, "userType eq \"contractor\""), [m.clone()]);
}

fn logical_operators_and_precedence(s: &TestServer) {
    let ids = population(s);
    let [b, j, a, _z, m] = [&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]];
    // and binds tighter than or.
    assert_eq!(
        filter(
            s,
            "userName eq \"jsmith\" or userName eq \"alee\" and active eq false"
        ),
        [j.clone()]
    );
    assert_eq!(
        filter(
            s,
            "(userName eq \"jsmith\" or userName eq \"alee\") and active eq true"
        ),
        [a.clone()]
    );
    assert_eq!(filter(s, "not (active eq true)"), [j.clone()]);
    assert_eq!(
        filter(s, "title pr and not (title co \"guide\")"),
        [a.clone()]
    );
    assert_eq!(
        filter(s, "userName eq \"mallory\" or userName eq \"bjensen\""),
        [b.clone(), m.clone()]
    );
}

fn multi_valued_and_value_paths(s: &TestServer) {
    let ids = population(s);
    let [b, j, a, _z, _m] = [&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]];
    assert_eq!(
        filter(s, "emails.value eq \"jsmith@example.com\""),
        [j.clone()],
        "email values compare case-insensitively"
    );
    assert_eq!(filter(s, "emails[value eq \"babs@home.org\"]"), [b.clone()]);
    assert_eq!(
        filter(s, "emails co \"@corp\""),
        [a.clone()],
        "the value sub-attribute by default"
    );
    assert_eq!(
        filter(s, "emails[type eq \"work\" and value co \"@example.com\"]"),
        [b.clone()]
    );
    assert_eq!(
        filter(s, "emails[type eq \"home\" and value co \"corp\"]"),
        Vec::<String>::new()
    );
    assert_eq!(filter(s, "emails[primary eq true]"), [b.clone()]);
    assert_eq!(filter(s, "phoneNumbers[type eq \"work\"]"), [b.clone()]);
    assert_eq!(filter(s, "phoneNumbers.value eq \"555-0100\""), [b.clone()]);
    assert_eq!(filter(s, "emails pr").len(), 3);
}

fn extension_paths_meta_and_unknowns(s: &TestServer) {
    let ids = population(s);
    let [b, j, ..] = [&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]];
    assert_eq!(
        filter(s, &format!("{ENTERPRISE}:employeeNumber eq \"7\"")),
        [b.clone()]
    );
    assert_eq!(
        filter(s, &format!("{ENTERPRISE}:department pr")),
        [b.clone()]
    );
    assert_eq!(
        filter(
            s,
            "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"jsmith\""
        ),
        [j.clone()]
    );
    assert_eq!(
        filter(s, "meta.lastModified gt \"2000-01-01T00:00:00Z\"").len(),
        5
    );
    assert_eq!(
        filter(s, "meta.lastModified lt \"2000-01-01T00:00:00Z\"").len(),
        0
    );
    assert_eq!(filter(s, "meta.resourceType eq \"User\"").len(), 5);
    assert_eq!(filter(s, &format!("id eq \"{b}\"")), [b.clone()]);
    assert_eq!(
        filter(s, "favouriteColour eq \"blue\"").len(),
        0,
        "unknown attributes match nothing"
    );
    assert_eq!(
        filter(s, "urn:example:custom:1.0:User:foo eq \"x\"").len(),
        0
    );
    // A user's groups.
    let g = s.create_group(&json!({"displayName": "Guides", "members": [{"value": b}]}));
    assert_eq!(
        filter(s, &format!("groups.value eq \"{}\"", id_of(&g))),
        [b.clone()]
    );
}

fn invalid_filters_are_400_with_position(s: &TestServer) {
    for f in [
        "userName eq",
        "userName zz \"x\"",
        "(userName eq \"x\"",
        "userName eq x",
        "emails[type eq \"work\"",
        "meta.lastModified gt \"yesterday\"",
    ] {
        let r = s.get(&format!("/Users?filter={}", urlencode(f)));
        r.assert_scim_error(400, Some("invalidFilter"));
    }
    let r = s.get(&format!(
        "/Users?filter={}",
        urlencode("userName eq \"a\" oops")
    ));
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("position 16"),
        "{}",
        r.body
    );
}

fn groups_filter_on_display_name_and_members(s: &TestServer) {
    let u = id_of(&s.create_user(&json!({"userName": "member"})));
    let g1 = id_of(&s.create_group(
        &json!({"displayName": "Sales EMEA", "externalId": "x1", "members": [{"value": u}]}),
    ));
    let g2 = id_of(&s.create_group(&json!({"displayName": "Sales US"})));
    let list = |f: &str| -> Vec<String> {
        let r = s.get(&format!("/Groups?filter={}", urlencode(f)));
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["Resources"]
            .as_array()
            .expect("Resources")
            .iter()
            .map(id_of)
            .collect()
    };
    assert_eq!(list("displayName eq \"sales emea\""), [g1.clone()]);
    assert_eq!(list("displayName sw \"Sales\""), [g1.clone(), g2.clone()]);
    assert_eq!(list(&format!("members.value eq \"{u}\"")), [g1.clone()]);
    assert_eq!(list(&format!("members[value eq \"{u}\"]")), [g1.clone()]);
    assert_eq!(list("externalId eq \"x1\""), [g1.clone()]);
    assert_eq!(list("members pr"), [g1.clone()]);
}

fn sorting(s: &TestServer) {
    let ids = population(s);
    let sorted = |q: &str| -> Vec<String> {
        let r = s.get(&format!("/Users?{q}"));
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["Resources"]
            .as_array()
            .expect("Resources")
            .iter()
            .map(|u| u["userName"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        sorted("sortBy=userName"),
        ["alee", "bjensen", "jsmith", "Mallory", "zed"]
    );
    assert_eq!(
        sorted("sortBy=userName&sortOrder=descending"),
        ["zed", "Mallory", "jsmith", "bjensen", "alee"]
    );
    assert_eq!(
        sorted("sortBy=name.familyName&count=3"),
        ["bjensen", "alee", "jsmith"]
    );
    // Missing values sort last.
    assert_eq!(
        sorted("sortBy=title").last().map(String::as_str),
        Some("Mallory")
    );
    assert_eq!(
        sorted("sortBy=title")[..2],
        ["alee".to_string(), "bjensen".to_string()]
    );
    s.get("/Users?sortBy=userName&sortOrder=sideways")
        .assert_scim_error(400, Some("invalidValue"));
    assert_eq!(ids.len(), 5);
}

fn paging_over_a_filter(s: &TestServer) {
    for i in 0..7 {
        s.create_user(&json!({"userName": format!("pager{i}"), "title": if i % 2 == 0 { "even" } else { "odd" }}));
    }
    let r = s.get(&format!(
        "/Users?filter={}&startIndex=2&count=2&sortBy=userName",
        urlencode("title eq \"even\"")
    ));
    assert_eq!(r.body["totalResults"], 4);
    assert_eq!(r.body["itemsPerPage"], 2);
    let names: Vec<&str> = r.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .filter_map(|u| u["userName"].as_str())
        .collect();
    assert_eq!(names, ["pager2", "pager4"]);
    let capped = s.get("/Users?count=100000");
    assert_eq!(
        capped.body["itemsPerPage"], 7,
        "count above the maximum is lowered, not refused"
    );
}

fn attributes_and_excluded_attributes(s: &TestServer) {
    let ids = population(s);
    let r = s.get(&format!(
        "/Users/{}?attributes=userName,name.givenName,emails.value",
        ids[0]
    ));
    assert_eq!(r.status, 200);
    let keys: Vec<&String> = r.body.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["schemas", "id", "userName", "name", "emails"]);
    assert_eq!(r.body["name"], json!({"givenName": "Barbara"}));
    assert_eq!(
        r.body["emails"],
        json!([{"value": "bjensen@example.com"}, {"value": "babs@home.org"}])
    );

    let r = s.get(&format!(
        "/Users/{}?excludedAttributes=emails,meta,{ENTERPRISE}",
        ids[0]
    ));
    assert!(r.body.get("emails").is_none() && r.body.get("meta").is_none());
    assert!(r.body.get(ENTERPRISE).is_none());
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
    assert_eq!(r.body["userName"], "bjensen");

    let list = s.get("/Users?attributes=userName&count=2");
    for u in list.body["Resources"].as_array().expect("Resources") {
        let keys: Vec<&String> = u.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["schemas", "id", "userName"]);
    }
    // On writes too.
    let r = s.post("/Users?attributes=id", &json!({"userName": "writer"}));
    assert_eq!(r.status, 201);
    assert!(r.body.get("userName").is_none() && r.body["id"].is_string());

    let gid =
        id_of(&s.create_group(&json!({"displayName": "Big", "members": [{"value": ids[0]}]})));
    let r = s.get(&format!("/Groups/{gid}?excludedAttributes=members"));
    assert!(r.body.get("members").is_none());
    assert_eq!(r.body["displayName"], "Big");
}

fn search_endpoints(s: &TestServer) {
    let ids = population(s);
    s.create_group(&json!({"displayName": "Jensen fans"}));
    let r = s.post(
        "/Users/.search",
        &json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "name.familyName co \"e\"",
            "attributes": ["userName"],
            "sortBy": "userName",
            "startIndex": 1,
            "count": 10
        }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 3);
    let names: Vec<&str> = r.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .filter_map(|u| u["userName"].as_str())
        .collect();
    assert_eq!(names, ["alee", "bjensen", "zed"]);
    assert!(r.body["Resources"][0].get("name").is_none());

    let r = s.post(
        "/Groups/.search",
        &json!({"filter": "displayName co \"fans\""}),
    );
    assert_eq!(r.body["totalResults"], 1);

    let r = s.post("/.search", &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "meta.resourceType eq \"Group\" or userName eq \"zed\""}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 2);
    let types: Vec<&Value> = r.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|x| &x["meta"]["resourceType"])
        .collect();
    assert_eq!(types, [&json!("User"), &json!("Group")]);
    assert_eq!(ids.len(), 5);

    s.post("/Users/.search", &json!({"filter": "userName eq"}))
        .assert_scim_error(400, Some("invalidFilter"));
    s.post("/Users/.search", &json!({"schemas": ["urn:wrong"]}))
        .assert_scim_error(400, Some("invalidValue"));
}

/// Entra ID matches on e-mail with a value path followed by a sub-attribute: the user has an
/// e-mail of type work whose value is that address (both on the same e-mail).
fn value_path_then_sub_attribute(s: &TestServer) {
    let ids = population(s);
    let [b, _j, a, _z, _m] = [&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]];
    assert_eq!(
        filter(
            s,
            "emails[type eq \"work\"].value eq \"bjensen@example.com\""
        ),
        [b.clone()]
    );
    // bjensen has this address, but as her home e-mail: no match.
    assert!(filter(s, "emails[type eq \"work\"].value eq \"babs@home.org\"").is_empty());
    assert_eq!(
        filter(s, "emails[type eq \"work\"].value ew \"@corp.test\""),
        [a.clone()]
    );
    assert_eq!(
        filter(s, "emails[type eq \"work\"].value pr and active eq true"),
        [b.clone(), a.clone()]
    );
    let r = s.get(&format!(
        "/Users?filter={}",
        urlencode("emails[type eq \"work\"].value")
    ));
    r.assert_scim_error(400, Some("invalidFilter"));
}

on_both_backends!(
    value_path_then_sub_attribute,
    comparison_operators,
    logical_operators_and_precedence,
    multi_valued_and_value_paths,
    extension_paths_meta_and_unknowns,
    invalid_filters_are_400_with_position,
    groups_filter_on_display_name_and_members,
    sorting,
    paging_over_a_filter,
    attributes_and_excluded_attributes,
    search_endpoints,
    root_search_pages_across_users_and_groups,
    cursor_paging,
    last_modified_finds_what_changed_since,
);

/// `meta.lastModified` comparisons, on users and groups. PostgreSQL finds recent changes
/// through the change log (its rows keep no index on the column), SQLite through its index;
/// both must agree with the times the resources show.
fn last_modified_finds_what_changed_since(s: &TestServer) {
    let pause = || std::thread::sleep(std::time::Duration::from_millis(3));
    let first = id_of(&s.create_user(&json!({"userName": "first"})));
    pause();
    let second = id_of(&s.create_user(&json!({"userName": "second"})));
    pause();
    let patched = send(scim_body(
        s.request(Method::PATCH, &format!("/Users/{first}")),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "Changed"}]}),
    ));
    assert_eq!(patched.status, 200, "{}", patched.body);
    let changed_at = patched.body["meta"]["lastModified"]
        .as_str()
        .expect("lastModified")
        .to_string();
    let second_at = s.get(&format!("/Users/{second}")).body["meta"]["lastModified"]
        .as_str()
        .expect("lastModified")
        .to_string();
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    assert_eq!(
        filter(s, &format!("meta.lastModified ge \"{changed_at}\"")),
        [first.clone()]
    );
    assert_eq!(
        sorted(filter(s, &format!("meta.lastModified ge \"{second_at}\""))),
        sorted(vec![first.clone(), second.clone()])
    );
    assert_eq!(
        filter(s, &format!("meta.lastModified lt \"{changed_at}\"")),
        [second.clone()]
    );
    assert_eq!(
        filter(s, &format!("not (meta.lastModified ge \"{changed_at}\")")),
        [second.clone()]
    );
    assert_eq!(
        filter(
            s,
            &format!("meta.lastModified gt \"{second_at}\" and userName eq \"first\"")
        ),
        [first.clone()]
    );
    assert!(filter(s, "meta.lastModified gt \"2999-01-01T00:00:00Z\"").is_empty());
    assert!(filter(s, &format!("meta.lastModified eq \"{changed_at}\"")).len() <= 1);

    let group = id_of(&s.create_group(&json!({"displayName": "Changed group"})));
    pause();
    let member = send(scim_body(
        s.request(Method::PATCH, &format!("/Groups/{group}")),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": second}]}]}),
    ));
    assert!(
        member.status == 200 || member.status == 204,
        "{}",
        member.body
    );
    let group_at = s.get(&format!("/Groups/{group}")).body["meta"]["lastModified"]
        .as_str()
        .expect("lastModified")
        .to_string();
    let r = s.get(&format!(
        "/Groups?filter={}",
        urlencode(&format!("meta.lastModified ge \"{group_at}\""))
    ));
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    assert_eq!(r.body["Resources"][0]["id"], group.as_str());
}

/// `POST /.search` pages one list, Users then Groups: a page can end in the Users, span
/// both, or lie wholly in the Groups, and `totalResults` counts both.
fn root_search_pages_across_users_and_groups(s: &TestServer) {
    for i in 0..3 {
        s.create_user(&json!({"userName": format!("root-u{i}")}));
        s.create_group(&json!({"displayName": format!("root-g{i}")}));
    }
    let page = |start: i64, count: i64| -> Vec<String> {
        let r = s.post(
            "/.search",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "sortBy": "meta.created", "startIndex": start, "count": count}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["totalResults"], 6, "{}", r.body);
        assert_eq!(r.body["startIndex"], start);
        let resources = r.body["Resources"].as_array().expect("Resources");
        assert_eq!(r.body["itemsPerPage"], resources.len());
        resources
            .iter()
            .map(|x| {
                x["userName"]
                    .as_str()
                    .or(x["displayName"].as_str())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(page(1, 2), ["root-u0", "root-u1"]);
    assert_eq!(page(3, 2), ["root-u2", "root-g0"]);
    assert_eq!(page(5, 10), ["root-g1", "root-g2"]);
    assert_eq!(page(7, 10), Vec::<String>::new());
    assert!(page(2, 0).is_empty());
}

/// RFC 9865 cursor paging: stable pages while resources are added, `nextCursor` until the end.
fn cursor_paging(s: &TestServer) {
    for i in 0..7 {
        s.create_user(&json!({"userName": format!("c{i}")}));
    }
    let spc = s.get("/ServiceProviderConfig").body;
    assert_eq!(spc["pagination"]["cursor"], true);
    assert_eq!(spc["pagination"]["index"], true);
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let r = s.get(&format!("/Users?count=3&cursor={cursor}"));
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.get("startIndex").is_none());
        assert_eq!(r.body["totalResults"], if pages == 0 { 7 } else { 8 });
        seen.extend(
            r.body["Resources"]
                .as_array()
                .expect("Resources")
                .iter()
                .filter_map(|u| u["userName"].as_str().map(str::to_string)),
        );
        pages += 1;
        if pages == 1 {
            // A resource created while paging appears at the end, nothing is skipped.
            s.create_user(&json!({"userName": "late"}));
        }
        match r.body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "late"]);
    assert_eq!(pages, 3);
    // With a sort order the cursor walks the sorted list.
    let r = s.post(
        "/Users/.search",
        &json!({"sortBy": "userName", "sortOrder": "descending", "count": 4, "cursor": ""}),
    );
    let next = r.body["nextCursor"]
        .as_str()
        .expect("nextCursor")
        .to_string();
    let r2 = s.post(
        "/Users/.search",
        &json!({"sortBy": "userName", "sortOrder": "descending", "count": 4, "cursor": next}),
    );
    let names: Vec<&str> = r2.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .filter_map(|u| u["userName"].as_str())
        .collect();
    assert_eq!(names, ["c3", "c2", "c1", "c0"]);
    assert!(r2.body.get("nextCursor").is_none());
    s.get("/Users?cursor=not-a-cursor")
        .assert_scim_error(400, Some("invalidCursor"));
}
