//! Reconciliation against real targets: aggregation and correlation, full sync repairing drift
//! made directly on the target (a second scimgate over SCIM, and slapd), orphan policies,
//! dry runs, the mass-delete guard, the target lock, schedules and the CLI.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use scimgate::config::Config;
use scimgate::storage::orders::{self, Order, OrderFilter};
use scimgate::storage::{identity_links, sync_runs, target_locks};
use scimgate::targets::{TargetAuth, TargetConfig};

use crate::admin_targets::{settings, Ops};
use crate::faulty_target::FaultyTarget;
use crate::harness::{id_of, Backend, TestServer};
use crate::ldap_target::ldap_target;
use crate::provisioning::{settled, wait_for};
use crate::rfc7644_patch::patch;
use crate::slapd::{Slapd, SUFFIX};

fn scim_target(app: &TestServer, name: &str) -> TargetConfig {
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

fn serve(backend: Backend, targets: Vec<TargetConfig>) -> TestServer {
    TestServer::start_with(backend, |c: &mut Config| {
        c.targets = targets;
        c.worker.poll_interval_ms = 20;
    })
}

/// Starts a run (`sync`, `sync?dryRun=true` or `aggregate`) and waits for it to end.
fn run(ops: &Ops<'_>, target: &str, what: &str) -> Value {
    let started = ops.post(&format!("/targets/{target}/{what}"), None);
    assert_eq!(started.status, 202, "{}", started.text);
    let id = started.body["id"].as_i64().expect("run id");
    assert_eq!(
        started.location.as_deref(),
        Some(format!("/admin/targets/{target}/syncs/{id}").as_str())
    );
    wait_for("the run to end", || {
        let r = ops.get(&format!("/targets/{target}/syncs/{id}"));
        (r.body["state"] != "running").then_some(r.body)
    })
}

fn remote_user(app: &TestServer, user_name: &str) -> Option<Value> {
    let r = app.get(&format!("/Users?filter=userName%20eq%20%22{user_name}%22"));
    r.body["Resources"]
        .as_array()
        .and_then(|a| a.first().cloned())
}

fn findings<'a>(run: &'a Value, finding: &str) -> Vec<&'a Value> {
    run["findings"]
        .as_array()
        .map(|all| all.iter().filter(|f| f["finding"] == finding).collect())
        .unwrap_or_default()
}

fn target_orders(s: &TestServer, target: &str) -> Vec<Order> {
    s.db.read(|c| {
        orders::list(
            c,
            &OrderFilter {
                target: Some(target.into()),
                limit: 10_000,
                ..OrderFilter::default()
            },
        )
    })
    .expect("orders")
}

fn all_settled(s: &TestServer, target: &str) -> bool {
    target_orders(s, target)
        .iter()
        .all(|o| matches!(o.state.as_str(), "executed" | "verified" | "inactive"))
}

fn full_sync_repairs_drift_on_a_scim_target(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let mut target = scim_target(&app, "app");
    target.reconcile.orphans = Some("delete".into());
    let s = serve(backend, vec![target]);
    let ops = Ops::on(&s);
    let mut ids = Vec::new();
    for (name, title) in [
        ("alice", "Explorer"),
        ("bob", "Builder"),
        ("carol", "Coder"),
    ] {
        ids.push(id_of(
            &s.create_user(&json!({"userName": name, "title": title})),
        ));
    }
    for id in &ids {
        wait_for("provisioned", || settled(&s, "User", id).then_some(()));
    }
    // Drift made on the target behind scimgate's back.
    let alice = remote_user(&app, "alice").expect("alice on the target");
    patch(
        &app,
        &format!("/Users/{}", id_of(&alice)),
        json!([{"op": "replace", "path": "title", "value": "Tampered"}]),
    );
    let bob = remote_user(&app, "bob").expect("bob on the target");
    assert_eq!(app.delete(&format!("/Users/{}", id_of(&bob))).status, 204);
    app.create_user(&json!({"userName": "mallory"}));
    app.create_group(&json!({"displayName": "AppOnly"}));

    // A dry run reports all of it and changes nothing.
    let dry = run(&ops, "app", "sync?dryRun=true");
    assert_eq!(dry["state"], "completed", "{dry}");
    assert_eq!(dry["dryRun"], true);
    let differs = findings(&dry, "differs");
    assert_eq!(differs.len(), 1, "{dry}");
    assert_eq!(differs[0]["identityId"], ids[0].as_str());
    let title = &differs[0]["attributes"][0];
    assert_eq!(title["name"], "title");
    assert_eq!(title["expected"], "Explorer");
    assert_eq!(title["actual"], "Tampered");
    let missing = findings(&dry, "missing");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["identityId"], ids[1].as_str());
    let orphans = findings(&dry, "orphan");
    assert_eq!(orphans.len(), 1);
    assert_eq!(orphans[0]["action"], "delete");
    assert_eq!(dry["summary"]["ordersEmitted"], 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        remote_user(&app, "alice").expect("alice")["title"],
        "Tampered"
    );
    assert!(remote_user(&app, "bob").is_none());
    assert!(remote_user(&app, "mallory").is_some());
    assert!(target_orders(&s, "app")
        .iter()
        .all(|o| o.origin.as_str() == "change"));

    // The real sync repairs the target; the target's own group is left alone.
    let done = run(&ops, "app", "sync");
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["summary"]["ordersEmitted"], 3, "{done}");
    wait_for("alice's title restored", || {
        remote_user(&app, "alice").filter(|u| u["title"] == "Explorer")
    });
    wait_for("bob provisioned again", || remote_user(&app, "bob"));
    wait_for("mallory deleted", || {
        remote_user(&app, "mallory").is_none().then_some(())
    });
    wait_for("corrections settled", || {
        all_settled(&s, "app").then_some(())
    });
    let groups = app.get("/Groups?filter=displayName%20eq%20%22AppOnly%22");
    assert_eq!(groups.body["totalResults"], 1, "unmanaged group untouched");
    let corrections: Vec<Order> = target_orders(&s, "app")
        .into_iter()
        .filter(|o| o.origin.as_str() == "sync")
        .collect();
    assert_eq!(corrections.len(), 3);
    assert!(corrections.iter().all(|o| o.sync_id == done["id"].as_i64()));

    // Nothing is left to repair, and only one bob exists.
    let again = run(&ops, "app", "sync");
    assert_eq!(again["summary"]["ordersEmitted"], 0, "{again}");
    assert_eq!(
        app.get("/Users?filter=userName%20eq%20%22bob%22").body["totalResults"],
        1
    );
    let listed = ops.get("/targets/app/syncs");
    assert_eq!(listed.body["Resources"].as_array().map(Vec::len), Some(3));
    // Each run that ended is an event with its counts.
    let finished = crate::harness::recorded_events(&s, "sync.finished");
    assert_eq!(finished.len(), 3);
    let last: Value = serde_json::from_str(&finished[2].data).expect("data");
    assert_eq!(last["kind"], "full_sync");
    assert_eq!(last["state"], "completed");
    assert_eq!(last["counts"]["ordersEmitted"], 0);
}

fn aggregation_correlates_a_populated_directory(backend: Backend) {
    let directory = Slapd::start();
    let mut target = ldap_target(&directory, |_, _| {});
    // Not provisioning: only reading what the directory already holds.
    target.enabled = false;
    target.reconcile.correlation = vec![
        "userName = uid".into(),
        "emails[primary].value = mail".into(),
    ];
    let s = serve(backend, vec![target]);
    let ops = Ops::on(&s);
    let alice = id_of(&s.create_user(&json!({"userName": "alice"})));
    let twin_a = id_of(&s.create_user(&json!({"userName": "twin-a",
        "emails": [{"value": "team@example.org", "primary": true}]})));
    let twin_b = id_of(&s.create_user(&json!({"userName": "twin-b",
        "emails": [{"value": "team@example.org", "primary": true}]})));
    let mut ldif = String::new();
    for (uid, mail) in [
        ("ALICE", "a@example.org"),
        ("shared", "team@example.org"),
        ("ghost", "g@example.org"),
    ] {
        ldif.push_str(&format!(
            "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {mail}\n\n"
        ));
    }
    ldif.push_str(&format!(
        "dn: cn=ldaponly,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: ldaponly\nmember: uid=ghost,ou=people,{SUFFIX}\n"
    ));
    directory.add(&ldif);

    let done = run(&ops, "directory", "aggregate");
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["summary"]["users"]["read"], 3, "{done}");
    assert_eq!(done["summary"]["users"]["correlated"], 1);
    assert_eq!(done["summary"]["users"]["ambiguous"], 1);
    assert_eq!(done["summary"]["users"]["uncorrelated"], 1);
    assert_eq!(done["summary"]["groups"]["uncorrelated"], 1);

    let correlated = ops.get("/targets/directory/accounts?situation=correlated");
    let list = correlated.body["Resources"].as_array().expect("accounts");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["identityId"], alice.as_str());
    assert_eq!(list[0]["attributes"]["mail"][0], "a@example.org");
    let ambiguous = ops.get("/targets/directory/accounts?situation=ambiguous");
    let candidates = &ambiguous.body["Resources"][0]["candidates"];
    let mut named: Vec<&str> = candidates
        .as_array()
        .expect("candidates")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    named.sort();
    let mut twins = vec![twin_a.as_str(), twin_b.as_str()];
    twins.sort();
    assert_eq!(named, twins, "never guessed between the twins");
    let orphans = ops.get("/targets/directory/accounts?situation=uncorrelated&resourceType=User");
    assert_eq!(
        orphans.body["Resources"][0]["remoteId"],
        format!("uid=ghost,ou=people,{SUFFIX}")
    );
    assert_eq!(orphans.body["totals"]["User"]["uncorrelated"], 1);
    // The correlation became a link: provisioning alice would update her entry.
    let link =
        s.db.read(|c| identity_links::link(c, "directory", "User", &alice))
            .expect("link");
    assert_eq!(
        link.as_deref(),
        Some(format!("uid=ALICE,ou=people,{SUFFIX}").as_str())
    );
    // A second aggregation sees the link; an entry removed meanwhile is forgotten.
    directory.modify(&format!(
        "dn: uid=ghost,ou=people,{SUFFIX}\nchangetype: delete\n"
    ));
    let again = run(&ops, "directory", "aggregate");
    assert_eq!(again["summary"]["users"]["linked"], 1, "{again}");
    assert_eq!(again["summary"]["users"]["forgotten"], 1, "{again}");
    assert_eq!(
        ops.get("/targets/directory/accounts?situation=bogus")
            .status,
        400
    );
    assert_eq!(ops.post("/targets/nowhere/aggregate", None).status, 404);
}

fn full_sync_repairs_a_directory(backend: Backend) {
    let directory = Slapd::start();
    let mut target = ldap_target(&directory, |_, ldap| {
        ldap.disabled_container = Some(format!("ou=disabled,{SUFFIX}"));
    });
    target.reconcile.orphans = Some("disable".into());
    let s = serve(backend, vec![target]);
    let ops = Ops::on(&s);
    let alice = id_of(
        &s.create_user(&json!({"userName": "alice", "title": "Explorer",
        "name": {"givenName": "Alice", "familyName": "Liddell"}})),
    );
    let bob = id_of(&s.create_user(&json!({"userName": "bob",
        "name": {"givenName": "Bob", "familyName": "Builder"}})));
    let staff = id_of(&s.create_group(&json!({"displayName": "Staff",
        "members": [{"value": alice}, {"value": bob}]})));
    for (kind, id) in [("User", &alice), ("User", &bob), ("Group", &staff)] {
        wait_for("provisioned", || settled(&s, kind, id).then_some(()));
    }
    let alice_dn = format!("uid=alice,ou=people,{SUFFIX}");
    let bob_dn = format!("uid=bob,ou=people,{SUFFIX}");
    let staff_dn = format!("cn=Staff,ou=groups,{SUFFIX}");
    directory.modify(&format!(
        "dn: {alice_dn}\nchangetype: modify\nreplace: title\ntitle: Tampered\n\n\
         dn: {bob_dn}\nchangetype: delete\n\n\
         dn: {staff_dn}\nchangetype: modify\ndelete: member\nmember: {alice_dn}\n"
    ));
    directory.add(&format!(
        "dn: uid=intruder,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: intruder\ncn: In Truder\nsn: Truder\n\n\
         dn: cn=ldaponly,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: ldaponly\nmember: {alice_dn}\n"
    ));

    let done = run(&ops, "directory", "sync");
    assert_eq!(done["state"], "completed", "{done}");
    let differs = findings(&done, "differs");
    assert_eq!(
        differs.len(),
        2,
        "alice's title and Staff's members: {done}"
    );
    assert!(differs
        .iter()
        .any(|f| f["identityId"] == staff.as_str() && f["attributes"][0]["name"] == "member"));
    wait_for("alice's title restored", || {
        directory
            .entry(&alice_dn)
            .filter(|e| e.value("title").as_deref() == Some("Explorer"))
    });
    wait_for("bob back", || directory.entry(&bob_dn));
    wait_for("alice back in Staff", || {
        directory
            .entry(&staff_dn)
            .filter(|e| e.values("member").contains(&alice_dn))
    });
    wait_for("the intruder disabled", || {
        directory.entry(&format!("uid=intruder,ou=disabled,{SUFFIX}"))
    });
    let unmanaged = directory
        .entry(&format!("cn=ldaponly,ou=groups,{SUFFIX}"))
        .expect("unmanaged group kept");
    assert_eq!(unmanaged.values("member"), vec![alice_dn.clone()]);
    wait_for("settled", || all_settled(&s, "directory").then_some(()));
    let again = run(&ops, "directory", "sync");
    assert_eq!(again["summary"]["ordersEmitted"], 0, "{again}");
}

fn mass_deletion_waits_for_approval(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    for n in 0..9 {
        app.create_user(&json!({"userName": format!("leftover{n}")}));
    }
    let mut target = scim_target(&app, "app");
    target.reconcile.orphans = Some("delete".into());
    target.reconcile.mass_delete_percent = Some(50.0);
    target.reconcile.mass_delete_count = Some(3);
    let s = serve(backend, vec![target]);
    let ops = Ops::on(&s);
    let keeper = id_of(&s.create_user(&json!({"userName": "keeper"})));
    wait_for("keeper provisioned", || {
        settled(&s, "User", &keeper).then_some(())
    });

    // A sync that would delete 9 of the target's 10 accounts holds every deletion.
    let done = run(&ops, "app", "sync");
    assert_eq!(done["summary"]["ordersHeld"], 9, "{done}");
    assert!(
        done["summary"]["heldReason"]
            .as_str()
            .is_some_and(|r| r.contains("90%")),
        "{done}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        app.get("/Users").body["totalResults"],
        10,
        "nothing deleted"
    );
    let status = ops.get("/targets/app/status");
    assert_eq!(status.body["massDeleteGuard"]["held"], 9, "{}", status.text);
    let held: Vec<Order> = target_orders(&s, "app")
        .into_iter()
        .filter(|o| o.state.as_str() == "awaiting_approval")
        .collect();
    assert_eq!(held.len(), 9);
    assert!(held.iter().all(|o| o
        .held_reason
        .as_deref()
        .is_some_and(|r| r.starts_with("mass-delete guard"))));
    assert!(held
        .iter()
        .all(|o| o.hold_kind() == Some(scimgate::storage::orders::HoldKind::MassDelete)));

    // A burst of inbound deletions: past the count, deletions wait too.
    let mut staff = Vec::new();
    for n in 0..5 {
        staff.push(id_of(
            &s.create_user(&json!({"userName": format!("staff{n}")})),
        ));
    }
    for id in &staff {
        wait_for("staff provisioned", || {
            settled(&s, "User", id).then_some(())
        });
    }
    for id in &staff {
        assert_eq!(s.delete(&format!("/Users/{id}")).status, 204);
    }
    wait_for("the burst planned", || {
        let held = target_orders(&s, "app")
            .into_iter()
            .filter(|o| o.operation.as_str() == "delete" && o.state.as_str() == "awaiting_approval")
            .count();
        (held == 2).then_some(())
    });
    let status = ops.get("/targets/app/status");
    assert_eq!(
        status.body["massDeleteGuard"]["held"], 11,
        "{}",
        status.text
    );

    // An operator approves: the held deletions go out.
    let approved = ops.post(
        "/orders/approve",
        Some(&json!({"target": "app", "comment": "the cleanup is intended"})),
    );
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.body["approved"], 11);
    // Each held order asked for a decision; the decision is the operator's move.
    let asked = crate::harness::recorded_events(&s, "order.approval_required");
    assert_eq!(asked.len(), 11);
    let decided: Vec<_> = crate::harness::recorded_events(&s, "order.state_changed")
        .into_iter()
        .filter(|e| e.data.contains("\"from\":\"awaiting_approval\""))
        .collect();
    assert_eq!(decided.len(), 11);
    assert!(
        decided.iter().all(|e| e.actor.starts_with("token:")),
        "{:?}",
        decided
            .iter()
            .map(|e| (&e.actor, &e.data))
            .collect::<Vec<_>>()
    );
    wait_for("only the keeper left", || {
        (app.get("/Users").body["totalResults"] == 1).then_some(())
    });
    assert!(remote_user(&app, "keeper").is_some());
    let status = ops.get("/targets/app/status");
    assert_eq!(status.body["massDeleteGuard"]["held"], 0, "{}", status.text);
}

fn full_sync_holds_the_target_lock(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let s = serve(backend, vec![scim_target(&app, "app")]);
    // While a sync holds the target, incremental delivery waits, then resumes.
    let lock_ttl = 60_000_000;
    // A sync whose process died: its lock expires, and the next holder closes its run.
    let stale = sync_runs::start(&s.db, "app", "full_sync", false, "cli").expect("run");
    assert!(target_locks::acquire(&s.db, "app", "dead", Some(stale), 1).expect("lock"));
    s.clock.advance(Duration::from_millis(5));
    assert!(target_locks::acquire(&s.db, "app", "test-sync", None, lock_ttl).expect("lock"));
    assert!(!target_locks::acquire(&s.db, "app", "other", None, lock_ttl).expect("lock"));
    let ops = Ops::on(&s);
    assert_eq!(
        ops.post("/targets/app/sync", None).status,
        409,
        "one sync at a time"
    );
    let id = id_of(&s.create_user(&json!({"userName": "waiting"})));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        remote_user(&app, "waiting").is_none(),
        "delivered under the lock"
    );
    let orders = crate::provisioning::orders_of(&s, "User", &id);
    assert_eq!(orders[0].state.as_str(), "pending");
    assert_eq!(
        ops.get("/targets/app/status").body["fullSync"]["running"],
        true
    );
    target_locks::release(&s.db, "app", "test-sync").expect("release");
    wait_for("delivered after the lock", || remote_user(&app, "waiting"));

    // A full sync during a burst of changes: every change lands once, in its final state.
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(id_of(&s.create_user(
            &json!({"userName": format!("u{n}"), "title": "v0"}),
        )));
    }
    let burst = {
        let ids = ids.clone();
        let (base, token) = (s.base.clone(), s.token.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            for round in 1..=3 {
                for id in &ids {
                    let r = client
                        .patch(format!("{base}/Users/{id}"))
                        .bearer_auth(&token)
                        .header("content-type", "application/scim+json")
                        .body(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [{"op": "replace", "path": "title", "value": format!("v{round}")}]}).to_string())
                        .send()
                        .expect("patch");
                    assert_eq!(r.status().as_u16(), 200);
                }
            }
        })
    };
    let sync = run(&ops, "app", "sync");
    assert_eq!(sync["state"], "completed", "{sync}");
    burst.join().expect("burst");
    // The last changes may still be unplanned when the orders already planned have settled:
    // wait for the final state itself.
    for n in 0..30 {
        wait_for("the final state", || {
            remote_user(&app, &format!("u{n}")).filter(|u| u["title"] == "v3")
        });
    }
    wait_for("everything settled", || {
        all_settled(&s, "app").then_some(())
    });
    let remote = app.get("/Users?count=100");
    assert_eq!(
        remote.body["totalResults"], 31,
        "no duplicates: {}",
        remote.body
    );
}

fn schedules_and_the_command_line(backend: Backend) {
    let app = TestServer::start(Backend::Sqlite);
    let mut target = scim_target(&app, "nightly");
    target.reconcile.schedule = Some("every 1h".into());
    let s = serve(backend, vec![target]);
    let ops = Ops::on(&s);
    // Never synced: the first scheduled sync starts at once, and not again within the hour.
    let runs = wait_for("a scheduled sync", || {
        let r = ops.get("/targets/nightly/syncs");
        r.body["Resources"]
            .as_array()
            .filter(|l| l.iter().any(|x| x["state"] == "completed"))
            .cloned()
    });
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["trigger"], "schedule");

    // The command line runs against targets kept in the database too.
    assert_eq!(
        ops.post("/targets", Some(&settings("crm", &app))).status,
        201
    );
    s.create_user(&json!({"userName": "cli-user"}));
    app.create_user(&json!({"userName": "stray"}));
    let mut cli = Command::new(env!("CARGO_BIN_EXE_scimgate"));
    cli.args(["sync", "--target", "crm", "--dry-run"])
        .env("SCIMGATE_DATABASE_URL", &s.database_url)
        .env_remove("DATABASE_URL");
    if matches!(backend, Backend::Postgres) {
        // The key the server sealed the target's token with (SQLite's sits beside its file).
        cli.env(
            "SCIMGATE_SECRET_KEY_FILE",
            crate::harness::shared_secret_key(),
        );
    }
    let out = cli.output().expect("run scimgate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["orphans"], 1, "{report}");
    assert_eq!(report["ordersEmitted"], 0);
    let out = Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(["aggregate", "--target", "nowhere"])
        .env("SCIMGATE_DATABASE_URL", &s.database_url)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run scimgate");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no target named"));
}

fn aggregation_pages_targets_without_cursors(backend: Backend) {
    // Cursors ignored, refused as a bad request, or not implemented (501).
    for cursor_refusal in [None, Some(400), Some(501)] {
        let app = FaultyTarget::start_index_paged(cursor_refusal);
        let mut target = TargetConfig::scim("paged", &app.base);
        target.groups = false;
        let s = serve(backend, vec![target]);
        let ops = Ops::on(&s);
        for n in 0..5 {
            let id = id_of(&s.create_user(&json!({"userName": format!("p{n}")})));
            wait_for("provisioned", || settled(&s, "User", &id).then_some(()));
        }
        let done = run(&ops, "paged", "aggregate");
        assert_eq!(done["summary"]["users"]["read"], 5, "{done}");
        assert_eq!(done["summary"]["users"]["linked"], 5, "{done}");
        let pages = app
            .requests()
            .iter()
            .filter(|(m, p)| m == "GET" && p.ends_with("/Users"))
            .count();
        assert!(pages >= 3, "two users a page: {pages} list requests");
    }
}

crate::for_each_backend!(
    aggregation_pages_targets_without_cursors,
    full_sync_repairs_drift_on_a_scim_target,
    aggregation_correlates_a_populated_directory,
    full_sync_repairs_a_directory,
    mass_deletion_waits_for_approval,
    full_sync_holds_the_target_lock,
    schedules_and_the_command_line,
);
