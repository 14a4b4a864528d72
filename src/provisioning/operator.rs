//! What operators see of provisioning and do to it: orders (find, list, retry, cancel,
//! approve, decline, start one on demand), work items (list, close) and a target's delivery
//! state at a glance. The admin API (and anything else acting for an operator) goes through
//! here; the order owner in storage carries each action out.

use crate::storage::orders;
use crate::storage::{deletions, target_health, target_locks, work_items};
use crate::storage::{Db, StoreError};

/// Records a provision-on-demand run's order, taken at once under the run's lease, unless the
/// user has open orders on the target (they go out first).
pub use crate::storage::on_demand::start as start_on_demand;
pub use crate::storage::on_demand::Started;
pub use crate::storage::orders::{
    Action, Attempt, Order, OrderFilter, OrderState, TargetStatus, Transition,
};
pub use crate::storage::orders::{Decision, HeldQuery, Operation};
pub use crate::storage::target_locks::TargetLock;
pub use crate::storage::work_items::{Closed, Closing, WorkItem, WorkItemFilter};

use super::quarantine::Health;

/// An order with its attempts and its moves through the lifecycle.
pub struct OrderDetail {
    pub order: Order,
    pub attempts: Vec<Attempt>,
    pub transitions: Vec<Transition>,
}

pub fn orders(db: &Db, filter: &OrderFilter) -> Result<Vec<Order>, StoreError> {
    db.read(|c| orders::list(c, filter))
}

pub fn order(db: &Db, id: i64) -> Result<Option<Order>, StoreError> {
    db.read(|c| orders::find(c, id))
}

pub fn order_detail(db: &Db, id: i64) -> Result<Option<OrderDetail>, StoreError> {
    db.read(|c| {
        let Some(order) = orders::find(c, id)? else {
            return Ok(None);
        };
        Ok(Some(OrderDetail {
            order,
            attempts: orders::attempts_of(c, id)?,
            transitions: orders::transitions_of(c, id)?,
        }))
    })
}

/// Where one user or group stands on every target.
pub fn orders_of(db: &Db, resource_type: &str, id: &str) -> Result<Vec<Order>, StoreError> {
    db.read(|c| orders::of_resource(c, resource_type, id))
}

pub fn retry(db: &Db, id: i64) -> Result<Action, StoreError> {
    orders::retry(db, id)
}

pub fn cancel(db: &Db, id: i64) -> Result<Action, StoreError> {
    orders::cancel(db, id)
}

pub fn decide(db: &Db, id: i64, decision: &Decision) -> Result<Action, StoreError> {
    orders::decide(db, id, decision)
}

pub fn decide_matching(
    db: &Db,
    query: &HeldQuery,
    decision: &Decision,
) -> Result<usize, StoreError> {
    orders::decide_matching(db, query, decision)
}

pub fn work_items(db: &Db, filter: &WorkItemFilter) -> Result<Vec<WorkItem>, StoreError> {
    db.read(|c| work_items::list(c, filter))
}

pub fn work_item(db: &Db, id: i64) -> Result<Option<WorkItem>, StoreError> {
    db.read(|c| work_items::find(c, id))
}

/// A person completed or failed a work item: its order moves accordingly.
pub fn close_work_item(
    db: &Db,
    id: i64,
    by: &str,
    closing: &Closing,
) -> Result<Closed, StoreError> {
    work_items::close(db, id, by, closing)
}

/// A target's delivery state: its orders, health, what the mass-delete guard holds and who
/// holds its lock.
pub struct TargetState {
    pub orders: TargetStatus,
    pub health: Health,
    /// Orders the mass-delete guard holds, and the latest reason.
    pub guard: (i64, Option<String>),
    pub lock: Option<TargetLock>,
}

pub fn target_state(db: &Db, name: &str) -> Result<TargetState, StoreError> {
    let now = db.clock().now_micros();
    db.read(|c| {
        Ok(TargetState {
            orders: orders::status(c, name)?,
            health: target_health::find(c, name)?
                .as_ref()
                .map(Health::from_row)
                .unwrap_or_default(),
            guard: deletions::held_by_guard(c, name)?,
            lock: target_locks::held(c, name, now)?,
        })
    })
}
