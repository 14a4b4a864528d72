//! The connection pool on PostgreSQL: a pooled connection the server has dropped (a restart,
//! an administrator's `pg_terminate_backend`) is replaced, not handed out again and again.

use diesel::prelude::*;

use scimgate::storage::{users, Db, StoreError};

#[test]
fn a_connection_the_server_dropped_is_replaced_after_one_failure() {
    let url = crate::postgres::shared().create_database();
    let db = Db::open(&url, 1).expect("open");
    assert_eq!(db.read(users::count).expect("count"), 0);

    let mut admin = PgConnection::establish(&url).expect("connect");
    let terminated: Vec<bool> = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
        "pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    ))
    .load(&mut admin)
    .expect("terminate the pool's backend");
    assert_eq!(terminated, vec![true], "the pool held one connection");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let others: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        ))
        .get_result(&mut admin)
        .expect("count backends");
        if others == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the backend never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    // The pool trusts a connection that answered within the last second, so this use may
    // find it dead (or, on a slow machine, the pool checks it first and replaces it).
    let first: Result<u64, StoreError> = db.read(users::count);
    // Either way, from now on a new connection answers.
    assert_eq!(
        db.read(users::count).expect("a new connection"),
        0,
        "first use: {first:?}"
    );
    assert_eq!(db.read(users::count).expect("and it stays"), 0);
}
