//! Targets managed through the admin API: created, changed, disabled, enabled and deleted
//! without a restart, checked fully before anything is stored, never echoing a secret; their
//! connection tested; and quarantine shared by every instance on one database.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use scimgate::auth::{api_token, Role};
use scimgate::config::Config;
use scimgate::storage::targets;
use scimgate::targets::TargetConfig;

use crate::harness::{id_of, Backend, TestServer};
use crate::provisioning::{orders_of, settled, wait_for};
use crate::rfc7644_patch::patch;

/// An admin API response with its raw text, to look for secrets in.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) text: String,
    pub(crate) body: Value,
    pub(crate) location: Option<String>,
}

/// An operator: an admin token on one server, keeping every response text it got.
pub(crate) struct Ops<'a> {
    server: &'a TestServer,
    token: String,
    seen: std::cell::RefCell<String>,
}

impl<'a> Ops<'a> {
    pub(crate) fn on(server: &'a TestServer) -> Ops<'a> {
        Ops {
            server,
            token: api_token::issue_with_role(&server.db, "ops", Role::Admin).expect("token"),
            seen: Default::default(),
        }
    }

    pub(crate) fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let url = self
            .server
            .base
            .replace("/scim/v2", &format!("/admin{path}"));
        let mut request = reqwest::blocking::Client::new()
            .request(method, url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().expect("admin request");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().expect("body");
        self.seen.borrow_mut().push_str(&text);
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            text,
            body,
            location,
        }
    }

    pub(crate) fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None)
    }

    pub(crate) fn post(&self, path: &str, body: Option<&Value>) -> Answer {
        self.call(Method::POST, path, body)
    }

    pub(crate) fn put(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::PUT, path, Some(body))
    }

    pub(crate) fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None)
    }

    /// Asserts that no response so far contained `secret`.
    pub(crate) fn never_showed(&self, secret: &str) {
        let seen = self.seen.borrow();
        assert!(!seen.is_empty());
        assert!(!seen.contains(secret), "a secret was echoed in a response");
    }
}

fn fast(c: &mut Config) {
    c.worker.poll_interval_ms = 20;
}

/// Settings for a SCIM target at `app`, authenticated with its token.
pub(crate) fn settings(name: &str, app: &TestServer) -> Value {
    json!({
        "name": name,
        "url": app.base,
        "auth": {"type": "bearer", "token": app.token},
        "retry_base_ms": 50,
        "retry_max_ms": 500,
    })
}

fn remote_user(app: &TestServer, user_name: &str) -> Option<Value> {
    let r = app.get(&format!("/Users?filter=userName%20eq%20%22{user_name}%22"));
    r.body["Resources"]
        .as_array()
        .and_then(|a| a.first().cloned())
}

fn closed_url() -> String {
    crate::harness::refusing_url()
}

/// A target created through the API is served at once; changing its filter, disabling and
/// enabling it take effect without a restart; its token never appears in a response.
fn api_targets_are_served_and_follow_changes(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let s = TestServer::start_with(backend, fast);
    let ops = Ops::on(&s);

    let created = ops.post("/targets", Some(&settings("crm", &app)));
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.location.as_deref(), Some("/admin/targets/crm"));
    assert_eq!(created.body["source"], "api");
    assert_eq!(created.body["readOnly"], false);
    assert_eq!(created.body["config"]["auth"]["token"], "********");
    assert_eq!(created.body["config"]["auth"]["type"], "bearer");
    let first_version = created.body["version"].as_i64().expect("version");

    let alice = id_of(&s.create_user(&json!({"userName": "alice", "title": "Sales"})));
    wait_for("alice on the target", || remote_user(&app, "alice"));
    assert_eq!(orders_of(&s, "User", &alice)[0].target, "crm");

    // A full replace without the token keeps the stored one; the filter takes effect.
    let mut changed = settings("crm", &app);
    changed["auth"] = json!({"type": "bearer"});
    changed["users_filter"] = json!("title eq \"Engineer\"");
    let replaced = ops.put("/targets/crm", &changed);
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(replaced.body["usersFilter"], "title eq \"Engineer\"");
    assert!(replaced.body["version"].as_i64() > Some(first_version));
    let bob = id_of(&s.create_user(&json!({"userName": "bob", "title": "Sales"})));
    s.create_user(&json!({"userName": "carol", "title": "Engineer"}));
    wait_for("carol on the target (the kept token works)", || {
        remote_user(&app, "carol")
    });
    wait_for("bob's order to settle", || {
        settled(&s, "User", &bob).then_some(())
    });
    assert!(
        remote_user(&app, "bob").is_none(),
        "bob is outside the new filter"
    );

    // Disabled: nothing is planned or delivered for it.
    let disabled = ops.post("/targets/crm/disable", None);
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_eq!(disabled.body["enabled"], false);
    let dave = id_of(&s.create_user(&json!({"userName": "dave", "title": "Engineer"})));
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(orders_of(&s, "User", &dave).is_empty());
    assert!(remote_user(&app, "dave").is_none());

    // Enabled again: new changes flow, and a change to dave brings him along.
    let enabled = ops.post("/targets/crm/enable", None);
    assert_eq!(enabled.body["enabled"], true, "{}", enabled.text);
    s.create_user(&json!({"userName": "erin", "title": "Engineer"}));
    wait_for("erin on the target", || remote_user(&app, "erin"));
    patch(
        &s,
        &format!("/Users/{dave}"),
        json!([{"op": "replace", "path": "displayName", "value": "Dave"}]),
    );
    wait_for("dave on the target", || remote_user(&app, "dave"));

    let listed = ops.get("/targets");
    let entry = listed.body["targets"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == "crm").cloned())
        .expect("crm listed");
    assert_eq!(entry["source"], "api");
    assert_eq!(entry["config"]["users_filter"], "title eq \"Engineer\"");
    let one = ops.get("/targets/crm");
    assert_eq!(one.status, 200);
    assert_eq!(one.body["config"]["auth"]["token"], "********");
    assert_eq!(ops.get("/targets/crm/status").status, 200);

    // Deleted: gone from the API and from planning.
    let deleted = ops.delete("/targets/crm");
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.body["deleted"], true);
    assert_eq!(ops.get("/targets/crm").status, 404);
    assert_eq!(ops.get("/targets/crm/status").status, 404);
    assert_eq!(ops.delete("/targets/crm").status, 404);
    let frank = id_of(&s.create_user(&json!({"userName": "frank", "title": "Engineer"})));
    std::thread::sleep(Duration::from_millis(1_000));
    assert!(orders_of(&s, "User", &frank).is_empty());
    assert!(s.db.read(targets::list).expect("stored").is_empty());

    ops.never_showed(&app.token);
}

/// Deleting a target withdraws its open orders: they become inactive, with the reason.
fn deleting_a_target_inactivates_its_open_orders(backend: Backend) {
    let s = TestServer::start_with(backend, fast);
    let ops = Ops::on(&s);
    let down = json!({"name": "down", "url": closed_url(), "retry_base_ms": 600_000, "retry_max_ms": 600_000});
    assert_eq!(ops.post("/targets", Some(&down)).status, 201);
    let uid = id_of(&s.create_user(&json!({"userName": "waiting"})));
    wait_for("a failed first attempt", || {
        orders_of(&s, "User", &uid)
            .iter()
            .any(|o| o.state.as_str() == "errored")
            .then_some(())
    });
    let deleted = ops.delete("/targets/down");
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.body["inactivatedOrders"], 1);
    let order = orders_of(&s, "User", &uid).pop().expect("order");
    assert_eq!(order.state.as_str(), "inactive");
    assert_eq!(order.last_error.as_deref(), Some("the target was deleted"));
    // A target with the same name can be created again.
    assert_eq!(ops.post("/targets", Some(&down)).status, 201);
}

/// Wrong settings get 400 with a reason and store nothing; duplicates and config-file targets
/// get 409; only admin tokens are let in.
fn bad_input_is_refused(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let file_target = TargetConfig::scim("from-file", &app.base);
    let s = TestServer::start_with(backend, |c| {
        fast(c);
        c.targets = vec![file_target];
    });
    let ops = Ops::on(&s);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = settings("new", &app);
        change(&mut body);
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (json!("not an object"), "invalid target settings"),
        (with(&|b| b["colour"] = json!("red")), "colour"),
        (
            with(&|b| b["url"] = json!("not a url")),
            "not a http or https URL",
        ),
        (
            with(&|b| b["url"] = json!("ftp://files.example/scim")),
            "url",
        ),
        (
            with(&|b| b["users_filter"] = json!("userName eq")),
            "users_filter",
        ),
        (
            with(
                &|b| b["mapping"] = json!([{"target": "userName", "source": "name.givenName", "transform": "reverse"}]),
            ),
            "reverse",
        ),
        (with(&|b| b["auth"] = json!({"type": "bearer"})), "token"),
        (
            with(&|b| b["auth"] = json!({"type": "bearer", "token_file": "/etc/passwd"})),
            "token_file",
        ),
        (
            with(&|b| b["auth"] = json!({"type": "bearer", "token": "********"})),
            "secret itself",
        ),
        (
            with(&|b| b["auth"] = json!({"type": "kerberos"})),
            "auth type",
        ),
        (with(&|b| b["name"] = json!("a/b")), "name"),
        (
            with(&|b| b["url"] = json!("http://u:p@127.0.0.1:1/scim/v2")),
            "credentials",
        ),
        (with(&|b| b["deprovision"] = json!("shred")), "deprovision"),
        (with(&|b| b["kind"] = json!("fax")), "kind"),
        (
            with(&|b| b["reconcile"] = json!({"schedule": "every 6 weeks"})),
            "schedule",
        ),
        (
            with(&|b| b["update_method"] = json!("post")),
            "update_method",
        ),
    ];
    for (body, reason) in &cases {
        let r = ops.post("/targets", Some(body));
        assert_eq!(r.status, 400, "{body} → {}", r.text);
        let error = r.body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(reason),
            "{body}: error {error:?} should mention {reason:?}"
        );
    }
    assert!(s.db.read(targets::list).expect("stored").is_empty());
    let listed = ops.get("/targets");
    assert_eq!(listed.body["targets"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed.body["targets"][0]["source"], "config");
    assert_eq!(listed.body["targets"][0]["readOnly"], true);

    // Duplicates and config-file names.
    assert_eq!(
        ops.post("/targets", Some(&settings("dup", &app))).status,
        201
    );
    assert_eq!(
        ops.post("/targets", Some(&settings("dup", &app))).status,
        409
    );
    let clash = ops.post("/targets", Some(&settings("from-file", &app)));
    assert_eq!(clash.status, 409, "{}", clash.text);
    for r in [
        ops.put("/targets/from-file", &settings("from-file", &app)),
        ops.delete("/targets/from-file"),
        ops.post("/targets/from-file/disable", None),
    ] {
        assert_eq!(r.status, 409, "{}", r.text);
        assert!(r.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("config file")));
    }

    // Replacing: no renames, no unknown targets, no bad settings, and a marker does not carry
    // the stored secret to a new URL.
    assert_eq!(
        ops.put("/targets/dup", &settings("other", &app)).status,
        400
    );
    assert_eq!(
        ops.put("/targets/nope", &settings("nope", &app)).status,
        404
    );
    let mut bad = settings("dup", &app);
    bad["users_filter"] = json!("(((");
    assert_eq!(ops.put("/targets/dup", &bad).status, 400);
    let mut moved = settings("dup", &app);
    moved["url"] = json!(closed_url());
    moved["auth"]["token"] = json!("********");
    let refused = ops.put("/targets/dup", &moved);
    assert_eq!(refused.status, 400, "{}", refused.text);
    let kept = ops.get("/targets/dup");
    assert_eq!(kept.body["url"], app.base.as_str());
    assert_eq!(kept.body["usersFilter"], Value::Null);

    // Only admin tokens.
    let idp = reqwest::blocking::Client::new()
        .get(s.base.replace("/scim/v2", "/admin/targets"))
        .bearer_auth(&s.token)
        .send()
        .expect("request");
    assert_eq!(idp.status().as_u16(), 403);
    ops.never_showed(&app.token);
}

/// Testing the connection: ok against a live target (config file or API), the target's
/// answer for a wrong token, and an error for a closed port.
fn connection_tests(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let mut file_target = TargetConfig::scim("from-file", &app.base);
    file_target.auth.kind = Some(scimgate::targets::AuthKind::Bearer);
    file_target.auth.token = Some(app.token.clone());
    let s = TestServer::start_with(backend, |c| {
        fast(c);
        c.targets = vec![file_target];
    });
    let ops = Ops::on(&s);
    assert_eq!(
        ops.post("/targets", Some(&settings("live", &app))).status,
        201
    );
    let mut wrong = settings("wrong-token", &app);
    wrong["auth"]["token"] = json!("sgt_not-a-token");
    assert_eq!(ops.post("/targets", Some(&wrong)).status, 201);
    let closed = json!({"name": "closed", "url": closed_url()});
    assert_eq!(ops.post("/targets", Some(&closed)).status, 201);

    for name in ["live", "from-file"] {
        let r = ops.post(&format!("/targets/{name}/test"), None);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["ok"], true, "{name}: {}", r.text);
        assert!(r.body["latencyMs"].is_u64());
        assert_eq!(r.body["error"], Value::Null);
    }
    let r = ops.post("/targets/wrong-token/test", None);
    assert_eq!(r.body["ok"], false, "{}", r.text);
    assert_eq!(r.body["httpStatus"], 401);
    let r = ops.post("/targets/closed/test", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["ok"], false, "{}", r.text);
    assert!(r.body["error"]
        .as_str()
        .is_some_and(|e| e.contains("request failed")));
    assert_eq!(ops.post("/targets/nope/test", None).status, 404);
    ops.never_showed(&app.token);
    ops.never_showed("sgt_not-a-token");
}

fn ldap_connection_tests(backend: Backend) {
    use crate::slapd::{Slapd, ADMIN_DN, ADMIN_PASSWORD, SUFFIX};
    let directory = Slapd::start();
    let s = TestServer::start_with(backend, fast);
    let ops = Ops::on(&s);
    let ldap = |name: &str, password: &str, base_dn: &str| {
        json!({"name": name, "kind": "ldap", "url": directory.url(),
            "auth": {"type": "simple", "username": ADMIN_DN, "password": password},
            "ldap": {"base_dn": base_dn}})
    };
    for body in [
        ldap("dir", ADMIN_PASSWORD, SUFFIX),
        ldap("dir-wrong-password", "not-the-password", SUFFIX),
        ldap("dir-wrong-base", ADMIN_PASSWORD, "dc=elsewhere,dc=org"),
    ] {
        let r = ops.post("/targets", Some(&body));
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = ops.post("/targets/dir/test", None);
    assert_eq!(r.body["ok"], true, "{}", r.text);
    let r = ops.post("/targets/dir-wrong-password/test", None);
    assert_eq!(r.body["ok"], false, "{}", r.text);
    assert!(r.text.contains("invalidCredentials"), "{}", r.text);
    let r = ops.post("/targets/dir-wrong-base/test", None);
    assert_eq!(r.body["ok"], false, "{}", r.text);
    assert!(r.text.contains("dc=elsewhere"), "{}", r.text);
    let r = ops.get("/targets/dir");
    assert_eq!(r.body["kind"], "ldap", "{}", r.text);
    ops.never_showed(ADMIN_PASSWORD);
}

/// Two instances on one database: a quarantine one of them records is honoured by both (no
/// deliveries from either while it lasts, the backlog kept) and reported by both.
fn quarantine_is_shared_by_instances(backend: Backend) {
    use crate::faulty_target::{Fault, FaultyTarget};
    let faulty = FaultyTarget::start(vec![Fault::Status(503); 100]);
    let a = TestServer::start_with(backend, fast);
    let url = a.database_url.clone();
    let b = TestServer::start_with(backend, |c| {
        fast(c);
        c.database_url = url;
    });
    let (ops_a, ops_b) = (Ops::on(&a), Ops::on(&b));
    let shaky = json!({"name": "shaky", "url": faulty.base, "retry_base_ms": 20, "retry_max_ms": 50,
        "quarantine_after": 2, "quarantine_after_seconds": 0, "probe_interval_ms": 600_000});
    assert_eq!(ops_a.post("/targets", Some(&shaky)).status, 201);
    a.create_user(&json!({"userName": "first"}));
    let seen_by_b = wait_for("the quarantine, as the other instance reports it", || {
        let r = ops_b.get("/targets/shaky/status");
        (r.body["quarantine"]["quarantined"] == true).then_some(r.body)
    });
    assert!(seen_by_b["quarantine"]["consecutiveFailures"].as_u64() >= Some(2));
    let posts = || {
        faulty
            .requests()
            .iter()
            .filter(|(m, _)| m == "POST")
            .count()
    };
    let before = posts();
    let waiting: Vec<String> = (0..3)
        .map(|i| id_of(&b.create_user(&json!({"userName": format!("later{i}")}))))
        .collect();
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(
        posts() <= before + 1,
        "neither instance delivers while quarantined, but for one probe a second in: {} POSTs",
        posts() - before
    );
    for id in &waiting {
        let list = orders_of(&b, "User", id);
        assert_eq!(list.len(), 1, "planned once");
        assert_eq!(list[0].state.as_str(), "pending", "the backlog is kept");
    }
    // Both read the one shared health (a probe may have gone out since, so read both now).
    let seen_by_a = ops_a.get("/targets/shaky/status");
    let seen_by_b = ops_b.get("/targets/shaky/status");
    assert_eq!(seen_by_a.body["quarantine"], seen_by_b.body["quarantine"]);

    // An operator points it at a working target: the quarantine is lifted for every instance
    // and the kept backlog is delivered.
    let app = TestServer::start(Backend::Sqlite);
    let mut fixed = shaky.clone();
    fixed["url"] = json!(app.base);
    fixed["auth"] = json!({"type": "bearer", "token": app.token});
    assert_eq!(ops_b.put("/targets/shaky", &fixed).status, 200);
    let r = ops_a.get("/targets/shaky/status");
    assert_eq!(r.body["quarantine"]["quarantined"], false, "{}", r.text);
    for name in ["first", "later0", "later1", "later2"] {
        wait_for("the backlog delivered", || remote_user(&app, name));
    }
}

/// Target credentials created through the API are sealed at rest (AES-256-GCM, bound to the
/// target and field) and opened only to be used; `scimgate secrets rotate-key` re-seals them
/// under a new key; on PostgreSQL without a key, secrets are refused with how to set one.
fn secrets_are_sealed_at_rest(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let keys = tempfile::tempdir().expect("key dir");
    let key_file = keys.path().join("scimgate.key");
    std::fs::write(&key_file, {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
    })
    .expect("key");
    let with_key = |c: &mut Config| {
        fast(c);
        c.secret_key_file = Some(key_file.clone());
    };
    let s = TestServer::start_with(backend, with_key);
    let ops = Ops::on(&s);
    assert_eq!(
        ops.post("/targets", Some(&settings("sealed", &app))).status,
        201
    );
    let stored = |s: &TestServer| -> String {
        s.db.read(|c| targets::find(c, "sealed"))
            .expect("read")
            .expect("stored")
            .config
    };
    let first = stored(&s);
    assert!(
        !first.contains(&app.token),
        "the token is not stored in clear"
    );
    assert!(first.contains("\"enc:v1:"), "{first}");
    s.create_user(&json!({"userName": "sealed-one"}));
    wait_for("delivered with the opened token", || {
        remote_user(&app, "sealed-one")
    });

    // Rotation: every stored secret sealed under a new key, the old key kept as .previous.
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_scimgate"));
    cli.args(["secrets", "rotate-key"])
        .env("SCIMGATE_DATABASE_URL", &s.database_url)
        .env("SCIMGATE_SECRET_KEY_FILE", &key_file)
        .env_remove("DATABASE_URL");
    let out = cli.output().expect("run scimgate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated = stored(&s);
    assert!(!rotated.contains(&app.token));
    let key_id = |text: &str| text.split("enc:v1:").nth(1).map(|r| r[..8].to_string());
    assert_ne!(key_id(&rotated), key_id(&first), "sealed under the new key");
    assert!(keys.path().join("scimgate.key.previous").exists());
    // A server started afterwards uses the rotated secret (the first one, still holding only
    // the old key, can no longer open it and stops serving the target).
    let url = s.database_url.clone();
    let again = TestServer::start_with(backend, |c| {
        with_key(c);
        c.database_url = url;
    });
    again.create_user(&json!({"userName": "sealed-two"}));
    wait_for("delivered after the rotation", || {
        remote_user(&app, "sealed-two")
    });

    if matches!(backend, Backend::Postgres) {
        let keyless = TestServer::start_with(backend, |c| {
            fast(c);
            c.secret_key_file = None;
        });
        let ops = Ops::on(&keyless);
        let refused = ops.post("/targets", Some(&settings("nokey", &app)));
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert!(
            refused.text.contains("SCIMGATE_SECRET_KEY_FILE"),
            "{}",
            refused.text
        );
        let plain = json!({"name": "open", "url": app.base, "auth": {"type": "none"}});
        assert_eq!(ops.post("/targets", Some(&plain)).status, 201);
    }
}

crate::for_each_backend!(
    secrets_are_sealed_at_rest,
    ldap_connection_tests,
    api_targets_are_served_and_follow_changes,
    deleting_a_target_inactivates_its_open_orders,
    bad_input_is_refused,
    connection_tests,
    quarantine_is_shared_by_instances,
);
