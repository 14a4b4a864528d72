//! The order owner (`storage::orders`): plans are committed once whatever the number of
//! planners, and orders move only along the lifecycle, each move recorded.

use serde_json::json;

use crate::harness::{id_of, Backend, TestServer};
use scimgate::storage::orders::{
    self, Action, Committed, NewOrder, Operation, OrderState, Origin, Start,
};

fn without_workers(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| c.worker.enabled = false)
}

fn a_plan_is_committed_once(backend: Backend) {
    let s = without_workers(backend);
    let id = id_of(&s.create_user(&json!({"userName": "planned"})));
    let (from, entries) = orders::unplanned(&s.db, 100).expect("read");
    assert_eq!(entries.len(), 1);
    let through = entries[0].seq;
    let plan = vec![NewOrder::for_change("t", &entries[0], Operation::Upsert)];
    // Two planners read the same changes; the first commit wins, the second writes nothing.
    assert_eq!(
        orders::commit_plan(&s.db, from, through, None, &plan).expect("commit"),
        Committed::Done
    );
    assert_eq!(
        orders::commit_plan(&s.db, from, through, None, &plan).expect("commit"),
        Committed::PositionMoved
    );
    let planned =
        s.db.read(|c| orders::of_resource(c, "User", &id))
            .expect("read");
    assert_eq!(planned.len(), 1, "planned once");
    assert_eq!(planned[0].origin, Origin::Change);
    assert_eq!(planned[0].change_seq, through);
    let (after, rest) = orders::unplanned(&s.db, 100).expect("read");
    assert_eq!((after, rest.len()), (through, 0));
    // A plan made for targets that changed since is not written either.
    let id2 = id_of(&s.create_user(&json!({"userName": "later"})));
    let (from, entries) = orders::unplanned(&s.db, 100).expect("read");
    let plan = vec![NewOrder::for_change("t", &entries[0], Operation::Upsert)];
    let stale = orders::commit_plan(&s.db, from, entries[0].seq, Some(-1), &plan).expect("commit");
    assert_eq!(stale, Committed::TargetsChanged);
    assert!(s
        .db
        .read(|c| orders::of_resource(c, "User", &id2))
        .expect("read")
        .is_empty());
}

fn orders_move_only_along_the_lifecycle(backend: Backend) {
    let s = without_workers(backend);
    let new = NewOrder {
        target: "t".into(),
        resource_type: "User".into(),
        resource_id: "someone".into(),
        operation: Operation::Upsert,
        origin: Origin::OnDemand,
        change_seq: 0,
        sync_id: None,
        remote_id: None,
        hold: None,
        start: Start::Queued,
        connection: None,
    };
    let id = s.db.write(|tx| orders::insert(tx, &[new])).expect("insert")[0];
    // A pending order is not failed: nothing to retry.
    assert!(matches!(
        orders::retry(&s.db, id).expect("retry"),
        Action::Refused(_)
    ));
    match orders::cancel(&s.db, id).expect("cancel") {
        Action::Done(order) => assert_eq!(order.state, OrderState::Inactive),
        other => panic!("cancel: {other:?}"),
    }
    // Inactive is final.
    assert!(matches!(
        orders::cancel(&s.db, id).expect("again"),
        Action::Refused(_)
    ));
    assert!(matches!(
        orders::retry(&s.db, id).expect("retry"),
        Action::Refused(_)
    ));
    let moves: Vec<String> =
        s.db.read(|c| orders::transitions_of(c, id))
            .expect("transitions")
            .into_iter()
            .map(|t| t.state)
            .collect();
    assert_eq!(moves, ["pending", "inactive"]);
    assert!(matches!(
        orders::retry(&s.db, id + 1_000).expect("missing"),
        Action::NotFound
    ));
}

/// Two orders of one resource: with coalescing the older is superseded and nothing goes out
/// until the newer is the resource's oldest; without it the older goes out first.
fn coalescing_is_the_callers_choice(backend: Backend) {
    let s = without_workers(backend);
    let order = |target: &str, change_seq: i64| NewOrder {
        target: target.into(),
        resource_type: "User".into(),
        resource_id: "someone".into(),
        operation: Operation::Upsert,
        origin: Origin::Change,
        change_seq,
        sync_id: None,
        remote_id: None,
        hold: None,
        start: Start::Queued,
        connection: None,
    };
    let ids =
        s.db.write(|tx| {
            orders::insert(
                tx,
                &[order("a", 1), order("a", 2), order("b", 1), order("b", 2)],
            )
        })
        .expect("insert");
    let lease = 60_000_000;
    let coalesced =
        orders::claim(&s.db, "a", "w", lease, 10, orders::Coalesce::Superseded).expect("claim");
    assert!(
        coalesced.is_empty(),
        "the older is superseded, the newer not yet a head"
    );
    let older =
        s.db.read(|c| orders::find(c, ids[0]))
            .expect("read")
            .expect("order");
    assert_eq!(older.state, OrderState::Inactive);
    let each = orders::claim(&s.db, "b", "w", lease, 10, orders::Coalesce::Never).expect("claim");
    assert_eq!(each.iter().map(|o| o.id).collect::<Vec<_>>(), [ids[2]]);
    assert_eq!(each[0].state, OrderState::Transmitted);
}

/// PostgreSQL numbers a change when it is inserted, not when it commits: a change numbered
/// before one already visible, but committed after it, is waited for, not passed by; and the
/// hole a rolled-back write leaves is passed once no transaction can fill it any more.
#[test]
fn a_change_committing_late_is_waited_for_on_postgres() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let s = without_workers(Backend::Postgres);
    let mut late = diesel::PgConnection::establish(&s.database_url).expect("connect");
    let insert = "INSERT INTO change_log (resource_type, resource_id, operation, version, \
                  actor, occurred_at) VALUES ('User', 'late', 'create', 1, 'test', 0)";
    late.batch_execute(&format!("BEGIN; {insert}"))
        .expect("open a write");
    let early = id_of(&s.create_user(&json!({"userName": "committed-first"})));
    let (_, entries) = orders::unplanned(&s.db, 100).expect("read");
    assert!(
        entries.is_empty(),
        "the uncommitted change holds the read: {entries:?}"
    );
    late.batch_execute("COMMIT").expect("commit");
    let (from, entries) = orders::unplanned(&s.db, 100).expect("read");
    let ids: Vec<&str> = entries.iter().map(|e| e.resource_id.as_str()).collect();
    assert_eq!(ids, ["late", early.as_str()]);
    let through = entries[1].seq;
    assert_eq!(
        orders::commit_plan(&s.db, from, through, None, &[]).expect("commit"),
        Committed::Done
    );

    late.batch_execute(&format!("BEGIN; {insert}; ROLLBACK"))
        .expect("a write rolled back");
    let after = id_of(&s.create_user(&json!({"userName": "after-the-hole"})));
    // Transaction ids are the server's: other tests' transactions may hold the horizon a while.
    let seen = crate::provisioning::wait_for("the final hole to be passed", || {
        let (_, entries) = orders::unplanned(&s.db, 100).expect("read");
        let seen: Vec<String> = entries.into_iter().map(|e| e.resource_id).collect();
        (!seen.is_empty()).then_some(seen)
    });
    assert_eq!(seen, [after], "the final hole is passed");
}

crate::for_each_backend!(
    a_plan_is_committed_once,
    orders_move_only_along_the_lifecycle,
    coalescing_is_the_callers_choice,
);
