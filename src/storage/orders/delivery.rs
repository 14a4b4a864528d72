//! What workers do with orders: claim them under a lease, record how each attempt ended,
//! renew the leases they hold, and give back (or reclaim) those of workers that stopped.

use std::collections::HashMap;

use diesel::dsl::{Eq, Filter, IsNotNull, Lt, Select};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::kinds::{Hold, OrderState};
use super::read::has_open_order;
use super::transition::{self, AttemptRecord, Attempts, Changes, Guard, LinkChange, Move};
use super::Order;
use crate::storage::schema::orders;
use crate::storage::{Db, DbConnection, Micros, StoreError, BIND_CHUNK};

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// What a claim does with an order that has a newer pending order of its resource behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coalesce {
    /// It becomes `Inactive` ("superseded"): only the newest goes out.
    Superseded,
    /// It goes out like any other.
    Never,
}

/// Takes up to `limit` deliverable orders of one target for `owner`, under a lease. Only the
/// oldest unfinished order of each resource is deliverable, so one resource's orders go out in
/// change order; `coalesce` says what becomes of one with a newer order pending behind it.
pub fn claim(
    db: &Db,
    target: &str,
    owner: &str,
    lease: Micros,
    limit: i64,
    coalesce: Coalesce,
) -> Result<Vec<Order>, StoreError> {
    db.write(|tx| {
        if !crate::storage::target_locks::may_deliver(tx, target)? {
            return Ok(Vec::new());
        }
        let now = tx.now();
        let mut heads = Vec::new();
        for state in [OrderState::Pending, OrderState::Errored] {
            heads.extend(heads_in(tx.conn(), target, state, now, limit)?);
        }
        heads.sort_unstable();
        heads.truncate(limit.max(0) as usize);
        if heads.is_empty() {
            return Ok(Vec::new());
        }
        let found: Vec<Order> = orders::table
            .filter(orders::id.eq_any(&heads))
            .order(orders::id)
            .select(Order::as_select())
            .load(tx.conn())?;
        let superseded_ids = match coalesce {
            Coalesce::Superseded => superseded(tx.conn(), target, &found)?,
            Coalesce::Never => Default::default(),
        };
        let (superseded, claimable): (Vec<Order>, Vec<Order>) = found
            .into_iter()
            .partition(|o| superseded_ids.contains(&o.id));
        let deliverable = [OrderState::Pending, OrderState::Errored];
        if !superseded.is_empty() {
            let ids: Vec<i64> = superseded.iter().map(|o| o.id).collect();
            let changes = Changes {
                error: Some(Some("superseded by a newer change".into())),
                keep_members_waiting: true,
                ..Changes::default()
            };
            transition::apply_to_all(
                tx,
                Guard::from(&deliverable),
                &ids,
                OrderState::Inactive,
                &changes,
            )?;
        }
        if claimable.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = claimable.iter().map(|o| o.id).collect();
        let until = now + lease;
        let changes = Changes {
            attempts: Attempts::Count,
            lease: Some((owner, until)),
            ..Changes::default()
        };
        transition::apply_to_all(
            tx,
            Guard::from(&deliverable),
            &ids,
            OrderState::Transmitted,
            &changes,
        )?;
        Ok(claimable
            .into_iter()
            .map(|order| Order {
                state: OrderState::Transmitted,
                attempts: order.attempts + 1,
                lease_owner: Some(owner.to_string()),
                lease_until: Some(until),
                ..order
            })
            .collect())
    })
}

/// The target's deliverable orders in `state`: due, and the oldest open order of their
/// resource. One state at a time, so each scan walks the (target, state, id) index in id order
/// and stops after `limit` rows, however long the backlog; locked with SKIP LOCKED on
/// PostgreSQL, so instances sharing it never claim the same order.
fn heads_in(
    conn: &mut DbConnection,
    target: &str,
    state: OrderState,
    now: Micros,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    const HEADS: &str = "SELECT o.id AS id FROM orders o
        WHERE o.target = {1} AND o.state = {4} AND o.next_attempt_at <= {2}
          AND NOT EXISTS (SELECT 1 FROM orders p
              WHERE p.target = o.target AND p.resource_type = o.resource_type
                AND p.resource_id = o.resource_id AND p.id < o.id
                AND p.state IN ('pending', 'transmitted', 'errored', 'awaiting_approval'))
        ORDER BY o.id LIMIT {3}";
    let rows: Vec<IdRow> = match conn {
        DbConnection::Postgresql(pg) => {
            let sql = HEADS
                .replace("{1}", "$1")
                .replace("{2}", "$2")
                .replace("{3}", "$3")
                .replace("{4}", "$4")
                + " FOR UPDATE SKIP LOCKED";
            diesel::sql_query(sql)
                .bind::<Text, _>(target)
                .bind::<BigInt, _>(now)
                .bind::<BigInt, _>(limit)
                .bind::<Text, _>(state.as_str())
                .load(pg)?
        }
        DbConnection::Sqlite(lite) => {
            // SQLite numbers `?` by position: bind in text order (target, state, now, limit).
            let sql = HEADS
                .replace("{1}", "?1")
                .replace("{2}", "?3")
                .replace("{3}", "?4")
                .replace("{4}", "?2");
            diesel::sql_query(sql)
                .bind::<Text, _>(target)
                .bind::<Text, _>(state.as_str())
                .bind::<BigInt, _>(now)
                .bind::<BigInt, _>(limit)
                .load(lite)?
        }
    };
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// The heads with a newer pending order of their resource behind them: superseded. Looked up
/// by resource (type and id, the `orders_resource` index), so a claim costs the same however
/// long the target's backlog is.
fn superseded(
    conn: &mut DbConnection,
    target: &str,
    heads: &[Order],
) -> Result<std::collections::HashSet<i64>, StoreError> {
    let mut by_type: HashMap<&str, Vec<&str>> = HashMap::new();
    for head in heads {
        by_type
            .entry(head.resource_type.as_str())
            .or_default()
            .push(head.resource_id.as_str());
    }
    let oldest = heads.iter().map(|o| o.id).min().unwrap_or_default();
    let mut later: Vec<(String, String, i64, String)> = Vec::new();
    for (kind, ids) in &by_type {
        for chunk in ids.chunks(BIND_CHUNK) {
            // The state is checked here, not in SQL: with it there, SQLite would walk the
            // target's pending orders on the claim index instead of seeking each resource.
            later.extend(
                orders::table
                    .filter(orders::target.eq(target))
                    .filter(orders::resource_type.eq(kind))
                    .filter(orders::resource_id.eq_any(chunk))
                    .filter(orders::id.gt(oldest))
                    .select((
                        orders::resource_type,
                        orders::resource_id,
                        orders::id,
                        orders::state,
                    ))
                    .load::<(String, String, i64, String)>(conn)?,
            );
        }
    }
    let pending = later
        .iter()
        .filter(|(_, _, _, state)| state == OrderState::Pending.as_str());
    let mut newest: HashMap<(&str, &str), i64> = HashMap::new();
    for (kind, id, order_id, _) in pending {
        let slot = newest
            .entry((kind.as_str(), id.as_str()))
            .or_insert(*order_id);
        *slot = (*slot).max(*order_id);
    }
    Ok(heads
        .iter()
        .filter(|o| {
            newest
                .get(&(o.resource_type.as_str(), o.resource_id.as_str()))
                .is_some_and(|n| *n > o.id)
        })
        .map(|o| o.id)
        .collect())
}

/// How an attempt ends, as the provisioning layer decided it.
#[derive(Debug, Clone)]
pub struct Finish {
    pub state: OrderState,
    pub next_attempt_at: Option<Micros>,
    /// An identity-link change to record with it.
    pub link: Option<LinkChange>,
    /// Read back from the target and found matching: the order ends `Verified`.
    pub verified: bool,
    /// Held for approval (`AwaitingApproval`): by what, and why.
    pub hold: Option<Hold>,
    /// Deferred until this member's order has landed (it makes this order due at once).
    pub waiting_for: Option<String>,
    /// A note to keep on the order (members left out of a group).
    pub note: Option<String>,
}

/// Records an attempt and moves the order on, if `owner` still holds its lease (a reclaimed
/// order's late answer must not overwrite the new holder's work). Returns whether it did.
pub fn finish(
    db: &Db,
    order: &Order,
    owner: &str,
    outcome: &Finish,
    attempt: &AttemptRecord,
) -> Result<bool, StoreError> {
    let recorded = finish_all(db, owner, &[(order, outcome, attempt)])?;
    Ok(recorded.first().copied().unwrap_or(false))
}

/// [`finish`] for several orders in one transaction (a worker's round records its outcomes
/// together); one flag per order, in order. Every attempt is kept, whether or not the order
/// was still this worker's.
pub fn finish_all(
    db: &Db,
    owner: &str,
    outcomes: &[(&Order, &Finish, &AttemptRecord)],
) -> Result<Vec<bool>, StoreError> {
    let moves: Vec<Move<'_>> = outcomes
        .iter()
        .map(|(order, finish, attempt)| Move {
            id: order.id,
            to: if finish.verified {
                OrderState::Verified
            } else {
                finish.state
            },
            changes: Changes {
                due_at: finish.next_attempt_at,
                error: Some(attempt.error.clone()),
                remote_id: Some(attempt.response_id.clone()),
                hold: finish.hold.as_ref(),
                waiting_for: Some(finish.waiting_for.clone()),
                note: Some(finish.note.clone()),
                link: finish.link.clone(),
                attempt: Some((*attempt).clone()),
                ..Changes::default()
            },
        })
        .collect();
    let guard = Guard {
        from: &[OrderState::Transmitted],
        leased_to: Some(owner),
    };
    let moved = db.write(|tx| transition::apply(tx, guard, &moves))?;
    let recorded: Vec<bool> = moved.iter().map(Option::is_some).collect();
    for ((order, finish, _), kept) in outcomes.iter().zip(&recorded) {
        if let (true, Some(member)) = (kept, &finish.waiting_for) {
            wake_if_landed(db, order, member)?;
        }
    }
    Ok(recorded)
}

/// A deferred order whose member landed while it was being delivered has nothing to wait for:
/// due now. Run after the deferral is committed, with the member's orders read under row
/// locks on PostgreSQL: the member's outcome, recorded concurrently, is either seen here or
/// sees the deferral (and wakes it). SQLite's writers are serialised already.
fn wake_if_landed(db: &Db, order: &Order, member: &str) -> Result<(), StoreError> {
    db.write(|tx| {
        if has_open_order(tx, &order.target, member)? {
            return Ok(());
        }
        super::schedule::due_now(tx, order.id)
    })
}

/// Orders out with a worker. Every lease statement starts here, so each seeks the partial
/// index of leased orders (`orders_leased`, the few in flight) instead of walking every order
/// ever made: the expiry check runs every round.
type Leased =
    Filter<Filter<orders::table, IsNotNull<orders::lease_owner>>, Eq<orders::state, &'static str>>;

fn leased() -> Leased {
    orders::table
        .filter(orders::lease_owner.is_not_null())
        .filter(orders::state.eq(OrderState::Transmitted.as_str()))
}

/// The leased orders whose lease ran out before `now`.
fn expired_at(now: Micros) -> Select<Filter<Leased, Lt<orders::lease_until, Micros>>, orders::id> {
    leased()
        .filter(orders::lease_until.lt(now))
        .select(orders::id)
}

/// The statement extending one owner's leases.
type Renewal<'a> = diesel::dsl::Update<
    Filter<Leased, Eq<orders::lease_owner, &'a str>>,
    Eq<orders::lease_until, Micros>,
>;

/// `owner`'s leases, extended to `until`.
fn renewal(owner: &str, until: Micros) -> Renewal<'_> {
    diesel::update(leased().filter(orders::lease_owner.eq(owner)))
        .set(orders::lease_until.eq(until))
}

/// Gives back every order leased to `owner` (a worker shutting down): retryable at once.
pub fn release_leases(db: &Db, owner: &str) -> Result<usize, StoreError> {
    release_where(db, "released: the worker shut down mid-delivery", |held| {
        held == owner
    })
}

/// Gives back the orders a previous run of this instance held when it died: those leased by
/// an owner for which `was_mine` holds (but `current`). Retryable at once, instead of when
/// their lease runs out.
pub fn release_previous(
    db: &Db,
    current: &str,
    was_mine: impl Fn(&str) -> bool,
) -> Result<usize, StoreError> {
    release_where(
        db,
        "released: the instance restarted mid-delivery",
        |held| held != current && was_mine(held),
    )
}

fn release_where(
    db: &Db,
    why: &str,
    leased_by: impl Fn(&str) -> bool,
) -> Result<usize, StoreError> {
    db.write(|tx| {
        let leased: Vec<(i64, Option<String>)> = leased()
            .select((orders::id, orders::lease_owner))
            .load(tx.conn())?;
        let held: Vec<i64> = leased
            .into_iter()
            .filter(|(_, owner)| owner.as_deref().is_some_and(&leased_by))
            .map(|(id, _)| id)
            .collect();
        retry_now(tx, &held, why)
    })
}

/// Extends the leases `owner` holds to `lease` from now (the worker's heartbeat); answers how
/// many it holds.
pub fn renew_leases(db: &Db, owner: &str, lease: Micros) -> Result<usize, StoreError> {
    db.write(|tx| {
        let until = tx.now() + lease;
        Ok(renewal(owner, until).execute(tx.conn())?)
    })
}

/// Orders whose worker vanished (lease expired while `Transmitted`) become retryable now.
pub fn reclaim_expired(db: &Db) -> Result<usize, StoreError> {
    db.write(|tx| {
        let now = tx.now();
        let expired: Vec<i64> = expired_at(now).load(tx.conn())?;
        retry_now(
            tx,
            &expired,
            "lease expired: the worker stopped mid-delivery",
        )
    })
}

/// Leased orders given up by their worker: errored, due now, with why.
fn retry_now(
    tx: &mut crate::storage::WriteTx<'_>,
    ids: &[i64],
    why: &str,
) -> Result<usize, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let changes = Changes {
        error: Some(Some(why.to_string())),
        ..Changes::default()
    };
    let moved = transition::apply_to_all(
        tx,
        Guard::from(&[OrderState::Transmitted]),
        ids,
        OrderState::Errored,
        &changes,
    )?;
    Ok(moved.len())
}

/// A manual target's order (still `Transmitted`, without a lease) closed by the person who
/// carried it out, in the caller's transaction: `Executed` or `Error`, with the person's work
/// as its attempt and the link change it implies. Returns whether it moved (an order withdrawn
/// meanwhile, its target deleted, stays as it is).
pub fn finish_by_person(
    tx: &mut crate::storage::WriteTx<'_>,
    order_id: i64,
    to: OrderState,
    error: Option<String>,
    remote_id: Option<String>,
    link: Option<LinkChange>,
    started_at: Micros,
) -> Result<bool, StoreError> {
    let attempt = AttemptRecord {
        started_at,
        duration_ms: (tx.now() - started_at) / 1_000,
        http_status: None,
        error: error.clone(),
        response_id: remote_id.clone(),
    };
    let changes = Changes {
        error: Some(error),
        remote_id: Some(remote_id),
        link,
        attempt: Some(attempt),
        ..Changes::default()
    };
    let moved = transition::apply(
        tx,
        Guard::from(&[OrderState::Transmitted]),
        &[Move {
            id: order_id,
            to,
            changes,
        }],
    )?;
    Ok(moved.first().is_some_and(Option::is_some))
}

#[cfg(test)]
mod tests {
    use diesel::query_builder::{debug_query, QueryFragment};
    use diesel::sql_types::Text;
    use diesel::sqlite::Sqlite;

    use super::*;

    #[derive(QueryableByName)]
    struct PlanStep {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    /// How SQLite runs `query` (its binds unset: the plan does not depend on them).
    fn plan(db: &Db, query: &impl QueryFragment<Sqlite>) -> String {
        let shown = debug_query::<Sqlite, _>(query).to_string();
        let sql = shown
            .split(" -- binds:")
            .next()
            .unwrap_or_default()
            .to_string();
        db.read(|c| {
            let DbConnection::Sqlite(lite) = c else {
                panic!("a SQLite database")
            };
            let steps: Vec<PlanStep> =
                diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}")).load(lite)?;
            Ok::<_, StoreError>(
                steps
                    .into_iter()
                    .map(|s| s.detail)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
        .expect("plan")
    }

    /// The expiry check runs every round, the renewal every heartbeat: both seek the index of
    /// leased orders, never a walk of the table (which grows by every order ever made).
    #[test]
    fn lease_statements_seek_the_leased_orders_only() {
        let (_dir, db) = crate::storage::temp_sqlite(2);
        let release = leased().select((orders::id, orders::lease_owner));
        for (name, shown) in [
            ("expiry", plan(&db, &expired_at(0))),
            ("renewal", plan(&db, &renewal("worker", 0))),
            ("release", plan(&db, &release)),
        ] {
            assert!(
                shown.contains("USING INDEX orders_leased"),
                "{name}: {shown}"
            );
            assert!(!shown.contains("SCAN"), "{name}: {shown}");
        }
    }
}
