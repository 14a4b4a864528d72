//! GET of single users and `filter=userName eq` lookups under concurrency: on PostgreSQL the
//! reads waiting together are made in one statement (see `storage::user_reads`). Every request still gets its own user, with
//! its own groups, and an unknown id its own 404, however the reads were batched.

use std::sync::Arc;

use serde_json::{json, Value};

use scimgate::storage::user_reads;

use crate::harness::{id_of, TestServer};
use crate::on_both_backends;

/// Sixteen clients at once, each asking for its own users, for one user every client asks
/// for, and for an id no user has.
fn concurrent_gets_each_get_their_own_user(s: &TestServer) {
    let popular = id_of(&s.create_user(&json!({"userName": "popular"})));
    let grouped = id_of(&s.create_user(&json!({"userName": "grouped"})));
    let inner = id_of(&s.create_group(&json!({"displayName": "inner",
        "members": [{"value": grouped, "type": "User"}]})));
    let outer = id_of(&s.create_group(&json!({"displayName": "outer",
        "members": [{"value": inner, "type": "Group"}]})));
    let own: Vec<(String, String)> = (0..32)
        .map(|n| {
            let name = format!("reader-{n:02}");
            (id_of(&s.create_user(&json!({"userName": name}))), name)
        })
        .collect();
    let s = Arc::new(s);
    std::thread::scope(|scope| {
        for client in 0..16 {
            let (s, own) = (Arc::clone(&s), &own);
            let (popular, grouped) = (&popular, &grouped);
            let (inner, outer) = (&inner, &outer);
            scope.spawn(move || {
                for round in 0..6 {
                    let (id, name) = &own[(client * 2 + round) % own.len()];
                    let user = s.get(&format!("/Users/{id}"));
                    assert_eq!(user.status, 200, "{}", user.body);
                    assert_eq!(user.body["userName"], name.as_str());
                    assert!(user.body.get("groups").is_none(), "{}", user.body);
                    let user = s.get(&format!("/Users/{popular}")).body;
                    assert_eq!(user["userName"], "popular");
                    let user = s.get(&format!("/Users/{grouped}")).body;
                    let mut groups: Vec<(String, String)> = user["groups"]
                        .as_array()
                        .expect("groups")
                        .iter()
                        .map(|g| {
                            let text = |k: &str| g[k].as_str().unwrap_or_default().to_string();
                            (text("value"), text("type"))
                        })
                        .collect();
                    groups.sort();
                    let mut expected = vec![
                        (inner.to_string(), "direct".to_string()),
                        (outer.to_string(), "indirect".to_string()),
                    ];
                    expected.sort();
                    assert_eq!(groups, expected, "{user}");
                    let missing = s.get("/Users/00000000-0000-7000-8000-000000000000");
                    assert_eq!(missing.status, 404, "{}", missing.body);
                    assert_eq!(missing.body["status"], "404");
                }
            });
        }
    });
}

/// Reads queued together (one of them asked for by half the callers, one for an id no user
/// has) are answered each with its own user.
fn reads_waiting_together_are_each_answered(s: &TestServer) {
    let popular = id_of(&s.create_user(&json!({"userName": "asked-often"})));
    let others: Vec<String> = (0..31)
        .map(|n| id_of(&s.create_user(&json!({"userName": format!("asked-once-{n}")}))))
        .collect();
    let mut asked: Vec<String> = vec![popular.clone(); 32];
    asked.extend(others.iter().cloned());
    asked.push("no-such-user".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let found = runtime.block_on(futures_util::future::join_all(
        asked
            .iter()
            .map(|id| user_reads::find_with_memberships(&s.db, id.clone())),
    ));
    for (id, found) in asked.iter().zip(found) {
        let found = found.expect("read");
        match id.as_str() {
            "no-such-user" => assert!(found.is_none()),
            _ => {
                let (user, groups) = found.expect("the user exists");
                assert_eq!(&user.id, id);
                let data: Value = serde_json::from_str(&user.data).expect("document");
                let expected = match id == &popular {
                    true => "asked-often".to_string(),
                    false => format!(
                        "asked-once-{}",
                        others.iter().position(|o| o == id).unwrap_or(99)
                    ),
                };
                assert_eq!(data["userName"], expected.as_str());
                assert!(groups.is_empty());
            }
        }
    }
}

/// `filter=userName eq` from sixteen clients at once: each finds its own user, whatever the
/// case it writes the name in, with the list response's fields; a name no user has finds
/// none; paging and `attributes` are honoured.
fn concurrent_user_name_lookups_each_find_their_own_user(s: &TestServer) {
    let ids: Vec<String> = (0..16)
        .map(|n| {
            id_of(
                &s.create_user(&json!({"userName": format!("Lookup.{n:02}@Example.com"),
            "title": format!("title {n}")})),
            )
        })
        .collect();
    let s = Arc::new(s);
    std::thread::scope(|scope| {
        for client in 0..16 {
            let (s, ids) = (Arc::clone(&s), &ids);
            scope.spawn(move || {
                for round in 0..6 {
                    let n = (client + round) % 16;
                    let name = match round % 2 {
                        0 => format!("lookup.{n:02}@example.com"),
                        _ => format!("LOOKUP.{n:02}@EXAMPLE.COM"),
                    };
                    let list = s
                        .get(&format!(
                            "/Users?filter=userName%20eq%20%22{name}%22&attributes=title"
                        ))
                        .body;
                    assert_eq!(list["totalResults"], 1, "{list}");
                    assert_eq!(list["itemsPerPage"], 1, "{list}");
                    assert_eq!(list["startIndex"], 1, "{list}");
                    let user = &list["Resources"][0];
                    assert_eq!(user["id"], ids[n].as_str(), "{list}");
                    assert_eq!(user["title"], format!("title {n}"), "{list}");
                    assert!(user.get("emails").is_none(), "not asked for: {list}");
                    let none = s.get("/Users?filter=userName%20eq%20%22nobody%22").body;
                    assert_eq!(none["totalResults"], 0, "{none}");
                    assert!(
                        none.get("Resources").is_none_or(|r| r == &json!([])),
                        "{none}"
                    );
                }
            });
        }
    });
    let counted = s
        .get("/Users?filter=userName%20eq%20%22lookup.01@example.com%22&count=0")
        .body;
    assert_eq!(counted["totalResults"], 1, "{counted}");
    assert!(
        counted.get("Resources").is_none_or(|r| r == &json!([])),
        "{counted}"
    );
    let later = s
        .get("/Users?filter=userName%20eq%20%22lookup.01@example.com%22&startIndex=2")
        .body;
    assert_eq!(later["totalResults"], 1, "{later}");
    assert!(
        later.get("Resources").is_none_or(|r| r == &json!([])),
        "{later}"
    );
}

on_both_backends!(
    concurrent_gets_each_get_their_own_user,
    reads_waiting_together_are_each_answered,
    concurrent_user_name_lookups_each_find_their_own_user,
);
