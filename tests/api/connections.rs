//! Several identity providers at once: each connection has its own endpoint
//! (`/scim/{name}/v2`) and tokens, and sees, filters, changes and deletes only its own users
//! and groups. A userName another connection holds is a 409; an externalId is each
//! connection's own. The default connection (`/scim/v2`) is every existing deployment's.

use reqwest::Method;
use serde_json::{json, Value};

use scimgate::auth::{api_token, Role};

use crate::admin_targets::Ops;
use crate::harness::{send, Backend, Resp, TestServer};

/// An identity provider: its connection's endpoint and its token.
struct Idp<'a> {
    server: &'a TestServer,
    base: String,
    token: String,
}

impl Idp<'_> {
    fn of<'a>(server: &'a TestServer, connection: &str, token: &str) -> Idp<'a> {
        let base = if connection == "default" {
            server.base.clone()
        } else {
            server
                .base
                .replace("/scim/v2", &format!("/scim/{connection}/v2"))
        };
        Idp {
            server,
            base,
            token: token.to_string(),
        }
    }

    fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut request = reqwest::blocking::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let _ = self.server;
        send(request)
    }

    fn create_user(&self, user_name: &str, external_id: &str) -> Resp {
        self.call(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": user_name,
                "externalId": external_id,
            })),
        )
    }

    fn total(&self, path: &str) -> i64 {
        let listed = self.call(Method::GET, path, None);
        assert_eq!(listed.status, 200, "{path}: {}", listed.body);
        listed.body["totalResults"].as_i64().expect("totalResults")
    }
}

fn connections_keep_to_their_own(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.auth.token_cache_seconds = 0);
    let ops = Ops::on(&s);
    for name in ["okta", "entra"] {
        let created = ops.call(Method::POST, "/connections", Some(&json!({"name": name})));
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.body["scimPath"], format!("/scim/{name}/v2"));
    }
    assert_eq!(
        ops.call(Method::POST, "/connections", Some(&json!({"name": "okta"})))
            .status,
        409
    );
    for bad in ["V2", "v2", "a/b", ""] {
        let refused = ops.call(Method::POST, "/connections", Some(&json!({"name": bad})));
        assert_eq!(refused.status, 400, "{bad:?}");
    }
    let okta_token = api_token::issue_for(&s.db, "okta-1", Role::Scim, "okta", None).expect("t");
    let entra_token = api_token::issue_for(&s.db, "entra-1", Role::Scim, "entra", None).expect("t");
    let okta = Idp::of(&s, "okta", &okta_token);
    let entra = Idp::of(&s, "entra", &entra_token);
    let default = Idp::of(&s, "default", &s.token);

    // The same userName twice: the second connection is refused; the same externalId: fine.
    let bjensen = okta.create_user("bjensen", "E1");
    assert_eq!(bjensen.status, 201, "{}", bjensen.body);
    let id = bjensen.body["id"].as_str().expect("id").to_string();
    assert!(bjensen.body["meta"]["location"]
        .as_str()
        .is_some_and(|l| l.contains(&format!("/scim/okta/v2/Users/{id}"))));
    let fresh = okta.call(Method::GET, &format!("/Users/{id}"), None);
    assert_eq!(fresh.status, 200, "read back: {}", fresh.body);
    let taken = entra.create_user("bjensen", "E9");
    assert_eq!(taken.status, 409, "{}", taken.body);
    assert_eq!(taken.body["scimType"], "uniqueness");
    assert_eq!(entra.create_user("barbara", "E1").status, 201);
    // Within one connection an externalId is one resource's: on create and on change.
    let twice = okta.create_user("b.jensen", "E1");
    assert_eq!(twice.status, 409, "{}", twice.body);
    assert_eq!(twice.body["scimType"], "uniqueness");
    assert!(twice.body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("externalId")));
    let other = okta.create_user("b.other", "E2");
    assert_eq!(other.status, 201);
    let other_path = format!("/Users/{}", other.body["id"].as_str().expect("id"));
    let steal = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "externalId", "value": "E1"}]});
    assert_eq!(
        okta.call(Method::PATCH, &other_path, Some(steal)).status,
        409
    );
    assert_eq!(okta.call(Method::DELETE, &other_path, None).status, 204);

    // Each lists and filters only its own.
    assert_eq!(okta.total("/Users"), 1);
    assert_eq!(entra.total("/Users"), 1);
    assert_eq!(default.total("/Users"), 0);
    assert_eq!(okta.total("/Users?filter=externalId%20eq%20%22E1%22"), 1);
    assert_eq!(
        entra.total("/Users?filter=userName%20eq%20%22bjensen%22"),
        0
    );
    let searched = entra.call(
        Method::POST,
        "/.search",
        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]})),
    );
    assert_eq!(searched.body["totalResults"], 1, "{}", searched.body);

    // Another connection's user does not exist for it, whatever the verb.
    let user_path = format!("/Users/{id}");
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "X"}]});
    let replace =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjensen"});
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(replace)),
        (Method::PATCH, Some(patch.clone())),
        (Method::DELETE, None),
    ] {
        let refused = entra.call(method.clone(), &user_path, body.clone());
        assert_eq!(refused.status, 404, "{method}");
        assert_eq!(
            default.call(method.clone(), &user_path, body).status,
            404,
            "{method}"
        );
    }
    let bulk = entra.call(
        Method::POST,
        "/Bulk",
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [{"method": "DELETE", "path": user_path}]}),
        ),
    );
    assert_eq!(bulk.body["Operations"][0]["status"], "404", "{}", bulk.body);
    assert_eq!(
        okta.call(Method::GET, &user_path, None).status,
        200,
        "still there"
    );
    assert_eq!(
        okta.call(Method::PATCH, &user_path, Some(patch)).status,
        200
    );

    // Groups hold only their own connection's members.
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "staff", "members": [{"value": id}]});
    assert_eq!(
        entra
            .call(Method::POST, "/Groups", Some(group.clone()))
            .status,
        400
    );
    assert_eq!(okta.call(Method::POST, "/Groups", Some(group)).status, 201);

    // A token works at its own connection's endpoint only.
    for (idp, path) in [
        (&okta, "/scim/entra/v2/Users"),
        (&okta, "/scim/v2/Users"),
        (&default, "/scim/okta/v2/Users"),
    ] {
        let url = s.base.replace("/scim/v2", "") + path;
        let refused = send(
            reqwest::blocking::Client::new()
                .get(url)
                .bearer_auth(&idp.token),
        );
        assert_eq!(refused.status, 401, "{path}");
    }
    let config = okta.call(Method::GET, "/ServiceProviderConfig", None);
    assert!(config.body["meta"]["location"]
        .as_str()
        .is_some_and(|l| l.contains("/scim/okta/v2/ServiceProviderConfig")));

    // Operators see every connection's resources.
    let listed = ops.call(Method::GET, "/connections/okta", None);
    assert_eq!(listed.body["users"], 1);
    assert_eq!(listed.body["groups"], 1);
    // The change feed and the events name each change's connection.
    let feed = ops.call(Method::GET, "/changes?limit=100", None);
    let of = |id: &str| -> Vec<String> {
        feed.body["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .filter(|c| c["id"] == id)
            .map(|c| c["connection"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert!(
        !of(&id).is_empty() && of(&id).iter().all(|c| c == "okta"),
        "{}",
        feed.body
    );
    let events = ops.call(Method::GET, "/events?limit=100", None);
    let created = events.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "user.created" && e["data"]["id"] == id.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(created["data"]["connection"], "okta", "{}", events.body);
    let console = crate::console::browser_signed_in(&s, Role::Viewer);
    let (status, people) = crate::console::page(&s, &console, "/ui/people?kind=users&filter=");
    assert_eq!(status, 200);
    assert!(
        people.contains("<td class=\"connection\">okta</td>")
            && people.contains("<td class=\"connection\">entra</td>"),
        "{people}"
    );

    // Disabled: its tokens get 401, its resources stay; enabled again, they work.
    assert_eq!(
        ops.call(Method::POST, "/connections/okta/disable", None)
            .status,
        200
    );
    assert_eq!(okta.call(Method::GET, "/Users", None).status, 401);
    assert_eq!(
        ops.call(Method::GET, "/connections/okta", None).body["users"],
        1
    );
    assert_eq!(
        ops.call(Method::POST, "/connections/okta/enable", None)
            .status,
        200
    );
    assert_eq!(okta.total("/Users"), 1);

    // Deleted only when it owns nothing; its tokens go with it.
    assert_eq!(
        ops.call(Method::DELETE, "/connections/okta", None).status,
        409
    );
    assert_eq!(
        ops.call(Method::DELETE, "/connections/default", None)
            .status,
        409
    );
    let group_id = okta.call(Method::GET, "/Groups", None).body["Resources"][0]["id"]
        .as_str()
        .expect("group")
        .to_string();
    assert_eq!(
        okta.call(Method::DELETE, &format!("/Groups/{group_id}"), None)
            .status,
        204
    );
    assert_eq!(okta.call(Method::DELETE, &user_path, None).status, 204);
    assert_eq!(
        ops.call(Method::DELETE, "/connections/okta", None).status,
        200
    );
    assert_eq!(okta.call(Method::GET, "/Users", None).status, 401);
    assert_eq!(ops.call(Method::GET, "/connections/okta", None).status, 404);
}

/// `scimgate token create --connection` names an existing connection; `token list` shows it.
fn tokens_belong_to_a_connection(backend: Backend) {
    let s = TestServer::start(backend);
    let ops = Ops::on(&s);
    assert_eq!(
        ops.call(Method::POST, "/connections", Some(&json!({"name": "hr"})))
            .status,
        201
    );
    let refused = crate::cli::scimgate(
        &s.database_url,
        &["token", "create", "--name", "x", "--connection", "nope"],
    );
    assert!(!refused.status.success());
    let out = crate::cli::scimgate(
        &s.database_url,
        &["token", "create", "--name", "hr-1", "--connection", "hr"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let hr = Idp::of(&s, "hr", &token);
    assert_eq!(hr.create_user("h.one", "H1").status, 201);
    let listing =
        String::from_utf8_lossy(&crate::cli::scimgate(&s.database_url, &["token", "list"]).stdout)
            .to_string();
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("hr-1\tactive\tscim\tconnection hr\t")),
        "{listing}"
    );
}

/// A target scopes on a connection (`users_filter = 'connection eq "okta"'`): Okta's users
/// reach it, the default connection's do not; operators filter on it too.
fn targets_scope_on_a_connection(backend: Backend) {
    let remote = TestServer::start(backend);
    let mut target = crate::provisioning::target_for(&remote, "crm");
    target.users_filter = Some("connection eq \"okta\"".into());
    let s = TestServer::start_with(backend, |c| crate::provisioning::fast(c, vec![target]));
    let ops = Ops::on(&s);
    assert_eq!(
        ops.call(Method::POST, "/connections", Some(&json!({"name": "okta"})))
            .status,
        201
    );
    let okta_token = api_token::issue_for(&s.db, "okta-1", Role::Scim, "okta", None).expect("t");
    let okta = Idp::of(&s, "okta", &okta_token);
    let default = Idp::of(&s, "default", &s.token);
    let from_okta = okta.create_user("from.okta", "O1");
    assert_eq!(from_okta.status, 201);
    let okta_id = from_okta.body["id"].as_str().expect("id").to_string();
    let local = default.create_user("from.default", "D1");
    assert_eq!(local.status, 201);
    let local_id = local.body["id"].as_str().expect("id").to_string();
    crate::provisioning::wait_for("Okta's user on the target", || {
        let found = remote.get("/Users?filter=userName%20eq%20%22from.okta%22");
        (found.body["totalResults"] == 1).then_some(())
    });
    crate::provisioning::wait_for("the default user's order settled", || {
        crate::provisioning::settled(&s, "User", &local_id).then_some(())
    });
    assert_eq!(
        remote
            .get("/Users?filter=userName%20eq%20%22from.default%22")
            .body["totalResults"],
        0,
        "out of the target's scope"
    );
    // Orders, and their events, name the connection of the user they provision.
    crate::provisioning::wait_for("Okta's user's order settled", || {
        crate::provisioning::settled(&s, "User", &okta_id).then_some(())
    });
    for (id, connection) in [(&okta_id, "okta"), (&local_id, "default")] {
        let orders = ops.get(&format!("/resources/User/{id}/orders"));
        let list = orders.body["orders"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!list.is_empty(), "{}", orders.text);
        assert!(
            list.iter().all(|o| o["connection"] == connection),
            "{}",
            orders.text
        );
    }
    let events = ops.get("/events?limit=500");
    let okta_order_events: Vec<&serde_json::Value> = events.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| {
            e["type"] == "order.state_changed" && e["data"]["resourceId"] == okta_id.as_str()
        })
        .collect();
    assert!(!okta_order_events.is_empty(), "{}", events.text);
    assert!(okta_order_events
        .iter()
        .all(|e| e["data"]["connection"] == "okta"));
    // Operators (unscoped) may filter on the connection; at a connection's endpoint it is an
    // unknown attribute, which matches nothing, as any other would.
    let everyone = scimgate::identity::Directory::new(s.db.clone(), &s.base);
    let filter = scimgate::scim::filter::parse("connection eq \"okta\"").expect("filter");
    let matching = everyone.user_ids_matching(&filter).expect("search");
    assert_eq!(matching.len(), 1);
    assert_eq!(okta.total("/Users?filter=connection%20eq%20%22okta%22"), 0);
}

/// Each connection answers in its own dialect: Entra's expects 204 for a PATCH, while the
/// default connection keeps the server's 200 with the resource.
fn each_connection_has_its_own_dialect(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.auth.token_cache_seconds = 0);
    let ops = Ops::on(&s);
    let refused = ops.call(
        Method::POST,
        "/connections",
        Some(&json!({"name": "entra", "settings": {"patch_returns_no_contents": true}})),
    );
    assert_eq!(refused.status, 400, "{}", refused.text);
    let created = ops.call(
        Method::POST,
        "/connections",
        Some(&json!({"name": "entra", "settings": {"patch_returns_no_content": true}})),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let token = api_token::issue_for(&s.db, "entra-1", Role::Scim, "entra", None).expect("t");
    let entra = Idp::of(&s, "entra", &token);
    let default = Idp::of(&s, "default", &s.token);
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "displayName", "value": "Changed"}]});
    for (idp, user, expected) in [(&entra, "e.user", 204), (&default, "d.user", 200)] {
        let created = idp.create_user(user, user);
        let path = format!("/Users/{}", created.body["id"].as_str().expect("id"));
        let patched = idp.call(Method::PATCH, &path, Some(patch.clone()));
        assert_eq!(patched.status, expected, "{user}: {}", patched.body);
        assert_eq!(
            idp.call(Method::GET, &path, None).body["displayName"],
            "Changed"
        );
    }
    // Changed back: the server's answer again.
    let replaced = ops.call(
        Method::PUT,
        "/connections/entra",
        Some(&json!({"settings": {}})),
    );
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    let user = entra.call(
        Method::GET,
        "/Users?filter=userName%20eq%20%22e.user%22",
        None,
    );
    let path = format!(
        "/Users/{}",
        user.body["Resources"][0]["id"].as_str().expect("id")
    );
    assert_eq!(entra.call(Method::PATCH, &path, Some(patch)).status, 200);
}

/// Deleting a connection with `?deprovision=true` deletes what it owns through the normal
/// change path: its users leave the SCIM target; then the connection and its tokens go.
fn deleting_a_connection_deprovisions_its_users(backend: Backend) {
    let remote = TestServer::start(backend);
    let target = crate::provisioning::target_for(&remote, "crm");
    let s = TestServer::start_with(backend, |c| {
        crate::provisioning::fast(c, vec![target]);
        c.auth.token_cache_seconds = 0;
    });
    let ops = Ops::on(&s);
    assert_eq!(
        ops.call(Method::POST, "/connections", Some(&json!({"name": "hr"})))
            .status,
        201
    );
    let token = api_token::issue_for(&s.db, "hr-1", Role::Scim, "hr", None).expect("t");
    let hr = Idp::of(&s, "hr", &token);
    let mut ids = Vec::new();
    for name in ["leaver.one", "leaver.two"] {
        let created = hr.create_user(name, name);
        assert_eq!(created.status, 201);
        ids.push(created.body["id"].as_str().expect("id").to_string());
    }
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "leavers", "members": [{"value": ids[0]}]});
    assert_eq!(hr.call(Method::POST, "/Groups", Some(group)).status, 201);
    let stays = Idp::of(&s, "default", &s.token).create_user("stays", "S1");
    assert_eq!(stays.status, 201);
    let on_target = |name: &str| {
        remote
            .get(&format!("/Users?filter=userName%20eq%20%22{name}%22"))
            .body["totalResults"]
            .as_i64()
            .unwrap_or(0)
    };
    crate::provisioning::wait_for("both on the target", || {
        (on_target("leaver.one") == 1 && on_target("leaver.two") == 1).then_some(())
    });

    assert_eq!(
        ops.call(Method::DELETE, "/connections/hr", None).status,
        409
    );
    let deleted = ops.call(Method::DELETE, "/connections/hr?deprovision=true", None);
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.body["deprovisioned"]["users"], 2);
    assert_eq!(deleted.body["deprovisioned"]["groups"], 1);
    crate::provisioning::wait_for("both gone from the target", || {
        (on_target("leaver.one") == 0 && on_target("leaver.two") == 0).then_some(())
    });
    assert_eq!(on_target("stays"), 1, "another connection's user stays");
    assert_eq!(hr.call(Method::GET, "/Users", None).status, 401);
    assert_eq!(ops.call(Method::GET, "/connections/hr", None).status, 404);
}

/// A connection's `max_requests_per_second` holds its identity provider to that pace (a burst
/// of one second's worth, then `429` with `Retry-After`); other connections are not slowed.
fn each_connection_has_its_own_rate_limit(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.auth.token_cache_seconds = 0);
    let ops = Ops::on(&s);
    for bad in [json!(0), json!(-1), json!("fast")] {
        let refused = ops.call(
            Method::POST,
            "/connections",
            Some(&json!({"name": "okta", "settings": {"max_requests_per_second": bad}})),
        );
        assert_eq!(refused.status, 400, "{bad}");
    }
    let created = ops.call(
        Method::POST,
        "/connections",
        Some(&json!({"name": "okta", "settings": {"max_requests_per_second": 2}})),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let token = api_token::issue_for(&s.db, "okta-1", Role::Scim, "okta", None).expect("t");
    let okta = Idp::of(&s, "okta", &token);
    let default = Idp::of(&s, "default", &s.token);
    let statuses: Vec<Resp> = (0..10)
        .map(|_| okta.call(Method::GET, "/Users", None))
        .collect();
    assert!(statuses[..2].iter().all(|r| r.status == 200));
    let limited = statuses
        .iter()
        .find(|r| r.status == 429)
        .expect("the pace was enforced");
    assert_eq!(limited.header("retry-after").as_deref(), Some("1"));
    assert_eq!(limited.body["status"], "429");
    assert!((0..10).all(|_| default.call(Method::GET, "/Users", None).status == 200));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        okta.call(Method::GET, "/Users", None).status,
        200,
        "refilled"
    );
}

/// A connection's inbound mass-delete guard (`max_user_deletes_per_hour`): past the limit its
/// deletions are refused with 403 and nothing is deleted, whether one by one or in Bulk; other
/// connections, and an operator's deprovisioning, are not held.
fn each_connection_has_its_own_mass_delete_guard(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.auth.token_cache_seconds = 0);
    let ops = Ops::on(&s);
    let created = ops.call(
        Method::POST,
        "/connections",
        Some(&json!({"name": "okta", "settings": {"max_user_deletes_per_hour": 2}})),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let token = api_token::issue_for(&s.db, "okta-1", Role::Scim, "okta", None).expect("t");
    let okta = Idp::of(&s, "okta", &token);
    let default = Idp::of(&s, "default", &s.token);
    let mut paths = Vec::new();
    for i in 0..4 {
        let user = okta.create_user(&format!("u{i}"), &format!("E{i}"));
        paths.push(format!("/Users/{}", user.body["id"].as_str().expect("id")));
    }
    assert_eq!(okta.call(Method::DELETE, &paths[0], None).status, 204);
    assert_eq!(okta.call(Method::DELETE, &paths[1], None).status, 204);
    let held = okta.call(Method::DELETE, &paths[2], None);
    assert_eq!(held.status, 403, "{}", held.body);
    assert!(held.body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("mass-delete guard")));
    let bulk = okta.call(
        Method::POST,
        "/Bulk",
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [{"method": "DELETE", "path": paths[3]}]}),
        ),
    );
    assert_eq!(bulk.body["Operations"][0]["status"], "403", "{}", bulk.body);
    assert_eq!(okta.total("/Users"), 2, "nothing more was deleted");
    for i in 0..3 {
        let user = default.create_user(&format!("d{i}"), &format!("D{i}"));
        let path = format!("/Users/{}", user.body["id"].as_str().expect("id"));
        assert_eq!(default.call(Method::DELETE, &path, None).status, 204);
    }
    // An hour later the guard lets deletions through again.
    s.clock.advance(std::time::Duration::from_secs(3601));
    assert_eq!(okta.call(Method::DELETE, &paths[2], None).status, 204);
    // An operator's deprovisioning is not held by it.
    let deleted = ops.call(Method::DELETE, "/connections/okta?deprovision=true", None);
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.body["deprovisioned"]["users"], 1);
}

crate::for_each_backend!(
    each_connection_has_its_own_mass_delete_guard,
    each_connection_has_its_own_rate_limit,
    deleting_a_connection_deprovisions_its_users,
    each_connection_has_its_own_dialect,
    connections_keep_to_their_own,
    tokens_belong_to_a_connection,
    targets_scope_on_a_connection
);
