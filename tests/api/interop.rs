//! Outbound provisioning and reconciliation against SCIM service providers written by others:
//! `scim2-server` (Python) and `scimmy` (Node.js), installed from the registries at pinned
//! versions, beside a second scimgate. Each scenario runs against each of them, on both of
//! scimgate's storage backends; their quirks (ids they assign, 204 answers to PATCH, `count`
//! caps and default page sizes, no cursor paging or a 501 for it, case-sensitive filters) are
//! real life.

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;
use serde_json::{json, Value};

use scimgate::config::Config;
use scimgate::storage::orders::{self, Order, OrderFilter};
use scimgate::targets::{TargetAuth, TargetConfig};

use crate::admin_targets::Ops;
use crate::harness::{id_of, Backend, TestServer};
use crate::interop_servers::{ExternalScim, Implementation};
use crate::provisioning::{orders_of, settled, wait_for};
use crate::rfc7644_patch::patch;

/// The service provider playing the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Scimgate,
    External(Implementation),
}

/// What keeps the target running until the test ends (dropping it stops the server).
#[allow(dead_code)]
enum Running {
    Scimgate(Box<TestServer>),
    External(ExternalScim),
}

/// A running target, and a plain SCIM client to look at it (and change it behind scimgate's
/// back) directly.
pub struct Remote {
    base: String,
    token: Option<String>,
    client: Client,
    _running: Running,
}

impl Remote {
    pub fn start(peer: Peer) -> Remote {
        let (running, base, token) = match peer {
            Peer::Scimgate => {
                let app = TestServer::start(Backend::Sqlite);
                let (base, token) = (app.base.clone(), Some(app.token.clone()));
                (Running::Scimgate(Box::new(app)), base, token)
            }
            Peer::External(implementation) => {
                let server = ExternalScim::start(implementation);
                let (base, token) = (server.base.clone(), server.token.clone());
                (Running::External(server), base, token)
            }
        };
        Remote {
            base,
            token,
            client: Client::new(),
            _running: running,
        }
    }

    /// A target pointing at it, retrying fast.
    pub fn target(&self, name: &str) -> TargetConfig {
        let mut t = TargetConfig::scim(name, &self.base);
        if let Some(token) = &self.token {
            t.auth = TargetAuth {
                kind: Some(scimgate::targets::AuthKind::Bearer),
                token: Some(token.clone()),
                ..TargetAuth::default()
            };
        }
        t.retry_base_ms = 50;
        t.retry_max_ms = 500;
        t
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("accept", "application/scim+json");
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().expect("request to the target");
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn create(&self, endpoint: &str, body: Value) -> Value {
        let (status, created) = self.call(Method::POST, endpoint, Some(&body));
        assert_eq!(status, 201, "create on the target: {created}");
        created
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        match self.call(Method::GET, path, None) {
            (200, body) => Some(body),
            (404, _) => None,
            (status, body) => panic!("GET {path}: {status} {body}"),
        }
    }

    pub fn delete(&self, path: &str) {
        let (status, body) = self.call(Method::DELETE, path, None);
        assert!(
            matches!(status, 200 | 204),
            "DELETE {path}: {status} {body}"
        );
    }

    pub fn replace(&self, path: &str, attribute: &str, value: Value) {
        let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": attribute, "value": value}]});
        let (status, body) = self.call(Method::PATCH, path, Some(&ops));
        assert!(matches!(status, 200 | 204), "PATCH {path}: {status} {body}");
    }

    /// Every object of the endpoint whose `attribute` is `value` (exact case).
    fn named(&self, endpoint: &str, attribute: &str, value: &str) -> Vec<Value> {
        let filter = format!("{attribute} eq {}", json!(value));
        let mut request = self.request(Method::GET, endpoint);
        request = request.query(&[("filter", filter.as_str())]);
        let response = request.send().expect("search the target");
        assert_eq!(response.status().as_u16(), 200, "search {endpoint}");
        let body: Value = response.json().expect("list response");
        body["Resources"].as_array().cloned().unwrap_or_default()
    }

    pub fn user(&self, user_name: &str) -> Option<Value> {
        let mut found = self.named("/Users", "userName", user_name);
        assert!(found.len() <= 1, "duplicates of {user_name}: {found:?}");
        found.pop()
    }

    pub fn group(&self, name: &str) -> Option<Value> {
        let mut found = self.named("/Groups", "displayName", name);
        assert!(found.len() <= 1, "duplicates of {name}: {found:?}");
        found.pop()
    }

    pub fn user_count(&self) -> u64 {
        let body = self.get("/Users?count=1").expect("list users");
        body["totalResults"].as_u64().expect("totalResults")
    }
}

/// A group's member values, sorted, each once.
pub(crate) fn member_values(group: &Value) -> Vec<String> {
    let mut values: Vec<String> = group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|v| v["value"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    values.sort();
    values.dedup();
    values
}

fn source(backend: Backend, targets: Vec<TargetConfig>) -> TestServer {
    TestServer::start_with(backend, |c: &mut Config| {
        c.targets = targets;
        c.worker.poll_interval_ms = 20;
    })
}

fn target_orders(s: &TestServer, target: &str) -> Vec<Order> {
    let filter = OrderFilter {
        target: Some(target.into()),
        limit: 10_000,
        ..OrderFilter::default()
    };
    s.db.read(|c| orders::list(c, &filter)).expect("orders")
}

fn all_settled(s: &TestServer, target: &str) -> bool {
    target_orders(s, target)
        .iter()
        .all(|o| matches!(o.state.as_str(), "executed" | "verified" | "inactive"))
}

/// Starts a run (`sync`, `sync?dryRun=true` or `aggregate`) and waits for it to end.
fn run(ops: &Ops<'_>, target: &str, what: &str) -> Value {
    let started = ops.post(&format!("/targets/{target}/{what}"), None);
    assert_eq!(started.status, 202, "{}", started.text);
    let id = started.body["id"].as_i64().expect("run id");
    wait_for("the run to end", || {
        let r = ops.get(&format!("/targets/{target}/syncs/{id}"));
        (r.body["state"] != "running").then_some(r.body)
    })
}

fn findings<'a>(run: &'a Value, finding: &str) -> Vec<&'a Value> {
    run["findings"]
        .as_array()
        .map(|r| r.iter().filter(|f| f["finding"] == finding).collect())
        .unwrap_or_default()
}

/// Users are created, updated, renamed and deleted; groups arrive with their members named by
/// the target's ids, follow membership changes, and are deleted.
fn users_and_groups_round_trip(backend: Backend, peer: Peer) {
    let remote = Remote::start(peer);
    let s = source(backend, vec![remote.target("app")]);
    let alice = id_of(&s.create_user(&json!({"userName": "alice",
        "name": {"givenName": "Alice", "familyName": "Liddell"},
        "emails": [{"value": "alice@example.com", "type": "work", "primary": true}],
        "title": "Explorer", "active": true})));
    let there = wait_for("alice on the target", || remote.user("alice"));
    let remote_alice = id_of(&there);
    assert_ne!(remote_alice, alice, "the target assigns its own ids");
    assert_eq!(there["externalId"], alice.as_str());
    assert_eq!(there["name"]["familyName"], "Liddell");
    assert_eq!(there["emails"][0]["value"], "alice@example.com");

    patch(
        &s,
        &format!("/Users/{alice}"),
        json!([{"op": "replace", "path": "title", "value": "Queen"}]),
    );
    wait_for("the new title", || {
        remote.user("alice").filter(|u| u["title"] == "Queen")
    });
    patch(
        &s,
        &format!("/Users/{alice}"),
        json!([{"op": "replace", "path": "userName", "value": "alice.liddell"}]),
    );
    let renamed = wait_for("the rename", || remote.user("alice.liddell"));
    assert_eq!(id_of(&renamed), remote_alice, "renamed, not recreated");
    assert!(remote.user("alice").is_none());

    let bob = id_of(&s.create_user(&json!({"userName": "bob"})));
    let group = id_of(
        &s.create_group(&json!({"displayName": "Wonderland", "members": [{"value": alice}]})),
    );
    let there = wait_for("the group on the target", || remote.group("Wonderland"));
    assert_eq!(member_values(&there), vec![remote_alice.clone()]);
    assert_eq!(there["externalId"], group.as_str());
    let remote_group = id_of(&there);

    patch(
        &s,
        &format!("/Groups/{group}"),
        json!([{"op": "add", "path": "members", "value": [{"value": bob}]},
               {"op": "remove", "path": format!("members[value eq \"{alice}\"]")}]),
    );
    let remote_bob = id_of(&wait_for("bob on the target", || remote.user("bob")));
    wait_for("bob in and alice out of the group", || {
        let g = remote.get(&format!("/Groups/{remote_group}"))?;
        (member_values(&g) == vec![remote_bob.clone()]).then_some(())
    });

    assert_eq!(s.delete(&format!("/Users/{alice}")).status, 204);
    wait_for("alice deleted on the target", || {
        remote
            .get(&format!("/Users/{remote_alice}"))
            .is_none()
            .then_some(())
    });
    assert_eq!(s.delete(&format!("/Groups/{group}")).status, 204);
    wait_for("the group deleted on the target", || {
        remote
            .get(&format!("/Groups/{remote_group}"))
            .is_none()
            .then_some(())
    });
    wait_for("every order settled", || {
        all_settled(&s, "app").then_some(())
    });
    let errors: Vec<_> = target_orders(&s, "app")
        .into_iter()
        .filter(|o| o.state.as_str() == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// An account and a group made on the target by hand are linked, not duplicated.
fn existing_accounts_and_groups_are_correlated(backend: Backend, peer: Peer) {
    let remote = Remote::start(peer);
    let by_hand = remote.create(
        "/Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "carol", "title": "Manual"}),
    );
    let team = remote.create(
        "/Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Team"}),
    );
    let s = source(backend, vec![remote.target("app")]);
    let carol = id_of(&s.create_user(&json!({"userName": "carol", "title": "Synced"})));
    let group =
        id_of(&s.create_group(&json!({"displayName": "Team", "members": [{"value": carol}]})));
    wait_for("carol settled", || {
        settled(&s, "User", &carol).then_some(())
    });
    wait_for("the group settled", || {
        settled(&s, "Group", &group).then_some(())
    });
    let there = remote.user("carol").expect("carol");
    assert_eq!(
        id_of(&there),
        id_of(&by_hand),
        "linked to the account made by hand"
    );
    assert_eq!(there["title"], "Synced");
    let there = remote.group("Team").expect("the group");
    assert_eq!(id_of(&there), id_of(&team));
    assert_eq!(member_values(&there), vec![id_of(&by_hand)]);
    assert_eq!(remote.user_count(), 1);
}

/// Aggregation reads every account (paging as the target allows) and correlates them; a dry
/// run reports missing, differing and orphan accounts and changes nothing; a full sync fixes
/// them, and a second finds nothing to do.
fn reconciliation_finds_and_repairs_drift(backend: Backend, peer: Peer) {
    let remote = Remote::start(peer);
    let mut target = remote.target("app");
    target.reconcile.orphans = Some("delete".into());
    target.groups = false;
    let s = source(backend, vec![target]);
    let ops = Ops::on(&s);
    // More users than scimmy's default page (20): aggregation must page.
    let mut ids = Vec::new();
    for n in 0..25 {
        ids.push(id_of(&s.create_user(
            &json!({"userName": format!("user{n:02}"), "title": "Staff"}),
        )));
    }
    for id in &ids {
        wait_for("provisioned", || settled(&s, "User", id).then_some(()));
    }
    let aggregated = run(&ops, "app", "aggregate");
    assert_eq!(aggregated["state"], "completed", "{aggregated}");
    assert_eq!(aggregated["summary"]["users"]["read"], 25, "{aggregated}");
    assert_eq!(aggregated["summary"]["users"]["linked"], 25, "{aggregated}");

    // Drift made on the target behind scimgate's back.
    let first = remote.user("user00").expect("user00");
    remote.replace(
        &format!("/Users/{}", id_of(&first)),
        "title",
        json!("Tampered"),
    );
    let second = remote.user("user01").expect("user01");
    remote.delete(&format!("/Users/{}", id_of(&second)));
    remote.create(
        "/Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "mallory"}),
    );

    let dry = run(&ops, "app", "sync?dryRun=true");
    assert_eq!(dry["state"], "completed", "{dry}");
    let differs = findings(&dry, "differs");
    assert_eq!(differs.len(), 1, "{dry}");
    assert_eq!(differs[0]["identityId"], ids[0].as_str());
    assert_eq!(differs[0]["attributes"][0]["expected"], "Staff");
    assert_eq!(differs[0]["attributes"][0]["actual"], "Tampered");
    let missing = findings(&dry, "missing");
    assert_eq!(missing.len(), 1, "{dry}");
    assert_eq!(missing[0]["identityId"], ids[1].as_str());
    let orphans = findings(&dry, "orphan");
    assert_eq!(orphans.len(), 1, "{dry}");
    assert_eq!(dry["summary"]["ordersEmitted"], 0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        remote.user("mallory").is_some(),
        "a dry run changes nothing"
    );
    assert!(remote.user("user01").is_none());

    let done = run(&ops, "app", "sync");
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["summary"]["ordersEmitted"], 3, "{done}");
    wait_for("the title restored", || {
        remote.user("user00").filter(|u| u["title"] == "Staff")
    });
    wait_for("user01 provisioned again", || remote.user("user01"));
    wait_for("the orphan deleted", || {
        remote.user("mallory").is_none().then_some(())
    });
    wait_for("corrections settled", || {
        all_settled(&s, "app").then_some(())
    });
    let again = run(&ops, "app", "sync");
    assert_eq!(again["summary"]["ordersEmitted"], 0, "{again}");
    assert_eq!(remote.user_count(), 25);
}

/// Deprovisioning: a user leaving the scope is deactivated (kept), a deleted one deleted.
fn deprovisioning(backend: Backend, peer: Peer) {
    let remote = Remote::start(peer);
    let mut target = remote.target("app");
    target.users_filter = Some("active eq true".into());
    target.deprovision = scimgate::targets::Deprovision::Deactivate;
    let s = source(backend, vec![target]);
    let jo = id_of(&s.create_user(&json!({"userName": "jo", "active": true})));
    let remote_jo = id_of(&wait_for("jo provisioned", || remote.user("jo")));
    patch(
        &s,
        &format!("/Users/{jo}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    );
    wait_for("jo deactivated", || {
        remote
            .get(&format!("/Users/{remote_jo}"))
            .filter(|u| u["active"] == false)
    });
    assert_eq!(s.delete(&format!("/Users/{jo}")).status, 204);
    wait_for("jo deleted", || {
        remote
            .get(&format!("/Users/{remote_jo}"))
            .is_none()
            .then_some(())
    });
}

/// A group whose member will never be provisioned on the target (out of its scope) goes out
/// without that member, and its order says so, instead of waiting for it.
fn groups_leave_out_members_out_of_scope(backend: Backend, peer: Peer) {
    let remote = Remote::start(peer);
    let mut target = remote.target("app");
    target.users_filter = Some("title eq \"Inside\"".into());
    let s = source(backend, vec![target]);
    let inside = id_of(&s.create_user(&json!({"userName": "inside", "title": "Inside"})));
    let outside = id_of(&s.create_user(&json!({"userName": "outside", "title": "Outside"})));
    let group = id_of(&s.create_group(
        &json!({"displayName": "Mixed", "members": [{"value": inside}, {"value": outside}]}),
    ));
    let remote_inside = id_of(&wait_for("inside provisioned", || remote.user("inside")));
    let there = wait_for("the group on the target", || remote.group("Mixed"));
    assert_eq!(member_values(&there), vec![remote_inside]);
    wait_for("the group settled", || {
        settled(&s, "Group", &group).then_some(())
    });
    let order = orders_of(&s, "Group", &group)
        .into_iter()
        .next_back()
        .expect("the group's order");
    let note = order.note.unwrap_or_default();
    assert!(
        note.contains(&outside) && note.contains("scope"),
        "the order says who was left out and why: {note:?}"
    );
    assert!(remote.user("outside").is_none());
    // A full sync agrees: nothing to repair.
    let synced = run(&Ops::on(&s), "app", "sync");
    assert_eq!(synced["state"], "completed", "{synced}");
    assert_eq!(synced["summary"]["ordersEmitted"], 0, "{synced}");
}

macro_rules! against_every_peer {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use super::*;
                use crate::interop_servers::Implementation;

                #[test]
                fn scimgate_sqlite() {
                    super::$scenario(Backend::Sqlite, Peer::Scimgate);
                }
                #[test]
                fn scimgate_postgres() {
                    super::$scenario(Backend::Postgres, Peer::Scimgate);
                }
                #[test]
                fn scim2_server_sqlite() {
                    super::$scenario(Backend::Sqlite, Peer::External(Implementation::Scim2Server));
                }
                #[test]
                fn scim2_server_postgres() {
                    super::$scenario(Backend::Postgres, Peer::External(Implementation::Scim2Server));
                }
                #[test]
                fn scimmy_sqlite() {
                    super::$scenario(Backend::Sqlite, Peer::External(Implementation::Scimmy));
                }
                #[test]
                fn scimmy_postgres() {
                    super::$scenario(Backend::Postgres, Peer::External(Implementation::Scimmy));
                }
            }
        )*
    };
}

against_every_peer!(
    users_and_groups_round_trip,
    existing_accounts_and_groups_are_correlated,
    reconciliation_finds_and_repairs_drift,
    deprovisioning,
    groups_leave_out_members_out_of_scope,
);
