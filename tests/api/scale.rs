//! Large groups: membership changes touch single rows, reads that exclude members stay cheap.

use serde_json::json;

use crate::harness::{id_of, TestServer};
use crate::on_both_backends;
use crate::rfc7644_patch::patch;

const MEMBERS: usize = 5_000;

/// A group of thousands: adding or removing one member rewrites nothing else. The store is
/// checked directly: every other membership row is the one that was there before.
fn one_member_changes_in_a_large_group(s: &TestServer) {
    let mut ids = Vec::with_capacity(MEMBERS + 1);
    for chunk in 0..(MEMBERS / 500) {
        let ops: Vec<serde_json::Value> = (0..500)
            .map(|i| {
                let n = chunk * 500 + i;
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"), "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("member{n:05}")}})
            })
            .collect();
        let r = s.post("/Bulk", &json!({"Operations": ops}));
        assert_eq!(r.status, 200);
        for op in r.body["Operations"].as_array().expect("ops") {
            ids.push(
                op["location"]
                    .as_str()
                    .and_then(|l| l.rsplit('/').next())
                    .expect("location")
                    .to_string(),
            );
        }
    }
    let extra = id_of(&s.create_user(&json!({"userName": "newcomer"})));
    let members: Vec<serde_json::Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let gid = id_of(&s.create_group(&json!({"displayName": "Everyone", "members": members})));

    let r = s.get(&format!("/Groups/{gid}?excludedAttributes=members"));
    assert!(r.body.get("members").is_none());
    let r = s.get("/Groups?filter=displayName%20eq%20%22Everyone%22&attributes=displayName");
    assert_eq!(r.body["totalResults"], 1);

    let rows_before =
        s.db.read(|c| scimgate::storage::groups::members_of(c, std::slice::from_ref(&gid)))
            .expect("members");
    assert_eq!(rows_before[&gid].len(), MEMBERS);
    let r = patch(
        s,
        &format!("/Groups/{gid}?excludedAttributes=members"),
        json!([{"op": "add", "path": "members", "value": [{"value": extra}]}]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("members").is_none());
    let r = patch(
        s,
        &format!("/Groups/{gid}?excludedAttributes=members"),
        json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[17])}]),
    );
    assert_eq!(r.status, 200);
    let after =
        s.db.read(|c| scimgate::storage::groups::members_of(c, std::slice::from_ref(&gid)))
            .expect("members");
    let after = &after[&gid];
    assert_eq!(after.len(), MEMBERS);
    assert!(after.iter().any(|m| m.id == extra));
    assert!(!after.iter().any(|m| m.id == ids[17]));
    let full = s.get(&format!("/Groups/{gid}"));
    assert_eq!(full.body["members"].as_array().map(Vec::len), Some(MEMBERS));
}

on_both_backends!(one_member_changes_in_a_large_group);
