//! PUT and PATCH of a user on PostgreSQL, written without the row lock (see
//! `storage::user_changes`): a change computed from a version another writer replaced
//! meanwhile is computed again from the new one, so nothing is lost, and a user changed again
//! and again under it is written under the lock in the end. Changes waiting together are
//! written in one statement (see `storage::user_change_batches`), each with its own outcome.
//! (SQLite computes every change in the writer's turn: nothing can change under it.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Map, Value};

use scimgate::storage::change_log::{self, Operation};
use scimgate::storage::events;
use scimgate::storage::user_change_batches::{self, Change};
use scimgate::storage::user_changes::{self, UNLOCKED_TRIES};
use scimgate::storage::users::{self, StoredUser, UserRecord};
use scimgate::storage::StoreError;

use crate::harness::{id_of, scim_body, send, Backend, TestServer};

/// `current` with `attribute` set to `value`, as the record a change writes.
fn with_attribute(current: &StoredUser, attribute: &str, value: &str) -> UserRecord {
    let mut data: Map<String, Value> = serde_json::from_str(&current.data).expect("document");
    data.insert(attribute.into(), Value::String(value.into()));
    UserRecord {
        id: current.id.clone(),
        user_name: current.user_name.clone(),
        external_id: current.external_id.clone(),
        display_name: None,
        active: None,
        data: Value::Object(data).to_string(),
        emails: Vec::new(),
        password: None,
        connection: current.connection.clone(),
    }
}

/// Another client's PATCH of the user, setting `title`.
fn patch_title(s: &TestServer, id: &str, title: &str) {
    let r = send(scim_body(
        s.request(Method::PATCH, &format!("/Users/{id}")),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": title}]}),
    ));
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Changes the user's `nickName` while, during the first `interrupted` computations,
/// another client changes its `title`; returns how many times the change was computed and
/// the version it wrote.
fn change_nick_name_interrupted(s: &Arc<TestServer>, id: &str, interrupted: usize) -> (usize, i64) {
    let computed = Arc::new(AtomicUsize::new(0));
    let (server, count) = (Arc::clone(s), Arc::clone(&computed));
    let id_in_change = id.to_string();
    let written = user_changes::change(
        &s.db,
        id.to_string(),
        Operation::Modify,
        "test".into(),
        move |_conn, current, _groups| {
            let n = count.fetch_add(1, Ordering::SeqCst);
            if n < interrupted {
                patch_title(&server, &id_in_change, &format!("meanwhile {n}"));
            }
            Ok::<_, StoreError>((with_attribute(current, "nickName", "nick"), ()))
        },
    )
    .expect("change")
    .expect("the user exists");
    (computed.load(Ordering::SeqCst), written.0.version)
}

#[test]
fn a_change_computed_from_a_replaced_version_is_computed_again() {
    let s = Arc::new(TestServer::start(Backend::Postgres));
    let id = id_of(&s.create_user(&json!({"userName": "changed-meanwhile"})));

    let (computed, version) = change_nick_name_interrupted(&s, &id, 1);

    assert_eq!(
        computed, 2,
        "computed from version 1, then again from version 2"
    );
    assert_eq!(version, 3);
    let user = s.get(&format!("/Users/{id}")).body;
    assert_eq!(user["nickName"], "nick", "{user}");
    assert_eq!(
        user["title"], "meanwhile 0",
        "the other writer's change is kept: {user}"
    );
    assert_eq!(user["meta"]["version"], "W/\"3\"");
    let log = s.db.read(|c| change_log::since(c, 0, 100)).expect("log");
    let versions: Vec<i64> = log
        .iter()
        .filter(|e| e.resource_id == id)
        .map(|e| e.version)
        .collect();
    assert_eq!(
        versions,
        [1, 2, 3],
        "one entry per write, none for the discarded try"
    );
}

#[test]
fn a_user_changed_under_every_try_is_written_under_the_lock() {
    let s = Arc::new(TestServer::start(Backend::Postgres));
    let id = id_of(&s.create_user(&json!({"userName": "always-changed"})));

    let (computed, version) = change_nick_name_interrupted(&s, &id, UNLOCKED_TRIES);

    assert_eq!(
        computed,
        UNLOCKED_TRIES + 1,
        "every unlocked try, then one under the lock"
    );
    let expected = 1 + UNLOCKED_TRIES as i64 + 1;
    assert_eq!(version, expected);
    let user = s.get(&format!("/Users/{id}")).body;
    assert_eq!(user["nickName"], "nick", "{user}");
    assert_eq!(
        user["title"],
        format!("meanwhile {}", UNLOCKED_TRIES - 1),
        "{user}"
    );
    assert_eq!(user["meta"]["version"], format!("W/\"{expected}\""));
}

/// A change of `current` setting `title`, written if the user is still at `was`.
fn title_change(current: &StoredUser, was: i64, title: &str, user_name: &str) -> Change {
    let mut record = with_attribute(current, "title", title);
    record.user_name = user_name.to_string();
    let mut data: Map<String, Value> = serde_json::from_str(&record.data).expect("document");
    data.insert("userName".into(), Value::String(user_name.into()));
    record.data = Value::Object(data).to_string();
    Change {
        record,
        was,
        operation: "modify",
        actor: "batch-test".into(),
        event_id: format!("evt_{title}"),
        event_type: "user.updated",
        event_data: json!({"title": title}).to_string(),
    }
}

fn stored(s: &TestServer, id: &str) -> StoredUser {
    s.db.read(|c| users::find(c, id))
        .expect("read")
        .expect("the user exists")
}

fn log_of(s: &TestServer, id: &str) -> Vec<(String, i64)> {
    s.db.read(|c| change_log::since(c, 0, 1_000))
        .expect("log")
        .into_iter()
        .filter(|e| e.resource_id == id)
        .map(|e| (e.operation, e.version))
        .collect()
}

/// Changes of several users in one statement: each written at its own guard, with its own
/// change-log entry and event, and one computed from a replaced version left out alone.
#[test]
fn changes_written_together_each_keep_their_own_outcome() {
    let s = TestServer::start(Backend::Postgres);
    let ids: Vec<String> = ["batch-a", "batch-b", "batch-c"]
        .iter()
        .map(|name| id_of(&s.create_user(&json!({"userName": name}))))
        .collect();
    let users: Vec<StoredUser> = ids.iter().map(|id| stored(&s, id)).collect();
    let changes = [
        title_change(&users[0], 1, "first", "batch-a"),
        title_change(&users[1], 1, "second", "batch-b-renamed"),
        // Computed from a version the user is no longer at.
        title_change(&users[2], 7, "stale", "batch-c"),
    ];
    let refs: Vec<&Change> = changes.iter().collect();

    let outcomes = user_change_batches::write_batch(&s.db, &refs);

    let written: Vec<bool> = outcomes
        .iter()
        .map(|o| o.as_ref().expect("no error").is_some())
        .collect();
    assert_eq!(written, [true, true, false]);
    let a = s.get(&format!("/Users/{}", ids[0])).body;
    assert_eq!(
        (a["title"].as_str(), a["meta"]["version"].as_str()),
        (Some("first"), Some("W/\"2\""))
    );
    let b = s.get(&format!("/Users/{}", ids[1])).body;
    assert_eq!(b["userName"], "batch-b-renamed", "{b}");
    let found = s
        .get("/Users?filter=userName%20eq%20%22batch-b-renamed%22")
        .body;
    assert_eq!(
        found["totalResults"], 1,
        "the new userName is indexed: {found}"
    );
    let c = s.get(&format!("/Users/{}", ids[2])).body;
    assert!(c.get("title").is_none(), "nothing written: {c}");
    assert_eq!(
        log_of(&s, &ids[0]),
        [("create".to_string(), 1), ("modify".to_string(), 2)]
    );
    assert_eq!(log_of(&s, &ids[2]), [("create".to_string(), 1)]);
    let events = events::readable_after(&s.db, 0, 1_000).expect("events");
    let titled: Vec<(&str, i64)> = events
        .iter()
        .filter(|e| e.id.starts_with("evt_") && e.event_type == "user.updated")
        .filter(|e| ids.contains(&e.resource_id))
        .map(|e| (e.id.as_str(), e.resource_seq))
        .collect();
    assert_eq!(titled, [("evt_first", 2), ("evt_second", 2)]);
}

/// A statement that fails as a whole (one change takes a userName another user has) is
/// written again one change at a time: only that change fails.
#[test]
fn a_taken_user_name_fails_only_its_own_change() {
    let s = TestServer::start(Backend::Postgres);
    let taker = id_of(&s.create_user(&json!({"userName": "taker"})));
    let other = id_of(&s.create_user(&json!({"userName": "bystander"})));
    id_of(&s.create_user(&json!({"userName": "taken"})));
    let changes = [
        title_change(&stored(&s, &taker), 1, "takes", "TAKEN"),
        title_change(&stored(&s, &other), 1, "stands", "bystander"),
    ];
    let refs: Vec<&Change> = changes.iter().collect();

    let outcomes = user_change_batches::write_batch(&s.db, &refs);

    assert!(outcomes[0].is_err(), "{:?}", outcomes[0]);
    assert!(matches!(outcomes[1], Ok(Some(_))), "{:?}", outcomes[1]);
    assert_eq!(s.get(&format!("/Users/{taker}")).body["userName"], "taker");
    assert_eq!(s.get(&format!("/Users/{other}")).body["title"], "stands");
    assert_eq!(log_of(&s, &taker), [("create".to_string(), 1)]);
}

/// Concurrent PATCHes over HTTP, many users at once and many of one user: every PATCH is
/// answered 200 and kept (the changes of one user are written one statement after the
/// other, each from the version the last one wrote), with one change-log entry each.
#[test]
fn concurrent_patches_of_many_users_and_of_one_user_are_all_kept() {
    let s = Arc::new(TestServer::start(Backend::Postgres));
    let shared = id_of(&s.create_user(&json!({"userName": "shared", "emails": []})));
    let own: Vec<String> = (0..8)
        .map(|n| id_of(&s.create_user(&json!({"userName": format!("own-{n}")}))))
        .collect();
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let (s, shared, mine) = (Arc::clone(&s), shared.clone(), own[n].clone());
            std::thread::spawn(move || {
                for round in 0..10 {
                    patch_title(&s, &mine, &format!("own {n} round {round}"));
                    let r = send(scim_body(
                        s.request(Method::PATCH, &format!("/Users/{shared}")),
                        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                "Operations": [{"op": "add", "path": "emails",
                                    "value": [{"value": format!("w{n}-{round}@example.com")}]}]}),
                    ));
                    assert_eq!(r.status, 200, "{}", r.body);
                    patch_title(&s, &shared, &format!("shared by {n}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client");
    }
    for (n, id) in own.iter().enumerate() {
        let user = s.get(&format!("/Users/{id}")).body;
        assert_eq!(user["title"], format!("own {n} round 9"), "{user}");
        assert_eq!(user["meta"]["version"], "W/\"11\"", "{user}");
        assert_eq!(log_of(&s, id).len(), 11);
    }
    let user = s.get(&format!("/Users/{shared}")).body;
    assert_eq!(
        user["meta"]["version"], "W/\"161\"",
        "every PATCH of the shared user kept: {user}"
    );
    assert_eq!(user["emails"].as_array().map(Vec::len), Some(80), "{user}");
    let versions: Vec<i64> = log_of(&s, &shared).into_iter().map(|(_, v)| v).collect();
    assert_eq!(versions, (1..=161).collect::<Vec<i64>>());
}
