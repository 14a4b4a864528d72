//! Provisioning review: a target's review rules hold orders in `awaiting_approval` until an
//! operator approves (they are delivered to the target, a second scimgate) or declines them
//! (nothing is sent), one at a time or in bulk.

use reqwest::Method;
use serde_json::{json, Value};

use scimgate::auth::{api_token, Role};
use scimgate::config::Config;
use scimgate::storage::orders::Order;
use scimgate::targets::review::ReviewRules;
use scimgate::targets::{TargetAuth, TargetConfig};

use crate::harness::{id_of, send, Backend, Resp, TestServer};
use crate::interop::member_values as members;
use crate::provisioning::{orders_of, wait_for};

/// An admin API call with a JSON body (or none).
pub(crate) fn admin(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let url = s.base.replace("/scim/v2", &format!("/admin{path}"));
    let mut request = reqwest::blocking::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    send(request)
}

/// A target that is a second scimgate.
pub(crate) fn target_for(app: &TestServer, name: &str) -> TargetConfig {
    let mut t = TargetConfig::scim(name, &app.base);
    t.auth = TargetAuth {
        kind: Some(scimgate::targets::AuthKind::Bearer),
        token: Some(app.token.clone()),
        ..TargetAuth::default()
    };
    t.retry_base_ms = 50;
    t.retry_max_ms = 500;
    t
}

pub(crate) fn fast(c: &mut Config, targets: Vec<TargetConfig>) {
    c.targets = targets;
    c.worker.poll_interval_ms = 20;
}

pub(crate) fn remote_user(app: &TestServer, user_name: &str) -> Option<Value> {
    let r = app.get(&format!("/Users?filter=userName%20eq%20%22{user_name}%22"));
    r.body["Resources"]
        .as_array()
        .and_then(|a| a.first().cloned())
}

fn remote_group(app: &TestServer, name: &str) -> Option<Value> {
    let r = app.get(&format!(
        "/Groups?filter=displayName%20eq%20%22{}%22",
        name.replace(' ', "%20")
    ));
    r.body["Resources"]
        .as_array()
        .and_then(|a| a.first().cloned())
}

/// The resource's latest order once it is in `state`.
pub(crate) fn order_in(s: &TestServer, kind: &str, id: &str, state: &str) -> Order {
    wait_for(&format!("{kind} {id} {state}"), || {
        orders_of(s, kind, id)
            .into_iter()
            .next_back()
            .filter(|o| o.state.as_str() == state)
    })
}

fn rules_hold_orders_until_approved_or_declined(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let mut t = target_for(&app, "app");
    t.review = ReviewRules {
        deprovisioning: true,
        groups: vec!["Payroll Admins".into()],
        filter: Some("title eq \"CFO\"".into()),
        ..ReviewRules::default()
    };
    let s = TestServer::start_with(backend, |c| fast(c, vec![t]));
    let ops = api_token::issue_with_role(&s.db, "ops", Role::Admin).expect("admin token");

    // Not covered by any rule: delivered at once.
    let worker = id_of(&s.create_user(&json!({"userName": "worker", "title": "Engineer"})));
    wait_for("worker on the target", || remote_user(&app, "worker"));

    // The filter rule holds the CFO.
    let boss = id_of(&s.create_user(&json!({"userName": "boss", "title": "CFO"})));
    let held = order_in(&s, "User", &boss, "awaiting_approval");
    let reason = held.held_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("filter") && reason.contains("CFO"),
        "{reason}"
    );
    // The sensitive group, and the deletion (deprovisioning), are held too.
    let payroll = id_of(
        &s.create_group(&json!({"displayName": "Payroll Admins", "members": [{"value": worker}]})),
    );
    let group_order = order_in(&s, "Group", &payroll, "awaiting_approval");
    assert!(group_order
        .held_reason
        .as_deref()
        .is_some_and(|r| r.contains("groups") && r.contains("Payroll Admins")));
    assert_eq!(s.delete(&format!("/Users/{worker}")).status, 204);
    let deletion = order_in(&s, "User", &worker, "awaiting_approval");
    assert!(deletion
        .held_reason
        .as_deref()
        .is_some_and(|r| r.contains("deprovisioning")));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        remote_user(&app, "boss").is_none(),
        "held orders send nothing"
    );
    assert!(remote_group(&app, "Payroll Admins").is_none());
    assert!(remote_user(&app, "worker").is_some());

    // The detail shows why it waits.
    let detail = admin(&s, &ops, Method::GET, &format!("/orders/{}", held.id), None);
    assert_eq!(detail.body["state"], "awaiting_approval");
    assert_eq!(detail.body["heldReason"], reason.as_str());
    assert_eq!(detail.body["heldBy"], "review");

    // Approve: delivered in the next round, the decision recorded.
    let approved = admin(
        &s,
        &ops,
        Method::POST,
        &format!("/orders/{}/approve", held.id),
        Some(json!({"comment": "signed off by the board"})),
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["state"], "pending");
    assert_eq!(approved.body["approved"], true);
    assert_eq!(approved.body["decidedBy"], "ops");
    let arrived = wait_for("boss on the target", || remote_user(&app, "boss"));
    assert_eq!(arrived["title"], "CFO");
    let detail = admin(&s, &ops, Method::GET, &format!("/orders/{}", held.id), None);
    assert!(
        matches!(detail.body["state"].as_str(), Some("executed" | "verified")),
        "{}",
        detail.body
    );
    assert_eq!(detail.body["decisionComment"], "signed off by the board");
    assert!(detail.body["decided"].is_string());
    let states: Vec<&str> = detail.body["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter_map(|t| t["state"].as_str())
        .collect();
    assert!(
        states.starts_with(&["pending", "transmitted", "awaiting_approval", "pending"]),
        "{states:?}"
    );

    // Deciding an order that is not awaiting approval is a conflict, and changes nothing.
    let again = admin(
        &s,
        &ops,
        Method::POST,
        &format!("/orders/{}/decline", held.id),
        None,
    );
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body["error"]
        .as_str()
        .is_some_and(|e| e.contains("not awaiting approval")));
    assert_eq!(
        admin(&s, &ops, Method::POST, "/orders/999999/approve", None).status,
        404
    );
    assert_eq!(
        admin(
            &s,
            &ops,
            Method::POST,
            &format!("/orders/{}/approve", group_order.id),
            Some(json!({"comments": "typo"}))
        )
        .status,
        400,
        "unknown fields are refused"
    );

    // Decline: inactive, never sent.
    let declined = admin(
        &s,
        &ops,
        Method::POST,
        &format!("/orders/{}/decline", group_order.id),
        Some(json!({"comment": "not without a ticket"})),
    );
    assert_eq!(declined.status, 200, "{}", declined.body);
    assert_eq!(declined.body["state"], "inactive");
    assert_eq!(declined.body["decisionComment"], "not without a ticket");

    // Bulk: every held user deletion on the target.
    let bulk = admin(
        &s,
        &ops,
        Method::POST,
        "/orders/approve",
        Some(
            json!({"target": "app", "operation": "delete", "resourceType": "User", "comment": "leavers"}),
        ),
    );
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    assert_eq!(bulk.body["approved"], 1);
    wait_for("worker removed from the target", || {
        remote_user(&app, "worker").is_none().then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        remote_group(&app, "Payroll Admins").is_none(),
        "the declined group was never sent"
    );
}

fn review_all_and_bulk_decline(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let mut t = target_for(&app, "app");
    t.review.all = true;
    let s = TestServer::start_with(backend, |c| fast(c, vec![t]));
    let ops = api_token::issue_with_role(&s.db, "ops", Role::Admin).expect("admin token");
    let a = id_of(&s.create_user(&json!({"userName": "anna"})));
    let b = id_of(&s.create_user(&json!({"userName": "ben"})));
    for id in [&a, &b] {
        let held = order_in(&s, "User", id, "awaiting_approval");
        assert!(held
            .held_reason
            .as_deref()
            .is_some_and(|r| r.contains("all")));
    }
    // The bulk query must be the documented one, and name something.
    assert_eq!(
        admin(&s, &ops, Method::POST, "/orders/decline", None).status,
        400
    );
    assert_eq!(
        admin(
            &s,
            &ops,
            Method::POST,
            "/orders/decline",
            Some(json!({"tagret": "app"}))
        )
        .status,
        400
    );
    let other = admin(
        &s,
        &ops,
        Method::POST,
        "/orders/decline",
        Some(json!({"target": "elsewhere"})),
    );
    assert_eq!(other.body["declined"], 0);
    let bulk = admin(
        &s,
        &ops,
        Method::POST,
        "/orders/decline",
        Some(json!({"target": "app", "comment": "no"})),
    );
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    assert_eq!(bulk.body["declined"], 2);
    for id in [&a, &b] {
        let order = order_in(&s, "User", id, "inactive");
        assert_eq!(order.decided_by.as_deref(), Some("ops"));
        assert!(!order.approved);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        app.get("/Users").body["totalResults"],
        0,
        "nothing was sent"
    );
}

/// A user leaving `users_filter` is deprovisioned on the target: the deprovisioning rule holds
/// that too, though the change itself was an update. Bad rules are refused up front.
fn leaving_scope_is_deprovisioning(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let mut t = target_for(&app, "app");
    t.users_filter = Some("title eq \"Engineer\"".into());
    t.deprovision = scimgate::targets::Deprovision::Deactivate;
    t.review.deprovisioning = true;
    let s = TestServer::start_with(backend, |c| fast(c, vec![t]));
    let ops = api_token::issue_with_role(&s.db, "ops", Role::Admin).expect("admin token");
    let id = id_of(&s.create_user(&json!({"userName": "mover", "title": "Engineer"})));
    wait_for("mover on the target", || remote_user(&app, "mover"));
    let moved = s
        .request(Method::PUT, &format!("/Users/{id}"))
        .header("content-type", "application/scim+json")
        .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "mover", "title": "Sales"}).to_string())
        .send()
        .expect("put");
    assert_eq!(moved.status(), 200);
    let held = order_in(&s, "User", &id, "awaiting_approval");
    assert_eq!(held.operation.as_str(), "upsert");
    assert!(held
        .held_reason
        .as_deref()
        .is_some_and(|r| r.contains("deprovisioning")));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_ne!(
        remote_user(&app, "mover").expect("still there")["active"],
        false,
        "not deactivated while held"
    );
    let approved = admin(
        &s,
        &ops,
        Method::POST,
        &format!("/orders/{}/approve", held.id),
        None,
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    wait_for("mover deactivated", || {
        remote_user(&app, "mover").filter(|u| u["active"] == false)
    });

    let bad = admin(
        &s,
        &ops,
        Method::POST,
        "/targets",
        Some(json!({"name": "strict", "url": app.base, "review": {"filter": "title eq"}})),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body["error"]
        .as_str()
        .is_some_and(|e| e.contains("review.filter")));
    let unknown = admin(
        &s,
        &ops,
        Method::POST,
        "/targets",
        Some(json!({"name": "strict", "url": app.base, "review": {"everything": true}})),
    );
    assert_eq!(unknown.status, 400, "{}", unknown.body);
}

/// A group order deferred for a member goes as soon as that member's order lands, not on its
/// backoff (a minute here, beyond the test's patience); a member whose order is declined is
/// left out of the group, and the group's order says so.
fn deferred_groups_go_when_their_members_land(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let mut t = target_for(&app, "app");
    t.retry_base_ms = 60_000;
    t.retry_max_ms = 60_000;
    t.review = ReviewRules {
        filter: Some("title eq \"Held\"".into()),
        ..ReviewRules::default()
    };
    let s = TestServer::start_with(backend, |c| fast(c, vec![t]));
    let ops = api_token::issue_with_role(&s.db, "ops", Role::Admin).expect("admin token");
    let held = id_of(&s.create_user(&json!({"userName": "held", "title": "Held"})));
    let declined = id_of(&s.create_user(&json!({"userName": "declined", "title": "Held"})));
    let free = id_of(&s.create_user(&json!({"userName": "free"})));
    let approved_group = id_of(&s.create_group(&json!({"displayName": "Approved",
        "members": [{"value": held}, {"value": free}]})));
    let declined_group = id_of(&s.create_group(&json!({"displayName": "Declined",
        "members": [{"value": declined}, {"value": free}]})));
    let held_order = order_in(&s, "User", &held, "awaiting_approval");
    let declined_order = order_in(&s, "User", &declined, "awaiting_approval");
    for (group, member) in [(&approved_group, &held), (&declined_group, &declined)] {
        let waiting = wait_for("the group deferred for its held member", || {
            orders_of(&s, "Group", group)
                .into_iter()
                .next_back()
                .filter(|o| o.state.as_str() == "errored")
                .filter(|o| o.waiting_for.as_deref() == Some(member.as_str()))
        });
        assert!(waiting.note.is_none());
    }
    assert!(remote_group(&app, "Approved").is_none());
    let remote_free = id_of(&remote_user(&app, "free").expect("free on the target"));

    let decide = |order: &Order, verb: &str| {
        let r = admin(
            &s,
            &ops,
            Method::POST,
            &format!("/orders/{}/{verb}", order.id),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
    };
    // The member lands: its group goes at once, long before its backoff.
    decide(&held_order, "approve");
    let remote_held = id_of(&wait_for("held on the target", || {
        remote_user(&app, "held")
    }));
    let there = wait_for("the group whose member landed", || {
        remote_group(&app, "Approved")
    });
    let mut expected = vec![remote_held, remote_free.clone()];
    expected.sort();
    assert_eq!(members(&there), expected);

    // The member is declined: its group goes without it, and says so.
    decide(&declined_order, "decline");
    let there = wait_for("the group whose member was declined", || {
        remote_group(&app, "Declined")
    });
    assert_eq!(members(&there), vec![remote_free]);
    let done = wait_for("the group's order settled", || {
        orders_of(&s, "Group", &declined_group)
            .into_iter()
            .next_back()
            .filter(|o| matches!(o.state.as_str(), "executed" | "verified"))
    });
    let note = done.note.unwrap_or_default();
    assert!(
        note.contains(&declined) && note.contains("cancelled"),
        "{note:?}"
    );
    assert!(done.waiting_for.is_none());
    assert!(remote_user(&app, "declined").is_none());
}

crate::for_each_backend!(
    deferred_groups_go_when_their_members_land,
    rules_hold_orders_until_approved_or_declined,
    review_all_and_bulk_decline,
    leaving_scope_is_deprovisioning
);
