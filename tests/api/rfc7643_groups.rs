//! RFC 7643 §4.2 (Group): members are Users or Groups, with `$ref`, `display` and `type`.

use serde_json::{json, Value};

use crate::harness::{id_of, TestServer};
use crate::on_both_backends;

fn members_carry_ref_display_and_type(s: &TestServer) {
    let alice = s.create_user(&json!({"userName": "alice", "displayName": "Alice A."}));
    let bob = s.create_user(&json!({"userName": "bob"}));
    let admins = s.create_group(&json!({"displayName": "Admins"}));
    let r = s.post(
        "/Groups",
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Staff",
            "externalId": "staff-1",
            "members": [
                {"value": id_of(&alice)},
                {"value": id_of(&bob), "type": "User", "display": "Bob (as the IdP calls him)"},
                {"value": id_of(&admins), "type": "group"}
            ]
        }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["displayName"], "Staff");
    assert_eq!(r.body["externalId"], "staff-1");
    assert_eq!(r.body["meta"]["resourceType"], "Group");
    let members = r.body["members"].as_array().expect("members");
    assert_eq!(members.len(), 3);
    let find = |id: &str| {
        members
            .iter()
            .find(|m| m["value"] == id)
            .cloned()
            .expect("member present")
    };
    let a = find(&id_of(&alice));
    assert_eq!(a["type"], "User");
    assert!(
        a.get("display").is_none(),
        "display is the client's label, absent when not sent"
    );
    assert_eq!(a["$ref"], s.url(&format!("/Users/{}", id_of(&alice))));
    assert_eq!(find(&id_of(&bob))["display"], "Bob (as the IdP calls him)");
    let g = find(&id_of(&admins));
    assert_eq!(g["type"], "Group");
    assert_eq!(g["$ref"], s.url(&format!("/Groups/{}", id_of(&admins))));
    assert_eq!(s.get(&format!("/Groups/{}", id_of(&r.body))).body, r.body);
}

fn display_name_is_required_and_unique(s: &TestServer) {
    s.post("/Groups", &json!({"members": []}))
        .assert_scim_error(400, Some("invalidValue"));
    s.create_group(&json!({"displayName": "Engineering"}));
    s.post("/Groups", &json!({"displayName": "engineering"}))
        .assert_scim_error(409, Some("uniqueness"));
}

fn unknown_or_mistyped_members_change_nothing(s: &TestServer) {
    let user = s.create_user(&json!({"userName": "u1"}));
    let changes_before = change_count(s);
    let r = s.post(
        "/Groups",
        &json!({"displayName": "Broken", "members": [{"value": id_of(&user)}, {"value": "no-such-id"}]}),
    );
    r.assert_scim_error(400, Some("invalidValue"));
    assert!(r.body["detail"]
        .as_str()
        .unwrap_or("")
        .contains("no-such-id"));
    let r = s.post(
        "/Groups",
        &json!({"displayName": "Broken", "members": [{"value": id_of(&user), "type": "Group"}]}),
    );
    r.assert_scim_error(400, Some("invalidValue"));
    let r = s.post(
        "/Groups",
        &json!({"displayName": "Broken", "members": [{"display": "no value"}]}),
    );
    r.assert_scim_error(400, Some("invalidValue"));
    assert_eq!(s.get("/Groups").body["totalResults"], 0);
    assert_eq!(
        change_count(s),
        changes_before,
        "no change-log rows for rejected writes"
    );
}

fn replace_changes_only_the_differing_members(s: &TestServer) {
    let ids: Vec<String> = (0..4)
        .map(|i| id_of(&s.create_user(&json!({"userName": format!("m{i}")}))))
        .collect();
    let group = s.create_group(&json!({"displayName": "Team", "members": [{"value": ids[0]}, {"value": ids[1]}, {"value": ids[2]}]}));
    let gid = id_of(&group);
    let r = s.put(
        &format!("/Groups/{gid}"),
        &json!({"displayName": "Team", "members": [{"value": ids[1]}, {"value": ids[3]}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut got: Vec<String> = r.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["value"].as_str().unwrap_or_default().to_string())
        .collect();
    got.sort();
    let mut want = vec![ids[1].clone(), ids[3].clone()];
    want.sort();
    assert_eq!(got, want);
    // A user removed from the group no longer lists it.
    assert!(s
        .get(&format!("/Users/{}", ids[0]))
        .body
        .get("groups")
        .is_none());
    assert_eq!(
        s.get(&format!("/Users/{}", ids[3])).body["groups"][0]["value"],
        gid
    );
    // PUT without members empties the group.
    let r = s.put(&format!("/Groups/{gid}"), &json!({"displayName": "Team"}));
    assert!(r.body.get("members").is_none(), "{}", r.body);
}

fn a_group_cannot_contain_itself(s: &TestServer) {
    let g = s.create_group(&json!({"displayName": "Loop"}));
    let gid = id_of(&g);
    s.put(
        &format!("/Groups/{gid}"),
        &json!({"displayName": "Loop", "members": [{"value": gid}]}),
    )
    .assert_scim_error(400, Some("invalidValue"));
}

fn deleting_a_member_updates_its_groups(s: &TestServer) {
    let user = s.create_user(&json!({"userName": "leaver"}));
    let stay = s.create_user(&json!({"userName": "stayer"}));
    let group = s.create_group(&json!({"displayName": "Crew", "members": [{"value": id_of(&user)}, {"value": id_of(&stay)}]}));
    let gid = id_of(&group);
    let before = group["meta"]["version"].clone();
    assert_eq!(s.delete(&format!("/Users/{}", id_of(&user))).status, 204);
    let after = s.get(&format!("/Groups/{gid}"));
    let members: Vec<Value> = after.body["members"].as_array().expect("members").clone();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["value"], stay["id"]);
    assert_ne!(
        after.body["meta"]["version"], before,
        "the group changed, so its version did"
    );
    // Deleting a nested group removes it from its parents too.
    let child = s.create_group(&json!({"displayName": "Child"}));
    let parent =
        s.create_group(&json!({"displayName": "Parent", "members": [{"value": id_of(&child)}]}));
    assert_eq!(s.delete(&format!("/Groups/{}", id_of(&child))).status, 204);
    assert!(s
        .get(&format!("/Groups/{}", id_of(&parent)))
        .body
        .get("members")
        .is_none());
}

fn change_count(s: &TestServer) -> usize {
    s.db.read(|c| scimgate::storage::change_log::since(c, 0, 1_000_000))
        .expect("change log")
        .len()
}

on_both_backends!(
    members_carry_ref_display_and_type,
    display_name_is_required_and_unique,
    unknown_or_mistyped_members_change_nothing,
    replace_changes_only_the_differing_members,
    a_group_cannot_contain_itself,
    deleting_a_member_updates_its_groups,
);
