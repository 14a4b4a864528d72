//! RFC 7644 §3.14: versions as weak ETags, `If-Match` and `If-None-Match`.

use reqwest::Method;
use serde_json::json;

use crate::harness::{id_of, scim_body, send, TestServer};
use crate::on_both_backends;

fn etag_changes_on_every_write(s: &TestServer) {
    let user = s.create_user(&json!({"userName": "etag"}));
    let id = id_of(&user);
    let v1 = user["meta"]["version"]
        .as_str()
        .expect("version")
        .to_string();
    let r = s.put(&format!("/Users/{id}"), &json!({"userName": "etag"}));
    let v2 = r.header("etag").expect("ETag header");
    assert_eq!(r.body["meta"]["version"], v2.as_str());
    assert_ne!(v1, v2, "an identical PUT is still a write");
    assert_eq!(s.get(&format!("/Users/{id}")).header("etag"), Some(v2));
}

fn if_none_match_gives_304(s: &TestServer) {
    let user = s.create_user(&json!({"userName": "cache"}));
    let id = id_of(&user);
    let version = user["meta"]["version"]
        .as_str()
        .expect("version")
        .to_string();
    let r = send(
        s.request(Method::GET, &format!("/Users/{id}"))
            .header("if-none-match", &version),
    );
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(version.clone()));
    assert!(r.body.is_null());
    let r = send(
        s.request(Method::GET, &format!("/Users/{id}"))
            .header("if-none-match", "W/\"stale\""),
    );
    assert_eq!(r.status, 200);
}

fn if_match_guards_replace_and_delete(s: &TestServer) {
    let group = s.create_group(&json!({"displayName": "Guarded"}));
    let id = id_of(&group);
    let v1 = group["meta"]["version"]
        .as_str()
        .expect("version")
        .to_string();
    let put = |tag: &str, name: &str| {
        send(scim_body(
            s.request(Method::PUT, &format!("/Groups/{id}"))
                .header("if-match", tag),
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}),
        ))
    };
    let r = put(&v1, "Guarded 2");
    assert_eq!(r.status, 200, "{}", r.body);
    let v2 = r.header("etag").expect("etag");
    put(&v1, "Lost update").assert_scim_error(412, None);
    assert_eq!(
        s.get(&format!("/Groups/{id}")).body["displayName"],
        "Guarded 2"
    );
    send(
        s.request(Method::DELETE, &format!("/Groups/{id}"))
            .header("if-match", &v1),
    )
    .assert_scim_error(412, None);
    assert_eq!(s.get(&format!("/Groups/{id}")).status, 200);
    let r = send(
        s.request(Method::DELETE, &format!("/Groups/{id}"))
            .header("if-match", &v2),
    );
    assert_eq!(r.status, 204);
    let user = s.create_user(&json!({"userName": "star"}));
    let r = send(scim_body(
        s.request(Method::PUT, &format!("/Users/{}", id_of(&user)))
            .header("if-match", "*"),
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "star"}),
    ));
    assert_eq!(r.status, 200);
}

/// Concurrent PATCHes of one resource are serialised: none is lost, each answer carries its
/// own version, and the final version counts every write (no two writes share an ETag).
fn concurrent_patches_of_one_resource_are_all_kept(s: &TestServer) {
    let writers = 12;
    let user = s.create_user(&json!({"userName": "busy"}));
    let group = s.create_group(&json!({"displayName": "busy group"}));
    let (user_id, group_id) = (id_of(&user), id_of(&group));
    let members: Vec<String> = (0..writers)
        .map(|i| id_of(&s.create_user(&json!({"userName": format!("member{i}")}))))
        .collect();
    let versions: Vec<(String, String)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..writers)
            .map(|i| {
                let (user_id, group_id, member) = (&user_id, &group_id, &members[i]);
                scope.spawn(move || {
                    let phone = json!({"Operations": [{"op": "add", "path": "phoneNumbers",
                        "value": [{"value": format!("555-01{i:02}"), "type": "work"}]}]});
                    let u = send(scim_body(
                        s.request(Method::PATCH, &format!("/Users/{user_id}")),
                        &phone,
                    ));
                    assert_eq!(u.status, 200, "{}", u.body);
                    let add = json!({"Operations": [
                        {"op": "add", "path": "members", "value": [{"value": member}]},
                        {"op": "replace", "path": "externalId", "value": format!("g-{i}")}]});
                    let g = send(scim_body(
                        s.request(Method::PATCH, &format!("/Groups/{group_id}")),
                        &add,
                    ));
                    assert_eq!(g.status, 200, "{}", g.body);
                    (
                        u.header("etag").expect("user ETag"),
                        g.header("etag").expect("group ETag"),
                    )
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("writer"))
            .collect()
    });
    let distinct = |pick: fn(&(String, String)) -> &String| {
        versions
            .iter()
            .map(pick)
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    assert_eq!(distinct(|v| &v.0), writers, "{versions:?}");
    assert_eq!(distinct(|v| &v.1), writers, "{versions:?}");

    let user = s.get(&format!("/Users/{user_id}")).body;
    assert_eq!(
        user["phoneNumbers"].as_array().map(Vec::len),
        Some(writers),
        "{user}"
    );
    let group = s.get(&format!("/Groups/{group_id}")).body;
    assert_eq!(
        group["members"].as_array().map(Vec::len),
        Some(writers),
        "{group}"
    );
    let log =
        s.db.read(|c| scimgate::storage::change_log::since(c, 0, 1000))
            .expect("change log");
    for id in [&user_id, &group_id] {
        let mut seen: Vec<i64> = log
            .iter()
            .filter(|e| &e.resource_id == id)
            .map(|e| e.version)
            .collect();
        seen.sort();
        let expected: Vec<i64> = (1..=writers as i64 + 1).collect();
        assert_eq!(seen, expected, "every write of {id} has its own version");
    }
}

on_both_backends!(
    etag_changes_on_every_write,
    if_none_match_gives_304,
    if_match_guards_replace_and_delete,
    concurrent_patches_of_one_resource_are_all_kept,
);
