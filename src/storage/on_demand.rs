//! The order a provision-on-demand run is recorded as: origin `on_demand`, taken at once by
//! the run itself under a lease (should the process die mid-run, the reaper re-queues it and a
//! worker finishes it), and refused while the user has open orders on the target, so one
//! resource's orders still go out one after another.

use super::orders::{self, NewOrder, Operation, Order, Origin, Start};
use super::{Db, Micros, StoreError};

/// What starting a run came to.
#[derive(Debug)]
pub enum Started {
    Order(Box<Order>),
    /// The user's open orders on the target, oldest first.
    Busy(Vec<Order>),
}

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
        let open = orders::open_of(tx.conn(), target, "User", user_id)?;
        if !open.is_empty() {
            return Ok(Started::Busy(open));
        }
        let until = tx.now() + lease;
        let new = NewOrder {
            target: target.to_string(),
            resource_type: "User".into(),
            resource_id: user_id.to_string(),
            operation: Operation::Upsert,
            origin: Origin::OnDemand,
            change_seq: 0,
            sync_id: None,
            remote_id: None,
            hold: None,
            start: Start::Leased {
                owner: owner.to_string(),
                until,
            },
            connection: None,
        };
        let id = orders::insert(tx, &[new])?
            .pop()
            .ok_or(StoreError::Query(diesel::result::Error::NotFound))?;
        let order = orders::find(tx.conn(), id)?
            .ok_or(StoreError::Query(diesel::result::Error::NotFound))?;
        Ok(Started::Order(Box::new(order)))
    })
}
