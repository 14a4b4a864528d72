//! What a delivery starts from: each claimed order's resource as it is now and its link on the
//! target, read together for a round.

use std::collections::HashMap;

use serde_json::Value;

use super::blocking::blocking;
use super::Context;
use super::Target;
use crate::connectors::{ConnectorError, ObjectKind};
use crate::identity::IdentityError;
use crate::scim::projection::Projection;
use crate::storage::orders::{Operation, Order};
use crate::storage::{change_log, identity_links, Micros};

/// What a delivery starts from: the resource as it is now (`None` once deleted, or when the
/// order is a deletion) and its current link on the target.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub state: Option<Value>,
    pub link: Option<String>,
    /// Who made the order's change and when (read only for targets that publish messages,
    /// whose envelope carries it).
    pub author: Option<(String, Micros)>,
    /// The user as the target's mapping makes it, mapped with the read, off the delivery's
    /// path (a worker reads a batch while the previous one is out).
    pub mapped: Option<Value>,
}

impl Snapshot {
    /// The user's object for the target: the one mapped with the read, or mapped now.
    pub fn take_user_object(&mut self, target: &Target, resource_id: &str) -> Option<Value> {
        match self.mapped.take() {
            Some(object) => Some(object),
            None => Some(target.mapping.user(self.state.as_ref()?, resource_id)),
        }
    }
}

/// Snapshots for a round's orders, read together (a few queries for the whole round instead
/// of several per order). Reading before delivering is safe: a change made meanwhile has an
/// order of its own, delivered after this one.
pub async fn snapshots(
    directory: &Context,
    target: &Target,
    orders: &[Order],
) -> Result<HashMap<i64, Snapshot>, ConnectorError> {
    let directory = directory.clone();
    let with_password = !target.mapping.secret_targets().is_empty();
    let with_authors = target.publisher.is_some();
    let projection = target.mapping.user_projection();
    let mapping = target.mapping.clone();
    let target = target.config.name.clone();
    let orders: Vec<Order> = orders.to_vec();
    blocking(move || {
        let ids = |kind: &str, live: bool| -> Vec<String> {
            orders
                .iter()
                .filter(|o| o.resource_type == kind && (!live || o.operation != Operation::Delete))
                .map(|o| o.resource_id.clone())
                .collect()
        };
        let (user_ids, group_ids) = (ids("User", false), ids("Group", false));
        let seqs: Vec<i64> = if with_authors {
            orders.iter().map(|o| o.change_seq).collect()
        } else {
            Vec::new()
        };
        let (user_links, group_links, authors) = directory
            .db()
            .read(|c| {
                Ok::<_, crate::storage::StoreError>((
                    identity_links::links(c, &target, "User", &user_ids)?,
                    identity_links::links(c, &target, "Group", &group_ids)?,
                    change_log::authors(c, &seqs)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        let mut users = directory
            .get_users(&ids("User", true), &projection, with_password)
            .map_err(|e| e.to_string())?;
        // Each user is handed over, not copied, to the last of the round's orders for it
        // (usually its only one).
        let mut uses: HashMap<&str, usize> = HashMap::with_capacity(users.len());
        for order in &orders {
            *uses.entry(order.resource_id.as_str()).or_default() += 1;
        }
        let mut out = HashMap::with_capacity(orders.len());
        for order in &orders {
            let live = order.operation != Operation::Delete;
            let (state, link) = match kind_of(order) {
                ObjectKind::User => {
                    let left = uses.get_mut(order.resource_id.as_str()).map_or(0, |n| {
                        *n -= 1;
                        *n
                    });
                    let state = match (live, left) {
                        (false, _) => None,
                        (true, 0) => users.remove(&order.resource_id),
                        (true, _) => users.get(&order.resource_id).cloned(),
                    };
                    (state, user_links.get(&order.resource_id).cloned())
                }
                ObjectKind::Group => {
                    let state = if live {
                        match directory.get_group(&order.resource_id, &Projection::default()) {
                            Ok(r) => Some(r.body),
                            Err(IdentityError::NotFound(_)) => None,
                            Err(e) => return Err(e.to_string()),
                        }
                    } else {
                        None
                    };
                    (state, group_links.get(&order.resource_id).cloned())
                }
            };
            let author = authors.get(&order.change_seq).cloned();
            let mapped = match (kind_of(order), &state) {
                (ObjectKind::User, Some(user)) => Some(mapping.user(user, &order.resource_id)),
                _ => None,
            };
            out.insert(
                order.id,
                Snapshot {
                    state,
                    link,
                    author,
                    mapped,
                },
            );
        }
        Ok(out)
    })
    .await
}

/// Lets the connector look up, at once, the users of a claimed batch that have no account
/// linked yet: each is looked up before it is created.
pub async fn look_ahead<'a>(
    target: &Target,
    batch: impl Iterator<Item = (&'a Order, &'a Snapshot)>,
) {
    // A queue creates nothing that could be looked up.
    if target.publisher.is_some() {
        return;
    }
    let to_create: Vec<&Value> = batch
        .filter(|(order, snapshot)| {
            kind_of(order) == ObjectKind::User
                && !order.operation.is_for_orphan()
                && snapshot.link.is_none()
        })
        .filter_map(|(_, snapshot)| snapshot.mapped.as_ref())
        .collect();
    if !to_create.is_empty() {
        target
            .connector
            .look_ahead(ObjectKind::User, &to_create)
            .await;
    }
}

pub fn kind_of(order: &Order) -> ObjectKind {
    if order.resource_type == "Group" {
        ObjectKind::Group
    } else {
        ObjectKind::User
    }
}
