//! Declared attributes as mapping sources, target scopes and correlation keys: a user pushed
//! in over SCIM arrives in a real OpenLDAP slapd and in an independent SCIM server
//! (`scim2-server`, Python) with its custom attributes mapped onto theirs; a directory entry
//! made before scimgate correlates to its identity on a custom attribute.

use reqwest::Method;
use serde_json::{json, Value};

use scimgate::auth::{api_token, Role};
use scimgate::targets::ldap::LdapSettings;
use scimgate::targets::mapping::MappingRule;
use scimgate::targets::{AuthKind, TargetAuth, TargetConfig, TargetKind};

use crate::harness::{id_of, scim_body, send, Backend, TestServer};
use crate::interop_servers::{ExternalScim, Implementation};
use crate::slapd::{Slapd, ADMIN_DN, ADMIN_PASSWORD, SUFFIX};
use crate::{acme_users, declaration, wait_for, ACME, CORE_USER, ENTERPRISE};

fn rule(target: &str, source: &str) -> MappingRule {
    MappingRule {
        target: target.into(),
        source: Some(source.into()),
        ..MappingRule::default()
    }
}

fn template(target: &str, template: &str) -> MappingRule {
    MappingRule {
        target: target.into(),
        template: Some(template.into()),
        ..MappingRule::default()
    }
}

fn ldap(name: &str, directory: &Slapd) -> TargetConfig {
    let mut target = TargetConfig::scim(name, &directory.url());
    target.kind = TargetKind::Ldap;
    target.auth = TargetAuth {
        kind: Some(AuthKind::Simple),
        username: Some(ADMIN_DN.into()),
        password: Some(ADMIN_PASSWORD.into()),
        ..TargetAuth::default()
    };
    target.retry_base_ms = 50;
    target.retry_max_ms = 400;
    target.ldap = Some(LdapSettings {
        base_dn: SUFFIX.into(),
        ..LdapSettings::default()
    });
    target
}

/// Provisions to the directory only users cleared at level 2 or more, with their badge,
/// office and cost centre in inetOrgPerson attributes.
fn directory_target(directory: &Slapd) -> TargetConfig {
    let mut target = ldap("directory", directory);
    target.users_filter = Some(format!("{ACME}:clearance ge 2"));
    target.mapping = vec![
        rule("uid", "userName"),
        rule("cn", "userName"),
        rule("sn", "userName"),
        rule("employeeNumber", &format!("{ACME}:badge")),
        rule("employeeType", &format!("{ACME}:costCentre")),
        template(
            "roomNumber",
            &format!("{{{ACME}:office.building}}-{{{ACME}:office.floor}}"),
        ),
    ];
    target
}

/// The same directory read back only, correlating entries to users by badge.
fn badge_correlation(directory: &Slapd) -> TargetConfig {
    let mut target = ldap("badges", directory);
    target.enabled = false;
    target.reconcile.correlation = vec![format!("{ACME}:badge = employeeNumber")];
    target
}

/// An application that knows only core and enterprise attributes.
fn app_target(app: &ExternalScim) -> TargetConfig {
    let mut target = TargetConfig::scim("app", &app.base);
    if let Some(token) = &app.token {
        target.auth = TargetAuth {
            kind: Some(AuthKind::Bearer),
            token: Some(token.clone()),
            ..TargetAuth::default()
        };
    }
    target.retry_base_ms = 50;
    target.retry_max_ms = 500;
    target.mapping = vec![
        rule("userName", "userName"),
        rule(
            &format!("{ENTERPRISE}:employeeNumber"),
            &format!("{ACME}:badge"),
        ),
        rule("title", &format!("{ACME}:costCentre")),
    ];
    target
}

/// The user as `app` holds it.
fn in_app(app: &ExternalScim, user_name: &str) -> Option<Value> {
    let client = reqwest::blocking::Client::new();
    let mut request = client
        .get(format!("{}/Users", app.base))
        .query(&[("filter", format!("userName eq \"{user_name}\""))]);
    if let Some(token) = &app.token {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().ok()?.json().ok()?;
    body["Resources"].as_array()?.first().cloned()
}

fn admin(s: &TestServer, token: &str, method: Method, path: &str) -> Value {
    let url = s.base.replace("/scim/v2", &format!("/admin{path}"));
    let r = send(
        reqwest::blocking::Client::new()
            .request(method, url)
            .bearer_auth(token),
    );
    assert!(r.status < 300, "{path}: {} {}", r.status, r.body);
    r.body
}

fn mapped_to_ldap_and_a_scim_application(backend: Backend) {
    let directory = Slapd::start();
    let app = ExternalScim::start(Implementation::Scim2Server);
    let targets = vec![
        directory_target(&directory),
        badge_correlation(&directory),
        app_target(&app),
    ];
    let s = TestServer::start_with(backend, |c| {
        c.schema_extensions = vec![declaration(acme_users())];
        c.targets = targets;
        c.worker.poll_interval_ms = 20;
    });

    let alice = id_of(&s.create_user(&json!({
        "schemas": [CORE_USER, ACME], "userName": "alice",
        ACME: {"badge": "B-100", "clearance": 3, "costCentre": "R&D",
               "office": {"building": "HQ", "floor": 4}}
    })));
    s.create_user(&json!({
        "schemas": [CORE_USER, ACME], "userName": "bob",
        ACME: {"badge": "B-200", "clearance": 1, "costCentre": "Sales"}
    }));

    let entry = wait_for("alice in the directory", || {
        directory.entry(&format!("uid=alice,ou=people,{SUFFIX}"))
    });
    assert_eq!(entry.value("employeeNumber").as_deref(), Some("B-100"));
    assert_eq!(entry.value("employeeType").as_deref(), Some("R&D"));
    assert_eq!(entry.value("roomNumber").as_deref(), Some("HQ-4"));
    let in_app_alice = wait_for("alice in the app", || in_app(&app, "alice"));
    assert_eq!(in_app_alice[ENTERPRISE]["employeeNumber"], "B-100");
    assert_eq!(in_app_alice["title"], "R&D");
    let in_app_bob = wait_for("bob in the app", || in_app(&app, "bob"));
    assert_eq!(in_app_bob["title"], "Sales");
    assert!(
        directory.users_named("bob").is_empty(),
        "bob's clearance keeps him out of the directory's scope"
    );

    // A change to a custom attribute reaches both.
    let changed = send(scim_body(
        s.request(Method::PATCH, &format!("/Users/{alice}")),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": format!("{ACME}:badge"), "value": "B-101"}]}),
    ));
    assert_eq!(changed.status, 200, "{}", changed.body);
    wait_for("the new badge in the directory", || {
        let entry = directory.entry(&format!("uid=alice,ou=people,{SUFFIX}"))?;
        (entry.value("employeeNumber").as_deref() == Some("B-101")).then_some(())
    });
    wait_for("the new badge in the app", || {
        let user = in_app(&app, "alice")?;
        (user[ENTERPRISE]["employeeNumber"] == "B-101").then_some(())
    });

    // An entry from before scimgate, found by badge.
    let carol = id_of(&s.create_user(&json!({
        "schemas": [CORE_USER, ACME], "userName": "carol",
        ACME: {"badge": "B-300", "clearance": 0}
    })));
    directory.add(&format!(
        "dn: uid=c.legacy,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: c.legacy\ncn: Carol\nsn: Legacy\nemployeeNumber: B-300\n"
    ));
    let token = api_token::issue_with_role(&s.db, "ops", Role::Operator).expect("token");
    let started = admin(&s, &token, Method::POST, "/targets/badges/aggregate");
    let run = started["id"].as_i64().expect("run id");
    let done = wait_for("the aggregation", || {
        let r = admin(
            &s,
            &token,
            Method::GET,
            &format!("/targets/badges/syncs/{run}"),
        );
        (r["state"] != "running").then_some(r)
    });
    assert_eq!(done["state"], "completed", "{done}");
    let correlated = admin(
        &s,
        &token,
        Method::GET,
        "/targets/badges/accounts?situation=correlated",
    );
    let pairs: Vec<(String, String)> = correlated["Resources"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| {
            (
                a["remoteId"].as_str().unwrap_or_default().to_string(),
                a["identityId"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        pairs.contains(&(format!("uid=c.legacy,ou=people,{SUFFIX}"), carol)),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&(format!("uid=alice,ou=people,{SUFFIX}"), alice)),
        "{pairs:?}"
    );
}

crate::serially_on_each_backend!(mapped_to_ldap_and_a_scim_application);
