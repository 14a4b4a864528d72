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
            &json!({"displayName": name}),
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
        &json!({"userName": "star"}),
    ));
    assert_eq!(r.status, 200);
}

on_both_backends!(
    etag_changes_on_every_write,
    if_none_match_gives_304,
    if_match_guards_replace_and_delete,
);
