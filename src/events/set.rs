//! RFC 9967 Security Event Tokens: the identity events as SETs (RFC 8417), signed as JWTs.
//!
//! scimgate emits the `:notice` forms (attribute names, never values): a receiver reads the
//! resource at `sub_id.uri` for its data. The `:full` forms would copy personal data into the
//! outbox, kept for days.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};

use super::settings::SetConfig;
use crate::storage::events::StoredEvent;

pub const EVENT_PREFIX: &str = "urn:ietf:params:scim:event:prov:";

/// The event URIs scimgate emits (announced in `/ServiceProviderConfig`).
pub const EVENT_URIS: [&str; 6] = [
    "urn:ietf:params:scim:event:prov:create:notice",
    "urn:ietf:params:scim:event:prov:patch:notice",
    "urn:ietf:params:scim:event:prov:put:notice",
    "urn:ietf:params:scim:event:prov:delete",
    "urn:ietf:params:scim:event:prov:activate",
    "urn:ietf:params:scim:event:prov:deactivate",
];

/// Signs SETs with the configured key.
pub struct SetSigner {
    issuer: String,
    header: Header,
    key: EncodingKey,
}

impl std::fmt::Debug for SetSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetSigner")
            .field("issuer", &self.issuer)
            .field("alg", &self.header.alg)
            .finish_non_exhaustive()
    }
}

impl SetSigner {
    pub fn load(config: &SetConfig) -> Result<SetSigner, String> {
        let pem = std::fs::read(&config.private_key_file).map_err(|e| {
            format!(
                "events.set.private_key_file {}: {e}",
                config.private_key_file.display()
            )
        })?;
        let (alg, key) = match config.algorithm.as_str() {
            "RS256" => (Algorithm::RS256, EncodingKey::from_rsa_pem(&pem)),
            "ES256" => (Algorithm::ES256, EncodingKey::from_ec_pem(&pem)),
            other => {
                return Err(format!(
                    "events.set.algorithm {other:?}: use RS256 or ES256"
                ))
            }
        };
        let key = key.map_err(|e| format!("events.set.private_key_file: {e}"))?;
        let mut header = Header::new(alg);
        header.typ = Some("secevent+jwt".into());
        header.kid = config.key_id.clone();
        Ok(SetSigner {
            issuer: config.issuer.clone(),
            header,
            key,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The event as a signed SET, or `None` when it has no SET form (not an identity event).
    pub fn sign(
        &self,
        event: &StoredEvent,
        audience: Option<&str>,
    ) -> Option<Result<String, String>> {
        let claims = claims(event, &self.issuer, audience)?;
        Some(jsonwebtoken::encode(&self.header, &claims, &self.key).map_err(|e| e.to_string()))
    }
}

/// Whether an event has a SET form.
pub fn is_identity_event(event_type: &str) -> bool {
    event_type.starts_with("user.") || event_type.starts_with("group.")
}

/// The SET claims of an identity event (RFC 9967 §2): `sub_id` in the `scim` format at the
/// top level, one logical event (a deactivating PATCH is `patch:notice` with `deactivate`).
pub fn claims(event: &StoredEvent, issuer: &str, audience: Option<&str>) -> Option<Value> {
    if !is_identity_event(&event.event_type) {
        return None;
    }
    let data: Value = serde_json::from_str(&event.data).unwrap_or_default();
    let endpoint = match event.resource_type.as_str() {
        "User" => "Users",
        "Group" => "Groups",
        _ => return None,
    };
    let mut sub_id = json!({
        "format": "scim",
        "uri": format!("/{endpoint}/{}", event.resource_id),
        "id": event.resource_id,
    });
    if let Some(external_id) = data["externalId"].as_str() {
        sub_id["externalId"] = json!(external_id);
    }
    let attributes = data["attributes"].clone();
    let version = data["version"].clone();
    let mut events = Map::new();
    let change = match data["operation"].as_str() {
        Some("replace") => "put",
        _ => "patch",
    };
    match event.event_type.rsplit('.').next() {
        Some("created") => {
            events.insert(
                format!("{EVENT_PREFIX}create:notice"),
                json!({ "attributes": attributes }),
            );
        }
        Some("deleted") => {
            events.insert(format!("{EVENT_PREFIX}delete"), json!({}));
        }
        Some(kind) => {
            events.insert(
                format!("{EVENT_PREFIX}{change}:notice"),
                json!({ "attributes": attributes, "version": version }),
            );
            match kind {
                "activated" => events.insert(format!("{EVENT_PREFIX}activate"), json!({})),
                "deactivated" => events.insert(format!("{EVENT_PREFIX}deactivate"), json!({})),
                _ => None,
            };
        }
        None => return None,
    }
    let iat = event.occurred_at.div_euclid(1_000_000);
    let mut claims = json!({
        "jti": event.id,
        "iss": issuer,
        "iat": iat,
        "toe": iat,
        "txn": event.id,
        "sub_id": sub_id,
        "events": events,
    });
    if let Some(audience) = audience {
        claims["aud"] = json!([audience]);
    }
    Some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, data: Value) -> StoredEvent {
        StoredEvent {
            seq: 7,
            id: "evt_4d3559ec67504aaba65d40b0363faad8".into(),
            event_type: event_type.into(),
            resource_type: "User".into(),
            resource_id: "44f6142df96bd6ab61e7521d9".into(),
            resource_seq: 1,
            target: None,
            actor: "token:okta".into(),
            occurred_at: 1_458_496_404_000_000,
            data: data.to_string(),
        }
    }

    #[test]
    fn a_create_has_the_shape_of_the_rfcs_example() {
        // RFC 9967 figure 5 (create notice), with scimgate's ids.
        let claims = claims(
            &event(
                "user.created",
                json!({"externalId": "jdoe", "operation": "create", "version": "W/\"1\"",
                       "attributes": ["emails", "name", "userName"]}),
            ),
            "https://scim.example.com",
            Some("https://scim.example.com/Feeds/98d52461fa5bbc879593b7754"),
        )
        .unwrap();
        assert_eq!(claims["iss"], "https://scim.example.com");
        assert_eq!(claims["iat"], 1458496404);
        assert_eq!(
            claims["aud"],
            json!(["https://scim.example.com/Feeds/98d52461fa5bbc879593b7754"])
        );
        assert_eq!(
            claims["sub_id"],
            json!({"format": "scim", "uri": "/Users/44f6142df96bd6ab61e7521d9",
                   "id": "44f6142df96bd6ab61e7521d9", "externalId": "jdoe"})
        );
        assert_eq!(
            claims["events"],
            json!({"urn:ietf:params:scim:event:prov:create:notice":
                   {"attributes": ["emails", "name", "userName"]}})
        );
        assert!(claims.get("sub").is_none());
    }

    #[test]
    fn deletes_and_deactivations() {
        let delete = claims(
            &event("user.deleted", json!({"operation": "delete"})),
            "i",
            None,
        )
        .unwrap();
        assert_eq!(
            delete["events"],
            json!({"urn:ietf:params:scim:event:prov:delete": {}})
        );
        let deactivated = claims(
            &event(
                "user.deactivated",
                json!({"operation": "modify", "version": "W/\"3\"", "attributes": ["active"]}),
            ),
            "i",
            None,
        )
        .unwrap();
        assert_eq!(
            deactivated["events"],
            json!({"urn:ietf:params:scim:event:prov:patch:notice":
                       {"attributes": ["active"], "version": "W/\"3\""},
                   "urn:ietf:params:scim:event:prov:deactivate": {}})
        );
        let put = claims(
            &event(
                "user.updated",
                json!({"operation": "replace", "attributes": []}),
            ),
            "i",
            None,
        )
        .unwrap();
        assert!(put["events"]
            .get("urn:ietf:params:scim:event:prov:put:notice")
            .is_some());
        assert!(claims(&event("order.state_changed", json!({})), "i", None).is_none());
    }
}
