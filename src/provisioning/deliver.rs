//! Carrying out one order on its target: read the resource's current state, map it, correlate
//! or create, update, or deprovision. Every step is idempotent, so a redelivered order (after a
//! worker died) neither duplicates nor loses anything.

use serde_json::Value;

use super::Context;
use crate::connectors::{ConnectorError, Delivered, ObjectKind};
use crate::storage::orders::Order;

use super::blocking::blocking;
use super::decide::{decide, Action, Facts};
use super::group_members::outbound_group;
use super::outcome::{Outcome, Parked, Verification};
use super::snapshot::{kind_of, Snapshot};
use super::{manual, publish, review, Target};
use crate::targets::{Deprovision, TargetKind};

pub use crate::storage::orders::LinkChange;

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

/// Delivers one order, then reads the object back to verify it. `Ok` means the target now
/// reflects the resource (or nothing was due).
pub async fn deliver(
    directory: &Context,
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
    if let Some(publisher) = &target.publisher {
        return publish::publish(
            directory,
            target,
            publisher.as_ref(),
            order,
            snapshot,
            &action,
        )
        .await;
    }
    let links = DeliveryLog::default();
    let (mut delivered, sent) = apply(directory, target, order, snapshot, &action, &links).await?;
    let verification = match (&sent, &delivered.remote_id) {
        (Some(object), Some(remote_id)) => {
            let remote = match delivered.read_back.take() {
                Some(held) => Some(held),
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
    directory: &Context,
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
    directory: &Context,
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
    let mut snapshot = snapshot;
    let object = match kind {
        ObjectKind::User => snapshot.take_user_object(target, &order.resource_id),
        ObjectKind::Group => None,
    };
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
    let object = match (kind, object) {
        (ObjectKind::User, Some(object)) => object,
        (ObjectKind::User, None) => target.mapping.user(&resource, &order.resource_id),
        (ObjectKind::Group, _) => {
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
    Ok((delivered, Some(without(object, secrets))))
}

/// Whether the resource is (still) in the target's scope: it exists and, for a user, matches
/// `users_filter`. An orphan account's order has no resource: never in scope.
pub async fn in_scope(
    directory: &Context,
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
fn without(mut object: Value, names: &[String]) -> Value {
    if let Value::Object(fields) = &mut object {
        for name in names {
            fields.remove(name);
        }
    }
    object
}

/// `object` as an update sends it: without the given top-level attributes, copied only when
/// it holds one of them.
fn update_of<'a>(object: &'a Value, names: &[String]) -> std::borrow::Cow<'a, Value> {
    let holds_one = names.iter().any(|name| object.get(name).is_some());
    match holds_one {
        true => std::borrow::Cow::Owned(without(object.clone(), names)),
        false => std::borrow::Cow::Borrowed(object),
    }
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
    if let Some(remote) = &linked {
        match connector
            .update(kind, remote, &update_of(object, secrets))
            .await
        {
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
