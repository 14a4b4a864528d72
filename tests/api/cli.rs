//! The `scimgate` binary: API tokens are created (shown once), listed and revoked.

use std::process::Command;

use reqwest::Method;

use crate::harness::{send, Backend, TestServer};

pub(crate) fn scimgate(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(args)
        .env("SCIMGATE_DATABASE_URL", database_url)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run scimgate")
}

fn token_lifecycle(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.auth.token_cache_seconds = 0);
    let out = scimgate(&s.database_url, &["token", "create", "--name", "okta"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("sgt_") && token.len() > 40, "{token}");
    let stored = s.db.read(scimgate::storage::tokens::list).expect("tokens");
    assert!(
        stored.iter().all(|t| t.token_hash != token),
        "only the hash is stored"
    );

    assert_eq!(
        send(s.anonymous(Method::GET, "/Users").bearer_auth(&token)).status,
        200
    );

    let out = scimgate(&s.database_url, &["token", "list"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("okta\tactive"), "{listing}");
    assert!(!listing.contains(&token));

    let out = scimgate(&s.database_url, &["token", "revoke", "--name", "okta"]);
    assert!(out.status.success());
    assert_eq!(
        send(s.anonymous(Method::GET, "/Users").bearer_auth(&token)).status,
        401
    );
    let out = scimgate(&s.database_url, &["token", "revoke", "--name", "okta"]);
    assert!(
        !out.status.success(),
        "revoking twice reports there was nothing to revoke"
    );
}

#[test]
fn bad_configuration_is_reported() {
    let out = Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(["--config", "/nonexistent/scimgate.toml", "migrate"])
        .output()
        .expect("run scimgate");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

/// Admin-API tokens carry a role, chosen on the command line and shown by `token list`; the
/// admin API lets each role do its part and answers 403 beyond it.
fn admin_roles(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.auth.token_cache_seconds = 0);
    let mut tokens = std::collections::HashMap::new();
    for role in ["viewer", "operator", "admin", "scim"] {
        let out = scimgate(
            &s.database_url,
            &[
                "token",
                "create",
                "--name",
                &format!("t-{role}"),
                "--role",
                role,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokens.insert(
            role,
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        );
    }
    let out = scimgate(
        &s.database_url,
        &["token", "create", "--name", "x", "--role", "root"],
    );
    assert!(!out.status.success(), "an unknown role is refused");
    let listing =
        String::from_utf8_lossy(&scimgate(&s.database_url, &["token", "list"]).stdout).to_string();
    for role in ["viewer", "operator", "admin"] {
        assert!(
            listing.lines().any(
                |l| l.starts_with(&format!("t-{role}\t")) && l.contains(&format!("\t{role}\t"))
            ),
            "{listing}"
        );
    }

    let call = |role: &str, method: Method, path: &str, body: Option<serde_json::Value>| -> u16 {
        crate::review::admin(&s, &tokens[role], method, path, body).status
    };
    let target = serde_json::json!({"name": "t1", "url": "http://127.0.0.1:9/scim/v2"});
    // Reading: every admin role.
    for role in ["viewer", "operator", "admin"] {
        assert_eq!(call(role, Method::GET, "/orders", None), 200, "{role}");
    }
    assert_eq!(call("scim", Method::GET, "/orders", None), 403);
    // Acting on orders and syncs: operator and admin.
    assert_eq!(call("viewer", Method::POST, "/orders/999/retry", None), 403);
    assert_eq!(
        call("operator", Method::POST, "/orders/999/retry", None),
        404
    );
    assert_eq!(
        call("viewer", Method::POST, "/targets/none/sync", None),
        403
    );
    assert_eq!(
        call("operator", Method::POST, "/targets/none/sync", None),
        404
    );
    // Changing targets: admin only.
    assert_eq!(
        call("operator", Method::POST, "/targets", Some(target.clone())),
        403
    );
    assert_eq!(
        call("viewer", Method::POST, "/targets", Some(target.clone())),
        403
    );
    assert_eq!(call("admin", Method::POST, "/targets", Some(target)), 201);
    assert_eq!(
        call("operator", Method::POST, "/targets/t1/disable", None),
        403
    );
    assert_eq!(call("operator", Method::DELETE, "/targets/t1", None), 403);
    assert_eq!(
        call("operator", Method::POST, "/targets/t1/test", None),
        200
    );
    assert_eq!(call("admin", Method::DELETE, "/targets/t1", None), 200);
    // Admin tokens are not SCIM tokens.
    assert_eq!(
        send(
            s.anonymous(Method::GET, "/Users")
                .bearer_auth(&tokens["admin"])
        )
        .status,
        403
    );
}

/// A token may expire: it works until then (even from the cache), and not a moment after.
/// Its last use is recorded; `token list` shows both.
fn expiring_tokens(backend: Backend) {
    let s = TestServer::start(backend);
    let out = scimgate(
        &s.database_url,
        &["token", "create", "--name", "okta-2", "--expires-in", "90d"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("It expires at"));
    for (flag, when) in [
        ("--expires-at", "2001-01-01T00:00:00Z"),
        ("--expires-in", "soon"),
    ] {
        let refused = scimgate(
            &s.database_url,
            &["token", "create", "--name", "x", flag, when],
        );
        assert!(!refused.status.success(), "{flag} {when}");
    }

    let now = s.db.clock().now_micros();
    let token = scimgate::auth::api_token::issue_expiring(
        &s.db,
        "hr",
        scimgate::auth::Role::Scim,
        Some(now + 600_000_000),
    )
    .expect("token");
    assert_eq!(
        send(s.anonymous(Method::GET, "/Users").bearer_auth(&token)).status,
        200
    );
    let listing =
        String::from_utf8_lossy(&scimgate(&s.database_url, &["token", "list"]).stdout).to_string();
    let line = |name: &str| {
        listing
            .lines()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name} in {listing}"))
            .to_string()
    };
    assert!(line("hr").starts_with("hr\tactive\tscim\t"), "{listing}");
    assert!(
        !line("hr").ends_with("last used never"),
        "the use was recorded: {listing}"
    );
    assert!(!line("hr").contains("expires never"), "{listing}");
    assert!(line("okta-2").ends_with("last used never"), "{listing}");

    // Within the token's life the cache answers; past it, nothing does.
    s.clock.advance(std::time::Duration::from_secs(599));
    assert_eq!(
        send(s.anonymous(Method::GET, "/Users").bearer_auth(&token)).status,
        200
    );
    s.clock.advance(std::time::Duration::from_secs(2));
    assert_eq!(
        send(s.anonymous(Method::GET, "/Users").bearer_auth(&token)).status,
        401
    );
    // As the server's clock sees it (the command line runs on the system's).
    let hr =
        s.db.read(scimgate::storage::tokens::list)
            .expect("tokens")
            .into_iter()
            .find(|t| t.name == "hr")
            .expect("hr");
    assert_eq!(hr.state(s.db.clock().now_micros()), "expired");
}

/// Rotation: a client switches to the next token while the current one still works, then the
/// current one is revoked; not one request fails on the way.
fn rotation_without_a_failed_request(backend: Backend) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, RwLock};

    let s = TestServer::start_with(backend, |c| c.auth.token_cache_seconds = 0);
    let first = scimgate::auth::api_token::issue(&s.db, "okta-1").expect("token");
    let current = Arc::new(RwLock::new(first.clone()));
    let (stop, sent, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let url = format!("{}/Users?count=1", s.base);
    let client = {
        let (current, stop, sent, failed) =
            (current.clone(), stop.clone(), sent.clone(), failed.clone());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let token = current.read().expect("token").clone();
                let status = http
                    .get(&url)
                    .bearer_auth(token)
                    .send()
                    .map_or(0, |r| r.status().as_u16());
                sent.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let wait_for_requests = |n: usize| {
        let until = sent.load(Ordering::Relaxed) + n;
        crate::provisioning::wait_for("requests", || {
            (sent.load(Ordering::Relaxed) >= until).then_some(())
        });
    };
    wait_for_requests(20);
    let second = scimgate::auth::api_token::issue(&s.db, "okta-2").expect("token");
    wait_for_requests(20);
    *current.write().expect("token") = second.clone();
    wait_for_requests(20);
    let out = scimgate(&s.database_url, &["token", "revoke", "--name", "okta-1"]);
    assert!(out.status.success());
    wait_for_requests(20);
    stop.store(true, Ordering::Relaxed);
    client.join().expect("client");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "of {}",
        sent.load(Ordering::Relaxed)
    );
    assert_eq!(
        send(s.anonymous(Method::GET, "/Users").bearer_auth(&first)).status,
        401
    );
}

crate::for_each_backend!(
    token_lifecycle,
    admin_roles,
    expiring_tokens,
    rotation_without_a_failed_request
);
