//! The console in a real browser (headless Chromium over WebDriver) against a real scimgate
//! and a real SCIM target: sign in, see the target's health, find the errored order and retry
//! it, see a form without its CSRF token refused, sign out. Each page's screenshot is kept in
//! `target/console-screenshots/`.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;

use scimgate::auth::{api_token, Role};

use crate::browser::{screenshot_dir, Driver};
use crate::harness::{id_of, Backend, TestServer};
use crate::provisioning::{fast, orders_of, wait_for};

async fn snap(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).expect("save screenshot");
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

/// Waits until the page's source contains `what`.
async fn until_page_says(browser: &Client, what: &str) {
    for _ in 0..100 {
        if browser.source().await.is_ok_and(|s| s.contains(what)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let source = browser.source().await.unwrap_or_default();
    panic!("the page never said {what:?}:\n{source}");
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Replaces what the field `id` holds with `text`.
async fn fill(browser: &Client, id: &str, text: &str) {
    let field = browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// A browser run against `s`: the driver, a runtime for it, and an operator's token.
struct Run {
    driver: Driver,
    runtime: tokio::runtime::Runtime,
    root: String,
    /// Screenshot names start with the backend's.
    prefix: String,
    token: String,
}

fn browser_run(s: &TestServer, backend: Backend, operator: &str) -> Run {
    Run {
        driver: Driver::start(),
        runtime: tokio::runtime::Runtime::new().expect("runtime"),
        root: s.base.replace("/scim/v2", ""),
        prefix: format!("{backend:?}").to_lowercase(),
        token: api_token::issue_with_role(&s.db, operator, Role::Operator).expect("token"),
    }
}

fn operator_console_in_a_browser(backend: Backend) {
    // A target that refuses scimgate's token: the order ends in error.
    let remote = TestServer::start(backend);
    let target = crate::console::refusing_target(&remote);
    let s = TestServer::start_with(backend, |c| fast(c, vec![target]));
    let ann = id_of(&s.create_user(&json!({"userName": "ann"})));
    let order = wait_for("the order to fail", || {
        orders_of(&s, "User", &ann)
            .into_iter()
            .find(|o| o.state.as_str() == "error")
    });
    let Run {
        driver,
        runtime,
        root,
        prefix,
        token,
    } = browser_run(&s, backend, "alice");
    runtime.block_on(async {
        let browser = driver.session().await;
        browser.goto(&format!("{root}/ui")).await.expect("open");
        // Not signed in: the sign-in page.
        assert!(browser
            .current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/ui/login"));
        snap(&browser, &format!("{prefix}-sign-in")).await;
        fill(&browser, "token", &token).await;
        click(&browser, "#sign-in").await;
        until_page_says(&browser, "token:alice (operator)").await;

        // The overview: the target, unhealthy orders counted.
        let health = text_of(&browser, "tr[data-target=\"crm\"] td.counts").await;
        assert!(health.contains("error 1"), "{health}");
        snap(&browser, &format!("{prefix}-overview")).await;

        // From the count to the order.
        click(&browser, "tr[data-target=\"crm\"] td.counts a").await;
        until_page_says(&browser, &format!("data-order=\"{}\"", order.id)).await;
        snap(&browser, &format!("{prefix}-orders")).await;
        click(&browser, &format!("tr[data-order=\"{}\"] a", order.id)).await;
        until_page_says(&browser, "became error").await;
        assert_eq!(text_of(&browser, "#order-state").await, "error");
        snap(&browser, &format!("{prefix}-order")).await;

        // A form stripped of its CSRF token is refused, and the order stays as it was.
        browser
            .execute(
                "document.querySelector('form[action$=\"/retry\"] input[name=csrf]').remove();",
                vec![],
            )
            .await
            .expect("strip the token");
        click(&browser, "#retry").await;
        until_page_says(&browser, "refused").await;
        assert_eq!(orders_of(&s, "User", &ann)[0].state.as_str(), "error");

        // The real form retries it.
        browser.back().await.expect("back");
        browser.refresh().await.expect("reload the form");
        click(&browser, "#retry").await;
        until_page_says(&browser, "retry: the order is now pending").await;
        snap(&browser, &format!("{prefix}-retried")).await;

        click(&browser, "#sign-out").await;
        until_page_says(&browser, "Sign in").await;
        assert!(browser
            .current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/ui/login"));
        // Signed out: the console is closed again.
        browser
            .goto(&format!("{root}/ui/orders"))
            .await
            .expect("open");
        assert!(browser
            .current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/ui/login"));
        browser.close().await.expect("close");
    });
}

/// Signs `token` in on a fresh browser session.
async fn signed_in(driver: &Driver, root: &str, token: &str) -> Client {
    let browser = driver.session().await;
    browser
        .goto(&format!("{root}/ui/login"))
        .await
        .expect("open");
    fill(&browser, "token", token).await;
    click(&browser, "#sign-in").await;
    until_page_says(&browser, "Sign out").await;
    browser
}

fn approve_a_held_deprovisioning(backend: Backend) {
    let remote = TestServer::start(backend);
    let mut target = crate::provisioning::target_for(&remote, "hr");
    target.review = scimgate::targets::review::ReviewRules {
        deprovisioning: true,
        ..Default::default()
    };
    let s = TestServer::start_with(backend, |c| fast(c, vec![target]));
    let bob = id_of(&s.create_user(&json!({"userName": "bob"})));
    wait_for("bob on the target", || {
        let found = remote.get("/Users?filter=userName%20eq%20%22bob%22");
        (found.body["totalResults"] == 1).then_some(())
    });
    assert_eq!(s.delete(&format!("/Users/{bob}")).status, 204);
    let held = wait_for("the deletion to be held", || {
        orders_of(&s, "User", &bob)
            .into_iter()
            .find(|o| o.state.as_str() == "awaiting_approval")
    });
    let Run {
        driver,
        runtime,
        root,
        prefix,
        token,
    } = browser_run(&s, backend, "carol");
    runtime.block_on(async {
        let browser = signed_in(&driver, &root, &token).await;
        browser
            .goto(&format!("{root}/ui/approvals"))
            .await
            .expect("open");
        until_page_says(&browser, &format!("data-order=\"{}\"", held.id)).await;
        let why = text_of(&browser, &format!("tr[data-order=\"{}\"] td.warn", held.id)).await;
        assert!(!why.is_empty(), "the page says why it is held");
        snap(&browser, &format!("{prefix}-approvals")).await;
        click(
            &browser,
            &format!("input[name=order][value=\"{}\"]", held.id),
        )
        .await;
        fill(&browser, "comment", "leaver confirmed by HR").await;
        click(&browser, "#approve").await;
        until_page_says(&browser, "1 order(s) approved").await;
        until_page_says(&browser, "Nothing waits for a decision.").await;
        browser.close().await.expect("close");
    });
    let decided = orders_of(&s, "User", &bob)
        .into_iter()
        .find(|o| o.id == held.id)
        .expect("the order");
    assert_eq!(decided.decided_by.as_deref(), Some("carol"));
    assert_eq!(
        decided.decision_comment.as_deref(),
        Some("leaver confirmed by HR")
    );
    wait_for("bob to be gone from the target", || {
        let found = remote.get("/Users?filter=userName%20eq%20%22bob%22");
        (found.body["totalResults"] == 0).then_some(())
    });
}

fn dry_run_and_its_drift_report(backend: Backend) {
    let remote = TestServer::start(backend);
    let target = crate::provisioning::target_for(&remote, "crm");
    // No workers: the drift below stays as it is until someone acts on it.
    let s = TestServer::start_with(backend, |c| {
        c.targets = vec![target];
        c.worker.enabled = false;
    });
    s.create_user(&json!({"userName": "carl", "displayName": "Carl Source"}));
    s.create_user(&json!({"userName": "dora", "displayName": "Dora"}));
    remote.create_user(&json!({"userName": "carl", "displayName": "Carl Drifted"}));
    remote.create_user(&json!({"userName": "orphan1", "displayName": "Nobody"}));
    let Run {
        driver,
        runtime,
        root,
        prefix,
        token,
    } = browser_run(&s, backend, "erin");
    runtime.block_on(async {
        let browser = signed_in(&driver, &root, &token).await;
        browser
            .goto(&format!("{root}/ui/reconcile"))
            .await
            .expect("open");
        until_page_says(&browser, "No runs yet.").await;
        click(&browser, "div[data-target=\"crm\"] button.dry-run").await;
        // The run page refreshes itself (htmx) until the run has finished.
        until_page_says(&browser, "<strong id=\"run-state\">completed</strong>").await;
        let missing = text_of(&browser, "tr.finding-missing").await;
        assert!(missing.contains("create"), "{missing}");
        let differs = text_of(&browser, "tr.finding-differs").await;
        assert!(
            differs.contains("displayName")
                && differs.contains("Carl Source")
                && differs.contains("Carl Drifted"),
            "expected and actual values: {differs}"
        );
        let orphan = text_of(&browser, "tr.finding-orphan").await;
        assert!(!orphan.is_empty());
        snap(&browser, &format!("{prefix}-drift-report")).await;
        browser
            .goto(&format!("{root}/ui/reconcile"))
            .await
            .expect("open");
        until_page_says(&browser, "dry run").await;
        snap(&browser, &format!("{prefix}-reconciliation")).await;
        browser.close().await.expect("close");
    });
    // A dry run sends nothing.
    assert_eq!(
        remote.get("/Users?filter=userName%20eq%20%22dora%22").body["totalResults"],
        0
    );
}

fn find_a_user_and_provision_on_demand(backend: Backend) {
    let remote = TestServer::start(backend);
    let target = crate::provisioning::target_for(&remote, "crm");
    // No workers: only the button sends the user.
    let s = TestServer::start_with(backend, |c| {
        c.targets = vec![target];
        c.worker.enabled = false;
    });
    s.create_user(&json!({"userName": "fiona", "displayName": "Fiona F"}));
    s.create_user(&json!({"userName": "frank"}));
    let Run {
        driver,
        runtime,
        root,
        prefix,
        token,
    } = browser_run(&s, backend, "gus");
    runtime.block_on(async {
        let browser = signed_in(&driver, &root, &token).await;
        browser
            .goto(&format!("{root}/ui/people"))
            .await
            .expect("open");
        // A filter that does not parse says so.
        fill(&browser, "filter", "userName eq").await;
        click(&browser, "#search").await;
        until_page_says(&browser, "The filter is not valid").await;
        fill(&browser, "filter", "userName sw \"fi\"").await;
        click(&browser, "#search").await;
        until_page_says(&browser, "1 found").await;
        browser
            .find(Locator::LinkText("fiona"))
            .await
            .expect("the user")
            .click()
            .await
            .expect("open");
        until_page_says(&browser, "not linked").await;
        snap(&browser, &format!("{prefix}-person")).await;
        click(&browser, "tr[data-target=\"crm\"] button.provision").await;
        until_page_says(&browser, "Provisioned fiona").await;
        let result = text_of(&browser, "#trace-result").await;
        assert!(
            matches!(result.as_str(), "verified" | "executed"),
            "{result}"
        );
        for step in ["scope", "mapping", "result"] {
            let shown = text_of(&browser, &format!("li.step-{step}")).await;
            assert!(shown.contains(step), "{step}: {shown}");
        }
        snap(&browser, &format!("{prefix}-on-demand-trace")).await;
        browser.close().await.expect("close");
    });
    let arrived = remote.get("/Users?filter=userName%20eq%20%22fiona%22");
    assert_eq!(
        arrived.body["totalResults"], 1,
        "the user reached the target"
    );
    assert_eq!(
        remote.get("/Users?filter=userName%20eq%20%22frank%22").body["totalResults"],
        0
    );
}

/// An admin creates a target in the form, tests its connection, has a wrong filter refused
/// with why, fixes it (the secret left empty is kept) and disables the target.
fn manage_a_target_in_a_browser(backend: Backend) {
    let remote = TestServer::start(backend);
    let s = TestServer::start_with(backend, |c| fast(c, vec![]));
    let Run {
        driver,
        runtime,
        root,
        prefix,
        ..
    } = browser_run(&s, backend, "grace");
    let admin = api_token::issue_with_role(&s.db, "hana", Role::Admin).expect("token");
    runtime.block_on(async {
        let browser = signed_in(&driver, &root, &admin).await;
        click(&browser, "header a[href=\"/ui/targets\"]").await;
        click(&browser, "#new-target").await;
        until_page_says(&browser, "New target").await;
        fill(&browser, "name", "crm").await;
        fill(&browser, "url", &remote.base).await;
        fill(&browser, "secret", &remote.token).await;
        fill(&browser, "other", "{\"retry_base_ms\": 50}").await;
        snap(&browser, &format!("{prefix}-target-new")).await;
        click(&browser, "#save-target").await;
        until_page_says(&browser, "crm created").await;
        click(&browser, "tr[data-target=\"crm\"] button.test").await;
        until_page_says(&browser, "Connection test of crm: ok in").await;
        snap(&browser, &format!("{prefix}-targets")).await;

        click(&browser, "tr[data-target=\"crm\"] a.edit").await;
        until_page_says(&browser, "Edit target crm").await;
        fill(&browser, "users_filter", "userName eq").await;
        click(&browser, "#save-target").await;
        until_page_says(&browser, "id=\"form-error\"").await;
        let error = text_of(&browser, "#form-error").await;
        assert!(error.contains("users_filter"), "{error}");
        snap(&browser, &format!("{prefix}-target-refused")).await;
        fill(&browser, "users_filter", "userName sw \"a\"").await;
        click(&browser, "#save-target").await;
        until_page_says(&browser, "crm saved").await;
        // The secret left empty in the edit form was kept.
        click(&browser, "tr[data-target=\"crm\"] button.test").await;
        until_page_says(&browser, "Connection test of crm: ok in").await;
        click(&browser, "tr[data-target=\"crm\"] button.disable").await;
        until_page_says(&browser, "crm disabled").await;
        let enabled = text_of(&browser, "tr[data-target=\"crm\"] td.enabled").await;
        assert_eq!(enabled, "no");
        browser.close().await.expect("close");
    });
    let stored = crate::admin_targets::Ops::on(&s).call(reqwest::Method::GET, "/targets/crm", None);
    assert_eq!(stored.body["usersFilter"], "userName sw \"a\"");
    assert_eq!(stored.body["enabled"], false);
    assert_eq!(stored.body["config"]["retry_base_ms"], 50);
}

crate::for_each_backend!(
    manage_a_target_in_a_browser,
    operator_console_in_a_browser,
    find_a_user_and_provision_on_demand,
    approve_a_held_deprovisioning,
    dry_run_and_its_drift_report
);
