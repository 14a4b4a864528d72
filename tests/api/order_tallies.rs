//! Orders per target and state are tallied as orders move (`storage::order_tallies`), and the
//! console and metrics read the tallies. Every test server checks, as it stops, that they agree
//! with the orders; this test also makes sure the changes are folded, and agree after it.

use serde_json::json;

use scimgate::storage::order_tallies;
use scimgate::storage::orders::{Action, OrderFilter, OrderState};

use crate::harness::{Backend, TestServer};
use crate::provisioning::{fast, wait_for};

fn tallies_follow_every_move_and_are_folded(backend: Backend) {
    let remote = TestServer::start(backend);
    let target = crate::console::refusing_target(&remote);
    let s = TestServer::start_with(backend, |c| fast(c, vec![target]));
    let users = order_tallies::FOLD_EVERY as usize + 44;
    for i in 0..users {
        s.create_user(&json!({"userName": format!("t{i:04}")}));
    }
    let errors = wait_for("every order in error", || {
        let filter = OrderFilter {
            target: Some("crm".into()),
            state: Some(OrderState::Error),
            limit: 10_000,
            ..OrderFilter::default()
        };
        let found =
            s.db.read(|c| scimgate::storage::orders::list(c, &filter))
                .expect("list");
        (found.len() == users).then_some(found)
    });
    // One write per order: more than enough for this handle to fold at least once.
    for order in &errors {
        let cancelled = scimgate::provisioning::operator::cancel(&s.db, order.id).expect("cancel");
        assert!(matches!(cancelled, Action::Done(_)), "order {}", order.id);
    }
    let tallies =
        s.db.read(|c| order_tallies::of_target(c, "crm"))
            .expect("tallies");
    let inactive = tallies
        .iter()
        .find(|t| t.state == "inactive")
        .expect("an inactive tally");
    assert_eq!(inactive.orders, users as i64);
    assert!(
        tallies
            .iter()
            .filter(|t| t.state != "inactive")
            .all(|t| t.orders == 0),
        "{tallies:?}"
    );
    let unfolded: i64 =
        s.db.read(|c| {
            use diesel::prelude::*;
            use scimgate::storage::schema::order_tally_changes;
            Ok::<_, scimgate::storage::StoreError>(
                order_tally_changes::table.count().get_result(c)?,
            )
        })
        .expect("count");
    assert!(
        unfolded < 2 * 44 + 2,
        "{unfolded} changes left: the tallies were not folded"
    );
    let off = s.db.read(order_tallies::discrepancies).expect("compare");
    assert!(off.is_empty(), "{off:?}");
}

crate::for_each_backend!(tallies_follow_every_move_and_are_folded);
