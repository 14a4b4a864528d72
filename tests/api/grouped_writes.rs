//! Group commit of PUT, PATCH and DELETE: concurrent writes share transactions, yet each
//! request keeps its own answer, preconditions and conflicts are answered one by one, and the
//! change log numbers each resource's changes in version order.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::json;

use crate::harness::{id_of, scim_body, send, Backend, TestServer};

fn patch_title(s: &TestServer, id: &str, title: &str, if_match: Option<&str>) -> u16 {
    let mut request = s.request(Method::PATCH, &format!("/Users/{id}"));
    if let Some(version) = if_match {
        request = request.header("if-match", version);
    }
    send(scim_body(
        request,
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": title}]}),
    ))
    .status
}

fn concurrent_writes_keep_their_own_answers(backend: Backend) {
    let s = TestServer::start(backend);
    let ids: Vec<String> = (0..24)
        .map(|i| id_of(&s.create_user(&json!({"userName": format!("grouped{i}")}))))
        .collect();
    let contested = ids[0].clone();
    let version = s
        .get(&format!("/Users/{contested}"))
        .header("etag")
        .expect("etag");

    // Everyone at once: twelve PATCHes of one user, all conditional on the same version;
    // a PATCH of each other user; a PUT taking a userName another user holds; a DELETE.
    let statuses: Vec<(String, u16)> = std::thread::scope(|scope| {
        let mut running = Vec::new();
        for n in 0..12 {
            let (s, contested, version) = (&s, &contested, &version);
            running.push(scope.spawn(move || {
                let status = patch_title(s, contested, &format!("try {n}"), Some(version));
                ("contested".to_string(), status)
            }));
        }
        for (n, id) in ids.iter().enumerate().skip(1) {
            let s = &s;
            running.push(scope.spawn(move || {
                let status = match n {
                    1 => {
                        send(scim_body(
                            s.request(Method::PUT, &format!("/Users/{id}")),
                            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                "userName": "grouped2"}),
                        ))
                        .status
                    }
                    3 => s.delete(&format!("/Users/{id}")).status,
                    _ => patch_title(s, id, &format!("title {n}"), None),
                };
                (id.clone(), status)
            }));
        }
        running
            .into_iter()
            .map(|t| t.join().expect("client"))
            .collect()
    });
    let contested_ok = statuses
        .iter()
        .filter(|(who, status)| who == "contested" && *status == 200)
        .count();
    let contested_stale = statuses
        .iter()
        .filter(|(who, status)| who == "contested" && *status == 412)
        .count();
    assert_eq!(
        (contested_ok, contested_stale),
        (1, 11),
        "one conditional PATCH wins, the others see its change: {statuses:?}"
    );
    let by_id: HashMap<&str, u16> = statuses
        .iter()
        .filter(|(who, _)| who != "contested")
        .map(|(id, status)| (id.as_str(), *status))
        .collect();
    assert_eq!(by_id[ids[1].as_str()], 409, "the taken userName, alone");
    assert_eq!(by_id[ids[3].as_str()], 204);
    for (n, id) in ids.iter().enumerate().filter(|(n, _)| *n == 2 || *n >= 4) {
        assert_eq!(by_id[id.as_str()], 200, "{n}");
        let user = s.get(&format!("/Users/{id}"));
        assert_eq!(user.body["title"], format!("title {n}"));
    }
    assert_eq!(s.get(&format!("/Users/{}", ids[3])).status, 404);
    assert_eq!(
        s.get(&format!("/Users/{}", ids[1])).body["userName"],
        "grouped1",
        "a refused write changes nothing"
    );

    // The change log: every accepted write once, each resource's versions in order.
    let log =
        s.db.read(|c| scimgate::storage::change_log::since(c, 0, 1000))
            .expect("log");
    let mut last_version: HashMap<&str, i64> = HashMap::new();
    for entry in &log {
        let last = last_version.entry(&entry.resource_id).or_insert(0);
        assert!(
            entry.version > *last,
            "versions of {} out of order in the log",
            entry.resource_id
        );
        *last = entry.version;
    }
    let contested_changes = log
        .iter()
        .filter(|e| e.resource_id == contested && e.operation == "modify")
        .count();
    assert_eq!(contested_changes, 1);
    assert_eq!(
        log.iter().filter(|e| e.operation == "modify").count(),
        1 + 21,
        "one change per accepted PATCH"
    );
}

crate::for_each_backend!(concurrent_writes_keep_their_own_answers);
