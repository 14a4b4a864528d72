//! Passwords (RFC 7643 §4.1.1, writeOnly, returned "never"): kept only as a salted Argon2id
//! hash, plus a copy sealed under the server's key for targets that provision passwords; never
//! in clear anywhere in the database, and moved out of user documents written by older
//! versions.

use std::time::Duration;

use diesel::prelude::*;
use serde_json::json;

use crate::harness::{id_of, shared_secret_key, Backend, TestServer};
use crate::on_both_backends;
use crate::rfc7644_patch::patch;
use scimgate::storage::passwords::{hash_of, unsealed, verify};
use scimgate::storage::{Db, DbConnection};

#[derive(QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    text: String,
}

/// Everything the database holds, as text: every row of every table on PostgreSQL; the
/// database files themselves (with the WAL, free pages and all) on SQLite.
fn everything_stored(s: &TestServer) -> String {
    s.db.read(|conn| match conn {
        DbConnection::Postgresql(pg) => {
            let tables: Vec<Text> = diesel::sql_query(
                "SELECT table_name::text AS text FROM information_schema.tables \
                 WHERE table_schema = current_schema()",
            )
            .load(pg)?;
            let mut all = String::new();
            for table in tables {
                let rows: Vec<Text> = diesel::sql_query(format!(
                    "SELECT coalesce(string_agg(t::text, ' '), '') AS text FROM \"{}\" t",
                    table.text
                ))
                .load(pg)?;
                all.extend(rows.into_iter().map(|r| r.text));
            }
            Ok::<_, scimgate::storage::StoreError>(all)
        }
        DbConnection::Sqlite(_) => {
            let path = scimgate::storage::sqlite_path(&s.database_url);
            let mut bytes = std::fs::read(path).expect("database file");
            bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
    })
    .expect("read the database")
}

fn stored_hash(s: &TestServer, id: &str) -> String {
    s.db.read(|conn| hash_of(conn, id))
        .expect("read")
        .expect("a stored hash")
}

/// The server's own database handle, with its secret key, as a restarted instance opens it.
fn reopen(s: &TestServer, backend: Backend) -> Db {
    let key = matches!(backend, Backend::Postgres).then(shared_secret_key);
    Db::open_configured(&s.database_url, 1, Duration::from_secs(5), key).expect("reopen")
}

fn backend_of(s: &TestServer) -> Backend {
    match s.db.backend() {
        scimgate::storage::Backend::Postgres => Backend::Postgres,
        scimgate::storage::Backend::Sqlite => Backend::Sqlite,
    }
}

fn passwords_are_stored_only_as_hashes(s: &TestServer) {
    let created = s.create_user(&json!({"userName": "hashed", "password": "Created-Secret-1"}));
    assert!(created.get("password").is_none());
    let id = id_of(&created);
    let first = stored_hash(s, &id);
    assert!(first.starts_with("$argon2id$"), "{first}");
    assert!(verify(&first, "Created-Secret-1"));

    let replaced = s.put(
        &format!("/Users/{id}"),
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "hashed", "password": "Replaced-Secret-2"}),
    );
    assert_eq!(replaced.status, 200, "{:?}", replaced.body);
    assert!(replaced.body.get("password").is_none());
    let second = stored_hash(s, &id);
    assert!(verify(&second, "Replaced-Secret-2") && !verify(&second, "Created-Secret-1"));

    // A PUT without a password keeps the one stored (it is write-only, never sent back).
    let kept = s.put(
        &format!("/Users/{id}"),
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "hashed", "title": "kept"}),
    );
    assert_eq!(kept.status, 200, "{:?}", kept.body);
    assert_eq!(stored_hash(s, &id), second);

    for (ops, clear) in [
        (
            json!([{"op": "replace", "path": "password", "value": "Patched-Secret-3"}]),
            "Patched-Secret-3",
        ),
        (
            json!([{"op": "Replace", "value": {"password": "Patched-Secret-4"}}]),
            "Patched-Secret-4",
        ),
    ] {
        let r = patch(s, &format!("/Users/{id}"), ops);
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert!(r.body.get("password").is_none());
        assert!(verify(&stored_hash(s, &id), clear));
    }

    let stored = everything_stored(s);
    assert!(stored.contains("hashed"), "the dump reads the users");
    for clear in [
        "Created-Secret-1",
        "Replaced-Secret-2",
        "Patched-Secret-3",
        "Patched-Secret-4",
    ] {
        assert!(!stored.contains(clear), "{clear} is stored in clear");
    }

    // The sealed copy opens, for this user only, with the server's key.
    let db = reopen(s, backend_of(s));
    let clear = db
        .read(|conn| unsealed(conn, db.secrets(), std::slice::from_ref(&id)))
        .expect("unseal");
    assert_eq!(clear.get(&id).map(String::as_str), Some("Patched-Secret-4"));

    // Deleting the user deletes its password.
    assert_eq!(s.delete(&format!("/Users/{id}")).status, 204);
    assert_eq!(s.db.read(|conn| hash_of(conn, &id)).expect("read"), None);
}

/// A database written by a version that kept the password in the user's document: the next
/// start hashes and seals it, and takes it out of the document.
fn clear_passwords_are_moved_out_on_start(s: &TestServer) {
    let id = id_of(&s.create_user(&json!({"userName": "legacy"})));
    let old_document = json!({"userName": "legacy", "password": "Legacy-Clear-9"}).to_string();
    // A database of that version: the document holds the password, and no conversion has run.
    s.db.read(|conn| {
        diesel::sql_query(format!(
            "UPDATE scim_users SET data = '{old_document}' WHERE id = '{id}'"
        ))
        .execute(conn)?;
        diesel::sql_query("DELETE FROM maintenance")
            .execute(conn)
            .map_err(scimgate::storage::StoreError::from)
    })
    .expect("write an old-style document");

    let db = reopen(s, backend_of(s));
    let document: Vec<Text> = db
        .read(|conn| {
            diesel::sql_query(format!(
                "SELECT data AS text FROM scim_users WHERE id = '{id}'"
            ))
            .load(conn)
            .map_err(scimgate::storage::StoreError::from)
        })
        .expect("read");
    assert!(
        !document[0].text.contains("Legacy-Clear-9"),
        "{}",
        document[0].text
    );
    assert!(document[0].text.contains("legacy"));
    assert!(verify(&stored_hash(s, &id), "Legacy-Clear-9"));
    let clear = db
        .read(|conn| unsealed(conn, db.secrets(), std::slice::from_ref(&id)))
        .expect("unseal");
    assert_eq!(clear.get(&id).map(String::as_str), Some("Legacy-Clear-9"));
    let recorded: Vec<Text> = db
        .read(|conn| {
            diesel::sql_query("SELECT task AS text FROM maintenance")
                .load(conn)
                .map_err(scimgate::storage::StoreError::from)
        })
        .expect("read");
    assert_eq!(recorded.len(), 1, "done once: later starts skip the scan");
    let fetched = s.get(&format!("/Users/{id}"));
    assert_eq!(fetched.body["userName"], "legacy");
    assert!(fetched.body.get("password").is_none());
}

on_both_backends!(
    passwords_are_stored_only_as_hashes,
    clear_passwords_are_moved_out_on_start,
);
