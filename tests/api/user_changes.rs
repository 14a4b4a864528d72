//! PUT and PATCH of a user on PostgreSQL, written without the row lock (see
//! `storage::user_changes`): a change computed from a version another writer replaced
//! meanwhile is computed again from the new one, so nothing is lost, and a user changed again
//! and again under it is written under the lock in the end. (SQLite computes every change in
//! the writer's turn: nothing can change under it.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Map, Value};

use scimgate::storage::change_log::{self, Operation};
use scimgate::storage::user_changes::{self, UNLOCKED_TRIES};
use scimgate::storage::users::{StoredUser, UserRecord};
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
