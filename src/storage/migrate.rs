//! Embedded migrations for both backends, run at start-up.

use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::{DbConnection, StoreError};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

// Any constant shared by all scimgate instances; serialises concurrent start-ups.
const MIGRATION_LOCK_KEY: i64 = 0x5C1A_6A7E;

pub fn run(conn: &mut DbConnection) -> Result<(), StoreError> {
    let migration_error =
        |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
    match conn {
        DbConnection::Sqlite(c) => {
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(migration_error)?;
        }
        DbConnection::Postgresql(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .execute(c)?;
            let result = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .map_err(migration_error);
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                .execute(c)?;
            result?;
        }
    }
    Ok(())
}

/// Whether every migration this build knows is applied (another instance may have opened an
/// older schema, or a newer build may be rolling out).
pub fn current(conn: &mut DbConnection) -> Result<bool, StoreError> {
    let pending = match conn {
        DbConnection::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
        DbConnection::Postgresql(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
    };
    pending
        .map(|pending| !pending)
        .map_err(|e| StoreError::Migration(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    fn names(backend: &str) -> BTreeSet<String> {
        let dir = format!("{}/migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_dir(dir)
            .expect("migrations dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn keyed_links_keep_the_links_recorded_before() {
        use diesel::connection::SimpleConnection;
        use diesel::prelude::*;
        use diesel_migrations::MigrationHarness;
        let mut conn = SqliteConnection::establish(":memory:").expect("sqlite");
        let keyed = "2026-11-29-000007_links_keyed";
        while conn
            .pending_migrations(super::SQLITE_MIGRATIONS)
            .expect("pending")
            .first()
            .is_none_or(|m| m.name().to_string() != keyed)
        {
            conn.run_next_migration(super::SQLITE_MIGRATIONS)
                .expect("earlier migration");
        }
        conn.batch_execute(
            "INSERT INTO identity_links (target, resource_type, source_id, remote_id, linked_at) \
             VALUES ('ldap', 'User', 'u1', 'uid=a,dc=x', 7)",
        )
        .expect("link");
        conn.run_pending_migrations(super::SQLITE_MIGRATIONS)
            .expect("keyed links");
        #[derive(QueryableByName)]
        struct Link {
            #[diesel(sql_type = diesel::sql_types::Text)]
            remote_id: String,
        }
        let links: Vec<Link> =
            diesel::sql_query("SELECT remote_id FROM identity_links WHERE source_id = 'u1'")
                .load(&mut conn)
                .expect("read");
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].remote_id, "uid=a,dc=x");
        #[derive(QueryableByName)]
        struct Sql {
            #[diesel(sql_type = diesel::sql_types::Text)]
            sql: String,
        }
        let table: Vec<Sql> = diesel::sql_query(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'identity_links'",
        )
        .load(&mut conn)
        .expect("schema");
        assert!(table[0].sql.contains("WITHOUT ROWID"));
    }

    #[test]
    fn holds_recorded_before_their_kind_was_kept_get_one() {
        use diesel::connection::SimpleConnection;
        use diesel::prelude::*;
        use diesel_migrations::MigrationHarness;
        let mut conn = SqliteConnection::establish(":memory:").expect("sqlite");
        let holds = "2026-12-03-000010_order_holds";
        while conn
            .pending_migrations(super::SQLITE_MIGRATIONS)
            .expect("pending")
            .first()
            .is_none_or(|m| m.name().to_string() != holds)
        {
            conn.run_next_migration(super::SQLITE_MIGRATIONS)
                .expect("earlier migration");
        }
        conn.batch_execute(
            "INSERT INTO orders (id, target, resource_type, resource_id, change_seq, operation, \
             state, attempts, next_attempt_at, created_at, updated_at, held_reason) VALUES \
             (1, 't', 'User', 'a', 1, 'delete', 'awaiting_approval', 0, 0, 0, 0, \
              'mass-delete guard: 5 deletions or disables exceed the limit of 3'), \
             (2, 't', 'User', 'b', 2, 'upsert', 'awaiting_approval', 0, 0, 0, 0, \
              'review rule: deprovisioning'), \
             (3, 't', 'User', 'c', 3, 'upsert', 'pending', 0, 0, 0, 0, NULL)",
        )
        .expect("orders");
        conn.run_pending_migrations(super::SQLITE_MIGRATIONS)
            .expect("holds");
        #[derive(QueryableByName)]
        struct Held {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            held_by: Option<String>,
        }
        let kinds: Vec<Option<String>> =
            diesel::sql_query("SELECT held_by FROM orders ORDER BY id")
                .load::<Held>(&mut conn)
                .expect("read")
                .into_iter()
                .map(|h| h.held_by)
                .collect();
        assert_eq!(
            kinds,
            [Some("mass_delete".to_string()), Some("review".into()), None]
        );
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        let sqlite = names("sqlite");
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, names("postgres"));
    }
}
