//! Every accepted write appends its change-log row in the same transaction, with the actor.

use serde_json::json;

use crate::harness::{id_of, TestServer};
use crate::on_both_backends;

fn writes_are_logged_in_order_with_versions_and_actor(s: &TestServer) {
    let user = s.create_user(&json!({"userName": "logged"}));
    let uid = id_of(&user);
    s.put(
        &format!("/Users/{uid}"),
        &json!({"userName": "logged", "title": "x"}),
    );
    let group = s.create_group(&json!({"displayName": "LogGroup", "members": [{"value": uid}]}));
    let gid = id_of(&group);
    assert_eq!(s.delete(&format!("/Users/{uid}")).status, 204);
    s.post(
        "/Users",
        &json!({"userName": "LOGGED2", "active": "perhaps"}),
    );

    let log =
        s.db.read(|c| scimgate::storage::change_log::since(c, 0, 100))
            .expect("change log");
    let summary: Vec<(String, String, String, i64, String)> = log
        .iter()
        .map(|e| {
            (
                e.resource_type.clone(),
                e.resource_id.clone(),
                e.operation.clone(),
                e.version,
                e.actor.clone(),
            )
        })
        .collect();
    let t = "token:test".to_string();
    assert_eq!(
        summary,
        vec![
            ("User".into(), uid.clone(), "create".into(), 1, t.clone()),
            ("User".into(), uid.clone(), "replace".into(), 2, t.clone()),
            ("Group".into(), gid.clone(), "create".into(), 1, t.clone()),
            ("Group".into(), gid.clone(), "modify".into(), 2, t.clone()),
            ("User".into(), uid.clone(), "delete".into(), 3, t.clone()),
        ]
    );
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(log.windows(2).all(|w| w[0].occurred_at <= w[1].occurred_at));
}

on_both_backends!(writes_are_logged_in_order_with_versions_and_actor);
