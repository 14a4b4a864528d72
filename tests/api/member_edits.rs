//! PATCHes that only add or only remove members (on PostgreSQL one statement each, see
//! `storage::member_edits`): concurrent adds to one group are all kept, each with its own
//! version, change-log entry and event; removes, unknown members and groups of another
//! connection are answered as before.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{id_of, recorded_events, scim_body, send, Resp, TestServer};
use crate::on_both_backends;

fn patch_members(s: &TestServer, group_id: &str, op: &str, members: &[&str]) -> Resp {
    let value: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    send(scim_body(
        s.request(Method::PATCH, &format!("/Groups/{group_id}")),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": op, "path": "members", "value": value}]}),
    ))
}

fn concurrent_member_adds_are_all_kept(s: &TestServer) {
    let writers = 16;
    let group_id =
        id_of(&s.create_group(&json!({"displayName": "crowded", "externalId": "g-ext"})));
    let members: Vec<String> = (0..writers)
        .map(|i| id_of(&s.create_user(&json!({"userName": format!("joiner{i}")}))))
        .collect();

    let versions: Vec<String> = std::thread::scope(|scope| {
        let running: Vec<_> = members
            .iter()
            .map(|member| {
                let group_id = &group_id;
                scope.spawn(move || {
                    let r = patch_members(s, group_id, "add", &[member]);
                    assert_eq!(r.status, 200, "{}", r.body);
                    let version = r.header("etag").expect("ETag");
                    assert_eq!(r.body["meta"]["version"], version.as_str());
                    version
                })
            })
            .collect();
        running
            .into_iter()
            .map(|t| t.join().expect("writer"))
            .collect()
    });
    let distinct: HashSet<&String> = versions.iter().collect();
    assert_eq!(
        distinct.len(),
        writers,
        "each add has its own version: {versions:?}"
    );

    let group = s.get(&format!("/Groups/{group_id}")).body;
    let held: HashSet<&str> = group["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    let added: HashSet<&str> = members.iter().map(String::as_str).collect();
    assert_eq!(held, added, "{group}");
    assert_eq!(group["meta"]["version"], format!("W/\"{}\"", writers + 1));

    let log =
        s.db.read(|c| scimgate::storage::change_log::since(c, 0, 1000))
            .expect("change log");
    let group_versions: Vec<i64> = log
        .iter()
        .filter(|e| e.resource_id == group_id)
        .map(|e| e.version)
        .collect();
    let expected: Vec<i64> = (1..=writers as i64 + 1).collect();
    assert_eq!(
        group_versions, expected,
        "one entry per add, in version order"
    );

    let events = recorded_events(s, "group.updated");
    let mut event_versions: Vec<String> = events
        .iter()
        .filter(|e| e.resource_id == group_id)
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).expect("event data");
            assert_eq!(data["attributes"], json!(["members"]), "{data}");
            assert_eq!(data["externalId"], "g-ext", "{data}");
            assert_eq!(
                data["version"],
                format!("W/\"{}\"", e.resource_seq),
                "{data}"
            );
            data["version"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    event_versions.sort();
    let mut answered = versions.clone();
    answered.sort();
    assert_eq!(
        event_versions, answered,
        "one event per add, at its version"
    );
}

fn removes_and_refusals(s: &TestServer) {
    let group_id = id_of(&s.create_group(&json!({"displayName": "shrinking"})));
    let a = id_of(&s.create_user(&json!({"userName": "stays"})));
    let b = id_of(&s.create_user(&json!({"userName": "leaves"})));
    assert_eq!(patch_members(s, &group_id, "add", &[&a, &b]).status, 200);
    // Adding a member already there changes no row, yet is a write like any other.
    let again = patch_members(s, &group_id, "add", &[&a]);
    assert_eq!(again.status, 200);
    assert_eq!(again.body["meta"]["version"], "W/\"3\"");

    let removed = patch_members(s, &group_id, "remove", &[&b]);
    assert_eq!(removed.status, 200, "{}", removed.body);
    let members = s.get(&format!("/Groups/{group_id}")).body["members"].clone();
    assert_eq!(
        members,
        json!([{"value": a, "type": "User",
        "$ref": members[0]["$ref"]}])
    );

    let unknown = patch_members(s, &group_id, "add", &["no-such-user"]);
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert_eq!(unknown.body["scimType"], "invalidValue");
    let itself = patch_members(s, &group_id, "add", &[&group_id]);
    assert_eq!(itself.status, 400, "{}", itself.body);
    let missing = patch_members(s, "no-such-group", "add", &[&a]);
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(
        s.get(&format!("/Groups/{group_id}")).body["meta"]["version"],
        "W/\"4\"",
        "refused edits changed nothing"
    );
}

on_both_backends!(concurrent_member_adds_are_all_kept, removes_and_refusals);

/// Edits of one group arriving while another is being written are written together: with
/// the group's row held by another transaction, the first edit waits on it and the rest
/// queue behind; once it is let go, the queued edits go in one transaction (their change-log
/// rows share one), each still with its own version.
#[test]
fn edits_queued_behind_a_busy_group_are_written_together_on_postgres() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, RunQueryDsl};

    let s = TestServer::start(crate::harness::Backend::Postgres);
    let group_id = id_of(&s.create_group(&json!({"displayName": "busy row"})));
    let queued = 6;
    let members: Vec<String> = (0..=queued)
        .map(|i| id_of(&s.create_user(&json!({"userName": format!("queued{i}")}))))
        .collect();

    let mut holder = diesel::PgConnection::establish(&s.database_url).expect("connect");
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT id FROM scim_groups WHERE id = '{group_id}' FOR UPDATE"
        ))
        .expect("hold the row");
    let versions: Vec<String> = std::thread::scope(|scope| {
        let first = scope.spawn(|| patch_members(&s, &group_id, "add", &[&members[0]]));
        // The first edit is now waiting on the row; the rest queue behind it.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let rest: Vec<_> = members[1..]
            .iter()
            .map(|member| {
                let (s, group_id) = (&s, &group_id);
                scope.spawn(move || patch_members(s, group_id, "add", &[member]))
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(1000));
        holder.batch_execute("COMMIT").expect("let the row go");
        std::iter::once(first)
            .chain(rest)
            .map(|t| {
                let r = t.join().expect("writer");
                assert_eq!(r.status, 200, "{}", r.body);
                r.header("etag").expect("ETag")
            })
            .collect()
    });
    let distinct: HashSet<&String> = versions.iter().collect();
    assert_eq!(distinct.len(), queued + 1, "{versions:?}");

    #[derive(diesel::QueryableByName)]
    struct Transactions {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let transactions: Transactions = diesel::sql_query(format!(
        "SELECT count(DISTINCT xmin::text) AS n FROM change_log \
         WHERE resource_id = '{group_id}' AND operation = 'modify'"
    ))
    .get_result(&mut holder)
    .expect("count");
    assert_eq!(
        transactions.n, 2,
        "the first edit alone, then the {queued} queued behind it together"
    );
    let group = s.get(&format!("/Groups/{group_id}")).body;
    assert_eq!(group["members"].as_array().map(Vec::len), Some(queued + 1));
}
