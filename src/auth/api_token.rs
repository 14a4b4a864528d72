//! Opaque API tokens: 256 random bits, shown once, stored only as a SHA-256 hash.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Role;
use crate::clock::Micros;
use crate::identity::DEFAULT_CONNECTION;
use crate::storage::tokens::{self, TokenRow};
use crate::storage::{Db, StoreError};

const PREFIX: &str = "sgt_";

/// A fresh token in plain text.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Hex SHA-256: tokens carry full entropy, so a fast unsalted hash is enough.
pub fn hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// Issues an identity-provider token named `name` and returns it in plain text; only its hash
/// is kept.
pub fn issue(db: &Db, name: &str) -> Result<String, StoreError> {
    issue_with_role(db, name, Role::Scim)
}

/// Issues a token for the SCIM API or the admin API.
pub fn issue_with_role(db: &Db, name: &str, role: Role) -> Result<String, StoreError> {
    issue_expiring(db, name, role, None)
}

/// Issues a token that stops working at `expires_at` (`None`: only when revoked).
pub fn issue_expiring(
    db: &Db,
    name: &str,
    role: Role,
    expires_at: Option<Micros>,
) -> Result<String, StoreError> {
    issue_for(db, name, role, DEFAULT_CONNECTION, expires_at)
}

/// Issues a token; an identity provider's serves `connection` (admin tokens serve none).
pub fn issue_for(
    db: &Db,
    name: &str,
    role: Role,
    connection: &str,
    expires_at: Option<Micros>,
) -> Result<String, StoreError> {
    let token = generate();
    let row = TokenRow {
        id: Uuid::new_v4().to_string(),
        name: name.to_string(),
        token_hash: hash(&token),
        created_at: db.clock().now_micros(),
        revoked_at: None,
        role: role.as_str().to_string(),
        expires_at,
        last_used_at: None,
        connection: (role == Role::Scim).then(|| connection.to_string()),
    };
    db.read(|conn| tokens::insert(conn, &row))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_stably() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX));
        assert_eq!(hash(&a), hash(&a));
        assert_eq!(hash(&a).len(), 64);
    }

    #[test]
    fn the_hash_is_lowercase_hex_sha256() {
        // Stored hashes were written in this form; a change would revoke every token.
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
