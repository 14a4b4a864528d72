//! The browser console's sessions. A session is found by the SHA-256 of its cookie, so a copy
//! of the database holds nothing a browser could present.

use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::schema::console_sessions;
use super::{Db, DbConnection, Micros, StoreError};

/// A signed-in operator.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = console_sessions)]
pub struct Session {
    #[diesel(column_name = id_hash)]
    pub key: String,
    pub actor: String,
    pub role: String,
    pub csrf: String,
    pub created_at: Micros,
    pub expires_at: Micros,
}

fn hash(cookie: &str) -> String {
    hex(&Sha256::digest(cookie.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts a session for `actor` with `role` until `expires_at`, under the cookie value
/// `cookie`; removes expired sessions on the way.
pub fn start(
    db: &Db,
    cookie: &str,
    actor: &str,
    role: &str,
    csrf: &str,
    expires_at: Micros,
) -> Result<(), StoreError> {
    db.write(|tx| {
        let now = tx.now();
        diesel::delete(console_sessions::table.filter(console_sessions::expires_at.le(now)))
            .execute(tx.conn())?;
        diesel::insert_into(console_sessions::table)
            .values((
                console_sessions::id_hash.eq(hash(cookie)),
                console_sessions::actor.eq(actor),
                console_sessions::role.eq(role),
                console_sessions::csrf.eq(csrf),
                console_sessions::created_at.eq(now),
                console_sessions::expires_at.eq(expires_at),
            ))
            .execute(tx.conn())?;
        Ok(())
    })
}

/// The live session behind `cookie`, if any.
pub fn find(
    conn: &mut DbConnection,
    cookie: &str,
    now: Micros,
) -> Result<Option<Session>, StoreError> {
    Ok(console_sessions::table
        .filter(console_sessions::id_hash.eq(hash(cookie)))
        .filter(console_sessions::expires_at.gt(now))
        .select(Session::as_select())
        .first(conn)
        .optional()?)
}

/// Ends the session behind `cookie` (signing out).
pub fn end(db: &Db, cookie: &str) -> Result<(), StoreError> {
    db.write(|tx| {
        diesel::delete(console_sessions::table.filter(console_sessions::id_hash.eq(hash(cookie))))
            .execute(tx.conn())?;
        Ok(())
    })
}
