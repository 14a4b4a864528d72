//! The console at `/ui`, driven over HTTP as a browser would (cookies, forms, redirects):
//! sign-in exchanges an admin-API token for a session, every form needs the session's CSRF
//! token, a viewer sees no action buttons and is refused if it posts anyway, retry moves an
//! errored order, and sign-out ends the session on the server.

use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::json;

use scimgate::auth::{api_token, Role};
use scimgate::targets::TargetConfig;

use crate::harness::{id_of, Backend, TestServer};
use crate::provisioning::{fast, orders_of, wait_for};

fn root(s: &TestServer) -> String {
    s.base.replace("/scim/v2", "")
}

/// A browser: keeps cookies, does not follow redirects (the tests look at them).
fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The value of the first hidden `csrf` field on the page.
fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[start..].split('"').next().expect("value").to_string()
}

fn sign_in(s: &TestServer, browser: &Client, token: &str) -> reqwest::blocking::Response {
    let form = browser
        .get(format!("{}/ui/login", root(s)))
        .send()
        .expect("login page")
        .text()
        .expect("page");
    browser
        .post(format!("{}/ui/login", root(s)))
        .form(&[("token", token), ("csrf", &csrf_of(&form))])
        .send()
        .expect("sign in")
}

pub(crate) fn page(s: &TestServer, browser: &Client, path: &str) -> (u16, String) {
    let response = browser
        .get(format!("{}{path}", root(s)))
        .send()
        .expect("page");
    (response.status().as_u16(), response.text().expect("body"))
}

fn sign_in_and_out(backend: Backend) {
    let s = TestServer::start(backend);
    let browser = browser();
    // Not signed in: to the sign-in page.
    let first = browser.get(format!("{}/ui", root(&s))).send().expect("ui");
    assert_eq!(first.status().as_u16(), 303);
    assert_eq!(first.headers()["location"], "/ui/login");

    // A SCIM token, a wrong token, and a form without its CSRF token are refused.
    assert_eq!(sign_in(&s, &browser, &s.token).status().as_u16(), 403);
    assert_eq!(sign_in(&s, &browser, "not-a-token").status().as_u16(), 401);
    let forged = browser
        .post(format!("{}/ui/login", root(&s)))
        .form(&[("token", "x"), ("csrf", "forged")])
        .send()
        .expect("forged");
    assert_eq!(forged.status().as_u16(), 403);

    let ops = api_token::issue_with_role(&s.db, "ops", Role::Operator).expect("token");
    let signed = sign_in(&s, &browser, &ops);
    assert_eq!(signed.status().as_u16(), 303);
    let cookie = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("scimgate_session="))
        .expect("a session cookie")
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/ui"), "{cookie}");
    assert!(!cookie.contains(&ops), "the token is not the cookie");

    let overview = browser.get(format!("{}/ui", root(&s))).send().expect("ui");
    assert_eq!(overview.status().as_u16(), 200);
    let csp = overview.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(overview.headers()["x-frame-options"], "DENY");
    let body = overview.text().expect("page");
    assert!(body.contains("token:ops (operator)"), "{body}");

    // Sign-out needs the CSRF token too, then ends the session.
    let no_csrf = browser
        .post(format!("{}/ui/logout", root(&s)))
        .form(&[("csrf", "")])
        .send()
        .expect("logout");
    assert_eq!(no_csrf.status().as_u16(), 403);
    let out = browser
        .post(format!("{}/ui/logout", root(&s)))
        .form(&[("csrf", csrf_of(&body).as_str())])
        .send()
        .expect("logout");
    assert_eq!(out.status().as_u16(), 303);
    assert_eq!(page(&s, &browser, "/ui").0, 303);
    // The old cookie, replayed, finds no session on the server.
    let session = cookie.split(';').next().expect("pair").to_string();
    let replay = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/ui", root(&s)))
        .header("cookie", session)
        .send()
        .expect("replay");
    assert_eq!(replay.status().as_u16(), 303);
}

/// A SCIM target (`crm`) that refuses scimgate's token: every delivery fails at once,
/// permanently.
pub(crate) fn refusing_target(remote: &TestServer) -> TargetConfig {
    let mut target = TargetConfig::scim("crm", &remote.base);
    target.auth = scimgate::targets::TargetAuth {
        kind: Some(scimgate::targets::AuthKind::Bearer),
        token: Some("wrong".into()),
        ..Default::default()
    };
    target
}

fn find_an_errored_order_and_retry_it(backend: Backend) {
    let remote = TestServer::start(backend);
    let target = refusing_target(&remote);
    let s = TestServer::start_with(backend, |c| fast(c, vec![target]));
    let ann = id_of(&s.create_user(&json!({"userName": "ann"})));
    let order = wait_for("the order to fail", || {
        orders_of(&s, "User", &ann)
            .into_iter()
            .find(|o| o.state.as_str() == "error")
    });

    let browser = browser();
    let ops = api_token::issue_with_role(&s.db, "ops", Role::Operator).expect("token");
    assert_eq!(sign_in(&s, &browser, &ops).status().as_u16(), 303);
    let (status, overview) = page(&s, &browser, "/ui");
    assert_eq!(status, 200);
    assert!(overview.contains("data-target=\"crm\""), "{overview}");
    assert!(
        overview.contains("error&nbsp;1"),
        "the failed order counted: {overview}"
    );
    assert!(overview.contains("<svg class=\"chart\""));

    let (status, listed) = page(&s, &browser, "/ui/orders?target=crm&state=error");
    assert_eq!(status, 200);
    assert!(
        listed.contains(&format!("data-order=\"{}\"", order.id)),
        "{listed}"
    );
    let (_, none) = page(&s, &browser, "/ui/orders?target=crm&state=verified");
    assert!(none.contains("No orders match."));
    assert_eq!(page(&s, &browser, "/ui/orders?state=nonsense").0, 400);

    let path = format!("/ui/orders/{}", order.id);
    let (status, detail) = page(&s, &browser, &path);
    assert_eq!(status, 200);
    assert!(detail.contains("id=\"retry\""), "an operator may retry");
    assert!(detail.contains("became error"), "the timeline: {detail}");
    assert!(
        detail.contains("HTTP 401"),
        "the attempt's answer: {detail}"
    );

    // Without the form's CSRF token the retry is refused and nothing moves.
    let forged = browser
        .post(format!("{}{path}/retry", root(&s)))
        .form(&[("csrf", "forged")])
        .send()
        .expect("post");
    assert_eq!(forged.status().as_u16(), 403);
    assert_eq!(orders_of(&s, "User", &ann)[0].state.as_str(), "error");

    // Retrying gives a fresh budget of attempts: the order's history gains one.
    let attempts = || {
        s.db.read(|c| scimgate::storage::orders::attempts_of(c, order.id))
            .expect("attempts")
            .len()
    };
    let before = attempts();
    let retried = browser
        .post(format!("{}{path}/retry", root(&s)))
        .form(&[("csrf", csrf_of(&detail).as_str())])
        .send()
        .expect("retry");
    assert_eq!(retried.status().as_u16(), 303);
    let location = retried.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let (_, after) = page(&s, &browser, &location);
    assert!(after.contains("retry: the order is now pending"), "{after}");
    wait_for("the retried order to be attempted again", || {
        (attempts() > before).then_some(())
    });

    // A viewer sees no buttons, and posting anyway is refused.
    let viewer = browser_signed_in(&s, Role::Viewer);
    let (_, seen) = page(&s, &viewer, &path);
    assert!(
        !seen.contains("id=\"retry\"") && !seen.contains("id=\"cancel\""),
        "{seen}"
    );
    let refused = viewer
        .post(format!("{}{path}/cancel", root(&s)))
        .form(&[("csrf", csrf_of(&seen).as_str())])
        .send()
        .expect("post");
    assert_eq!(refused.status().as_u16(), 403);
}

pub(crate) fn browser_signed_in(s: &TestServer, role: Role) -> Client {
    let browser = browser();
    let token = api_token::issue_with_role(&s.db, role.as_str(), role).expect("token");
    assert_eq!(sign_in(s, &browser, &token).status().as_u16(), 303);
    browser
}

fn decline_held_orders_in_bulk(backend: Backend) {
    let remote = TestServer::start(backend);
    let mut target = crate::provisioning::target_for(&remote, "hr");
    target.review = scimgate::targets::review::ReviewRules {
        all: true,
        ..Default::default()
    };
    let s = TestServer::start_with(backend, |c| fast(c, vec![target]));
    let ids: Vec<String> = ["d.one", "d.two"]
        .iter()
        .map(|name| id_of(&s.create_user(&json!({"userName": name}))))
        .collect();
    let held: Vec<i64> = ids
        .iter()
        .map(|id| {
            wait_for("the order to be held", || {
                orders_of(&s, "User", id)
                    .into_iter()
                    .find(|o| o.state.as_str() == "awaiting_approval")
            })
            .id
        })
        .collect();

    // A viewer sees what is held but cannot decide.
    let viewer = browser_signed_in(&s, Role::Viewer);
    let (status, seen) = page(&s, &viewer, "/ui/approvals");
    assert_eq!(status, 200);
    assert!(
        seen.contains(&format!("data-order=\"{}\"", held[0])),
        "{seen}"
    );
    assert!(!seen.contains("id=\"approve\"") && !seen.contains("type=\"checkbox\""));
    let refused = viewer
        .post(format!("{}/ui/approvals", root(&s)))
        .form(&[
            ("csrf", csrf_of(&seen).as_str()),
            ("order", &held[0].to_string()),
            ("decision", "approve"),
        ])
        .send()
        .expect("post");
    assert_eq!(refused.status().as_u16(), 403);

    let ops = browser_signed_in(&s, Role::Operator);
    let (_, form) = page(&s, &ops, "/ui/approvals");
    let body = format!(
        "csrf={}&order={}&order={}&decision=decline&comment=not+ours",
        csrf_of(&form),
        held[0],
        held[1]
    );
    let forged = ops
        .post(format!("{}/ui/approvals", root(&s)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.replace(&csrf_of(&form), "forged"))
        .send()
        .expect("post");
    assert_eq!(forged.status().as_u16(), 403);
    let decided = ops
        .post(format!("{}/ui/approvals", root(&s)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .expect("post");
    assert_eq!(decided.status().as_u16(), 303);
    let location = decided.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let (_, after) = page(&s, &ops, &location);
    assert!(after.contains("2 order(s) declined"), "{after}");
    for id in &ids {
        let order = orders_of(&s, "User", id).into_iter().next().expect("order");
        assert_eq!(order.state.as_str(), "inactive");
        assert_eq!(order.decided_by.as_deref(), Some("operator"));
        assert_eq!(order.decision_comment.as_deref(), Some("not ours"));
    }
    assert_eq!(
        remote.get("/Users").body["totalResults"],
        0,
        "nothing was sent"
    );
}

fn work_items_completed_and_failed(backend: Backend) {
    let mut manual = TargetConfig::scim("payroll", "");
    manual.kind = scimgate::targets::TargetKind::Manual;
    let s = TestServer::start_with(backend, |c| fast(c, vec![manual]));
    let ids: Vec<String> = ["w.one", "w.two"]
        .iter()
        .map(|name| id_of(&s.create_user(&json!({"userName": name}))))
        .collect();
    let items = wait_for("two open work items", || {
        let open =
            s.db.read(|c| {
                scimgate::storage::work_items::list(
                    c,
                    &scimgate::provisioning::operator::WorkItemFilter {
                        state: Some("open".into()),
                        limit: 10,
                        ..Default::default()
                    },
                )
            })
            .expect("items");
        (open.len() == 2).then_some(open)
    });
    let viewer = browser_signed_in(&s, Role::Viewer);
    let (status, seen) = page(&s, &viewer, "/ui/work-items");
    assert_eq!(status, 200);
    assert!(
        seen.contains(&items[0].summary),
        "the summary is shown: {seen}"
    );
    assert!(
        !seen.contains("class=\"complete"),
        "a viewer sees no buttons"
    );

    let ops = browser_signed_in(&s, Role::Operator);
    let (_, form) = page(&s, &ops, "/ui/work-items");
    let csrf = csrf_of(&form);
    let done = ops
        .post(format!(
            "{}/ui/work-items/{}/complete",
            root(&s),
            items[0].id
        ))
        .form(&[
            ("csrf", csrf.as_str()),
            ("remote_id", "EMP-1"),
            ("comment", "set up"),
        ])
        .send()
        .expect("complete");
    assert_eq!(done.status().as_u16(), 303);
    let location = done.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(page(&s, &ops, &location).1.contains("completed"));
    let no_reason = ops
        .post(format!("{}/ui/work-items/{}/fail", root(&s), items[1].id))
        .form(&[("csrf", csrf.as_str()), ("reason", " ")])
        .send()
        .expect("fail");
    let location = no_reason.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(page(&s, &ops, &location).1.contains("Say why it failed."));
    let failed = ops
        .post(format!("{}/ui/work-items/{}/fail", root(&s), items[1].id))
        .form(&[("csrf", csrf.as_str()), ("reason", "no budget code")])
        .send()
        .expect("fail");
    assert_eq!(failed.status().as_u16(), 303);
    let (_, after) = page(&s, &ops, "/ui/work-items");
    assert!(after.contains("Nothing to do."), "{after}");
    let by_resource = |id: &str| orders_of(&s, "User", id).into_iter().next().expect("order");
    let first = by_resource(&items[0].resource_id);
    assert_eq!(first.state.as_str(), "executed");
    assert_eq!(first.remote_id.as_deref(), Some("EMP-1"));
    assert_eq!(by_resource(&items[1].resource_id).state.as_str(), "error");
    assert!(ids.contains(&items[0].resource_id));
}

fn viewers_and_forgers_change_nothing(backend: Backend) {
    let remote = TestServer::start(backend);
    let target = crate::provisioning::target_for(&remote, "crm");
    let s = TestServer::start_with(backend, |c| {
        c.targets = vec![target];
        c.worker.enabled = false;
    });
    let id = id_of(&s.create_user(&json!({"userName": "h.one"})));
    let viewer = browser_signed_in(&s, Role::Viewer);
    let (_, reconcile) = page(&s, &viewer, "/ui/reconcile");
    assert!(
        !reconcile.contains("dry-run"),
        "a viewer sees no sync buttons"
    );
    let (_, person) = page(&s, &viewer, &format!("/ui/people/users/{id}"));
    assert!(!person.contains("Provision now"));
    let csrf = csrf_of(&person);
    for (path, form) in [
        (
            "/ui/reconcile/crm/sync".to_string(),
            vec![("csrf", csrf.as_str()), ("dry_run", "true")],
        ),
        (
            format!("/ui/people/users/{id}/provision/crm"),
            vec![("csrf", csrf.as_str())],
        ),
    ] {
        let refused = viewer
            .post(format!("{}{path}", root(&s)))
            .form(&form)
            .send()
            .expect("post");
        assert_eq!(refused.status().as_u16(), 403, "{path}");
    }
    let ops = browser_signed_in(&s, Role::Operator);
    for path in [
        "/ui/reconcile/crm/sync".to_string(),
        format!("/ui/people/users/{id}/provision/crm"),
    ] {
        let forged = ops
            .post(format!("{}{path}", root(&s)))
            .form(&[("csrf", "forged"), ("dry_run", "true")])
            .send()
            .expect("post");
        assert_eq!(forged.status().as_u16(), 403, "{path}");
    }
    let runs = scimgate::reconcile::runs::runs_of(&s.db, "crm", 10).expect("runs");
    assert!(runs.is_empty(), "no sync was started");
    assert_eq!(
        remote.get("/Users").body["totalResults"],
        0,
        "nothing was provisioned"
    );
}

crate::for_each_backend!(
    work_items_completed_and_failed,
    viewers_and_forgers_change_nothing,
    sign_in_and_out,
    find_an_errored_order_and_retry_it,
    decline_held_orders_in_bulk,
    targets_created_edited_and_tested_in_forms
);

/// What the redirect of a console action says (its `done` parameter).
fn said(response: reqwest::blocking::Response) -> String {
    assert_eq!(response.status().as_u16(), 303, "a redirect");
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("location")
        .to_string();
    let url = url::Url::parse(&format!("http://x{location}")).expect("location URL");
    url.query_pairs()
        .find(|(k, _)| k == "done")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn post_form(
    s: &TestServer,
    browser: &Client,
    path: &str,
    form: &impl serde::Serialize,
) -> reqwest::blocking::Response {
    browser
        .post(format!("{}{path}", root(s)))
        .form(form)
        .send()
        .expect("post")
}

fn targets_created_edited_and_tested_in_forms(backend: Backend) {
    let remote = TestServer::start(backend);
    let filed = crate::provisioning::target_for(&remote, "filed");
    let s = TestServer::start_with(backend, |c| fast(c, vec![filed]));
    let ops = crate::admin_targets::Ops::on(&s);
    let admin = browser_signed_in(&s, Role::Admin);
    let (status, list) = page(&s, &admin, "/ui/targets");
    assert_eq!(status, 200);
    assert!(list.contains("data-target=\"filed\"") && list.contains("read-only here"));
    let (status, blank) = page(&s, &admin, "/ui/targets/new");
    assert_eq!(status, 200);
    let csrf = csrf_of(&blank);
    let token = remote.token.clone();
    let form = |filter: &'static str, other: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", "crm".to_string()),
            ("kind", "scim".into()),
            ("url", remote.base.clone()),
            ("enabled", "on".into()),
            ("users", "on".into()),
            ("groups", "on".into()),
            ("users_filter", filter.into()),
            ("deprovision", "delete".into()),
            ("auth_type", "bearer".into()),
            ("secret", token.clone()),
            ("other", other.into()),
        ]
    };

    // Refused forms come back with why, filled in but without the secret, and store nothing.
    for (filter, other, why) in [
        ("userName eq", "{}", "users_filter"),
        (
            "",
            "{\"users_filter\": \"active eq true\"}",
            "with its own field",
        ),
        ("", "{\"max_attempts\": ", "not valid JSON"),
        ("", "{\"no_such_setting\": 1}", "no_such_setting"),
    ] {
        let refused = post_form(&s, &admin, "/ui/targets", &form(filter, other));
        assert_eq!(refused.status().as_u16(), 400, "{other}");
        let text = refused.text().expect("page");
        assert!(text.contains(why), "{why}: {text}");
        assert!(text.contains("id=\"form-error\""));
        assert!(!text.contains(&token), "the secret is not sent back");
    }
    assert_eq!(
        ops.call(reqwest::Method::GET, "/targets/crm", None).status,
        404
    );

    // Created: the admin API shows it as the form said, and users reach it without a restart.
    let settings = "{\"max_attempts\": 3, \"retry_base_ms\": 50}";
    let created = post_form(&s, &admin, "/ui/targets", &form("", settings));
    assert_eq!(said(created), "crm created");
    let stored = ops.call(reqwest::Method::GET, "/targets/crm", None);
    assert_eq!(stored.status, 200);
    assert_eq!(stored.body["source"], "api");
    assert_eq!(stored.body["config"]["max_attempts"], 3);
    assert_eq!(stored.body["config"]["auth"]["token"], "********");
    s.create_user(&json!({"userName": "ann"}));
    wait_for("ann on crm", || {
        let found = remote.get("/Users?filter=userName%20eq%20%22ann%22").body["totalResults"] == 1;
        found.then_some(())
    });
    let again = post_form(&s, &admin, "/ui/targets", &form("", "{}"));
    assert_eq!(again.status().as_u16(), 409, "the name is taken");

    // Edited: the form shows the settings without the secret; leaving it empty keeps it.
    let (status, edit) = page(&s, &admin, "/ui/targets/crm/edit");
    assert_eq!(status, 200);
    assert!(edit.contains("max_attempts") && !edit.contains(&token));
    let version = stored.body["version"]
        .as_i64()
        .expect("version")
        .to_string();
    let mut change = form("userName sw \"a\"", "{\"max_attempts\": 5}");
    change.retain(|(k, _)| *k != "secret" && *k != "name");
    change.push(("version", version.clone()));
    let saved = post_form(&s, &admin, "/ui/targets/crm", &change);
    assert_eq!(said(saved), "crm saved");
    let changed = ops.call(reqwest::Method::GET, "/targets/crm", None);
    assert_eq!(changed.body["config"]["max_attempts"], 5);
    assert_eq!(changed.body["usersFilter"], "userName sw \"a\"");
    let stale = post_form(&s, &admin, "/ui/targets/crm", &change);
    assert_eq!(
        stale.status().as_u16(),
        409,
        "a form read before a change does not overwrite it"
    );
    assert!(stale
        .text()
        .expect("page")
        .contains("changed or was deleted meanwhile"));

    // Tested: the kept token works; a wrong one fails and says so.
    let tested = post_form(&s, &admin, "/ui/targets/crm/test", &[("csrf", &csrf)]);
    let outcome = said(tested);
    assert!(
        outcome.starts_with("Connection test of crm: ok in"),
        "{outcome}"
    );
    let version = ops.call(reqwest::Method::GET, "/targets/crm", None).body["version"].to_string();
    let mut wrong = form("", "{}");
    wrong.retain(|(k, _)| *k != "secret");
    wrong.push(("secret", "wrong".into()));
    wrong.push(("version", version));
    assert_eq!(
        said(post_form(&s, &admin, "/ui/targets/crm", &wrong)),
        "crm saved"
    );
    let outcome = said(post_form(
        &s,
        &admin,
        "/ui/targets/crm/test",
        &[("csrf", &csrf)],
    ));
    assert!(
        outcome.contains("failed") && outcome.contains("401"),
        "{outcome}"
    );

    // Disabled and enabled; the config file's target is read-only.
    assert_eq!(
        said(post_form(
            &s,
            &admin,
            "/ui/targets/crm/disable",
            &[("csrf", &csrf)]
        )),
        "crm disabled"
    );
    assert_eq!(
        ops.call(reqwest::Method::GET, "/targets/crm", None).body["enabled"],
        false
    );
    assert_eq!(
        said(post_form(
            &s,
            &admin,
            "/ui/targets/crm/enable",
            &[("csrf", &csrf)]
        )),
        "crm enabled"
    );
    assert_eq!(
        ops.call(reqwest::Method::GET, "/targets/crm", None).body["enabled"],
        true
    );
    let outcome = said(post_form(
        &s,
        &admin,
        "/ui/targets/filed/disable",
        &[("csrf", &csrf)],
    ));
    assert!(outcome.contains("read-only"), "{outcome}");
    assert_eq!(
        ops.call(reqwest::Method::GET, "/targets/filed", None).body["enabled"],
        true
    );

    // An operator may test but not change; a viewer neither; a forged form nothing.
    let operator = browser_signed_in(&s, Role::Operator);
    let (_, seen) = page(&s, &operator, "/ui/targets");
    assert!(
        seen.contains("Test connection")
            && !seen.contains("New target")
            && !seen.contains("class=\"edit")
    );
    let op_csrf = csrf_of(&seen);
    assert_eq!(page(&s, &operator, "/ui/targets/new").0, 403);
    assert_eq!(page(&s, &operator, "/ui/targets/crm/edit").0, 403);
    let by_operator = said(post_form(
        &s,
        &operator,
        "/ui/targets/filed/test",
        &[("csrf", &op_csrf)],
    ));
    assert!(by_operator.contains("ok in"), "{by_operator}");
    for path in ["/ui/targets/crm/disable", "/ui/targets"] {
        let refused = post_form(
            &s,
            &operator,
            path,
            &[
                ("csrf", op_csrf.as_str()),
                ("name", "x"),
                ("url", remote.base.as_str()),
            ],
        );
        assert_eq!(refused.status().as_u16(), 403, "{path}");
    }
    let viewer = browser_signed_in(&s, Role::Viewer);
    let (_, seen) = page(&s, &viewer, "/ui/targets");
    assert!(!seen.contains("Test connection"));
    let refused = post_form(
        &s,
        &viewer,
        "/ui/targets/crm/test",
        &[("csrf", &csrf_of(&seen))],
    );
    assert_eq!(refused.status().as_u16(), 403);
    let forged = post_form(&s, &admin, "/ui/targets/crm/disable", &[("csrf", "forged")]);
    assert_eq!(forged.status().as_u16(), 403);
    assert_eq!(
        ops.call(reqwest::Method::GET, "/targets/crm", None).body["enabled"],
        true
    );
    assert_eq!(
        ops.call(reqwest::Method::GET, "/targets/x", None).status,
        404
    );
}
