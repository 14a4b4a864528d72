//! The `scimgate` binary: API tokens are created (shown once), listed and revoked.

use std::process::Command;

use reqwest::Method;

use crate::harness::{send, Backend, TestServer};

fn scimgate(database_url: &str, args: &[&str]) -> std::process::Output {
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

crate::for_each_backend!(token_lifecycle, admin_roles);
