//! Provisioning into a real OpenLDAP slapd: users and groups pushed into scimgate over SCIM
//! arrive as directory entries, checked with `ldapsearch`.

use std::time::Duration;

use serde_json::json;

use scimgate::config::Config;
use scimgate::targets::ldap::{GroupClass, LdapSettings};
use scimgate::targets::mapping::MappingRule;
use scimgate::targets::{TargetAuth, TargetConfig};

use crate::harness::{id_of, Backend, TestServer};
use crate::provisioning::{orders_of, settled, wait_for};
use crate::rfc7644_patch::patch;
use crate::slapd::{Slapd, ADMIN_DN, ADMIN_PASSWORD, SUFFIX};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn people(uid: &str) -> String {
    format!("uid={uid},ou=people,{SUFFIX}")
}

fn group_dn(cn: &str) -> String {
    format!("cn={cn},ou=groups,{SUFFIX}")
}

pub(crate) fn ldap_target(
    directory: &Slapd,
    adjust: impl FnOnce(&mut TargetConfig, &mut LdapSettings),
) -> TargetConfig {
    let mut target = TargetConfig::scim("directory", &directory.url());
    target.kind = scimgate::targets::TargetKind::Ldap;
    target.auth = TargetAuth {
        kind: Some(scimgate::targets::AuthKind::Simple),
        username: Some(ADMIN_DN.into()),
        password: Some(ADMIN_PASSWORD.into()),
        ..TargetAuth::default()
    };
    target.retry_base_ms = 50;
    target.retry_max_ms = 400;
    target.timeout_seconds = 5;
    target.concurrency = 8;
    let mut settings = LdapSettings {
        base_dn: SUFFIX.into(),
        ..LdapSettings::default()
    };
    adjust(&mut target, &mut settings);
    target.ldap = Some(settings);
    target
}

/// A mapping rule taking `target` from the SCIM attribute `source`.
fn rule(target: &str, source: &str) -> MappingRule {
    MappingRule {
        target: target.into(),
        source: Some(source.into()),
        ..MappingRule::default()
    }
}

fn serve(backend: Backend, target: TargetConfig) -> TestServer {
    TestServer::start_with(backend, |c: &mut Config| {
        c.targets = vec![target];
        c.worker.poll_interval_ms = 20;
    })
}

fn user_settled(s: &TestServer, kind: &str, id: &str) {
    wait_for(&format!("{kind} {id} settled"), || {
        settled(s, kind, id).then_some(())
    });
}

fn users_groups_renames_and_deletes_reach_the_directory(backend: Backend) {
    let directory = Slapd::start();
    let s = serve(backend, ldap_target(&directory, |_, _| {}));

    let alice = s.create_user(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": "alice", "name": {"givenName": "Alice", "familyName": "Liddell"},
        "emails": [{"value": "alice@example.com", "type": "work", "primary": true}],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
        "title": "Explorer",
        ENTERPRISE: {"employeeNumber": "701", "department": "Wonder"}
    }));
    let alice_id = id_of(&alice);
    let entry = wait_for("alice in the directory", || {
        directory.entry(&people("alice"))
    });
    assert_eq!(
        entry.value("cn").as_deref(),
        Some("Alice Liddell"),
        "cn falls back to given + family name"
    );
    assert_eq!(entry.value("sn").as_deref(), Some("Liddell"));
    assert_eq!(entry.value("givenName").as_deref(), Some("Alice"));
    assert_eq!(entry.value("mail").as_deref(), Some("alice@example.com"));
    assert_eq!(
        entry.value("telephoneNumber").as_deref(),
        Some("+1 555 0100")
    );
    assert_eq!(entry.value("title").as_deref(), Some("Explorer"));
    assert_eq!(entry.value("employeeNumber").as_deref(), Some("701"));
    assert_eq!(entry.value("departmentNumber").as_deref(), Some("Wonder"));
    assert!(entry
        .values("objectClass")
        .contains(&"inetOrgPerson".to_string()));
    wait_for("alice's order verified", || {
        orders_of(&s, "User", &alice_id)
            .iter()
            .any(|o| {
                o.state.as_str() == "verified"
                    && o.remote_id.as_deref() == Some(people("alice").as_str())
            })
            .then_some(())
    });

    // A user with no family name still satisfies inetOrgPerson's required sn.
    let bare = id_of(&s.create_user(&json!({"userName": "mononym"})));
    let entry = wait_for("mononym in the directory", || {
        directory.entry(&people("mononym"))
    });
    assert_eq!(entry.value("sn").as_deref(), Some("mononym"));
    assert_eq!(entry.value("cn").as_deref(), Some("mononym"));

    let group =
        s.create_group(&json!({"displayName": "Explorers", "members": [{"value": alice_id}]}));
    let group_id = id_of(&group);
    let entry = wait_for("the group in the directory", || {
        directory.entry(&group_dn("Explorers"))
    });
    assert_eq!(
        entry.values("member"),
        vec![people("alice")],
        "members are the users' DNs"
    );

    // Attribute update: changed values replaced, removed values deleted, the rest untouched.
    let r = patch(
        &s,
        &format!("/Users/{alice_id}"),
        json!([
            {"op": "replace", "path": "title", "value": "Queen"},
            {"op": "remove", "path": "phoneNumbers"}
        ]),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let entry = wait_for("the new title", || {
        directory
            .entry(&people("alice"))
            .filter(|e| e.value("title").as_deref() == Some("Queen"))
    });
    assert!(entry.values("telephoneNumber").is_empty(), "{entry:?}");
    assert_eq!(entry.value("mail").as_deref(), Some("alice@example.com"));

    // A userName change renames the entry, and the group follows the new DN.
    let r = patch(
        &s,
        &format!("/Users/{alice_id}"),
        json!([{"op": "replace", "path": "userName", "value": "alice.l"}]),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    wait_for("the renamed entry", || directory.entry(&people("alice.l")));
    assert!(
        directory.entry(&people("alice")).is_none(),
        "the old DN is gone"
    );
    assert_eq!(directory.users_named("alice.l").len(), 1);
    let entry = directory.entry(&group_dn("Explorers")).expect("group");
    assert_eq!(entry.values("member"), vec![people("alice.l")]);
    user_settled(&s, "User", &alice_id);
    let last = orders_of(&s, "User", &alice_id)
        .into_iter()
        .max_by_key(|o| o.id)
        .expect("orders");
    assert_eq!(
        last.remote_id.as_deref(),
        Some(people("alice.l").as_str()),
        "the link follows the rename"
    );

    // Membership: removing the last member keeps groupOfNames valid with the placeholder.
    let r = patch(
        &s,
        &format!("/Groups/{group_id}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{alice_id}\"]")}]),
    );
    assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
    wait_for("the placeholder member", || {
        directory
            .entry(&group_dn("Explorers"))
            .filter(|e| e.values("member") == vec![ADMIN_DN.to_string()])
    });
    let r = patch(
        &s,
        &format!("/Groups/{group_id}"),
        json!([{"op": "add", "path": "members", "value": [{"value": bare}, {"value": alice_id}]}]),
    );
    assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
    let entry = wait_for("two members again", || {
        directory
            .entry(&group_dn("Explorers"))
            .filter(|e| e.values("member").len() == 2)
    });
    let mut members = entry.values("member");
    members.sort();
    assert_eq!(
        members,
        vec![people("alice.l"), people("mononym")],
        "the placeholder left"
    );

    // Deleting the user deletes the entry and its membership.
    assert_eq!(s.delete(&format!("/Users/{alice_id}")).status, 204);
    wait_for("alice deleted", || {
        directory.entry(&people("alice.l")).is_none().then_some(())
    });
    wait_for("the membership gone", || {
        directory
            .entry(&group_dn("Explorers"))
            .filter(|e| e.values("member") == vec![people("mononym")])
    });
    assert_eq!(s.delete(&format!("/Groups/{group_id}")).status, 204);
    wait_for("the group deleted", || {
        directory
            .entry(&group_dn("Explorers"))
            .is_none()
            .then_some(())
    });
}

fn an_existing_entry_is_correlated_not_duplicated(backend: Backend) {
    let directory = Slapd::start();
    directory.add(&format!(
        "dn: {}\nobjectClass: inetOrgPerson\nuid: carol\ncn: Carol Old\nsn: Old\ndescription: made by hand\n",
        people("carol")
    ));
    let s = serve(backend, ldap_target(&directory, |_, _| {}));
    let carol = id_of(&s.create_user(&json!({
        "userName": "carol", "name": {"givenName": "Carol", "familyName": "New"},
        "emails": [{"value": "carol@example.com", "primary": true}]
    })));
    user_settled(&s, "User", &carol);
    let entries = directory.users_named("carol");
    assert_eq!(entries.len(), 1, "linked, not duplicated: {entries:?}");
    let entry = &entries[0];
    assert_eq!(entry.value("sn").as_deref(), Some("New"));
    assert_eq!(entry.value("mail").as_deref(), Some("carol@example.com"));
    assert_eq!(
        entry.value("description").as_deref(),
        Some("made by hand"),
        "unmanaged attributes stay"
    );
    let order = orders_of(&s, "User", &carol)
        .into_iter()
        .max_by_key(|o| o.id)
        .expect("order");
    assert_eq!(order.remote_id.as_deref(), Some(people("carol").as_str()));
}

fn deleting_an_entry_already_gone_counts_as_done(backend: Backend) {
    let directory = Slapd::start();
    let s = serve(backend, ldap_target(&directory, |_, _| {}));
    let id = id_of(&s.create_user(&json!({"userName": "ghost"})));
    user_settled(&s, "User", &id);
    directory.modify(&format!("dn: {}\nchangetype: delete\n", people("ghost")));
    assert_eq!(s.delete(&format!("/Users/{id}")).status, 204);
    let order = wait_for("the delete order finished", || {
        orders_of(&s, "User", &id)
            .into_iter()
            .find(|o| o.operation.as_str() == "delete" && o.state.as_str() == "executed")
    });
    assert_eq!(order.attempts, 1, "no retries: {order:?}");
    assert!(directory.users_named("ghost").is_empty());
}

fn deactivation_moves_the_entry_aside_and_back(backend: Backend) {
    let directory = Slapd::start();
    let disabled = format!("ou=disabled,{SUFFIX}");
    let container = disabled.clone();
    let target = ldap_target(&directory, |t, l| {
        t.deprovision = scimgate::targets::Deprovision::Deactivate;
        t.users_filter = Some("active eq true".into());
        l.disabled_container = Some(container);
    });
    let s = serve(backend, target);
    let dave = id_of(
        &s.create_user(&json!({"userName": "dave", "active": true, "name": {"familyName": "D"}})),
    );
    let group =
        id_of(&s.create_group(&json!({"displayName": "Staff", "members": [{"value": dave}]})));
    wait_for("the group", || directory.entry(&group_dn("Staff")));

    // Okta deactivates with PATCH active=false.
    let r = patch(
        &s,
        &format!("/Users/{dave}"),
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let moved = format!("uid=dave,{disabled}");
    wait_for("dave in the disabled container", || directory.entry(&moved));
    assert!(directory.entry(&people("dave")).is_none());
    assert_eq!(
        directory
            .entry(&group_dn("Staff"))
            .expect("group")
            .values("member"),
        vec![moved.clone()],
        "the group follows the move"
    );

    let r = patch(
        &s,
        &format!("/Users/{dave}"),
        json!([{"op": "replace", "path": "active", "value": true}]),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    wait_for("dave back among people", || {
        directory.entry(&people("dave"))
    });
    assert!(directory.entry(&moved).is_none());
    assert_eq!(directory.users_named("dave").len(), 1);
    user_settled(&s, "Group", &group);
}

fn a_group_of_5000_changes_by_single_members(backend: Backend) {
    let directory = Slapd::start();
    let s = serve(backend, ldap_target(&directory, |t, _| t.concurrency = 16));
    let mut ids = Vec::with_capacity(5001);
    for chunk in 0..6 {
        let operations: Vec<_> = (0..1000)
            .map(|i| chunk * 1000 + i)
            .take_while(|n| *n < 5001)
            .map(|n| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"),
                "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("member{n:05}"), "name": {"familyName": "M"}}})
            })
            .collect();
        let r = crate::harness::send(crate::harness::scim_body(
            s.request(reqwest::Method::POST, "/Bulk"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": operations}),
        ));
        assert_eq!(r.status, 200, "{:?}", r.body);
        for op in r.body["Operations"].as_array().expect("operations") {
            let location = op["location"].as_str().expect("location");
            ids.push(location.rsplit('/').next().expect("id").to_string());
        }
    }
    let last = ids.pop().expect("5001 users");
    let members: Vec<_> = ids.iter().map(|id| json!({"value": id})).collect();
    let group = id_of(&s.create_group(&json!({"displayName": "Everyone", "members": members})));
    let entry = wait_for("5000 members in the directory", || {
        std::thread::sleep(Duration::from_millis(200));
        directory
            .entry(&group_dn("Everyone"))
            .filter(|e| e.values("member").len() == 5000)
    });
    assert!(entry.values("member").contains(&people("member00042")));

    let r = patch(
        &s,
        &format!("/Groups/{group}"),
        json!([{"op": "add", "path": "members", "value": [{"value": last}]}]),
    );
    assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
    wait_for("the 5001st member", || {
        directory
            .entry(&group_dn("Everyone"))
            .filter(|e| e.values("member").len() == 5001)
    });
    let r = patch(
        &s,
        &format!("/Groups/{group}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[7])}]),
    );
    assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
    let entry = wait_for("one member fewer", || {
        directory
            .entry(&group_dn("Everyone"))
            .filter(|e| e.values("member").len() == 5000)
    });
    assert!(!entry.values("member").contains(&people("member00007")));
    assert!(entry.values("member").contains(&people("member05000")));
}

fn changes_made_while_the_directory_is_down_arrive_when_it_is_back(backend: Backend) {
    let mut directory = Slapd::start();
    let s = serve(backend, ldap_target(&directory, |_, _| {}));
    let first = id_of(&s.create_user(&json!({"userName": "before"})));
    user_settled(&s, "User", &first);

    directory.stop();
    let ids: Vec<String> = (0..3)
        .map(|n| id_of(&s.create_user(&json!({"userName": format!("during{n}")}))))
        .collect();
    wait_for("a failed attempt on the down directory", || {
        orders_of(&s, "User", &ids[0])
            .iter()
            .any(|o| o.state.as_str() == "errored" && o.attempts > 0)
            .then_some(())
    });
    directory.restart();
    for (n, id) in ids.iter().enumerate() {
        user_settled(&s, "User", id);
        assert_eq!(directory.users_named(&format!("during{n}")).len(), 1);
    }
    assert_eq!(
        directory.users_named("before").len(),
        1,
        "nothing duplicated"
    );
}

fn schema_violations_are_permanent_with_the_servers_message(backend: Backend) {
    let directory = Slapd::start();
    let target = ldap_target(&directory, |t, _| {
        t.mapping = vec![
            rule("uid", "userName"),
            rule("sn", "userName"),
            rule("cn", "userName"),
            rule("shoeSize", "title"),
        ];
    });
    let s = serve(backend, target);
    let id = id_of(&s.create_user(&json!({"userName": "odd", "title": "42"})));
    let order = wait_for("the order given up", || {
        orders_of(&s, "User", &id)
            .into_iter()
            .find(|o| o.state.as_str() == "error")
    });
    assert_eq!(order.attempts, 1, "not retried: {order:?}");
    let error = order.last_error.unwrap_or_default();
    assert!(error.contains("LDAP 17 undefinedAttributeType"), "{error}");
    assert!(directory.users_named("odd").is_empty());
}

fn starttls_with_a_private_ca(backend: Backend) {
    let directory = Slapd::start_tls();
    let target = ldap_target(&directory, |_, l| {
        l.starttls = true;
        l.ca_cert_file = Some(Slapd::ca_file());
    });
    let s = serve(backend, target);
    let id = id_of(&s.create_user(&json!({"userName": "secure"})));
    user_settled(&s, "User", &id);
    assert_eq!(directory.users_named("secure").len(), 1);
}

fn initial_passwords_go_only_over_tls(backend: Backend) {
    let directory = Slapd::start_tls();
    let rules = || {
        vec![
            rule("uid", "userName"),
            rule("sn", "userName"),
            rule("cn", "userName"),
            rule("userPassword", "password"),
        ]
    };
    let plain = ldap_target(&directory, |t, _| t.mapping = rules());
    let refused = scimgate::provisioning::Target::from_config(&plain)
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("encrypted"), "{refused}");

    let target = ldap_target(&directory, |t, l| {
        t.mapping = rules();
        l.starttls = true;
        l.ca_cert_file = Some(Slapd::ca_file());
    });
    let s = serve(backend, target);
    let id = id_of(&s.create_user(&json!({"userName": "pat", "password": "Initial-1"})));
    user_settled(&s, "User", &id);
    let entry = directory.users_named("pat").pop().expect("pat");
    assert_eq!(entry.value("userPassword").as_deref(), Some("Initial-1"));
    let order = orders_of(&s, "User", &id).pop().expect("order");
    assert_eq!(
        order.state.as_str(),
        "verified",
        "the unreadable password is not compared"
    );

    // Later changes leave the directory's password alone (it cannot be read back to compare).
    let r = patch(
        &s,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "password", "value": "Changed-2"}]),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = patch(
        &s,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "title", "value": "x"}]),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    wait_for("the later orders settled", || {
        let list = orders_of(&s, "User", &id);
        (list.len() >= 2 && settled(&s, "User", &id)).then_some(())
    });
    let entry = directory.users_named("pat").pop().expect("pat");
    assert_eq!(entry.value("userPassword").as_deref(), Some("Initial-1"));
}

fn ldaps_with_a_private_ca(backend: Backend) {
    let directory = Slapd::start_tls();
    let mut target = ldap_target(&directory, |_, l| {
        l.ca_cert_file = Some(Slapd::ca_file());
    });
    target.url = directory.ldaps_url();
    let s = serve(backend, target);
    let id = id_of(&s.create_user(&json!({"userName": "tunnelled"})));
    user_settled(&s, "User", &id);
    assert_eq!(directory.users_named("tunnelled").len(), 1);
}

fn nested_groups_list_group_dns(backend: Backend) {
    let directory = Slapd::start();
    let s = serve(backend, ldap_target(&directory, |_, _| {}));
    let ann = id_of(&s.create_user(&json!({"userName": "ann"})));
    let inner =
        id_of(&s.create_group(&json!({"displayName": "inner", "members": [{"value": ann}]})));
    let outer = id_of(&s.create_group(&json!({"displayName": "outer",
        "members": [{"value": inner, "type": "Group"}, {"value": ann}]})));
    user_settled(&s, "Group", &outer);
    let mut members = directory
        .entry(&group_dn("outer"))
        .expect("outer")
        .values("member");
    members.sort();
    assert_eq!(members, vec![group_dn("inner"), people("ann")]);
}

fn posix_accounts_and_groups(backend: Backend) {
    let directory = Slapd::start();
    let target = ldap_target(&directory, |_, l| {
        l.posix = true;
        l.uid_number_start = Some(20_000);
        l.group_class = Some(GroupClass::PosixGroup);
        l.gid_number_start = Some(30_000);
    });
    let s = serve(backend, target);
    let erin = id_of(&s.create_user(&json!({"userName": "erin", "name": {"familyName": "E"}})));
    let frank = id_of(&s.create_user(&json!({"userName": "frank", "name": {"familyName": "F"}})));
    let group = id_of(&s.create_group(
        &json!({"displayName": "devs", "members": [{"value": erin}, {"value": frank}]}),
    ));
    user_settled(&s, "Group", &group);
    let mut numbers: Vec<String> = ["erin", "frank"]
        .iter()
        .map(|u| {
            directory
                .entry(&people(u))
                .and_then(|e| e.value("uidNumber"))
                .expect("uidNumber")
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers, vec!["20000", "20001"]);
    let erin_entry = directory.entry(&people("erin")).expect("erin");
    assert_eq!(
        erin_entry.value("homeDirectory").as_deref(),
        Some("/home/erin")
    );
    let entry = directory.entry(&group_dn("devs")).expect("group");
    let mut uids = entry.values("memberUid");
    uids.sort();
    assert_eq!(uids, vec!["erin", "frank"]);
    assert_eq!(
        erin_entry.value("gidNumber").as_deref(),
        Some("30000"),
        "users' default primary group"
    );
    assert_eq!(
        entry.value("gidNumber").as_deref(),
        Some("30001"),
        "allocated above the numbers in use"
    );
}

crate::for_each_backend!(
    users_groups_renames_and_deletes_reach_the_directory,
    an_existing_entry_is_correlated_not_duplicated,
    deactivation_moves_the_entry_aside_and_back,
    deleting_an_entry_already_gone_counts_as_done,
    a_group_of_5000_changes_by_single_members,
    changes_made_while_the_directory_is_down_arrive_when_it_is_back,
    schema_violations_are_permanent_with_the_servers_message,
    starttls_with_a_private_ca,
    ldaps_with_a_private_ca,
    initial_passwords_go_only_over_tls,
    nested_groups_list_group_dns,
    posix_accounts_and_groups,
);
