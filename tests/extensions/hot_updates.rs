//! On PostgreSQL, a change that writes no indexed value is a HOT update: the new row version
//! stays on the page of the old one and no index gains an entry. Every change writes the
//! document, so this holds only because no index reads the document (declared attributes
//! are kept in columns of their own) nor `last_modified`. SQLite has no such updates.

use diesel::sql_types::{Integer, Text};
use diesel::{QueryableByName, RunQueryDsl};
use serde_json::json;

use crate::every_type::{patch, start};
use crate::harness::{id_of, Backend, TestServer};
use crate::{ACME, ACME_GROUP, CORE_GROUP, CORE_USER};

/// `t_infomask2` bit of a row version reached only through its HOT chain (PostgreSQL's
/// `HEAP_ONLY_TUPLE`, `htup_details.h`).
const HEAP_ONLY_TUPLE: i32 = 0x8000;

#[derive(QueryableByName)]
struct Place {
    #[diesel(sql_type = Text)]
    ctid: String,
}

#[derive(QueryableByName)]
struct Flags {
    #[diesel(sql_type = Integer)]
    infomask2: i32,
}

/// Whether the row `id` of `table` is now a heap-only version, read from its page.
fn heap_only(s: &TestServer, table: &str, id: &str) -> bool {
    s.db.read(|conn| -> Result<bool, scimgate::storage::StoreError> {
        let scimgate::storage::DbConnection::Postgresql(pg) = conn else {
            panic!("PostgreSQL only");
        };
        let place: Place = diesel::sql_query(format!(
            "SELECT ctid::text AS ctid FROM {table} WHERE id = $1"
        ))
        .bind::<Text, _>(id)
        .get_result(pg)?;
        let (page, item) = place
            .ctid
            .trim_matches(|c| c == '(' || c == ')')
            .split_once(',')
            .expect("a ctid is (page,item)");
        let flags: Flags = diesel::sql_query(format!(
            "SELECT t_infomask2 AS infomask2 FROM heap_page_items(get_raw_page('{table}', {page})) \
             WHERE lp = {item}"
        ))
        .get_result(pg)?;
        Ok(flags.infomask2 & HEAP_ONLY_TUPLE != 0)
    })
    .expect("page read")
}

#[test]
fn changes_that_write_no_indexed_value_stay_on_their_page() {
    let _one_at_a_time = crate::serial();
    let s = start(Backend::Postgres);
    s.db.read(|conn| -> Result<usize, scimgate::storage::StoreError> {
        let scimgate::storage::DbConnection::Postgresql(pg) = conn else {
            panic!("PostgreSQL only");
        };
        Ok(diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pageinspect").execute(pg)?)
    })
    .expect("pageinspect");

    let user = id_of(&s.create_user(&json!({
        "schemas": [CORE_USER, ACME], "userName": "hot",
        ACME: {"badge": "H-1", "clearance": 2, "costCentre": "Ops"}
    })));
    let path = format!("/Users/{user}");
    // Whether replacing `attribute` with `value` left the user's row a HOT update.
    let replaced_in_place = |attribute: String, value: &str| {
        let r = patch(
            &s,
            &path,
            json!([{"op": "replace", "path": attribute, "value": value}]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        heap_only(&s, "scim_users", &user)
    };
    assert!(
        replaced_in_place("title".into(), "Hot"),
        "a new title is a HOT update"
    );
    assert!(
        replaced_in_place(format!("{ACME}:costCentre"), "Sales"),
        "so is a declared attribute no index is on"
    );
    // What an index is on cannot stay: the test tells the two apart.
    assert!(
        !replaced_in_place(format!("{ACME}:badge"), "H-2"),
        "a new badge updates its index"
    );
    let found = s.get(&crate::filtered(
        "/Users",
        &format!("{ACME}:badge eq \"h-2\""),
    ));
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);

    let group = id_of(&s.create_group(&json!({
        "schemas": [CORE_GROUP, ACME_GROUP], "displayName": "hot group",
        ACME_GROUP: {"costCentre": "cc-hot"}
    })));
    let r = patch(
        &s,
        &format!("/Groups/{group}"),
        json!([{"op": "add", "path": "members", "value": [{"value": user}]}]),
    );
    assert!(r.status == 200 || r.status == 204, "{}", r.body);
    assert!(
        heap_only(&s, "scim_groups", &group),
        "a new member is a HOT update of its group"
    );
}

/// A database an earlier version indexed the documents of: its expression indexes give way
/// to the columns, once, and the values stay unique.
#[test]
fn expression_indexes_of_an_earlier_version_give_way_to_columns() {
    use scimgate::storage::extension_indexes::{self, IndexSpec};
    use scimgate::storage::query::{indexed_json_expression, Compared, Table};
    use scimgate::storage::Backend as StoreBackend;

    let _one_at_a_time = crate::serial();
    let s = start(Backend::Postgres);
    let badge = IndexSpec {
        table: Table::Users,
        path: vec![ACME.to_string(), "badge".to_string()],
        compared: Compared::Text { fold_case: true },
        unique: true,
    };
    let earlier = badge.name(StoreBackend::Sqlite);
    let expression = indexed_json_expression(StoreBackend::Postgres, &badge.path, badge.compared);
    s.db.read(|conn| -> Result<(), scimgate::storage::StoreError> {
        let scimgate::storage::DbConnection::Postgresql(pg) = conn else {
            panic!("PostgreSQL only");
        };
        diesel::sql_query(format!(
            "ALTER TABLE scim_users DROP COLUMN {}",
            badge.column()
        ))
        .execute(pg)?;
        diesel::sql_query(format!(
            "CREATE UNIQUE INDEX {earlier} ON scim_users (({expression}))"
        ))
        .execute(pg)?;
        Ok(())
    })
    .expect("the earlier layout");
    let before = s.db.read(extension_indexes::existing).expect("indexes");
    assert!(before.contains(&earlier), "{before:?}");
    assert!(!before.contains(&badge.column()), "{before:?}");

    let specs = scimgate::extensions::index_specs(scimgate::scim::registry::current());
    let synced =
        s.db.write(|tx| extension_indexes::sync(tx.conn(), &specs))
            .expect("sync");
    assert!(synced.is_ok());
    let after = s.db.read(extension_indexes::existing).expect("indexes");
    assert!(!after.contains(&earlier), "{after:?}");
    assert!(after.contains(&badge.column()), "{after:?}");
    assert_eq!(after.len(), specs.len(), "{after:?}");

    s.create_user(
        &json!({"schemas": [CORE_USER, ACME], "userName": "one", ACME: {"badge": "U-1"}}),
    );
    let taken = s.post(
        "/Users",
        &json!({"schemas": [CORE_USER, ACME], "userName": "two", ACME: {"badge": "u-1"}}),
    );
    taken.assert_scim_error(409, Some("uniqueness"));
}
