//! User passwords, kept apart from the resource document (which is searched, sorted, logged
//! and delivered): a salted Argon2id hash, and the password sealed under the server's secret
//! key only so that targets provisioning passwords (LDAP) can set them. Never in clear.

use std::collections::HashMap;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use diesel::prelude::*;

use super::schema::{maintenance, scim_user_passwords, scim_users};
use super::secrets::{SecretBox, SecretError};
use super::{Db, DbConnection, StoreError, WriteTx, BIND_CHUNK};

/// A password ready to store: computed before the write transaction, since hashing is slow
/// by design and must not hold the writer.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword {
    pub hash: String,
    pub sealed: Option<String>,
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

impl NewPassword {
    /// Hashes `clear` (Argon2id, OWASP parameters: 19 MiB, 2 passes) and seals it for
    /// `user_id` when a secret key is configured.
    pub fn prepare(secrets: &SecretBox, user_id: &str, clear: &str) -> Result<Self, StoreError> {
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(clear.as_bytes(), &salt)
            .map_err(|e| StoreError::Aborted(format!("password hashing failed: {e}")))?
            .to_string();
        let sealed = match secrets.seal(clear, &context(user_id)) {
            Ok(sealed) => Some(sealed),
            Err(SecretError::NoKey) => None,
            Err(other) => return Err(other.into()),
        };
        Ok(NewPassword { hash, sealed })
    }
}

/// Whether `clear` is the password `hash` was made from.
pub fn verify(hash: &str, clear: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(clear.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// What a sealed password is bound to: it opens only for its own user.
fn context(user_id: &str) -> String {
    format!("user/{user_id}/password")
}

/// Sets (or replaces) a user's password in the caller's transaction.
pub fn set(tx: &mut WriteTx<'_>, user_id: &str, password: &NewPassword) -> Result<(), StoreError> {
    let now = tx.now();
    diesel::delete(scim_user_passwords::table.find(user_id)).execute(tx.conn())?;
    diesel::insert_into(scim_user_passwords::table)
        .values((
            scim_user_passwords::user_id.eq(user_id),
            scim_user_passwords::hash.eq(&password.hash),
            scim_user_passwords::sealed.eq(&password.sealed),
            scim_user_passwords::changed_at.eq(now),
        ))
        .execute(tx.conn())?;
    Ok(())
}

/// The stored hash of a user's password, if it has one.
pub fn hash_of(conn: &mut DbConnection, user_id: &str) -> Result<Option<String>, StoreError> {
    Ok(scim_user_passwords::table
        .find(user_id)
        .select(scim_user_passwords::hash)
        .first(conn)
        .optional()?)
}

/// The clear passwords of these users, for a target that provisions them; users without a
/// sealed password are absent.
pub fn unsealed(
    conn: &mut DbConnection,
    secrets: &SecretBox,
    ids: &[String],
) -> Result<HashMap<String, String>, StoreError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(BIND_CHUNK) {
        let rows: Vec<(String, Option<String>)> = scim_user_passwords::table
            .filter(scim_user_passwords::user_id.eq_any(chunk))
            .filter(scim_user_passwords::sealed.is_not_null())
            .select((scim_user_passwords::user_id, scim_user_passwords::sealed))
            .load(conn)?;
        for (id, sealed) in rows {
            if let Some(sealed) = sealed {
                let clear = secrets.open(&sealed, &context(&id))?;
                out.insert(id, clear);
            }
        }
    }
    Ok(out)
}

/// Re-seals every sealed password not sealed with the current key (`secrets rotate-key`).
pub fn reseal(tx: &mut WriteTx<'_>, secrets: &SecretBox) -> Result<usize, StoreError> {
    let rows: Vec<(String, Option<String>)> = scim_user_passwords::table
        .filter(scim_user_passwords::sealed.is_not_null())
        .select((scim_user_passwords::user_id, scim_user_passwords::sealed))
        .load(tx.conn())?;
    let mut written = 0;
    for (id, sealed) in rows {
        let Some(sealed) = sealed.filter(|s| !secrets.is_current(s)) else {
            continue;
        };
        let resealed = secrets.seal(&secrets.open(&sealed, &context(&id))?, &context(&id))?;
        diesel::update(scim_user_passwords::table.find(&id))
            .set(scim_user_passwords::sealed.eq(resealed))
            .execute(tx.conn())?;
        written += 1;
    }
    Ok(written)
}

/// The `maintenance` task recording that passwords left the documents.
const MOVED_OUT: &str = "passwords_out_of_documents";

/// Databases written before passwords had their own table kept them in the resource
/// document, in clear: hash (and seal) each, then remove it from the document. Runs at
/// start-up until it has finished once (then it is one lookup); one user per transaction, so
/// an interrupted run resumes where it stopped. Returns how many passwords were moved.
pub fn move_out_of_documents(db: &Db) -> Result<usize, StoreError> {
    let done: Option<String> = db.read(|conn| {
        Ok::<_, StoreError>(
            maintenance::table
                .find(MOVED_OUT)
                .select(maintenance::task)
                .first(conn)
                .optional()?,
        )
    })?;
    if done.is_some() {
        return Ok(0);
    }
    let candidates: Vec<(String, String)> = db.read(|conn| {
        Ok::<_, StoreError>(
            scim_users::table
                .filter(scim_users::data.like("%\"password\"%"))
                .select((scim_users::id, scim_users::data))
                .load(conn)?,
        )
    })?;
    let mut moved = 0;
    for (id, data) in candidates {
        let Ok(serde_json::Value::Object(mut doc)) = serde_json::from_str(&data) else {
            continue;
        };
        let Some(clear) = doc.remove("password") else {
            continue;
        };
        let password = match clear.as_str() {
            Some(clear) => Some(NewPassword::prepare(db.secrets(), &id, clear)?),
            None => None,
        };
        let scrubbed = serde_json::Value::Object(doc).to_string();
        let written = db.write(|tx| {
            // Only over the document read: a write in between (another instance already
            // serving) has left the password out of the document itself.
            let written = diesel::update(
                scim_users::table
                    .find(&id)
                    .filter(scim_users::data.eq(&data)),
            )
            .set(scim_users::data.eq(&scrubbed))
            .execute(tx.conn())?;
            if let (1, Some(password)) = (written, &password) {
                set(tx, &id, password)?;
            }
            Ok::<_, StoreError>(written)
        })?;
        moved += written;
    }
    db.write(|tx| {
        let now = tx.now();
        let done = (
            maintenance::task.eq(MOVED_OUT),
            maintenance::done_at.eq(now),
        );
        // Another instance starting at the same time may have recorded it first.
        match tx.conn() {
            DbConnection::Sqlite(c) => diesel::insert_or_ignore_into(maintenance::table)
                .values(done)
                .execute(c)?,
            DbConnection::Postgresql(c) => diesel::insert_into(maintenance::table)
                .values(done)
                .on_conflict_do_nothing()
                .execute(c)?,
        };
        Ok::<_, StoreError>(())
    })?;
    if moved > 0 {
        tracing::info!(
            moved,
            "passwords moved out of user documents into salted hashes"
        );
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let secrets = SecretBox::default();
        let a = NewPassword::prepare(&secrets, "u1", "correct horse").expect("hash");
        let b = NewPassword::prepare(&secrets, "u1", "correct horse").expect("hash");
        assert!(a.hash.starts_with("$argon2id$"), "{}", a.hash);
        assert_ne!(a.hash, b.hash, "each hash has its own salt");
        assert!(!a.hash.contains("correct horse"));
        assert!(verify(&a.hash, "correct horse"));
        assert!(!verify(&a.hash, "correct horsE"));
        assert!(!verify("not a hash", "correct horse"));
        assert_eq!(a.sealed, None, "no key: nothing sealed");
        assert_eq!(format!("{a:?}"), "NewPassword(..)");
    }
}
