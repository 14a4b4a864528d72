//! RFC 7644 §3.3 (create), §3.4.1-2 (retrieve, list and paging), §3.5.1 (replace),
//! §3.6 (delete).

use serde_json::json;

use crate::harness::{id_of, TestServer};
use crate::on_both_backends;

fn replace_sets_the_whole_state(s: &TestServer) {
    let user = s.create_user(&json!({
        "userName": "put@example.com",
        "displayName": "Before",
        "title": "Engineer",
        "password": "secret-1",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
    }));
    let id = id_of(&user);
    let r = s.put(
        &format!("/Users/{id}"),
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": id,
            "userName": "Renamed@example.com",
            "displayName": "After",
            "active": false
        }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["userName"], "Renamed@example.com");
    assert_eq!(r.body["displayName"], "After");
    assert_eq!(r.body["active"], false);
    assert!(
        r.body.get("title").is_none(),
        "attributes left out of a PUT are cleared"
    );
    assert!(r
        .body
        .get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        .is_none());
    assert_eq!(r.body["meta"]["created"], user["meta"]["created"]);
    assert_ne!(r.body["meta"]["version"], user["meta"]["version"]);
    assert_eq!(s.get(&format!("/Users/{id}")).body, r.body);
    // The old userName is free again; the new one is taken.
    s.create_user(&json!({"userName": "put@example.com"}));
    s.post("/Users", &json!({"userName": "renamed@EXAMPLE.com"}))
        .assert_scim_error(409, Some("uniqueness"));
}

fn replace_into_a_taken_user_name_conflicts(s: &TestServer) {
    s.create_user(&json!({"userName": "first"}));
    let second = s.create_user(&json!({"userName": "second"}));
    let r = s.put(
        &format!("/Users/{}", id_of(&second)),
        &json!({"userName": "FIRST"}),
    );
    r.assert_scim_error(409, Some("uniqueness"));
    assert_eq!(
        s.get(&format!("/Users/{}", id_of(&second))).body["userName"],
        "second"
    );
}

fn replace_of_unknown_id_is_404(s: &TestServer) {
    s.put(
        "/Users/00000000-0000-0000-0000-000000000000",
        &json!({"userName": "x"}),
    )
    .assert_scim_error(404, None);
    s.put("/Groups/nope", &json!({"displayName": "x"}))
        .assert_scim_error(404, None);
}

fn delete_removes_the_resource(s: &TestServer) {
    let id = id_of(&s.create_user(&json!({"userName": "gone"})));
    let r = s.delete(&format!("/Users/{id}"));
    assert_eq!(r.status, 204);
    assert!(r.body.is_null(), "204 has no body");
    s.get(&format!("/Users/{id}")).assert_scim_error(404, None);
    s.delete(&format!("/Users/{id}"))
        .assert_scim_error(404, None);
    let gid = id_of(&s.create_group(&json!({"displayName": "gone"})));
    assert_eq!(s.delete(&format!("/Groups/{gid}")).status, 204);
    s.get(&format!("/Groups/{gid}"))
        .assert_scim_error(404, None);
}

fn list_pages_with_start_index_and_count(s: &TestServer) {
    let ids: Vec<String> = (0..5)
        .map(|i| id_of(&s.create_user(&json!({"userName": format!("page{i}")}))))
        .collect();
    let all = s.get("/Users");
    assert_eq!(all.status, 200);
    assert_eq!(
        all.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    assert_eq!(all.body["totalResults"], 5);
    assert_eq!(all.body["itemsPerPage"], 5);
    assert_eq!(all.body["startIndex"], 1);
    let listed: Vec<String> = all.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(listed, ids, "creation order");

    let page = s.get("/Users?startIndex=2&count=2");
    assert_eq!(page.body["totalResults"], 5);
    assert_eq!(page.body["startIndex"], 2);
    assert_eq!(page.body["itemsPerPage"], 2);
    let listed: Vec<String> = page.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(listed, ids[1..3]);

    let counted = s.get("/Users?count=0");
    assert_eq!(counted.body["totalResults"], 5);
    assert_eq!(counted.body["itemsPerPage"], 0);
    let past_end = s.get("/Users?startIndex=10");
    assert_eq!(past_end.body["totalResults"], 5);
    assert_eq!(past_end.body["Resources"], json!([]));
    s.get("/Users?count=many")
        .assert_scim_error(400, Some("invalidValue"));

    let groups = s.get("/Groups");
    assert_eq!(groups.body["totalResults"], 0);
}

on_both_backends!(
    replace_sets_the_whole_state,
    replace_into_a_taken_user_name_conflicts,
    replace_of_unknown_id_is_404,
    delete_removes_the_resource,
    list_pages_with_start_index_and_count,
);
