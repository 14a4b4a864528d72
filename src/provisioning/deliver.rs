//! Carrying out one order on its target: read the resource's current state, map it, correlate
//! or create, update, or deprovision. Every step is idempotent, so a redelivered order (after a
//! worker died) neither duplicates nor loses anything.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::connectors::{ConnectorError, Delivered, ObjectKind};
use crate::identity::{Directory, IdentityError};
use crate::scim::projection::Projection;
use crate::storage::orders::{self, Operation, Order, OrderState};
use crate::storage::{identity_links, Db};

use super::decide::{decide, Action, Facts};
use super::{manual, review, Target};
use crate::targets::{Deprovision, TargetKind};

pub use crate::storage::orders::LinkChange;

/// Runs blocking store work off the async workers; store trouble is worth a retry.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ConnectorError> {
    let retryable = |message: String| ConnectorError::Retryable {
        message,
        status: None,
        retry_after: None,
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(retryable),
        Err(e) => Err(retryable(format!("internal task failed: {e}"))),
    }
}

/// What a delivery starts from: the resource as it is now (`None` once deleted, or when the
/// order is a deletion) and its current link on the target.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub state: Option<Value>,
    pub link: Option<String>,
}

/// Snapshots for a round's orders, read together (a few queries for the whole round instead
/// of several per order). Reading before delivering is safe: a change made meanwhile has an
/// order of its own, delivered after this one.
pub async fn snapshots(
    directory: &Directory,
    target: &Target,
    orders: &[Order],
) -> Result<HashMap<i64, Snapshot>, ConnectorError> {
    let directory = directory.clone();
    let with_password = !target.mapping.secret_targets().is_empty();
    let projection = target.mapping.user_projection();
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
        let (user_links, group_links) = directory
            .db()
            .read(|c| {
                Ok::<_, crate::storage::StoreError>((
                    identity_links::links(c, &target, "User", &user_ids)?,
                    identity_links::links(c, &target, "Group", &group_ids)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        let users = directory
            .get_users(&ids("User", true), &projection, with_password)
            .map_err(|e| e.to_string())?;
        let mut out = HashMap::with_capacity(orders.len());
        for order in &orders {
            let live = order.operation != Operation::Delete;
            let (state, link) = match kind_of(order) {
                ObjectKind::User => (
                    users.get(&order.resource_id).filter(|_| live).cloned(),
                    user_links.get(&order.resource_id).cloned(),
                ),
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
            out.insert(order.id, Snapshot { state, link });
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
    let to_create: Vec<Value> = batch
        .filter(|(order, snapshot)| {
            kind_of(order) == ObjectKind::User
                && !order.operation.is_for_orphan()
                && snapshot.link.is_none()
        })
        .filter_map(|(order, snapshot)| {
            let resource = snapshot.state.as_ref()?;
            Some(target.mapping.user(resource, &order.resource_id))
        })
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

/// What a delivery learnt on the way, recorded with its outcome: the identity-link change and
/// a note for the order (members left out of a group).
#[derive(Debug, Default)]
struct DeliveryLog {
    link: std::sync::Mutex<Option<LinkChange>>,
    note: std::sync::Mutex<Option<String>>,
}

impl DeliveryLog {
    fn record(&self, change: LinkChange) {
        if let Ok(mut slot) = self.link.lock() {
            *slot = Some(change);
        }
    }

    fn note(&self, note: Option<String>) {
        if let Ok(mut slot) = self.note.lock() {
            *slot = note;
        }
    }

    fn take(&self) -> Option<LinkChange> {
        self.link.lock().ok().and_then(|mut slot| slot.take())
    }

    fn take_note(&self) -> Option<String> {
        self.note.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// How a delivered object compared when read back from the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Nothing to read back (a deletion, or nothing was due).
    NotApplicable,
    Matches,
    /// The first difference found, in words.
    Drift(String),
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivered: Delivered,
    pub verification: Verification,
    pub link: Option<LinkChange>,
    /// Nothing was sent: the order waits for a person.
    pub parked: Option<Parked>,
    /// What the order should say beside its state (members left out of a group, and why).
    pub note: Option<String>,
}

/// Why an order went nowhere yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parked {
    /// A review rule holds it for approval; why, in words.
    Held(String),
    /// A manual target's work item stands for it until a person completes or fails it.
    WithPerson,
}

impl Outcome {
    pub fn parked(why: Parked) -> Outcome {
        Outcome {
            delivered: Delivered::default(),
            verification: Verification::NotApplicable,
            link: None,
            parked: Some(why),
            note: None,
        }
    }
}

/// Delivers one order, then reads the object back to verify it. `Ok` means the target now
/// reflects the resource (or nothing was due).
pub async fn deliver(
    directory: &Directory,
    target: &Target,
    order: &Order,
    snapshot: Snapshot,
) -> Result<Outcome, ConnectorError> {
    let action = action_for(directory, target, order, &snapshot).await?;
    let facts = review::Facts {
        order,
        state: snapshot.state.as_ref(),
        deprovisions: action.deprovisions(),
    };
    let rules = &target.config.review;
    if let Some(reason) = review::held_reason(
        directory,
        &target.config.name,
        rules,
        target.review_filter.as_ref(),
        facts,
    )
    .await?
    {
        return Ok(Outcome::parked(Parked::Held(reason)));
    }
    if target.config.kind == TargetKind::Manual {
        return manual::hand_over(directory, target, order, snapshot, &action).await;
    }
    let links = DeliveryLog::default();
    let (delivered, sent) = apply(directory, target, order, snapshot, &action, &links).await?;
    let verification = match (&sent, &delivered.remote_id) {
        (Some(object), Some(remote_id)) => {
            let remote = match &delivered.read_back {
                Some(held) => Some(held.clone()),
                None => target.connector.read(kind_of(order), remote_id).await?,
            };
            match remote {
                None => Verification::Drift("the object is missing on the target".into()),
                Some(remote) => {
                    match target.connector.difference(kind_of(order), object, &remote) {
                        None => Verification::Matches,
                        Some(difference) => Verification::Drift(difference),
                    }
                }
            }
        }
        _ => Verification::NotApplicable,
    };
    Ok(Outcome {
        delivered,
        verification,
        link: links.take(),
        parked: None,
        note: links.take_note(),
    })
}

/// What the order comes to on the target, from the resource, its scope and its link.
pub async fn action_for(
    directory: &Directory,
    target: &Target,
    order: &Order,
    snapshot: &Snapshot,
) -> Result<Action, ConnectorError> {
    let in_scope = in_scope(directory, target, order, snapshot).await?;
    Ok(decide(Facts {
        operation: order.operation,
        kind: kind_of(order),
        resource_id: &order.resource_id,
        wanted: snapshot.state.is_some() && in_scope,
        link: snapshot.link.as_deref(),
        deactivates: target.config.deprovision == Deprovision::Deactivate,
    }))
}

/// Carries out the decided action; returns the call's result and the object sent, if any.
async fn apply(
    directory: &Directory,
    target: &Target,
    order: &Order,
    snapshot: Snapshot,
    action: &Action,
    links: &DeliveryLog,
) -> Result<(Delivered, Option<Value>), ConnectorError> {
    let kind = kind_of(order);
    let connector = &target.connector;
    // A full sync's orders for accounts no identity stands for have no link to keep.
    let orphan = order.operation.is_for_orphan();
    let resource = match (action, snapshot.state) {
        (Action::Nothing, _) => return Ok((Delivered::default(), None)),
        (Action::Delete { remote }, _) => {
            let done = connector.delete(kind, remote).await?;
            if !orphan {
                links.record(LinkChange::Remove);
            }
            return Ok((done, None));
        }
        (Action::Deactivate { remote }, _) => {
            let done = connector.deactivate(kind, remote).await;
            let done = if orphan {
                done?
            } else {
                updated(done, remote, links)?
            };
            return Ok((done, None));
        }
        (Action::Create | Action::Update { .. }, Some(resource)) => resource,
        (Action::Create | Action::Update { .. }, None) => {
            return Err(ConnectorError::Retryable {
                message: "the resource could not be read".into(),
                status: None,
                retry_after: None,
            })
        }
    };
    let object = match kind {
        ObjectKind::User => target.mapping.user(&resource, &order.resource_id),
        ObjectKind::Group => {
            let group = outbound_group(
                directory.db(),
                &target.config.name,
                &resource,
                &order.resource_id,
            )
            .await?;
            links.note(group.note);
            group.object
        }
    };
    let secrets = match kind {
        ObjectKind::User => target.mapping.secret_targets(),
        ObjectKind::Group => &[],
    };
    let linked = action.remote().map(str::to_string);
    let delivered = upsert(target, kind, linked, &object, secrets, links).await?;
    Ok((delivered, Some(without(&object, secrets))))
}

/// Whether the resource is (still) in the target's scope: it exists and, for a user, matches
/// `users_filter`. An orphan account's order has no resource: never in scope.
pub async fn in_scope(
    directory: &Directory,
    target: &Target,
    order: &Order,
    snapshot: &Snapshot,
) -> Result<bool, ConnectorError> {
    if order.operation.is_for_orphan() {
        return Ok(false);
    }
    match (&snapshot.state, kind_of(order), &target.users_filter) {
        (None, _, _) => Ok(false),
        (Some(_), ObjectKind::User, Some(filter)) => {
            let (directory, id, filter) =
                (directory.clone(), order.resource_id.clone(), filter.clone());
            blocking(move || {
                directory
                    .user_matches(&id, &filter)
                    .map_err(|e| e.to_string())
            })
            .await
        }
        (Some(_), _, _) => Ok(true),
    }
}

/// The object without the given top-level attributes.
fn without(object: &Value, names: &[String]) -> Value {
    let mut object = object.clone();
    if let Value::Object(fields) = &mut object {
        for name in names {
            fields.remove(name);
        }
    }
    object
}

/// Updates the linked object, or correlates and creates it. Attributes computed from the
/// password (`secrets`) go out only with a create.
async fn upsert(
    target: &Target,
    kind: ObjectKind,
    linked: Option<String>,
    object: &Value,
    secrets: &[String],
    links: &DeliveryLog,
) -> Result<Delivered, ConnectorError> {
    let connector = &target.connector;
    let changes = &without(object, secrets);
    if let Some(remote) = &linked {
        match connector.update(kind, remote, changes).await {
            // The remote object vanished: fall through and provision it again.
            Err(ConnectorError::Permanent {
                status: Some(404), ..
            }) => {
                links.record(LinkChange::Remove);
            }
            other => return updated(other, remote, links),
        }
    }
    // Correlate before creating: the object may exist already (a previous attempt whose answer
    // was lost, or an account created by hand).
    let existing = connector.find(kind, object).await?;
    let remote = match existing {
        Some(remote) => remote,
        None => match connector.create(kind, object).await {
            Ok(mut done) => {
                if let Some(remote) = &done.remote_id {
                    links.record(LinkChange::Set(remote.clone()));
                    done.status = Some(201);
                }
                return Ok(done);
            }
            // Someone created it meanwhile: correlate again.
            Err(ConnectorError::Permanent {
                status: Some(409),
                message,
            }) => connector
                .find(kind, object)
                .await?
                .ok_or_else(|| ConnectorError::Permanent {
                    message: format!("{message}; and no existing object can be found to link"),
                    status: Some(409),
                })?,
            Err(e) => return Err(e),
        },
    };
    links.record(LinkChange::Set(remote.clone()));
    updated(
        connector.update(kind, &remote, object).await,
        &remote,
        links,
    )
}

/// Records a new link when an update moved the object (an LDAP rename changes its DN).
fn updated(
    result: Result<Delivered, ConnectorError>,
    linked: &str,
    links: &DeliveryLog,
) -> Result<Delivered, ConnectorError> {
    if let Ok(Delivered {
        remote_id: Some(now),
        ..
    }) = &result
    {
        if now != linked {
            links.record(LinkChange::Set(now.clone()));
        }
    }
    result
}

/// A group's members: (local id, "User" or "Group").
fn members_of(resource: &Value) -> Vec<(String, String)> {
    resource["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| {
                    Some((
                        x["value"].as_str()?.to_string(),
                        x["type"].as_str().unwrap_or("User").to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The group as sent to a target, members named by their remote ids (`remote_of(kind, id)`),
/// and the members (kind, id) that have none there.
pub fn group_object(
    resource: &Value,
    source_id: &str,
    remote_of: impl Fn(&str, &str) -> Option<String>,
) -> (Value, Vec<(String, String)>) {
    let members = members_of(resource);
    let mut translated = Vec::with_capacity(members.len());
    let mut missing = Vec::new();
    for kind in ["User", "Group"] {
        for (id, member_kind) in &members {
            if (member_kind == "Group") != (kind == "Group") {
                continue;
            }
            match remote_of(kind, id) {
                Some(remote) => translated.push(json!({"value": remote, "type": kind})),
                None => missing.push((kind.to_string(), id.clone())),
            }
        }
    }
    let object = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": resource["displayName"],
        "externalId": source_id,
        "members": translated,
    });
    (object, missing)
}

/// A group as it goes to a target, and what was left out of it and why.
pub(super) struct OutboundGroup {
    pub object: Value,
    pub note: Option<String>,
}

/// Group members are sent as the target's ids. A member not provisioned there yet whose order
/// is still open makes the group wait (`Deferred`, naming the member whose order is newest, so
/// the group is retried once when that one has landed). A member that will not be provisioned
/// there (out of the target's scope, or its order ended in error or was cancelled) is left out,
/// and the note says so, instead of holding the group back.
pub(super) async fn outbound_group(
    db: &Db,
    target: &str,
    resource: &Value,
    source_id: &str,
) -> Result<OutboundGroup, ConnectorError> {
    let members = members_of(resource);
    let mut links = member_links(db, target, members).await?;
    let (mut object, mut missing) = group_object(resource, source_id, |kind, id| {
        links.get(&(kind.to_string(), id.to_string())).cloned()
    });
    if missing.is_empty() {
        return Ok(OutboundGroup { object, note: None });
    }
    // The missing members' orders first, then their links again: a member that landed after
    // the first read has its link now, whatever its order's state said.
    let (db2, target2) = (db.clone(), target.to_string());
    let asked = missing.clone();
    let standing = blocking(move || {
        db2.read(|c| orders::latest_orders(c, &target2, &asked))
            .map_err(|e| e.to_string())
    })
    .await?;
    let unlinked = missing
        .iter()
        .map(|(kind, id)| (id.clone(), kind.clone()))
        .collect();
    let late = member_links(db, target, unlinked).await?;
    if !late.is_empty() {
        links.extend(late);
        (object, missing) = group_object(resource, source_id, |kind, id| {
            links.get(&(kind.to_string(), id.to_string())).cloned()
        });
    }
    let mut waiting_on: Option<(i64, &str, &str)> = None;
    let mut left_out = Vec::new();
    for (kind, id) in &missing {
        match standing.get(&(kind.clone(), id.clone())) {
            Some((order_id, state)) if state.is_open() => {
                if waiting_on.is_none_or(|(newest, _, _)| *order_id > newest) {
                    waiting_on = Some((*order_id, kind, id));
                }
            }
            Some((order_id, OrderState::Error)) => {
                left_out.push(format!("{kind} {id} (its order {order_id} ended in error)"))
            }
            Some((order_id, OrderState::Inactive)) => {
                left_out.push(format!("{kind} {id} (its order {order_id} was cancelled)"))
            }
            _ => left_out.push(format!("{kind} {id} (not in the target's scope)")),
        }
    }
    if let Some((_, kind, id)) = waiting_on {
        return Err(ConnectorError::Deferred {
            message: format!("member {kind} {id} is not provisioned on {target} yet"),
            waiting_for: Some(id.to_string()),
        });
    }
    let note = (!left_out.is_empty())
        .then(|| format!("left out of the group on {target}: {}", left_out.join(", ")));
    Ok(OutboundGroup { object, note })
}

/// The remote ids on `target` of these members ((id, kind) pairs, as [`members_of`] gives them),
/// keyed by (kind, id).
async fn member_links(
    db: &Db,
    target: &str,
    members: Vec<(String, String)>,
) -> Result<HashMap<(String, String), String>, ConnectorError> {
    let mut links = HashMap::new();
    for kind in ["User", "Group"] {
        let ids: Vec<String> = members
            .iter()
            .filter(|(_, t)| (t == "Group") == (kind == "Group"))
            .map(|(id, _)| id.clone())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let (db2, target2) = (db.clone(), target.to_string());
        let found = blocking(move || {
            db2.read(|c| identity_links::links(c, &target2, kind, &ids))
                .map_err(|e| e.to_string())
        })
        .await?;
        links.extend(
            found
                .into_iter()
                .map(|(id, remote)| ((kind.to_string(), id), remote)),
        );
    }
    Ok(links)
}
