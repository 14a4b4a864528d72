//! Outbound provisioning end to end: users and groups pushed into scimgate over SCIM arrive in
//! a real SCIM target (a second scimgate), with order states recorded on the way.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use scimgate::config::Config;
use scimgate::storage::orders::{self, Order};
use scimgate::targets::{TargetAuth, TargetConfig};

use crate::harness::{id_of, Backend, TestServer};
use crate::rfc7644_patch::patch;

pub(crate) fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

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

/// The target's user with this userName, if it has one.
fn remote_user(app: &TestServer, user_name: &str) -> Option<Value> {
    let r = app.get(&format!("/Users?filter=userName%20eq%20%22{user_name}%22"));
    r.body["Resources"]
        .as_array()
        .and_then(|a| a.first().cloned())
}

pub(crate) fn orders_of(s: &TestServer, kind: &str, id: &str) -> Vec<Order> {
    s.db.read(|c| orders::of_resource(c, kind, id))
        .expect("orders")
}

pub(crate) fn settled(s: &TestServer, kind: &str, id: &str) -> bool {
    let list = orders_of(s, kind, id);
    !list.is_empty()
        && list
            .iter()
            .all(|o| matches!(o.state.as_str(), "executed" | "verified" | "inactive"))
}

/// The states an order went through, in order.
pub(crate) fn transitions(s: &TestServer, order: i64) -> Vec<String> {
    s.db.read(|c| orders::transitions_of(c, order))
        .expect("transitions")
        .into_iter()
        .map(|t| t.state)
        .collect()
}

fn users_and_groups_arrive_with_translated_members(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let s = TestServer::start_with(backend, |c| fast(c, vec![target_for(&app, "app")]));

    let alice = s.create_user(&json!({"userName": "alice", "name": {"givenName": "Alice", "familyName": "Liddell"},
        "emails": [{"value": "alice@example.com", "type": "work", "primary": true}], "title": "Explorer"}));
    let alice_id = id_of(&alice);
    let remote = wait_for("alice on the target", || remote_user(&app, "alice"));
    assert_eq!(
        remote["externalId"],
        alice_id.as_str(),
        "our id is the target's externalId"
    );
    assert_eq!(remote["name"]["familyName"], "Liddell");
    assert_eq!(remote["emails"][0]["value"], "alice@example.com");
    let remote_alice = id_of(&remote);
    assert_ne!(remote_alice, alice_id, "the target assigns its own ids");

    // An update travels too.
    patch(
        &s,
        &format!("/Users/{alice_id}"),
        json!([{"op": "replace", "path": "title", "value": "Queen"}]),
    );
    wait_for("the new title", || {
        remote_user(&app, "alice").filter(|u| u["title"] == "Queen")
    });

    // A group arrives with its member translated to the target's id.
    let group =
        s.create_group(&json!({"displayName": "Wonderland", "members": [{"value": alice_id}]}));
    let gid = id_of(&group);
    let remote_group = wait_for("the group on the target", || {
        let r = app.get("/Groups?filter=displayName%20eq%20%22Wonderland%22");
        r.body["Resources"]
            .as_array()
            .and_then(|a| a.first().cloned())
    });
    assert_eq!(remote_group["members"][0]["value"], remote_alice.as_str());
    assert_eq!(remote_group["externalId"], gid.as_str());

    // Every order executed, with its attempts and transitions recorded.
    wait_for("alice's orders to settle", || {
        settled(&s, "User", &alice_id).then_some(())
    });
    let list = orders_of(&s, "User", &alice_id);
    let first = &list[0];
    assert_eq!(first.target, "app");
    let attempts =
        s.db.read(|c| orders::attempts_of(c, first.id))
            .expect("attempts");
    assert_eq!(attempts.len() as i32, first.attempts);
    let transitions = transitions(&s, first.id);
    assert_eq!(transitions.first().map(String::as_str), Some("pending"));
    assert!(
        transitions.iter().any(|t| t == "transmitted"),
        "{transitions:?}"
    );

    // Deleting the user removes it there, and the group loses the member.
    assert_eq!(s.delete(&format!("/Users/{alice_id}")).status, 204);
    wait_for("alice gone from the target", || {
        remote_user(&app, "alice").is_none().then_some(())
    });
    wait_for("the member removed", || {
        let g = app.get(&format!("/Groups/{}", id_of(&remote_group)));
        g.body.get("members").is_none().then_some(())
    });
}

/// A user already on the target (created by hand) is linked, not duplicated.
fn existing_accounts_are_correlated(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let by_hand = app.create_user(&json!({"userName": "bob", "title": "Manual"}));
    let s = TestServer::start_with(backend, |c| fast(c, vec![target_for(&app, "app")]));
    let bob = id_of(&s.create_user(&json!({"userName": "bob", "title": "Synced"})));
    wait_for("bob's order", || settled(&s, "User", &bob).then_some(()));
    let all = app.get("/Users");
    assert_eq!(all.body["totalResults"], 1, "no duplicate");
    assert_eq!(all.body["Resources"][0]["id"], by_hand["id"]);
    assert_eq!(all.body["Resources"][0]["title"], "Synced");
}

/// Scope: only users matching the filter go out; one that leaves the scope is deprovisioned.
fn scope_entry_and_exit(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let mut t = target_for(&app, "engineers");
    t.users_filter = Some("title eq \"Engineer\"".into());
    let s = TestServer::start_with(backend, |c| fast(c, vec![t]));
    let carol = id_of(&s.create_user(&json!({"userName": "carol", "title": "Sales"})));
    wait_for("carol's order", || {
        settled(&s, "User", &carol).then_some(())
    });
    assert!(remote_user(&app, "carol").is_none(), "out of scope");
    patch(
        &s,
        &format!("/Users/{carol}"),
        json!([{"op": "replace", "path": "title", "value": "Engineer"}]),
    );
    wait_for("carol provisioned", || remote_user(&app, "carol"));
    patch(
        &s,
        &format!("/Users/{carol}"),
        json!([{"op": "replace", "path": "title", "value": "Manager"}]),
    );
    wait_for("carol deprovisioned", || {
        remote_user(&app, "carol").is_none().then_some(())
    });
}

/// An unreachable target: orders are retried with backoff, then given up as `Error`.
fn unreachable_targets_are_retried_then_given_up(backend: Backend) {
    let url = crate::harness::refusing_url();
    let mut t = TargetConfig::scim("down", &url);
    t.retry_base_ms = 50;
    t.max_attempts = 3;
    let s = TestServer::start_with(backend, |c| fast(c, vec![t]));
    let dave = id_of(&s.create_user(&json!({"userName": "dave"})));
    let order = wait_for("the order to be given up", || {
        orders_of(&s, "User", &dave)
            .into_iter()
            .find(|o| o.state.as_str() == "error")
    });
    assert_eq!(order.attempts, 3);
    assert!(
        order
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("request failed")),
        "{:?}",
        order.last_error
    );
    let states = transitions(&s, order.id);
    assert_eq!(
        states.iter().filter(|st| *st == "errored").count(),
        2,
        "{states:?}"
    );
    let attempts =
        s.db.read(|c| orders::attempts_of(c, order.id))
            .expect("attempts");
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts
            .windows(2)
            .all(|w| w[1].started_at - w[0].started_at >= 30_000),
        "backoff between attempts"
    );
}

/// Drives the engine by hand: no background worker, one round at a time.
fn manual(s: &TestServer, targets: Vec<TargetConfig>) -> scimgate::provisioning::Engine {
    let mut config = Config {
        targets,
        ..Config::default()
    };
    config.worker.lease_seconds = 1;
    let directory = scimgate::identity::Directory::new(s.db.clone(), &s.base);
    let context = scimgate::provisioning::Context::new(directory, s.db.clone());
    scimgate::app::engine(&config, context)
        .expect("engine")
        .expect("targets configured")
}

fn round(engine: &scimgate::provisioning::Engine) -> usize {
    actix_web::rt::System::new()
        .block_on(engine.round())
        .expect("round")
}

/// A live worker renews its leases (every third of `lease_seconds`), so a delivery that takes
/// longer than a lease is not taken from it by another worker; a restarted instance gives
/// back at once what its previous run held, instead of when those leases run out.
fn heartbeats_keep_leases_and_restarts_give_them_back(backend: Backend) {
    use crate::faulty_target::{Fault, FaultyTarget};
    let slow = FaultyTarget::start(vec![Fault::Slow(Duration::from_millis(3_000))]);
    let mut t = TargetConfig::scim("slow", &slow.base);
    t.groups = false;
    let s = TestServer::start_with(backend, |c| {
        fast(c, vec![t.clone()]);
        c.worker.lease_seconds = 1;
    });
    let id = id_of(&s.create_user(&json!({"userName": "patient"})));
    // Another worker on the same database reclaims expired leases every round meanwhile.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !settled(&s, "User", &id) {
        orders::reclaim_expired(&s.db).expect("reclaim");
        assert!(std::time::Instant::now() < deadline, "never delivered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let order = orders_of(&s, "User", &id).remove(0);
    assert_eq!(
        order.attempts, 1,
        "delivered once, its lease kept: {order:?}"
    );
    let states = transitions(&s, order.id);
    assert!(!states.contains(&"errored".to_string()), "{states:?}");

    // A run of instance "east" died holding an order with a long lease; "east" restarts.
    let app = TestServer::start(Backend::Sqlite);
    let target = target_for(&app, "app");
    let dead = TestServer::start_with(backend, |c| c.worker.enabled = false);
    let held = id_of(&dead.create_user(&json!({"userName": "orphaned"})));
    let planned = scimgate::provisioning::Target::from_config(&target).expect("target");
    scimgate::provisioning::planner::plan(&dead.db, &[std::sync::Arc::new(planned)], 100)
        .expect("plan");
    let taken = orders::claim(
        &dead.db,
        "app",
        "east/previous-run",
        600_000_000,
        10,
        orders::Coalesce::Superseded,
    )
    .expect("claim");
    assert_eq!(taken.len(), 1);
    let url = dead.database_url.clone();
    let restarted = TestServer::start_with(backend, |c| {
        fast(c, vec![target]);
        c.database_url = url;
        c.worker.instance = Some("east".into());
    });
    wait_for(
        "the held order delivered long before its lease ends",
        || remote_user(&app, "orphaned"),
    );
    wait_for("settled", || {
        settled(&restarted, "User", &held).then_some(())
    });
}

/// Several changes queued for one resource go out as one, in the latest state; a create
/// followed by a delete sends nothing.
fn coalescing_and_order_per_resource(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let s = TestServer::start_with(backend, |c| c.worker.enabled = false);
    let engine = manual(&s, vec![target_for(&app, "app")]);
    let erin = id_of(&s.create_user(&json!({"userName": "erin", "title": "v1"})));
    for v in 2..=4 {
        patch(
            &s,
            &format!("/Users/{erin}"),
            json!([{"op": "replace", "path": "title", "value": format!("v{v}")}]),
        );
    }
    let ghost = id_of(&s.create_user(&json!({"userName": "ghost"})));
    assert_eq!(s.delete(&format!("/Users/{ghost}")).status, 204);
    for _ in 0..5 {
        round(&engine);
    }
    let states: Vec<String> = orders_of(&s, "User", &erin)
        .into_iter()
        .map(|o| o.state.as_str().to_string())
        .collect();
    assert_eq!(
        states,
        ["inactive", "inactive", "inactive", "verified"],
        "only the newest order is sent"
    );
    let remote = remote_user(&app, "erin").expect("erin arrived");
    assert_eq!(remote["title"], "v4");
    let ghost_orders: Vec<String> = orders_of(&s, "User", &ghost)
        .into_iter()
        .map(|o| o.state.as_str().to_string())
        .collect();
    assert_eq!(ghost_orders, ["inactive", "executed"]);
    assert!(
        remote_user(&app, "ghost").is_none(),
        "create then delete sends nothing"
    );
    assert_eq!(app.get("/Users").body["totalResults"], 1);
}

/// A worker that dies mid-delivery leaves its order `Transmitted`; once the lease expires another
/// worker redelivers it, and the target ends with exactly one account.
fn expired_leases_are_reclaimed_without_duplicates(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let s = TestServer::start_with(backend, |c| c.worker.enabled = false);
    let engine = manual(&s, vec![target_for(&app, "app")]);
    let frank = id_of(&s.create_user(&json!({"userName": "frank"})));
    round(&engine);
    assert!(remote_user(&app, "frank").is_some());

    // The next change is planned, then taken by a worker that dies (its lease: 1 µs).
    patch(
        &s,
        &format!("/Users/{frank}"),
        json!([{"op": "replace", "path": "title", "value": "final"}]),
    );
    let target =
        scimgate::provisioning::Target::from_config(&target_for(&app, "app")).expect("target");
    scimgate::provisioning::planner::plan(&s.db, &[std::sync::Arc::new(target)], 100)
        .expect("plan");
    let taken = orders::claim(
        &s.db,
        "app",
        "dead-worker",
        1,
        10,
        orders::Coalesce::Superseded,
    )
    .expect("claim");
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].state.as_str(), "transmitted");
    s.clock.advance(Duration::from_millis(5));

    for _ in 0..3 {
        round(&engine);
    }
    let order = orders_of(&s, "User", &frank)
        .into_iter()
        .find(|o| o.id == taken[0].id)
        .expect("order");
    assert_eq!(order.state.as_str(), "verified", "{order:?}");
    assert_eq!(order.attempts, 2, "the lost attempt and the redelivery");
    let transitions = transitions(&s, order.id);
    assert_eq!(
        transitions,
        [
            "pending",
            "transmitted",
            "errored",
            "transmitted",
            "executed",
            "verified"
        ]
    );
    let all = app.get("/Users");
    assert_eq!(all.body["totalResults"], 1, "no duplicate on the target");
    assert_eq!(all.body["Resources"][0]["title"], "final");
}

/// 500, 429 with Retry-After, an answer slower than the client's timeout (the user was created
/// anyway) and a 409 after creating: the order retries through all of them and the target ends
/// with exactly one account.
fn faults_are_retried_and_never_duplicate(backend: Backend) {
    use crate::faulty_target::{Fault, FaultyTarget};
    let faulty = FaultyTarget::start(vec![
        Fault::Status(500),
        Fault::TooManyRequests {
            retry_after_seconds: 1,
        },
        Fault::Status(503),
    ]);
    let mut t = TargetConfig::scim("flaky", &faulty.base);
    t.retry_base_ms = 20;
    t.timeout_seconds = 1;
    let s = TestServer::start_with(backend, |c| fast(c, vec![t]));
    let gina = id_of(&s.create_user(&json!({"userName": "gina"})));
    let order = wait_for("gina delivered", || {
        orders_of(&s, "User", &gina)
            .into_iter()
            .find(|o| o.state.as_str() == "verified")
    });
    assert_eq!(order.attempts, 4);
    let attempts =
        s.db.read(|c| orders::attempts_of(c, order.id))
            .expect("attempts");
    let statuses: Vec<Option<i32>> = attempts.iter().map(|a| a.http_status).collect();
    assert_eq!(statuses, [Some(500), Some(429), Some(503), Some(201)]);
    assert!(
        attempts[2].started_at - attempts[1].started_at >= 1_000_000,
        "Retry-After: 1 was honoured"
    );
    assert_eq!(faulty.users().len(), 1);

    let slow = FaultyTarget::start(vec![
        Fault::Slow(Duration::from_millis(2_500)),
        Fault::ConflictAfterCreate,
    ]);
    let mut t = TargetConfig::scim("slow", &slow.base);
    t.retry_base_ms = 20;
    t.timeout_seconds = 1;
    let s = TestServer::start_with(backend, |c| fast(c, vec![t]));
    let hugo = id_of(&s.create_user(&json!({"userName": "hugo"})));
    let order = wait_for("hugo delivered", || {
        orders_of(&s, "User", &hugo)
            .into_iter()
            .find(|o| o.state.as_str() == "verified")
    });
    assert_eq!(
        order.attempts, 2,
        "the timed-out create, then correlation instead of a second create"
    );
    assert_eq!(
        slow.users().len(),
        1,
        "the account created during the timeout is linked, not duplicated"
    );
    let posts = slow.requests().iter().filter(|(m, _)| m == "POST").count();
    assert_eq!(posts, 1);

    // 409 on create: resolved by correlating, in the same attempt.
    let conflicting = FaultyTarget::start(vec![Fault::ConflictAfterCreate]);
    let s = TestServer::start_with(backend, |c| {
        fast(
            c,
            vec![TargetConfig::scim("conflicting", &conflicting.base)],
        )
    });
    let ida = id_of(&s.create_user(&json!({"userName": "ida", "title": "T"})));
    let order = wait_for("ida delivered", || {
        orders_of(&s, "User", &ida)
            .into_iter()
            .find(|o| o.state.as_str() == "verified")
    });
    assert_eq!(order.attempts, 1);
    assert_eq!(order.remote_id.as_deref(), Some("remote-1"));
    let users = conflicting.users();
    assert_eq!(users.len(), 1);
    assert_eq!(
        users[0]["title"], "T",
        "the linked account was then updated"
    );
}

/// `deprovision = "deactivate"`: a user leaving the scope is disabled on the target, not
/// deleted; deleting the user deletes it there.
fn deactivate_policy(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let mut t = target_for(&app, "soft");
    t.users_filter = Some("active eq true".into());
    t.deprovision = scimgate::targets::Deprovision::Deactivate;
    let s = TestServer::start_with(backend, |c| fast(c, vec![t]));
    let jo = id_of(&s.create_user(&json!({"userName": "jo", "active": true})));
    wait_for("jo provisioned", || remote_user(&app, "jo"));
    patch(
        &s,
        &format!("/Users/{jo}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    );
    let disabled = wait_for("jo disabled", || {
        remote_user(&app, "jo").filter(|u| u["active"] == false)
    });
    assert_eq!(disabled["userName"], "jo", "kept, not deleted");
    assert_eq!(s.delete(&format!("/Users/{jo}")).status, 204);
    wait_for("jo deleted", || {
        remote_user(&app, "jo").is_none().then_some(())
    });
}

/// A target without PATCH: updates and deactivations go out as PUT and the orders end executed,
/// not in error. A target that says so in its ServiceProviderConfig is never sent a PATCH; one
/// that does not is sent one, refuses it (501), and is not asked again.
fn targets_without_patch_are_updated_by_put(backend: Backend) {
    use crate::faulty_target::FaultyTarget;
    let announced = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": false}, "filter": {"supported": true, "maxResults": 50},
        "pagination": {"cursor": false, "index": true}});
    for (app, patches_expected) in [
        (FaultyTarget::start(vec![]), 1),
        (FaultyTarget::start_announcing(announced), 0),
    ] {
        let mut t = TargetConfig::scim("nopatch", &app.base);
        t.groups = false;
        t.deprovision = scimgate::targets::Deprovision::Deactivate;
        t.users_filter = Some("active eq true".into());
        let s = TestServer::start_with(backend, |c| fast(c, vec![t]));
        let id =
            id_of(&s.create_user(&json!({"userName": "np", "title": "Before", "active": true})));
        wait_for("created", || settled(&s, "User", &id).then_some(()));
        patch(
            &s,
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "title", "value": "After"}]),
        );
        wait_for("updated by PUT", || {
            app.users()
                .into_iter()
                .find(|u| u["userName"] == "np" && u["title"] == "After")
        });
        patch(
            &s,
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        );
        wait_for("deactivated by PUT", || {
            app.users()
                .into_iter()
                .find(|u| u["userName"] == "np" && u["active"] == false)
        });
        wait_for("settled", || settled(&s, "User", &id).then_some(()));
        let orders = orders_of(&s, "User", &id);
        assert!(
            orders.iter().all(|o| o.state.as_str() != "error"),
            "{:?}",
            orders
                .iter()
                .map(|o| (&o.state, &o.last_error))
                .collect::<Vec<_>>()
        );
        let patches = app.requests().iter().filter(|(m, _)| m == "PATCH").count();
        assert_eq!(patches, patches_expected);

        // The connection test reports what the target announced.
        let found = crate::admin_targets::Ops::on(&s).post("/targets/nopatch/test", None);
        assert_eq!(found.body["ok"], true, "{}", found.text);
        let capabilities = &found.body["found"]["capabilities"];
        if patches_expected == 0 {
            assert_eq!(capabilities["source"], "ServiceProviderConfig");
            assert_eq!(capabilities["patch"], false);
            assert_eq!(capabilities["cursor"], false);
            assert_eq!(capabilities["filterMaxResults"], 50);
        } else {
            assert!(capabilities["patch"].is_null(), "{capabilities}");
            assert!(
                capabilities["source"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("no ServiceProviderConfig")),
                "{capabilities}"
            );
        }
    }
}

/// OAuth 2.0 client credentials: the token is fetched once, reused, and fetched again when the
/// target answers 401.
fn oauth_client_credentials(backend: Backend) {
    use crate::faulty_target::FaultyTarget;
    let oauth = FaultyTarget::start_oauth();
    let mut t = TargetConfig::scim("oauth", &oauth.base);
    t.auth = TargetAuth {
        kind: Some(scimgate::targets::AuthKind::OauthClientCredentials),
        token_url: Some(oauth.token_url()),
        client_id: Some("scimgate".into()),
        client_secret: Some("s3cret".into()),
        ..TargetAuth::default()
    };
    t.retry_base_ms = 20;
    let s = TestServer::start_with(backend, |c| fast(c, vec![t]));
    let kim = id_of(&s.create_user(&json!({"userName": "kim"})));
    wait_for("kim delivered", || settled(&s, "User", &kim).then_some(()));
    let lee = id_of(&s.create_user(&json!({"userName": "lee"})));
    wait_for("lee delivered", || settled(&s, "User", &lee).then_some(()));
    assert_eq!(oauth.tokens_issued(), 1, "one token serves many calls");
    oauth.revoke_tokens();
    let max = id_of(&s.create_user(&json!({"userName": "max"})));
    wait_for("max delivered", || settled(&s, "User", &max).then_some(()));
    assert_eq!(oauth.tokens_issued(), 2, "a 401 fetches a new token");
    assert_eq!(oauth.users().len(), 3);
}

/// A mapping computes what the target receives; updates PATCH only the managed attributes that
/// changed, so attributes the target's owners set by hand survive.
fn mapping_and_partial_updates(backend: Backend) {
    use scimgate::targets::mapping::MappingRule;
    let app = TestServer::start(Backend::Sqlite);
    let mut t = target_for(&app, "mapped");
    let rule = |target: &str,
                source: Option<&str>,
                constant: Option<&str>,
                template: Option<&str>,
                transform: Option<&str>| MappingRule {
        target: target.into(),
        source: source.map(Into::into),
        constant: constant.map(Into::into),
        template: template.map(Into::into),
        transform: transform.map(Into::into),
        ..MappingRule::default()
    };
    t.mapping = vec![
        rule(
            "userName",
            None,
            None,
            Some("{name.givenName}.{name.familyName}"),
            Some("lower"),
        ),
        rule("displayName", Some("displayName"), None, None, None),
        rule("emails", Some("emails[primary]"), None, None, None),
        rule("userType", None, Some("Employee"), None, None),
        rule(
            "title",
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            None,
            None,
            None,
        ),
    ];
    let s = TestServer::start_with(backend, |c| fast(c, vec![t]));
    let uid = id_of(&s.create_user(&json!({
        "userName": "src-login",
        "name": {"givenName": "Nora", "familyName": "Batty"},
        "displayName": "Nora B.",
        "emails": [{"value": "home@x.example", "type": "home"}, {"value": "nora@x.example", "type": "work", "primary": true}],
        "nickName": "not mapped",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Cafe"}
    })));
    let remote = wait_for("nora mapped", || remote_user(&app, "nora.batty"));
    assert_eq!(remote["displayName"], "Nora B.");
    assert_eq!(
        remote["emails"],
        json!([{"value": "nora@x.example", "type": "work", "primary": true}])
    );
    assert_eq!(remote["userType"], "Employee");
    assert_eq!(remote["title"], "Cafe");
    assert!(
        remote.get("nickName").is_none(),
        "unmapped attributes stay home"
    );
    wait_for("nora's order", || settled(&s, "User", &uid).then_some(()));
    let order = orders_of(&s, "User", &uid).pop().expect("order");
    assert_eq!(order.state.as_str(), "verified", "{order:?}");

    // The target's owners set an attribute scimgate does not manage.
    let rid = id_of(&remote);
    let r = patch(
        &app,
        &format!("/Users/{rid}"),
        json!([{"op": "add", "path": "locale", "value": "en-GB"}]),
    );
    assert_eq!(r.status, 200);
    // A source change: only displayName (changed) is sent; department removal clears title.
    patch(
        &s,
        &format!("/Users/{uid}"),
        json!([
            {"op": "replace", "path": "displayName", "value": "Nora Batty"},
            {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}
        ]),
    );
    let updated = wait_for("the update", || {
        remote_user(&app, "nora.batty").filter(|u| u["displayName"] == "Nora Batty")
    });
    assert!(
        updated.get("title").is_none(),
        "a managed attribute the source lost is removed"
    );
    assert_eq!(
        updated["locale"], "en-GB",
        "unmanaged attributes survive updates"
    );
    assert_eq!(updated["userType"], "Employee");
}

/// Two workers (as two instances would) share one store: every order is claimed once, and the
/// target gets each user exactly once.
fn concurrent_workers_claim_each_order_once(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let s = TestServer::start_with(backend, |c| c.worker.enabled = false);
    let mut t = target_for(&app, "app");
    t.concurrency = 8;
    let first = manual(&s, vec![t.clone()]);
    let second = manual(&s, vec![t]);
    let ids: Vec<String> = (0..40)
        .map(|i| id_of(&s.create_user(&json!({"userName": format!("w{i:02}")}))))
        .collect();
    let work = |engine: scimgate::provisioning::Engine| {
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                for _ in 0..40 {
                    if engine.round().await.expect("round") == 0 {
                        break;
                    }
                }
            })
        })
    };
    let (a, b) = (work(first), work(second));
    a.join().expect("first worker");
    b.join().expect("second worker");
    for id in &ids {
        let list = orders_of(&s, "User", id);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].attempts, 1, "claimed once: {:?}", list[0]);
        assert_eq!(list[0].state.as_str(), "verified");
    }
    assert_eq!(app.get("/Users?count=0").body["totalResults"], 40);
}

/// Graceful shutdown: workers stop claiming; an in-flight delivery that outlasts the grace
/// period is released for another worker instead of waiting for its lease to expire, and one
/// that finishes in time is recorded.
fn graceful_shutdown(backend: Backend) {
    use crate::faulty_target::{Fault, FaultyTarget};
    let slow = FaultyTarget::start(vec![
        Fault::Slow(Duration::from_millis(1_500)),
        Fault::Slow(Duration::from_millis(300)),
    ]);
    let mut t = TargetConfig::scim("slow", &slow.base);
    t.timeout_seconds = 10;
    let s = TestServer::start_with(backend, |c| c.worker.enabled = false);
    let engine = manual(&s, vec![t.clone()]);
    let uid = id_of(&s.create_user(&json!({"userName": "lena"})));
    let in_flight = |s: &TestServer, id: &str| {
        orders_of(s, "User", id)
            .iter()
            .any(|o| o.state.as_str() == "transmitted")
    };
    actix_web::rt::System::new().block_on(async {
        let handle = engine.spawn();
        while !in_flight(&s, &uid) {
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        handle.shutdown(Duration::from_millis(100)).await;
    });
    let order = orders_of(&s, "User", &uid).pop().expect("order");
    assert_eq!(order.state.as_str(), "errored");
    assert!(
        order
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("released")),
        "{order:?}"
    );
    assert!(order.lease_owner.is_none());

    // With enough grace the in-flight delivery completes before the workers stop.
    let engine = manual(&s, vec![t]);
    let mia = id_of(&s.create_user(&json!({"userName": "mia"})));
    actix_web::rt::System::new().block_on(async {
        let handle = engine.spawn();
        while !in_flight(&s, &mia) {
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        handle.shutdown(Duration::from_secs(10)).await;
    });
    let order = orders_of(&s, "User", &mia).pop().expect("order");
    assert!(
        matches!(order.state.as_str(), "executed" | "verified"),
        "{order:?}"
    );
}

/// `max_orders_per_second` spreads deliveries out: ten orders at five a second take about a
/// second after the first burst of five.
fn rate_limit(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let mut t = target_for(&app, "limited");
    t.max_orders_per_second = Some(5.0);
    t.concurrency = 10;
    let s = TestServer::start_with(backend, |c| c.worker.enabled = false);
    let ids: Vec<String> = (0..10)
        .map(|i| id_of(&s.create_user(&json!({"userName": format!("r{i}")}))))
        .collect();
    let engine = manual(&s, vec![t]);
    actix_web::rt::System::new().block_on(async {
        let handle = engine.spawn();
        while !ids.iter().all(|id| settled(&s, "User", id)) {
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        handle.shutdown(Duration::from_secs(5)).await;
    });
    let mut starts: Vec<i64> = ids
        .iter()
        .flat_map(|id| orders_of(&s, "User", id))
        .flat_map(|o| {
            s.db.read(|c| orders::attempts_of(c, o.id))
                .expect("attempts")
        })
        .map(|a| a.started_at)
        .collect();
    starts.sort();
    assert_eq!(starts.len(), 10);
    let spread = starts[9] - starts[0];
    assert!(
        spread >= 800_000,
        "ten orders at 5/s must take about a second, took {spread} µs"
    );
}

/// Creates `count` users named `{prefix}{n}` in one Bulk request, so their orders are queued
/// together.
fn bulk_users(s: &TestServer, prefix: &str, count: usize) {
    let operations: Vec<Value> = (0..count)
        .map(|n| {
            json!({"method": "POST", "path": "/Users", "bulkId": format!("b{n}"),
            "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("{prefix}{n}")}})
        })
        .collect();
    let r = crate::harness::send(crate::harness::scim_body(
        s.request(reqwest::Method::POST, "/Bulk"),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": operations}),
    ));
    assert_eq!(r.status, 200, "{:?}", r.body);
}

fn batched_lookups_share_requests_and_fall_back(backend: Backend) {
    use crate::faulty_target::FaultyTarget;
    let capable = FaultyTarget::start(vec![]);
    let plain = FaultyTarget::start_without_or_filters();
    let target = |name: &str, base: &str| {
        let mut t = TargetConfig::scim(name, base);
        t.batch_lookups = true;
        t.concurrency = 8;
        t
    };
    let s = TestServer::start_with(backend, |c| {
        c.worker.enabled = false;
        fast(
            c,
            vec![
                target("capable", &capable.base),
                target("plain", &plain.base),
            ],
        );
    });
    bulk_users(&s, "batch", 40);
    // One of them was created on the capable target by hand: it is linked, not duplicated.
    let by_hand = reqwest::blocking::Client::new()
        .post(format!("{}/Users", capable.base))
        .header("content-type", "application/scim+json")
        .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "batch7"}).to_string())
        .send()
        .expect("create by hand");
    assert_eq!(by_hand.status(), 201);
    let engine = manual(
        &s,
        vec![
            target("capable", &capable.base),
            target("plain", &plain.base),
        ],
    );
    while round(&engine) > 0 {}

    for (name, t) in [("capable", &capable), ("plain", &plain)] {
        let mut names: Vec<String> = t
            .users()
            .iter()
            .filter_map(|u| u["userName"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 40, "{name}: every user once");
        assert_eq!(t.users().len(), 40, "{name}: no duplicates");
    }
    let gets = |t: &FaultyTarget| {
        t.requests()
            .iter()
            .filter(|(m, p)| m == "GET" && !p.ends_with("/ServiceProviderConfig"))
            .count()
    };
    // The target's capabilities are read once, before anything is guessed.
    let spc_reads = capable
        .requests()
        .iter()
        .filter(|(m, p)| m == "GET" && p.ends_with("/ServiceProviderConfig"))
        .count();
    assert_eq!(spc_reads, 1, "ServiceProviderConfig read once");
    // Read-backs come with the creates' answers; the batch's 40 users were looked up together
    // when it was claimed.
    assert!(
        gets(&capable) <= 2,
        "40 lookups shared requests: {} GETs",
        gets(&capable)
    );
    let posts = |t: &FaultyTarget| t.requests().iter().filter(|(m, _)| m == "POST").count();
    assert_eq!(posts(&capable), 40, "39 creates and the one made by hand");
    assert!(
        gets(&plain) >= 40,
        "a target without `or` filters is asked one object at a time: {} GETs",
        gets(&plain)
    );
}

crate::for_each_backend!(
    heartbeats_keep_leases_and_restarts_give_them_back,
    targets_without_patch_are_updated_by_put,
    batched_lookups_share_requests_and_fall_back,
    users_and_groups_arrive_with_translated_members,
    existing_accounts_are_correlated,
    scope_entry_and_exit,
    unreachable_targets_are_retried_then_given_up,
    coalescing_and_order_per_resource,
    expired_leases_are_reclaimed_without_duplicates,
    faults_are_retried_and_never_duplicate,
    deactivate_policy,
    oauth_client_credentials,
    mapping_and_partial_updates,
    concurrent_workers_claim_each_order_once,
    graceful_shutdown,
    rate_limit,
);
