//! RFC 9967 Security Event Tokens: polled with acknowledgements (RFC 8936) across a crash and
//! restart of scimgate, pushed (RFC 8935) to a real receiver, signed with the configured key
//! and verified with its public key, and announced in `/ServiceProviderConfig`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::blocking::Client;
use reqwest::Method;
use serde_json::{json, Value};

use crate::events_webhooks::{admin, subscribe};
use crate::harness::{database_url, id_of, shared_secret_key, Backend, TestServer};
use crate::process::{free_port, token, Instance};
use crate::receiver::{Receiver, Reply};

const AUDIENCE: &str = "https://receiver.example.com/feeds/scim";
const ISSUER: &str = "https://scim.example.com";
const POLL_SECRET: &str = "whsec_c2NpbWdhdGUtcG9sbC1yZWNlaXZlci1zZWNyZXQtMDE=";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The SET's claims, its signature checked with the public key (not scimgate's signer).
fn verified(token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    assert_eq!(header.kid.as_deref(), Some("set-key-1"));
    let key = DecodingKey::from_ec_pem(&std::fs::read(fixture("jwt-es256.pub")).expect("key"))
        .expect("public key");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the SET verifies")
        .claims
}

fn set_config() -> String {
    format!(
        "[events.set]\nissuer = \"{ISSUER}\"\nalgorithm = \"ES256\"\nprivate_key_file = \"{}\"\n\
         key_id = \"set-key-1\"\n",
        fixture("jwt-es256.key").display()
    )
}

fn poll(client: &Client, root: &str, secret: &str, body: &Value) -> (u16, Value) {
    let response = client
        .post(format!("{root}/events/feed"))
        .bearer_auth(secret)
        .json(body)
        .send()
        .expect("poll");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Polls (without acknowledging) until `want` SETs are pending; returns them by jti.
fn pending(client: &Client, root: &str, want: usize) -> BTreeMap<String, Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = poll(
            client,
            root,
            POLL_SECRET,
            &json!({"returnImmediately": true}),
        );
        assert_eq!(status, 200, "{body}");
        let sets: BTreeMap<String, Value> = body["sets"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(jti, set)| (jti.clone(), verified(set.as_str().unwrap_or_default())))
                    .collect()
            })
            .unwrap_or_default();
        if sets.len() >= want {
            return sets;
        }
        assert!(
            Instant::now() < deadline,
            "only {} SETs pending",
            sets.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn create_user(client: &Client, root: &str, token: &str, name: &str) -> String {
    let created: Value = client
        .post(format!("{root}/scim/v2/Users"))
        .bearer_auth(token)
        .header("Content-Type", "application/scim+json")
        .json(
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                      "userName": name, "externalId": format!("ext-{name}")}),
        )
        .send()
        .expect("create")
        .json()
        .expect("json");
    id_of(&created)
}

fn sets_are_polled_with_acks_across_a_restart(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = database_url(backend, dir.path());
    let config = dir.path().join("scimgate.toml");
    std::fs::write(
        &config,
        format!(
            "secret_key_file = \"{}\"\n[events]\npoll_interval_ms = 20\nlong_poll_seconds = 2\n{}\n\
             [[events.subscriptions]]\nname = \"feed\"\nformat = \"set_poll\"\n\
             secret = \"{POLL_SECRET}\"\naudience = \"{AUDIENCE}\"\nevent_types = [\"user.*\"]\n",
            shared_secret_key().display(),
            set_config()
        ),
    )
    .expect("config");
    let scim = token(&config, &database, "idp", "scim");
    let client = Client::new();
    let server = Instance::start(&config, &database, free_port(), "sets");

    // Credentials and requests are checked.
    let refused = client
        .post(format!("{}/events/feed", server.root))
        .bearer_auth("whsec_wrong")
        .json(&json!({}))
        .send()
        .expect("poll");
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    assert_eq!(
        poll(
            &client,
            &server.root,
            POLL_SECRET,
            &json!({"maxEvents": "many"})
        )
        .0,
        400
    );
    let empty = poll(
        &client,
        &server.root,
        POLL_SECRET,
        &json!({"returnImmediately": true}),
    );
    assert_eq!(empty, (200, json!({"sets": {}, "moreAvailable": false})));

    let ids: Vec<String> = ["ann", "bob", "cy"]
        .iter()
        .map(|n| create_user(&client, &server.root, &scim, n))
        .collect();
    let sets = pending(&client, &server.root, 3);
    assert_eq!(sets.len(), 3);
    for claims in sets.values() {
        assert_eq!(claims["sub_id"]["format"], "scim");
        assert!(claims.get("sub").is_none());
        let uri = claims["sub_id"]["uri"].as_str().unwrap_or_default();
        assert!(ids.iter().any(|id| uri == format!("/Users/{id}")), "{uri}");
        let attributes =
            &claims["events"]["urn:ietf:params:scim:event:prov:create:notice"]["attributes"];
        assert!(attributes
            .as_array()
            .is_some_and(|a| a.contains(&json!("userName"))));
        assert_eq!(claims["txn"], claims["jti"]);
    }
    // Not acknowledged: the same SETs come again.
    assert_eq!(
        pending(&client, &server.root, 3).keys().collect::<Vec<_>>(),
        sets.keys().collect::<Vec<_>>()
    );

    // Two acknowledged, one refused by the receiver; the rest stays pending.
    let jtis: Vec<String> = sets.keys().cloned().collect();
    let (status, body) = poll(
        &client,
        &server.root,
        POLL_SECRET,
        &json!({"ack": [jtis[0], jtis[1]], "maxEvents": 0, "returnImmediately": true}),
    );
    assert_eq!((status, body["sets"].clone()), (200, json!({})));

    // A crash: nothing acknowledged is lost, nothing acknowledged comes back.
    server.kill();
    let server = Instance::start(&config, &database, free_port(), "sets");
    let dan = create_user(&client, &server.root, &scim, "dan");
    let after = pending(&client, &server.root, 2);
    let uris: BTreeSet<String> = after
        .values()
        .map(|c| c["sub_id"]["uri"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        after.contains_key(&jtis[2]),
        "the unacknowledged SET survives the crash"
    );
    assert!(!after.contains_key(&jtis[0]) && !after.contains_key(&jtis[1]));
    assert!(uris.contains(&format!("/Users/{dan}")));
    assert_eq!(after.len(), 2);

    // An error for one, an ack for the other, and a poll in the same request.
    let dan_jti = after
        .keys()
        .find(|j| **j != jtis[2])
        .cloned()
        .unwrap_or_default();
    let (status, body) = poll(
        &client,
        &server.root,
        POLL_SECRET,
        &json!({"ack": [dan_jti], "setErrs": {jtis[2].clone(): {"err": "invalid_key", "description": "unknown key"}},
                "returnImmediately": true}),
    );
    assert_eq!((status, body["sets"].clone()), (200, json!({})));

    // A long poll waits for the next event.
    let root = server.root.clone();
    let waiting = std::thread::spawn(move || {
        let started = Instant::now();
        let answer = poll(&Client::new(), &root, POLL_SECRET, &json!({}));
        (answer, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    create_user(&client, &server.root, &scim, "eve");
    let ((status, body), waited) = waiting.join().expect("long poll");
    assert_eq!(status, 200);
    assert!(
        waited >= Duration::from_millis(250),
        "it waited: {waited:?}"
    );
    assert_eq!(body["sets"].as_object().map(|m| m.len()), Some(1));
}

fn sets_are_pushed_and_announced(backend: Backend) {
    let key = fixture("jwt-es256.key");
    let s = TestServer::start_with(backend, |c| {
        c.events.allow_private_destinations = true;
        c.events.poll_interval_ms = 20;
        c.events.retry_base_ms = 100;
        c.events.set = Some(scimgate::events::SetConfig {
            issuer: ISSUER.into(),
            algorithm: "ES256".into(),
            private_key_file: key.clone(),
            key_id: Some("set-key-1".into()),
        });
    });
    let spc = s.get("/ServiceProviderConfig").body;
    let uris = spc["securityEvents"]["eventUris"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(uris.contains(&json!("urn:ietf:params:scim:event:prov:create:notice")));
    assert!(uris.contains(&json!("urn:ietf:params:scim:event:prov:deactivate")));
    assert_eq!(spc["securityEvents"]["asyncRequest"], "none");

    let ops = scimgate::auth::api_token::issue_with_role(&s.db, "ops", scimgate::auth::Role::Admin)
        .expect("admin");
    let receiver = Receiver::start(Reply::status(202));
    subscribe(
        &s,
        &ops,
        &json!({"name": "push", "format": "set_push", "url": receiver.url("/events"),
                "audience": AUDIENCE}),
    );
    let user = s.create_user(&json!({"userName": "pushed", "externalId": "p-1"}));
    let id = id_of(&user);
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    assert_eq!(
        crate::events_webhooks::patch(&s, &format!("/Users/{id}"), &off).status,
        200
    );
    receiver.script([Reply {
        status: 400,
        retry_after: None,
        body: Some(json!({"err": "invalid_audience", "description": "not for us"})),
    }]);
    assert_eq!(s.delete(&format!("/Users/{id}")).status, 204);
    let received = receiver.wait_until(Duration::from_secs(20), "three SETs", |r| r.len() >= 3);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        receiver.received().len(),
        3,
        "a refused SET is not sent again"
    );
    let claims: Vec<Value> = received
        .iter()
        .map(|r| {
            assert_eq!(
                r.header("content-type").as_deref(),
                Some("application/secevent+jwt")
            );
            assert_eq!(r.header("accept").as_deref(), Some("application/json"));
            verified(std::str::from_utf8(&r.body).unwrap_or_default())
        })
        .collect();
    assert_eq!(
        claims[0]["sub_id"],
        json!({"format": "scim", "uri": format!("/Users/{id}"), "id": id, "externalId": "p-1"})
    );
    assert_eq!(claims[0]["aud"], json!([AUDIENCE]));
    let deactivation = claims[1]["events"].as_object().cloned().unwrap_or_default();
    assert!(deactivation.contains_key("urn:ietf:params:scim:event:prov:patch:notice"));
    assert!(deactivation.contains_key("urn:ietf:params:scim:event:prov:deactivate"));
    assert_eq!(
        claims[2]["events"],
        json!({"urn:ietf:params:scim:event:prov:delete": {}})
    );
    let failed = admin(
        &s,
        &ops,
        Method::GET,
        "/subscriptions/push/deliveries?state=failed",
        None,
    );
    assert!(failed.body["deliveries"][0]["lastError"]
        .as_str()
        .is_some_and(|e| e.contains("invalid_audience")));
    // Test events are for webhooks.
    assert_eq!(
        admin(&s, &ops, Method::POST, "/subscriptions/push/test", None).status,
        400
    );
}

fn without_a_signing_key_sets_are_not_offered(s: &TestServer) {
    assert!(s
        .get("/ServiceProviderConfig")
        .body
        .get("securityEvents")
        .is_none());
    let ops = scimgate::auth::api_token::issue_with_role(&s.db, "ops", scimgate::auth::Role::Admin)
        .expect("admin");
    let refused = admin(
        s,
        &ops,
        Method::POST,
        "/subscriptions",
        Some(&json!({"name": "p", "format": "set_poll"})),
    );
    assert_eq!(refused.status, 400);
    assert!(refused.body["error"]
        .as_str()
        .is_some_and(|e| e.contains("events.set")));
}

crate::for_each_backend!(
    sets_are_polled_with_acks_across_a_restart,
    sets_are_pushed_and_announced
);
crate::on_both_backends!(without_a_signing_key_sets_are_not_offered);
