//! Bearer authentication (RFC 7644 §2): API tokens and JWTs; 401 otherwise.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::json;

use crate::harness::{jwt_config, scim_body, send, Backend, TestServer};
use crate::on_both_backends;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn missing_or_bad_tokens_get_401(s: &TestServer) {
    for (request, why) in [
        (s.anonymous(Method::GET, "/Users"), "no header"),
        (
            s.anonymous(Method::GET, "/Users")
                .bearer_auth("sgt_not-a-real-token"),
            "unknown token",
        ),
        (
            s.anonymous(Method::GET, "/Users")
                .basic_auth("admin", Some("admin")),
            "basic auth",
        ),
        (
            s.anonymous(Method::GET, "/ServiceProviderConfig"),
            "discovery too",
        ),
        (
            s.anonymous(Method::GET, "/Users")
                .bearer_auth("eyJhbGciOiJIUzI1NiJ9.e30.c2ln"),
            "JWT without an issuer configured",
        ),
    ] {
        let r = send(request);
        r.assert_scim_error(401, None);
        assert!(
            r.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer")),
            "{why}: WWW-Authenticate missing"
        );
    }
    let r = send(scim_body(
        s.anonymous(Method::POST, "/Users"),
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "sneaky"}),
    ));
    assert_eq!(r.status, 401);
    assert_eq!(
        s.get("/Users").body["totalResults"],
        0,
        "unauthenticated writes change nothing"
    );
}

/// A revoked token stops working once the token cache forgets it (5 s by default).
fn revoked_tokens_stop_working(s: &TestServer) {
    assert_eq!(s.get("/Users").status, 200);
    let now = s.db.clock().now_micros();
    s.db.read(|c| scimgate::storage::tokens::revoke_by_name(c, "test", now))
        .expect("revoke");
    assert_eq!(s.get("/Users").status, 200, "still cached");
    s.clock.advance(std::time::Duration::from_millis(5_200));
    s.get("/Users").assert_scim_error(401, None);
}

fn hs256_jwts_are_verified(backend: Backend) {
    let secret = "a-test-secret-of-reasonable-length";
    let s = TestServer::start_with(backend, |c| {
        c.auth.jwt = Some(jwt_config("HS256", Some(secret), None))
    });
    let key = EncodingKey::from_secret(secret.as_bytes());
    let token = |claims: serde_json::Value| {
        encode(&Header::new(Algorithm::HS256), &claims, &key).expect("sign")
    };
    let good = token(
        json!({"sub": "okta-app", "iss": "https://issuer.test", "aud": "scimgate-test", "exp": now() + 300}),
    );
    let r = send(scim_body(
        s.anonymous(Method::POST, "/Users").bearer_auth(&good),
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "via-jwt"}),
    ));
    assert_eq!(r.status, 201, "{}", r.body);
    let actors: Vec<String> =
        s.db.read(|c| scimgate::storage::change_log::since(c, 0, 100))
            .expect("log")
            .into_iter()
            .map(|e| e.actor)
            .collect();
    assert_eq!(actors, ["jwt:okta-app"]);

    for (claims, why) in [
        (
            json!({"sub": "x", "iss": "https://evil.test", "aud": "scimgate-test", "exp": now() + 300}),
            "issuer",
        ),
        (
            json!({"sub": "x", "iss": "https://issuer.test", "aud": "other", "exp": now() + 300}),
            "audience",
        ),
        (
            json!({"sub": "x", "iss": "https://issuer.test", "aud": "scimgate-test", "exp": now() - 60}),
            "expired",
        ),
        (
            json!({"sub": "x", "iss": "https://issuer.test", "aud": "scimgate-test"}),
            "no exp",
        ),
    ] {
        let r = send(
            s.anonymous(Method::GET, "/Users")
                .bearer_auth(token(claims)),
        );
        assert_eq!(r.status, 401, "{why} must be rejected");
    }
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "x", "iss": "https://issuer.test", "aud": "scimgate-test", "exp": now() + 300}),
        &EncodingKey::from_secret(b"wrong secret"),
    )
    .expect("sign");
    assert_eq!(
        send(s.anonymous(Method::GET, "/Users").bearer_auth(forged)).status,
        401
    );
    // API tokens keep working beside JWTs.
    assert_eq!(s.get("/Users").status, 200);
}

fn asymmetric_jwts_are_verified(backend: Backend) {
    for (alg, algorithm, private, public) in [
        ("RS256", Algorithm::RS256, "jwt-rs256.key", "jwt-rs256.pub"),
        ("ES256", Algorithm::ES256, "jwt-es256.key", "jwt-es256.pub"),
    ] {
        let public_path = fixture(public);
        let s = TestServer::start_with(backend, |c| {
            c.auth.jwt = Some(jwt_config(alg, None, Some(&public_path)))
        });
        let pem = std::fs::read(fixture(private)).expect("private key fixture");
        let key = match algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            _ => EncodingKey::from_ec_pem(&pem),
        }
        .expect("encoding key");
        let claims = json!({"sub": "entra", "iss": "https://issuer.test", "aud": "scimgate-test", "exp": now() + 300});
        let token = encode(&Header::new(algorithm), &claims, &key).expect("sign");
        let r = send(s.anonymous(Method::GET, "/Users").bearer_auth(&token));
        assert_eq!(r.status, 200, "{alg}: {}", r.body);
        let hs = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"k"),
        )
        .expect("sign");
        assert_eq!(
            send(s.anonymous(Method::GET, "/Users").bearer_auth(hs)).status,
            401,
            "{alg}: algorithm confusion"
        );
    }
}

on_both_backends!(missing_or_bad_tokens_get_401, revoked_tokens_stop_working);

crate::for_each_backend!(hs256_jwts_are_verified, asymmetric_jwts_are_verified,);
