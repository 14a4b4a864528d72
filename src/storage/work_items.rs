//! Work items: a manual target's orders as tasks for a person. One per order; its order stays
//! `transmitted` (with no lease, so no reaper takes it back) until the person completes the
//! item (the order is `executed`, the identity link follows the action) or fails it (`error`).

use diesel::prelude::*;

use super::events::{self, EventType, NewEvent};
use super::identity_links;
use super::orders::{self, LinkChange, Order, OrderState};
use super::schema::work_items;
use super::{Db, DbConnection, Micros, StoreError, WriteTx};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = work_items)]
pub struct WorkItem {
    pub id: i64,
    pub order_id: i64,
    pub target: String,
    pub resource_type: String,
    pub resource_id: String,
    /// `create`, `update`, `deactivate` or `delete`.
    pub action: String,
    pub summary: String,
    /// JSON.
    pub data: String,
    /// `open`, `completed` or `failed`.
    pub state: String,
    pub created_at: Micros,
    pub closed_at: Option<Micros>,
    pub closed_by: Option<String>,
    /// The failure reason, or the comment the person left on completing it.
    pub outcome: Option<String>,
}

/// A work item to open for an order.
#[derive(Debug, Clone)]
pub struct NewWorkItem {
    pub action: String,
    pub summary: String,
    pub data: String,
}

/// Opens the order's work item, or returns the one it has (a redelivery after a crash opens
/// no second one).
pub fn open_once(db: &Db, order: &Order, item: &NewWorkItem) -> Result<WorkItem, StoreError> {
    db.write(|tx| {
        if let Some(existing) = of_order(tx.conn(), order.id)? {
            return Ok(existing);
        }
        let now = tx.now();
        let id: i64 = diesel::insert_into(work_items::table)
            .values((
                work_items::order_id.eq(order.id),
                work_items::target.eq(&order.target),
                work_items::resource_type.eq(&order.resource_type),
                work_items::resource_id.eq(&order.resource_id),
                work_items::action.eq(&item.action),
                work_items::summary.eq(&item.summary),
                work_items::data.eq(&item.data),
                work_items::state.eq("open"),
                work_items::created_at.eq(now),
            ))
            .returning(work_items::id)
            .get_result(tx.conn())?;
        let opened =
            find(tx.conn(), id)?.ok_or(StoreError::Query(diesel::result::Error::NotFound))?;
        events::append(tx, &[item_event(&opened, "scimgate")])?;
        Ok(opened)
    })
}

pub fn find(conn: &mut DbConnection, id: i64) -> Result<Option<WorkItem>, StoreError> {
    Ok(work_items::table
        .find(id)
        .select(WorkItem::as_select())
        .first(conn)
        .optional()?)
}

fn of_order(conn: &mut DbConnection, order_id: i64) -> Result<Option<WorkItem>, StoreError> {
    Ok(work_items::table
        .filter(work_items::order_id.eq(order_id))
        .select(WorkItem::as_select())
        .first(conn)
        .optional()?)
}

/// Filters for listing work items.
#[derive(Debug, Clone, Default)]
pub struct WorkItemFilter {
    pub target: Option<String>,
    pub state: Option<String>,
    /// Keyset paging: items with a larger id.
    pub after_id: Option<i64>,
    pub limit: i64,
}

pub fn list(conn: &mut DbConnection, filter: &WorkItemFilter) -> Result<Vec<WorkItem>, StoreError> {
    let mut query = work_items::table.into_boxed();
    if let Some(v) = &filter.target {
        query = query.filter(work_items::target.eq(v.clone()));
    }
    if let Some(v) = &filter.state {
        query = query.filter(work_items::state.eq(v.clone()));
    }
    if let Some(v) = filter.after_id {
        query = query.filter(work_items::id.gt(v));
    }
    Ok(query
        .order(work_items::id.asc())
        .limit(filter.limit)
        .select(WorkItem::as_select())
        .load(conn)?)
}

/// How a person closed a work item.
#[derive(Debug, Clone)]
pub enum Closing {
    /// Done; the remote id of the account as the person reports it, and a comment.
    Completed {
        remote_id: Option<String>,
        comment: Option<String>,
    },
    /// Could not be done, and why.
    Failed { reason: String },
}

/// What closing a work item came to.
#[derive(Debug)]
pub enum Closed {
    Done(Box<WorkItem>),
    NotFound,
    /// It is closed already.
    Refused(String),
}

/// Closes an open work item and moves its order accordingly, in one transaction: completed →
/// `executed` with the identity link set (create, update, deactivate) or removed (delete);
/// failed → `error` with the reason kept.
pub fn close(db: &Db, id: i64, by: &str, closing: &Closing) -> Result<Closed, StoreError> {
    db.write(|tx| {
        let Some(item) = find(tx.conn(), id)? else {
            return Ok(Closed::NotFound);
        };
        if item.state != "open" {
            return Ok(Closed::Refused(format!(
                "work item {id} is {} already",
                item.state
            )));
        }
        let (item_state, outcome) = match closing {
            Closing::Completed { comment, .. } => ("completed", comment.clone()),
            Closing::Failed { reason } => ("failed", Some(reason.clone())),
        };
        let now = tx.now();
        diesel::update(work_items::table.find(id))
            .set((
                work_items::state.eq(item_state),
                work_items::closed_at.eq(now),
                work_items::closed_by.eq(by),
                work_items::outcome.eq(outcome),
            ))
            .execute(tx.conn())?;
        match closing {
            Closing::Completed { remote_id, .. } => {
                let (remote, link) = completed_link(tx.conn(), &item, remote_id.clone())?;
                orders::finish_by_person(
                    tx,
                    item.order_id,
                    OrderState::Executed,
                    None,
                    remote,
                    link,
                    item.created_at,
                )?;
            }
            Closing::Failed { reason } => {
                orders::finish_by_person(
                    tx,
                    item.order_id,
                    OrderState::Error,
                    Some(reason.clone()),
                    None,
                    None,
                    item.created_at,
                )?;
            }
        }
        let Some(closed) = find(tx.conn(), id)? else {
            return Ok(Closed::NotFound);
        };
        events::append(tx, &[item_event(&closed, &events::operator_actor(by))])?;
        Ok(Closed::Done(Box::new(closed)))
    })
}

/// The event of a work item opened (still open) or closed.
fn item_event(item: &WorkItem, actor: &str) -> NewEvent {
    let open = item.state == "open";
    NewEvent {
        event_type: if open {
            EventType::WorkItemOpened
        } else {
            EventType::WorkItemClosed
        },
        resource_type: "WorkItem".into(),
        resource_id: item.id.to_string(),
        resource_seq: if open { 1 } else { 2 },
        target: Some(item.target.clone()),
        actor: actor.to_string(),
        data: serde_json::json!({
            "workItem": item.id,
            "order": item.order_id,
            "target": item.target,
            "resourceType": item.resource_type,
            "resourceId": item.resource_id,
            "action": item.action,
            "state": item.state,
        }),
    }
}

/// The remote id a completed item reports, and the identity-link change its action implies:
/// removed after a delete, else set. Without a reported remote id a create links to the
/// account's name in the item's data (`userName` or `displayName`), so the next order of the
/// resource is an update.
fn completed_link(
    conn: &mut DbConnection,
    item: &WorkItem,
    reported: Option<String>,
) -> Result<(Option<String>, Option<LinkChange>), StoreError> {
    let current = identity_links::link(conn, &item.target, &item.resource_type, &item.resource_id)?;
    if item.action == "delete" {
        return Ok((reported.or(current), Some(LinkChange::Remove)));
    }
    let data: serde_json::Value = serde_json::from_str(&item.data).unwrap_or_default();
    let remote = reported.or(current.clone()).or_else(|| {
        ["userName", "displayName"]
            .iter()
            .find_map(|k| data["object"][*k].as_str().map(str::to_string))
    });
    let link = match &remote {
        Some(remote) if current.as_deref() != Some(remote.as_str()) => {
            Some(LinkChange::Set(remote.clone()))
        }
        _ => None,
    };
    Ok((remote, link))
}

/// Withdraws the target's open work items (the target was deleted): nobody is to carry them
/// out any more. Returns how many.
pub fn withdraw_open(
    tx: &mut WriteTx<'_>,
    target: &str,
    reason: &str,
) -> Result<usize, StoreError> {
    let now = tx.now();
    Ok(diesel::update(
        work_items::table
            .filter(work_items::target.eq(target))
            .filter(work_items::state.eq("open")),
    )
    .set((
        work_items::state.eq("withdrawn"),
        work_items::closed_at.eq(now),
        work_items::outcome.eq(reason),
    ))
    .execute(tx.conn())?)
}
