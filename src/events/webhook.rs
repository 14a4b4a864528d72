//! Standard Webhooks (standardwebhooks.com, 1.0): the message body, its headers, and the
//! signatures over `id.timestamp.body` with each of a subscription's secrets.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::storage::events::StoredEvent;
use crate::storage::Micros;

/// A signing secret, `whsec_` + base64 of the key; an old one during rotation expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecret {
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Micros>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("a secret is \"whsec_\" followed by base64 of 16 to 64 random bytes")]
pub struct BadSecret;

/// A new random secret.
pub fn generate() -> String {
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    format!("whsec_{}", BASE64.encode(key))
}

/// The key bytes of a `whsec_` secret.
pub fn key_of(secret: &str) -> Result<Vec<u8>, BadSecret> {
    let encoded = secret.strip_prefix("whsec_").ok_or(BadSecret)?;
    let key = BASE64.decode(encoded).map_err(|_| BadSecret)?;
    if (16..=64).contains(&key.len()) {
        Ok(key)
    } else {
        Err(BadSecret)
    }
}

/// The `webhook-signature` value: `v1,<signature>` for each secret not expired at `now`,
/// space-separated (receivers accept any that verifies).
pub fn signature(
    secrets: &[SigningSecret],
    now: Micros,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut signed = Vec::with_capacity(id.len() + body.len() + 24);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    secrets
        .iter()
        .filter(|s| s.expires_at.is_none_or(|at| at > now))
        .filter_map(|s| key_of(&s.secret).ok())
        .map(|key| {
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), &signed);
            format!("v1,{}", BASE64.encode(tag.as_ref()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The JSON body of an event's webhook: its envelope and thin data.
pub fn body(event: &StoredEvent) -> Vec<u8> {
    let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    let payload = json!({
        "id": event.id,
        "type": event.event_type,
        "timestamp": crate::scim::output::format_time(event.occurred_at),
        "resource": {
            "type": event.resource_type,
            "id": event.resource_id,
            "sequence": event.resource_seq,
        },
        "target": event.target,
        "actor": event.actor,
        "data": data,
    });
    payload.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_specifications_example() {
        // The example of the Standard Webhooks specification.
        let secrets = [SigningSecret {
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            expires_at: None,
        }];
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(
                &secrets,
                0,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                body
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn an_expired_secret_no_longer_signs() {
        let secrets = [
            SigningSecret {
                secret: generate(),
                expires_at: None,
            },
            SigningSecret {
                secret: generate(),
                expires_at: Some(100),
            },
        ];
        assert_eq!(signature(&secrets, 50, "m", 1, b"{}").split(' ').count(), 2);
        assert_eq!(
            signature(&secrets, 150, "m", 1, b"{}").split(' ').count(),
            1
        );
        assert!(key_of("whsec_short").is_err());
        assert!(key_of(&generate()).is_ok());
    }
}
