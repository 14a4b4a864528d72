//! Manual targets: each order becomes a work item for a person (in words and as data); the
//! order waits, `transmitted`, until the item is completed (`executed`, the identity link set
//! or removed) or failed (`error` with the reason); later orders of the resource wait behind it.

use reqwest::Method;
use serde_json::{json, Value};

use scimgate::auth::{api_token, Role};
use scimgate::storage::{identity_links, work_items};
use scimgate::targets::TargetConfig;

use crate::harness::{id_of, Backend, TestServer};
use crate::provisioning::{orders_of, wait_for};
use crate::review::{admin, fast, order_in};

fn manual(name: &str) -> TargetConfig {
    let mut t = TargetConfig::scim(name, "");
    t.kind = scimgate::targets::TargetKind::Manual;
    t
}

fn open_items(s: &TestServer, token: &str, count: usize) -> Vec<Value> {
    wait_for(&format!("{count} open work items"), || {
        let r = admin(
            s,
            token,
            Method::GET,
            "/work-items?target=payroll&state=open",
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["workItems"]
            .as_array()
            .filter(|items| items.len() == count)
            .cloned()
    })
}

fn link(s: &TestServer, id: &str) -> Option<String> {
    s.db.read(|c| identity_links::link(c, "payroll", "User", id))
        .expect("link")
}

fn people_carry_out_manual_orders(backend: Backend) {
    let s = TestServer::start_with(backend, |c| fast(c, vec![manual("payroll")]));
    let ops = api_token::issue_with_role(&s.db, "ops", Role::Admin).expect("admin token");
    let id = id_of(&s.create_user(&json!({"userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "primary": true}]})));

    // The order became a work item, in words and in data, and waits without a lease.
    let item = open_items(&s, &ops, 1).remove(0);
    assert_eq!(item["action"], "create");
    assert_eq!(item["resourceId"], id.as_str());
    let summary = item["summary"].as_str().expect("summary");
    assert!(
        summary.starts_with("Create an account for bjensen (Barbara Jensen) in payroll: "),
        "{summary}"
    );
    assert!(summary.contains("userName=bjensen"), "{summary}");
    assert!(summary.contains("emails=bjensen@example.com"), "{summary}");
    assert_eq!(item["data"]["action"], "create");
    assert_eq!(item["data"]["object"]["userName"], "bjensen");
    assert_eq!(item["data"]["object"]["name"]["familyName"], "Jensen");
    // The item opens during the delivery; the outcome that ends the lease is recorded with
    // its batch right after.
    let first = wait_for("the manual order's lease to end", || {
        Some(order_in(&s, "User", &id, "transmitted"))
            .filter(|o| o.lease_owner.is_none() && o.lease_until.is_none())
    });
    assert_eq!(item["orderId"], first.id);
    assert!(first.lease_owner.is_none() && first.lease_until.is_none());
    // Delivering the order again (a crash before its outcome was recorded) opens no second item.
    let again = work_items::NewWorkItem {
        action: "create".into(),
        summary: "a second one".into(),
        data: "{}".into(),
    };
    let same = work_items::open_once(&s.db, &first, &again).expect("open once");
    assert_eq!(json!(same.id), item["id"]);
    assert_eq!(json!(same.summary), item["summary"]);
    let fetched = admin(
        &s,
        &ops,
        Method::GET,
        &format!("/work-items/{}", item["id"]),
        None,
    );
    assert_eq!(fetched.body["summary"], item["summary"]);

    // A later change of the user waits behind the open item.
    let patched = s
        .request(Method::PATCH, &format!("/Users/{id}"))
        .header("content-type", "application/scim+json")
        .body(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "Payroll Clerk"}]})
            .to_string(),
        )
        .send()
        .expect("patch");
    assert_eq!(patched.status(), 200);
    std::thread::sleep(std::time::Duration::from_millis(400));
    let list = orders_of(&s, "User", &id);
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[1].state.as_str(),
        "pending",
        "waits behind the open work item"
    );
    assert_eq!(open_items(&s, &ops, 1).len(), 1, "still one item");

    // Completing it executes the order and links the account the person reports.
    let done = admin(
        &s,
        &ops,
        Method::POST,
        &format!("/work-items/{}/complete", item["id"]),
        Some(json!({"remoteId": "PAY-42", "comment": "created in the payroll console"})),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["state"], "completed");
    assert_eq!(done.body["closedBy"], "ops");
    assert_eq!(done.body["outcome"], "created in the payroll console");
    let executed = orders_of(&s, "User", &id).remove(0);
    assert_eq!(executed.state.as_str(), "executed");
    assert_eq!(executed.remote_id.as_deref(), Some("PAY-42"));
    assert_eq!(link(&s, &id).as_deref(), Some("PAY-42"));
    assert_eq!(
        admin(
            &s,
            &ops,
            Method::POST,
            &format!("/work-items/{}/complete", item["id"]),
            None
        )
        .status,
        409,
        "closed already"
    );

    // The waiting update now becomes its own item, against the linked account.
    let update = open_items(&s, &ops, 1).remove(0);
    assert_eq!(update["action"], "update");
    assert_eq!(update["data"]["remoteId"], "PAY-42");
    assert!(update["summary"].as_str().is_some_and(|t| t.starts_with(
        "Update the account of bjensen (Barbara Jensen) in payroll (remote id PAY-42)"
    ) && t.contains("title=Payroll Clerk")));

    // Failing it needs a reason, and ends the order in error with it.
    let path = format!("/work-items/{}/fail", update["id"]);
    assert_eq!(admin(&s, &ops, Method::POST, &path, None).status, 400);
    assert_eq!(
        admin(&s, &ops, Method::POST, &path, Some(json!({"reason": " "}))).status,
        400
    );
    let failed = admin(
        &s,
        &ops,
        Method::POST,
        &path,
        Some(json!({"reason": "no licence left"})),
    );
    assert_eq!(failed.status, 200, "{}", failed.body);
    assert_eq!(failed.body["state"], "failed");
    let errored = orders_of(&s, "User", &id).remove(1);
    assert_eq!(errored.state.as_str(), "error");
    assert_eq!(errored.last_error.as_deref(), Some("no licence left"));

    // Deleting the user asks for the account's deletion; completing it removes the link.
    assert_eq!(s.delete(&format!("/Users/{id}")).status, 204);
    let removal = open_items(&s, &ops, 1).remove(0);
    assert_eq!(removal["action"], "delete");
    assert_eq!(
        removal["summary"],
        "Delete the account of PAY-42 in payroll (remote id PAY-42)"
    );
    let done = admin(
        &s,
        &ops,
        Method::POST,
        &format!("/work-items/{}/complete", removal["id"]),
        None,
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(link(&s, &id), None);

    let all = admin(&s, &ops, Method::GET, "/work-items?target=payroll", None);
    assert_eq!(all.body["workItems"].as_array().map(Vec::len), Some(3));
    // Each item's opening and closing are events, the closing by the person who closed it.
    let opened = crate::harness::recorded_events(&s, "work_item.opened");
    let closed = crate::harness::recorded_events(&s, "work_item.closed");
    assert_eq!((opened.len(), closed.len()), (3, 3));
    assert!(closed
        .iter()
        .all(|e| e.actor == "token:ops" && e.resource_seq == 2));
    assert!(closed
        .iter()
        .any(|e| e.data.contains("\"state\":\"failed\"")));
    assert_eq!(
        admin(&s, &ops, Method::GET, "/work-items/999999", None).status,
        404
    );
    assert_eq!(
        admin(&s, &ops, Method::GET, "/work-items?state=bogus", None).status,
        400
    );
}

/// A manual target needs no URL, in the config file or through the admin API.
fn manual_targets_need_no_url(backend: Backend) {
    let s = TestServer::start(backend);
    let ops = api_token::issue_with_role(&s.db, "ops", Role::Admin).expect("admin token");
    let created = admin(
        &s,
        &ops,
        Method::POST,
        "/targets",
        Some(json!({"name": "desk", "kind": "manual"})),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = id_of(&s.create_user(&json!({"userName": "walkin"})));
    let item = wait_for("a work item on desk", || {
        let r = admin(&s, &ops, Method::GET, "/work-items?target=desk", None);
        r.body["workItems"]
            .as_array()
            .and_then(|a| a.first().cloned())
    });
    assert_eq!(item["resourceId"], id.as_str());
    assert_eq!(
        item["summary"],
        format!("Create an account for walkin in desk: userName=walkin, externalId={id}")
    );
    // Deleting the target withdraws what nobody is to carry out any more.
    assert_eq!(
        admin(&s, &ops, Method::DELETE, "/targets/desk", None).status,
        200
    );
    let withdrawn = admin(
        &s,
        &ops,
        Method::GET,
        &format!("/work-items/{}", item["id"]),
        None,
    );
    assert_eq!(withdrawn.body["state"], "withdrawn", "{}", withdrawn.body);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("scimgate.toml");
    let toml = "[[targets]]\nname = \"payroll\"\nkind = \"manual\"\n[targets.review]\ndeprovisioning = true\n";
    std::fs::write(&path, toml).expect("config");
    let config = scimgate::config::Config::load(Some(&path)).expect("a manual target loads");
    assert_eq!(config.targets[0].url, "");
    assert!(config.targets[0].review.deprovisioning);
}

crate::for_each_backend!(people_carry_out_manual_orders, manual_targets_need_no_url);
