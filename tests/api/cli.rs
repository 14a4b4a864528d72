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

crate::for_each_backend!(token_lifecycle,);
