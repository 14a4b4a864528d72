//! The order a provision-on-demand run is recorded as: origin `on_demand`, taken at once by
//! the run itself under a lease (should the process die mid-run, the reaper re-queues it and a
//! worker finishes it), and refused while the user has open orders on the target, so one
//! resource's orders still go out one after another.

use diesel::prelude::*;

use super::orders::{self, Order, OrderState};
use super::schema::{order_transitions, orders as orders_table};
use super::{Db, Micros, StoreError};

/// What starting a run came to.
#[derive(Debug)]
pub enum Started {
    Order(Box<Order>),
    /// The user's open orders on the target, oldest first.
    Busy(Vec<Order>),
}

/// Orders that are not done yet.
const OPEN: [OrderState; 4] = [
    OrderState::Pending,
    OrderState::Transmitted,
    OrderState::Errored,
    OrderState::AwaitingApproval,
];

pub fn start(
    db: &Db,
    target: &str,
    user_id: &str,
    owner: &str,
    lease: Micros,
) -> Result<Started, StoreError> {
    db.write(|tx| {
        // Instances sharing PostgreSQL: two runs for one user must not both find no open
        // order; the second waits here until the first has committed its order.
        let user = format!("{target}\0{user_id}");
        super::advisory::hold_until_commit(tx, super::advisory::key("on-demand", &user))?;
        let open: Vec<Order> = orders_table::table
            .filter(orders_table::target.eq(target))
            .filter(orders_table::resource_type.eq("User"))
            .filter(orders_table::resource_id.eq(user_id))
            .filter(orders_table::state.eq_any(OPEN.map(OrderState::as_str)))
            .order(orders_table::id.asc())
            .select(Order::as_select())
            .load(tx.conn())?;
        if !open.is_empty() {
            return Ok(Started::Busy(open));
        }
        let now = tx.now();
        let id: i64 = diesel::insert_into(orders_table::table)
            .values((
                orders_table::target.eq(target),
                orders_table::resource_type.eq("User"),
                orders_table::resource_id.eq(user_id),
                orders_table::change_seq.eq(0),
                orders_table::operation.eq("upsert"),
                orders_table::state.eq(OrderState::Transmitted.as_str()),
                orders_table::attempts.eq(1),
                orders_table::next_attempt_at.eq(now),
                orders_table::lease_owner.eq(owner),
                orders_table::lease_until.eq(now + lease),
                orders_table::created_at.eq(now),
                orders_table::updated_at.eq(now),
                orders_table::origin.eq("on_demand"),
            ))
            .returning(orders_table::id)
            .get_result(tx.conn())?;
        for state in [OrderState::Pending, OrderState::Transmitted] {
            diesel::insert_into(order_transitions::table)
                .values((
                    order_transitions::order_id.eq(id),
                    order_transitions::state.eq(state.as_str()),
                    order_transitions::at.eq(now),
                ))
                .execute(tx.conn())?;
        }
        let order = orders::find(tx.conn(), id)?
            .ok_or(StoreError::Query(diesel::result::Error::NotFound))?;
        Ok(Started::Order(Box::new(order)))
    })
}
